//! deep-object-reid's learning-rate search by training (`lr_finder.mode: grid_search | TPE`):
//! each trial trains the run's starting model for a few epochs at one constant rate,
//! evaluated after every epoch; the rate whose last score is highest becomes the run's.
//!
//! - `grid_search` tries `min_lr, min_lr + step, …` (below `max_lr`, NumPy's `arange`), each
//!   once, in increasing order (optuna's `GridSampler` takes them in a random order; the set is
//!   the same), at most `n_trials` of them.
//! - `TPE` tries `n_trials` rates: five uniformly at random, then each from a Tree-structured
//!   Parzen Estimator (optuna's `TPESampler`, one dimension): the trials split into the best
//!   ⌈10 %⌉ (at most 25) and the rest, a Parzen mixture of truncated normals fitted to each
//!   (bandwidths from the neighbours' distances, clipped, plus a prior over the range), 24
//!   candidates drawn from the good mixture, the one with the largest density ratio kept;
//!   rounded to `step` when one is given. A rate tried before is a pruned trial that trains
//!   nothing, as deep-object-reid's `configure_lr_finder` makes it.
//! - A trial stops after an epoch when its best score so far is below the median of the
//!   completed trials' scores at that epoch (or is not a number), once five trials have
//!   completed (optuna's default `MedianPruner`). A diverged trial (its last score −∞)
//!   counts as completed, as a run whose accuracy collapsed does in deep-object-reid.
//! - The best rate is the first of the completed trials with the highest last score.
//!
//! The trials themselves are run by the caller (`train::engine`), so this module holds only
//! the search: it sees rates go out and scores come back.

use serde::Serialize;

use crate::data::rng::Rng;
use crate::error::{Error, Result};

/// How the search proposes rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    /// Every rate of the grid, once.
    Grid,
    /// Tree-structured Parzen Estimator.
    Tpe,
}

/// The search's settings (deep-object-reid's `lr_finder` keys).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSettings {
    /// How rates are proposed.
    pub mode: SearchMode,
    /// Lowest rate.
    pub min_lr: f64,
    /// Highest rate (excluded from the grid, as by `arange`).
    pub max_lr: f64,
    /// Grid spacing (required by the grid; TPE rounds to it when given).
    pub step: Option<f64>,
    /// Epochs per trial.
    pub epochs: usize,
    /// Most trials.
    pub trials: usize,
    /// Seed of TPE's draws.
    pub seed: u64,
}

/// One trial: its rate and its score after each epoch it trained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trial {
    /// The rate.
    pub lr: f64,
    /// The score (rank-1 or top-1 accuracy; mAP for multi-label) after each epoch trained.
    pub scores: Vec<f64>,
    /// Stopped by the pruner (or a repeated rate, which trains nothing).
    pub pruned: bool,
}

impl Trial {
    fn last(&self) -> Option<f64> {
        self.scores.last().copied()
    }
}

/// The trials and the rate chosen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchReport {
    /// Every trial, in the order run.
    pub trials: Vec<Trial>,
    /// The rate of the completed trial with the highest last score.
    pub best: f64,
}

impl SearchReport {
    /// Writes the trials as CSV (`trial,lr,pruned,score_epoch_1,…`), atomically.
    pub fn write_csv(&self, path: &std::path::Path) -> Result<()> {
        let epochs = self
            .trials
            .iter()
            .map(|t| t.scores.len())
            .max()
            .unwrap_or(0);
        let mut csv = String::from("trial,lr,pruned");
        for e in 1..=epochs {
            csv += &format!(",score_epoch_{e}");
        }
        csv.push('\n');
        for (i, t) in self.trials.iter().enumerate() {
            csv += &format!("{},{},{}", i + 1, t.lr, t.pruned);
            for s in &t.scores {
                csv += &format!(",{s}");
            }
            csv.push('\n');
        }
        crate::formats::npy::write_atomically(path, csv.as_bytes())
    }
}

