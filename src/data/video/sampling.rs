//! Which frames of a tracklet a model sees: torchreid's `VideoDataset.sample_method` with its
//! `seq_len`, and how the frames' embeddings become the tracklet's (`pooling_method`).

use serde::{Deserialize, Serialize};

use crate::data::rng::Rng;
use crate::error::{Error, Result};

/// torchreid's `sample_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameSampling {
    /// `seq_len` frames at equal steps (a short tracklet repeats its last frame).
    Evenly,
    /// `seq_len` frames at random, in temporal order (with repeats only when the tracklet is
    /// shorter).
    Random,
    /// Every frame.
    All,
}

impl std::str::FromStr for FrameSampling {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "evenly" => Ok(Self::Evenly),
            "random" => Ok(Self::Random),
            "all" => Ok(Self::All),
            other => Err(Error::InvalidInput(format!(
                "unknown sample_method `{other}`; expected evenly, random or all"
            ))),
        }
    }
}

/// torchreid's `pooling_method`: how frame embeddings become one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The mean of the frames' embeddings.
    Avg,
    /// The element-wise maximum.
    Max,
}

impl std::str::FromStr for Pooling {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "avg" => Ok(Self::Avg),
            "max" => Ok(Self::Max),
            other => Err(Error::InvalidInput(format!(
                "unknown pooling_method `{other}`; expected avg or max"
            ))),
        }
    }
}

/// How a tracklet becomes one embedding (torchreid's `video:` section): `seq_len` frames
/// picked by `sample_method`, their embeddings pooled by `pooling_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackletSampling {
    /// Frames per tracklet (torchreid's default 15).
    pub seq_len: usize,
    /// Which frames.
    pub sample_method: FrameSampling,
    /// How their embeddings combine.
    pub pooling_method: Pooling,
}

impl Default for TrackletSampling {
    fn default() -> Self {
        Self {
            seq_len: 15,
            sample_method: FrameSampling::Evenly,
            pooling_method: Pooling::Avg,
        }
    }
}

impl TrackletSampling {
    /// Refuses a `seq_len` of 0.
    pub fn check(&self) -> Result<()> {
        if self.seq_len == 0 {
            return Err(Error::InvalidInput(
                "video.seq_len must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// The frame indices `method` takes from a tracklet of `frames` frames (torchreid's
/// `VideoDataset.__getitem__`): `evenly` steps through the first multiple of `seq_len` frames
/// (a shorter tracklet is padded with its last frame); `random` draws `seq_len` distinct
/// frames (with replacement when there are fewer) and sorts them; `all` takes every frame.
pub fn frame_indices(
    frames: usize,
    seq_len: usize,
    method: FrameSampling,
    rng: &mut Rng,
) -> Vec<usize> {
    match method {
        FrameSampling::All => (0..frames).collect(),
        FrameSampling::Evenly if frames >= seq_len => {
            let step = (frames - frames % seq_len) / seq_len;
            (0..seq_len).map(|i| i * step).collect()
        }
        FrameSampling::Evenly => (0..seq_len).map(|i| i.min(frames - 1)).collect(),
        FrameSampling::Random => {
            let mut picked: Vec<usize> = if frames >= seq_len {
                let mut all: Vec<usize> = (0..frames).collect();
                // A partial Fisher–Yates: the first seq_len of a random permutation.
                for i in 0..seq_len {
                    let j = i + rng.below(frames - i);
                    all.swap(i, j);
                }
                all.truncate(seq_len);
                all
            } else {
                (0..seq_len).map(|_| rng.below(frames)).collect()
            };
            picked.sort_unstable();
            picked
        }
    }
}

/// Pools `counts[i]` consecutive rows of `features` (`dim` wide) into one row each.
pub fn pool(features: &[f32], dim: usize, counts: &[usize], pooling: Pooling) -> Vec<f32> {
    let mut out = Vec::with_capacity(counts.len() * dim);
    let mut rows = features.chunks(dim);
    for &n in counts {
        let mut acc = match pooling {
            Pooling::Avg => vec![0f32; dim],
            Pooling::Max => vec![f32::NEG_INFINITY; dim],
        };
        for row in rows.by_ref().take(n) {
            for (a, &v) in acc.iter_mut().zip(row) {
                match pooling {
                    Pooling::Avg => *a += v,
                    Pooling::Max => *a = a.max(v),
                }
            }
        }
        if pooling == Pooling::Avg {
            acc.iter_mut().for_each(|a| *a /= n.max(1) as f32);
        }
        out.extend(acc);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// torchreid's `evenly` (numpy: `arange(0, m, m / seq_len)` with `m = n - n % seq_len`, or
    /// `arange(n)` padded with `n - 1`), written out for a few sizes.
    #[test]
    fn evenly_is_torchreids() {
        let mut rng = Rng::new(0);
        let evenly = |n, s, rng: &mut Rng| frame_indices(n, s, FrameSampling::Evenly, rng);
        assert_eq!(evenly(10, 4, &mut rng), [0, 2, 4, 6]);
        assert_eq!(evenly(15, 15, &mut rng), (0..15).collect::<Vec<_>>());
        assert_eq!(
            evenly(47, 15, &mut rng),
            [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42]
        );
        assert_eq!(evenly(3, 5, &mut rng), [0, 1, 2, 2, 2]);
        assert_eq!(
            frame_indices(7, 4, FrameSampling::All, &mut rng),
            (0..7).collect::<Vec<_>>()
        );
    }

    #[test]
    fn random_frames_are_sorted_distinct_when_they_can_be_and_cover_the_tracklet() {
        let mut rng = Rng::new(4);
        let mut seen = [0usize; 20];
        for _ in 0..2000 {
            let picked = frame_indices(20, 6, FrameSampling::Random, &mut rng);
            assert_eq!(picked.len(), 6);
            assert!(picked.windows(2).all(|w| w[0] < w[1]), "{picked:?}");
            picked.iter().for_each(|&i| seen[i] += 1);
        }
        // Each frame in 6/20 of the draws: 600 ± 5 standard deviations.
        assert!(seen.iter().all(|&n| (500..=700).contains(&n)), "{seen:?}");
        let short = frame_indices(3, 8, FrameSampling::Random, &mut rng);
        assert!(short.len() == 8 && short.iter().all(|&i| i < 3));
    }

    #[test]
    fn pooling_averages_or_takes_the_maximum() {
        let f = [1.0, 2.0, 3.0, 0.0, 5.0, -1.0];
        assert_eq!(pool(&f, 2, &[2, 1], Pooling::Avg), [2.0, 1.0, 5.0, -1.0]);
        assert_eq!(pool(&f, 2, &[2, 1], Pooling::Max), [3.0, 2.0, 5.0, -1.0]);
    }
}
