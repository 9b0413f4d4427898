//! Calibrated open-set matching: the score threshold that accepts a chosen share of
//! different-identity pairs (the false-accept rate, FAR), found on labelled embeddings, with the
//! share of same-identity pairs it accepts (the true-accept rate, TAR). A gallery keeps its
//! calibration, and a search can use the threshold as its `min_score`.

use crate::distance::Metric;
use crate::error::{Error, Result};

/// The most labelled rows a calibration scores pairwise (12.5 million pairs, 50 MB of
/// scores); a larger set is better subsampled by the caller.
pub const MAX_CALIBRATION_ROWS: usize = 5000;

/// A threshold and what it does on the pairs it was found on.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    /// The metric of the scores (a threshold means nothing under another).
    pub metric: String,
    /// The false-accept rate asked for.
    pub target_far: f64,
    /// The `min_score` that meets it: the lowest similarity accepted (cosine), or the largest
    /// squared distance accepted (euclidean).
    pub threshold: f32,
    /// The false-accept rate on the calibration pairs (at most `target_far`).
    pub far: f64,
    /// The true-accept rate on the calibration pairs.
    pub tar: f64,
    /// Same-identity pairs counted.
    pub genuine_pairs: u64,
    /// Different-identity pairs counted.
    pub impostor_pairs: u64,
}

impl Calibration {
    /// The threshold for `target_far` (strictly between 0 and 1) from scored pairs: `scores`
    /// as the gallery gives them under `metric` (similarities, or squared distances), `same`
    /// telling which pairs share an identity. The threshold is just past the impostor score
    /// that `target_far` of the impostors reach, so the realized FAR never exceeds the target.
    pub fn from_pairs(
        metric: Metric,
        scores: &[f32],
        same: &[bool],
        target_far: f64,
    ) -> Result<Calibration> {
        if !(target_far > 0.0 && target_far < 1.0) {
            return Err(Error::InvalidInput(format!(
                "target false-accept rate {target_far}: it must be between 0 and 1"
            )));
        }
        if scores.len() != same.len() {
            return Err(Error::InvalidInput(format!(
                "{} scores for {} pair labels",
                scores.len(),
                same.len()
            )));
        }
        if scores.iter().any(|s| !s.is_finite()) {
            return Err(Error::InvalidInput("a pair score is not finite".into()));
        }
        // Impostor scores, most alike first.
        let mut impostors: Vec<f32> = scores
            .iter()
            .zip(same)
            .filter(|(_, same)| !**same)
            .map(|(s, _)| *s)
            .collect();
        let genuine: Vec<f32> = scores
            .iter()
            .zip(same)
            .filter(|(_, same)| **same)
            .map(|(s, _)| *s)
            .collect();
        if impostors.is_empty() || genuine.is_empty() {
            return Err(Error::InvalidInput(
                "calibration needs same-identity and different-identity pairs".into(),
            ));
        }
        match metric {
            Metric::Cosine => impostors.sort_by(|a, b| b.total_cmp(a)),
            Metric::Euclidean => impostors.sort_by(|a, b| a.total_cmp(b)),
        }
        // At most `allowed` impostors may pass: the threshold is just beyond the next one.
        let allowed = (target_far * impostors.len() as f64).floor() as usize;
        let edge = impostors[allowed.min(impostors.len() - 1)];
        let threshold = match metric {
            Metric::Cosine => edge.next_up(),
            Metric::Euclidean => edge.next_down(),
        };
        let accepted = |s: &f32| match metric {
            Metric::Cosine => *s >= threshold,
            Metric::Euclidean => *s <= threshold,
        };
        let rate = |scores: &[f32]| {
            scores.iter().filter(|s| accepted(s)).count() as f64 / scores.len() as f64
        };
        Ok(Calibration {
            metric: metric.name().into(),
            target_far,
            threshold,
            far: rate(&impostors),
            tar: rate(&genuine),
            genuine_pairs: genuine.len() as u64,
            impostor_pairs: impostors.len() as u64,
        })
    }

    /// The metric the threshold is for.
    pub fn metric(&self) -> Result<Metric> {
        self.metric.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule, counted by hand on a small set: 10 impostors, 20 % allowed, so the two
    /// highest pass and the third does not.
    #[test]
    fn the_threshold_lets_through_at_most_the_target_share_of_impostors() {
        let impostors = [0.1, 0.9, 0.3, 0.8, 0.75, 0.2, 0.5, 0.4, 0.6, 0.7];
        let genuine = [0.95, 0.85, 0.72, 0.5];
        let scores: Vec<f32> = impostors.iter().chain(&genuine).copied().collect();
        let same: Vec<bool> = (0..14).map(|i| i >= 10).collect();
        let c = Calibration::from_pairs(Metric::Cosine, &scores, &same, 0.2).unwrap();
        assert!(c.threshold > 0.75 && c.threshold <= 0.75f32.next_up());
        assert_eq!((c.far, c.tar), (0.2, 0.5));
        assert_eq!((c.genuine_pairs, c.impostor_pairs), (4, 10));
        // Distances: the two smallest impostor distances pass.
        let c = Calibration::from_pairs(Metric::Euclidean, &scores, &same, 0.2).unwrap();
        assert!(c.threshold < 0.3 && c.threshold >= 0.3f32.next_down());
        assert_eq!((c.far, c.tar), (0.2, 0.0));
        // Ties at the edge are all refused: the share never exceeds the target.
        let tied = [0.5f32; 10]
            .iter()
            .chain(&[0.9])
            .copied()
            .collect::<Vec<_>>();
        let same: Vec<bool> = (0..11).map(|i| i == 10).collect();
        let c = Calibration::from_pairs(Metric::Cosine, &tied, &same, 0.5).unwrap();
        assert_eq!((c.far, c.tar), (0.0, 1.0));
    }

    #[test]
    fn impossible_targets_and_one_sided_pairs_are_refused() {
        let s = [0.1f32, 0.2];
        for far in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(Calibration::from_pairs(Metric::Cosine, &s, &[true, false], far).is_err());
        }
        assert!(Calibration::from_pairs(Metric::Cosine, &s, &[true, true], 0.1).is_err());
        assert!(Calibration::from_pairs(Metric::Cosine, &s, &[true], 0.1).is_err());
        assert!(
            Calibration::from_pairs(Metric::Cosine, &[f32::NAN, 0.1], &[true, false], 0.1).is_err()
        );
    }
}