/// What a trial's runner hears after each epoch (from 1) with its score: `true` to go on.
pub type Verdict<'a> = &'a mut dyn FnMut(usize, f64) -> bool;

/// Runs one trial: its number (from 1), its rate and the verdict to ask after each epoch;
/// returns the scores it got.
pub type TrialRunner<'a> = &'a mut dyn FnMut(usize, f64, Verdict) -> Result<Vec<f64>>;

/// The most trials a search runs.
const MAX_TRIALS: usize = 1000;

/// Runs the search: `trial(number, lr, verdict)` trains trial `number` (from 1, as in the
/// report), calling `verdict(epoch, score)` after each epoch and stopping when it says no; it
/// returns the scores it got.
pub fn search(settings: &SearchSettings, trial: TrialRunner) -> Result<SearchReport> {
    settings.check()?;
    let grid = settings.grid();
    let mut rng = Rng::derive(settings.seed, &[0x0054_5045]);
    let mut trials: Vec<Trial> = Vec::new();
    let count = match settings.mode {
        SearchMode::Grid => grid.len().min(settings.trials),
        SearchMode::Tpe => settings.trials,
    };
    let distinct = grid.len();
    let mut planned = grid.into_iter();
    for _ in 0..count {
        let tried = trials.iter().filter(|t| !t.scores.is_empty()).count();
        if settings.step.is_some() && tried >= distinct {
            // Every rate of the grid has been tried: further proposals could only repeat.
            break;
        }
        let lr = match settings.mode {
            SearchMode::Grid => match planned.next() {
                Some(lr) => lr,
                None => break,
            },
            SearchMode::Tpe => settings.propose(&trials, &mut rng),
        };
        if trials.iter().any(|t| t.lr == lr) {
            trials.push(Trial {
                lr,
                scores: Vec::new(),
                pruned: true,
            });
            continue;
        }
        let mut pruned = false;
        let number = trials.len() + 1;
        let scores = {
            let done = &trials;
            let mut best = f64::NEG_INFINITY;
            let mut verdict = |epoch: usize, score: f64| {
                best = best.max(score);
                pruned = score.is_nan() || below_median(done, epoch, best);
                !pruned
            };
            trial(number, lr, &mut verdict)?
        };
        trials.push(Trial { lr, scores, pruned });
    }
    // The first of equal scores, as optuna keeps its first best trial.
    let best = trials
        .iter()
        .filter(|t| !t.pruned)
        .filter_map(|t| Some((t.last()?, t.lr)))
        .filter(|(score, _)| score.is_finite())
        .fold(None, |best: Option<(f64, f64)>, (score, lr)| match best {
            Some((top, _)) if top >= score => best,
            _ => Some((score, lr)),
        })
        .map(|(_, lr)| lr)
        .ok_or_else(|| Error::InvalidInput("lr search: no trial completed".into()))?;
    Ok(SearchReport { trials, best })
}

/// optuna's `MedianPruner` (5 start-up trials, no warm-up steps): a score below the median
/// of the completed trials' scores at the same epoch.
fn below_median(trials: &[Trial], epoch: usize, score: f64) -> bool {
    let mut at: Vec<f64> = trials
        .iter()
        .filter(|t| !t.pruned)
        .filter_map(|t| t.scores.get(epoch.checked_sub(1)?).copied())
        .filter(|s| !s.is_nan())
        .collect();
    if trials.iter().filter(|t| !t.pruned).count() < 5 || at.is_empty() {
        return false;
    }
    at.sort_by(f64::total_cmp);
    let n = at.len();
    let median = if n % 2 == 1 {
        at[n / 2]
    } else {
        (at[n / 2 - 1] + at[n / 2]) / 2.0
    };
    score < median
}

impl SearchSettings {
    fn check(&self) -> Result<()> {
        let ok = self.min_lr > 0.0
            && self.max_lr > self.min_lr
            && self.max_lr.is_finite()
            && self.step.is_none_or(|s| s > 0.0 && s.is_finite())
            && self.epochs > 0
            && (1..=MAX_TRIALS).contains(&self.trials);
        if !ok {
            return Err(Error::InvalidInput(format!(
                "lr search: needs 0 < min_lr < max_lr (finite), step > 0, epochs ≥ 1 and \
                 n_trials 1–{MAX_TRIALS}, got {self:?}"
            )));
        }
        if self.mode == SearchMode::Grid && self.step.is_none() {
            return Err(Error::InvalidInput(
                "lr_finder.mode grid_search needs lr_finder.step, the grid's spacing".into(),
            ));
        }
        if self.grid().len() > 10_000 {
            return Err(Error::InvalidInput(format!(
                "lr search: step {:?} makes a grid of more than 10,000 rates",
                self.step
            )));
        }
        Ok(())
    }

    /// NumPy's `arange(min_lr, max_lr, step)` (empty without a step).
    pub fn grid(&self) -> Vec<f64> {
        let Some(step) = self.step else {
            return Vec::new();
        };
        let n = ((self.max_lr - self.min_lr) / step).ceil().max(0.0) as usize;
        (0..n.min(10_001))
            .map(|i| self.min_lr + i as f64 * step)
            .collect()
    }

    /// TPE's next rate given the trials so far.
    fn propose(&self, trials: &[Trial], rng: &mut Rng) -> f64 {
        let (lo, hi) = (self.min_lr, self.max_lr);
        let x = if trials.iter().filter(|t| !t.pruned).count() < 5 {
            lo + (hi - lo) * rng.unit() as f64
        } else {
            // optuna's order: completed trials by score, then pruned ones by the epochs they
            // reached and their last score (a repeat, which reached none, last of all).
            let rank = |t: &Trial| {
                let last = t.last().unwrap_or(f64::NEG_INFINITY);
                let reached = if t.pruned { t.scores.len() } else { usize::MAX };
                (reached, last)
            };
            let mut ranked: Vec<&Trial> = trials.iter().collect();
            ranked.sort_by(|a, b| {
                let (ra, rb) = (rank(a), rank(b));
                rb.0.cmp(&ra.0).then(rb.1.total_cmp(&ra.1))
            });
            let good = (ranked.len() as f64 * 0.1).ceil().min(25.0) as usize;
            let xs = |r: &[&Trial]| r.iter().map(|t| t.lr).collect::<Vec<_>>();
            let l = Parzen::fit(&xs(&ranked[..good]), lo, hi);
            let g = Parzen::fit(&xs(&ranked[good..]), lo, hi);
            (0..24)
                .map(|_| l.sample(rng))
                .max_by(|a, b| {
                    (l.log_pdf(*a) - g.log_pdf(*a)).total_cmp(&(l.log_pdf(*b) - g.log_pdf(*b)))
                })
                .unwrap_or(lo)
        };
        self.snap(x)
    }

    /// Rounds to the grid (when there is a step), inside [min_lr, max_lr].
    fn snap(&self, x: f64) -> f64 {
        match self.step {
            Some(step) => {
                let last = self.grid().len().saturating_sub(1) as f64;
                let i = ((x - self.min_lr) / step).round().clamp(0.0, last);
                self.min_lr + i * step
            }
            None => x.clamp(self.min_lr, self.max_lr),
        }
    }
}

/// A mixture of normals truncated to [lo, hi], one per observation plus a prior centred on
/// the range (optuna's Parzen estimator, equal weights).
struct Parzen {
    mus: Vec<f64>,
    sigmas: Vec<f64>,
    lo: f64,
    hi: f64,
}

impl Parzen {
    fn fit(xs: &[f64], lo: f64, hi: f64) -> Self {
        let range = hi - lo;
        let mut mus: Vec<f64> = xs.to_vec();
        mus.push((lo + hi) / 2.0);
        let mut order: Vec<usize> = (0..mus.len()).collect();
        order.sort_by(|&a, &b| mus[a].total_cmp(&mus[b]));
        // Each bandwidth: the larger gap to its sorted neighbours (the range's ends count),
        // clipped to [range / min(100, 1 + n), range] ("magic clip"); the prior's is the range.
        let floor = range / (1.0 + mus.len() as f64).min(100.0);
        let mut sigmas = vec![range; mus.len()];
        for (k, &i) in order.iter().enumerate() {
            if i == mus.len() - 1 {
                continue;
            }
            let left = if k == 0 { lo } else { mus[order[k - 1]] };
            let right = if k + 1 == order.len() {
                hi
            } else {
                mus[order[k + 1]]
            };
            sigmas[i] = (mus[i] - left).max(right - mus[i]).clamp(floor, range);
        }
        Self {
            mus,
            sigmas,
            lo,
            hi,
        }
    }

    fn sample(&self, rng: &mut Rng) -> f64 {
        let k = rng.below(self.mus.len());
        // Rejection from the normal: the truncated part is at least the mass of one
        // bandwidth's worth of the range, so this ends quickly.
        for _ in 0..1000 {
            let x = self.mus[k] + self.sigmas[k] * rng.normal() as f64;
            if (self.lo..=self.hi).contains(&x) {
                return x;
            }
        }
        self.mus[k].clamp(self.lo, self.hi)
    }

    fn log_pdf(&self, x: f64) -> f64 {
        let density: f64 = self
            .mus
            .iter()
            .zip(&self.sigmas)
            .map(|(&mu, &sigma)| {
                let mass = normal_cdf((self.hi - mu) / sigma) - normal_cdf((self.lo - mu) / sigma);
                let z = (x - mu) / sigma;
                (-0.5 * z * z).exp() / (sigma * (2.0 * std::f64::consts::PI).sqrt() * mass)
            })
            .sum::<f64>()
            / self.mus.len() as f64;
        density.max(f64::MIN_POSITIVE).ln()
    }
}

/// The standard normal's distribution function (Abramowitz–Stegun 7.1.26 erf, |error| < 2e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.3275911 * x);
    let poly = t
        * (0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mode: SearchMode, trials: usize) -> SearchSettings {
        SearchSettings {
            mode,
            min_lr: 0.004,
            max_lr: 0.03,
            step: Some(0.001),
            epochs: 3,
            trials,
            seed: 1,
        }
    }

    /// A made-up objective peaked at 0.017: the score after each epoch approaches it.
    fn peaked(_: usize, lr: f64, verdict: Verdict) -> Result<Vec<f64>> {
        let top = 1.0 - ((lr - 0.017) / 0.01).powi(2);
        let mut scores = Vec::new();
        for epoch in 1..=3 {
            let s = top * epoch as f64 / 3.0;
            scores.push(s);
            if !verdict(epoch, s) {
                break;
            }
        }
        Ok(scores)
    }

    #[test]
    fn the_grid_is_numpys_arange_and_each_rate_is_tried_once() {
        let s = settings(SearchMode::Grid, 100);
        let grid = s.grid();
        assert_eq!(grid.len(), 26);
        assert!((grid[25] - 0.029).abs() < 1e-12);
        let report = search(&s, &mut peaked).unwrap();
        assert_eq!(report.trials.len(), 26);
        assert!((report.best - 0.017).abs() < 1e-9, "{}", report.best);
        // Rates far from the peak score below the median and stop after one epoch.
        let far = report
            .trials
            .iter()
            .find(|t| (t.lr - 0.029).abs() < 1e-9)
            .unwrap();
        assert!(far.pruned && far.scores.len() == 1, "{far:?}");
        // The first five complete whatever they score.
        assert!(
            report.trials[..5]
                .iter()
                .all(|t| !t.pruned && t.scores.len() == 3)
        );
        let capped = search(&settings(SearchMode::Grid, 4), &mut peaked).unwrap();
        assert_eq!(capped.trials.len(), 4);
    }

    #[test]
    fn tpe_proposes_nearer_the_peak_than_chance() {
        let distance =
            |ts: &[Trial]| ts.iter().map(|t| (t.lr - 0.017).abs()).sum::<f64>() / ts.len() as f64;
        let mut late = 0.0;
        for seed in 1..=6 {
            let s = SearchSettings {
                seed,
                ..settings(SearchMode::Tpe, 40)
            };
            let report = search(&s, &mut peaked).unwrap();
            assert_eq!(report.trials.len(), 40);
            assert!((report.best - 0.017).abs() <= 0.002, "{}", report.best);
            // Repeats train nothing.
            for t in report.trials.iter().filter(|t| t.scores.is_empty()) {
                assert!(t.pruned);
            }
            late += distance(&report.trials[10..]) / 6.0;
        }
        // Uniform proposals over the grid are 0.0065 from 0.017 on average (measured: 0.0045).
        assert!(late < 0.0055, "{late}");
    }

    #[test]
    fn ties_go_to_the_first_and_a_spent_grid_ends_tpe() {
        let flat = |_: usize, _: f64, verdict: Verdict| -> Result<Vec<f64>> {
            verdict(1, 0.5);
            Ok(vec![0.5])
        };
        let grid = SearchSettings {
            epochs: 1,
            ..settings(SearchMode::Grid, 100)
        };
        let report = search(&grid, &mut |n, lr, v| flat(n, lr, v)).unwrap();
        assert_eq!(report.best, grid.grid()[0]);
        let small = SearchSettings {
            max_lr: 0.009,
            ..SearchSettings {
                mode: SearchMode::Tpe,
                ..grid
            }
        };
        let report = search(&small, &mut |n, lr, v| flat(n, lr, v)).unwrap();
        let tried = report
            .trials
            .iter()
            .filter(|t| !t.scores.is_empty())
            .count();
        assert_eq!(tried, 5, "the grid's five rates, each once");
        assert!(report.trials.len() < 100, "{}", report.trials.len());
    }

    #[test]
    fn a_score_that_is_not_a_number_stops_its_trial() {
        let mut calls = 0;
        let report = search(&settings(SearchMode::Grid, 3), &mut |_, lr, verdict| {
            calls += 1;
            let s = if lr > 0.0045 { f64::NAN } else { 0.9 };
            let mut scores = Vec::new();
            for epoch in 1..=3 {
                scores.push(s);
                if !verdict(epoch, s) {
                    break;
                }
            }
            Ok(scores)
        })
        .unwrap();
        assert_eq!(calls, 3);
        assert!(report.trials[1].pruned && report.trials[1].scores.len() == 1);
        assert!((report.best - 0.004).abs() < 1e-12);
    }

    #[test]
    fn settings_are_checked() {
        let mut s = settings(SearchMode::Grid, 10);
        s.step = None;
        assert!(search(&s, &mut peaked).is_err());
        s.mode = SearchMode::Tpe;
        assert!(
            search(&s, &mut peaked).is_ok(),
            "TPE without a step is continuous"
        );
        for bad in [
            SearchSettings {
                min_lr: 0.0,
                ..settings(SearchMode::Tpe, 3)
            },
            SearchSettings {
                max_lr: 0.001,
                ..settings(SearchMode::Tpe, 3)
            },
            SearchSettings {
                epochs: 0,
                ..settings(SearchMode::Tpe, 3)
            },
            SearchSettings {
                step: Some(1e-9),
                ..settings(SearchMode::Grid, 3)
            },
            SearchSettings {
                trials: 1001,
                ..settings(SearchMode::Tpe, 3)
            },
        ] {
            assert!(search(&bad, &mut peaked).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_normal_distribution_function_is_accurate() {
        for (z, want) in [
            (0.0, 0.5),
            (1.0, 0.841344746),
            (-1.96, 0.024997895),
            (3.0, 0.998650102),
        ] {
            assert!((normal_cdf(z) - want).abs() < 1e-6, "{z}");
        }
    }
}
