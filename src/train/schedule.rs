//! Learning-rate schedules, stepped once per epoch as torchreid does: single step, multi
//! step, cosine, one-cycle, an optional linear warm-up in front of any of them, and
//! reduce-on-plateau driven by the evaluation metric.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A schedule's shape (torchreid's `train.lr_scheduler` and its parameters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// Constant rate.
    Constant,
    /// Multiply by `gamma` every `step` epochs (torch's `StepLR`).
    SingleStep {
        /// Epochs between decays.
        step: usize,
        /// Decay factor.
        gamma: f64,
    },
    /// Multiply by `gamma` at each milestone epoch (torch's `MultiStepLR`).
    MultiStep {
        /// Epochs at which the rate decays.
        milestones: Vec<usize>,
        /// Decay factor.
        gamma: f64,
    },
    /// Cosine annealing to 0 over `max_epoch` (torch's `CosineAnnealingLR`).
    Cosine {
        /// Epochs of the half cosine.
        max_epoch: usize,
    },
    /// Torch's `OneCycleLR` over `total` epochs: cosine rise from `max / 25` to the base rate
    /// for the first `pct_start` of them, then cosine decay to `max / 25 / 10⁴`.
    OneCycle {
        /// Epochs in all.
        total: usize,
        /// Fraction of rising epochs.
        pct_start: f64,
    },
    /// Constant until the watched metric stops improving for `patience` evaluations, then
    /// multiplied by `factor` (not below `min_lr`).
    ReduceOnPlateau {
        /// Decay factor.
        factor: f64,
        /// Evaluations without improvement before a decay.
        patience: usize,
        /// Lowest rate.
        min_lr: f64,
    },
}

/// A schedule with its base rate, warm-up and plateau state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// The schedule.
    pub schedule: Schedule,
    /// Base (peak) learning rate.
    pub base_lr: f64,
    /// Epochs of linear warm-up: epoch `e` < `warmup` runs at `(e + 1) / (warmup + 1)` of the
    /// scheduled rate.
    pub warmup: usize,
    /// Reduce-on-plateau: the rate now, the best metric and evaluations since it.
    plateau: (f64, f64, usize),
}

fn cos_anneal(start: f64, end: f64, pct: f64) -> f64 {
    end + (start - end) / 2.0 * (1.0 + (std::f64::consts::PI * pct).cos())
}

impl LrSchedule {
    /// A schedule starting at `base_lr`.
    pub fn new(schedule: Schedule, base_lr: f64, warmup: usize) -> Result<Self> {
        let bad = |m: &str| Err(Error::InvalidInput(format!("learning-rate schedule: {m}")));
        if !(base_lr.is_finite() && base_lr > 0.0) {
            return bad("the learning rate must be positive");
        }
        match &schedule {
            Schedule::SingleStep { step: 0, .. } => return bad("step must be at least 1"),
            Schedule::Cosine { max_epoch: 0 } => return bad("max_epoch must be at least 1"),
            Schedule::OneCycle { total, pct_start }
                if *total < 2 || !(0.0..1.0).contains(pct_start) =>
            {
                return bad("one-cycle needs 2+ epochs and pct_start in [0, 1)");
            }
            Schedule::ReduceOnPlateau { factor, .. } if !(0.0..1.0).contains(factor) => {
                return bad("factor must be in [0, 1)");
            }
            _ => {}
        }
        Ok(Self {
            schedule,
            base_lr,
            warmup,
            plateau: (base_lr, f64::MIN, 0),
        })
    }

    /// The learning rate of epoch `epoch` (from 0).
    pub fn lr(&self, epoch: usize) -> f64 {
        let base = self.base_lr;
        let scheduled = match &self.schedule {
            Schedule::Constant => base,
            Schedule::SingleStep { step, gamma } => base * gamma.powi((epoch / step) as i32),
            Schedule::MultiStep { milestones, gamma } => {
                base * gamma.powi(milestones.iter().filter(|&&m| m <= epoch).count() as i32)
            }
            Schedule::Cosine { max_epoch } => {
                cos_anneal(base, 0.0, epoch.min(*max_epoch) as f64 / *max_epoch as f64)
            }
            Schedule::OneCycle { total, pct_start } => {
                let initial = base / 25.0;
                let last = initial / 1e4;
                let rise_end = pct_start * *total as f64 - 1.0;
                let end = (*total - 1) as f64;
                let t = epoch as f64;
                if t <= rise_end {
                    cos_anneal(initial, base, t / rise_end)
                } else {
                    cos_anneal(base, last, ((t - rise_end) / (end - rise_end)).min(1.0))
                }
            }
            Schedule::ReduceOnPlateau { .. } => self.plateau.0,
        };
        if epoch < self.warmup {
            scheduled * (epoch + 1) as f64 / (self.warmup + 1) as f64
        } else {
            scheduled
        }
    }

    /// Reports an evaluation (higher is better); reduce-on-plateau may lower the rate.
    pub fn observe(&mut self, metric: f64) {
        if let Schedule::ReduceOnPlateau {
            factor,
            patience,
            min_lr,
        } = self.schedule
        {
            let (lr, best, waited) = &mut self.plateau;
            if metric > *best {
                *best = metric;
                *waited = 0;
            } else {
                *waited += 1;
                if *waited > patience {
                    *lr = (*lr * factor).max(min_lr);
                    *waited = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plateau_and_warmup() {
        let plateau = Schedule::ReduceOnPlateau {
            factor: 0.5,
            patience: 1,
            min_lr: 0.01,
        };
        let mut s = LrSchedule::new(plateau, 0.1, 0).unwrap();
        for m in [0.5, 0.6, 0.6, 0.6] {
            s.observe(m);
        }
        assert!((s.lr(9) - 0.05).abs() < 1e-12);
        for _ in 0..20 {
            s.observe(0.1);
        }
        assert!((s.lr(9) - 0.01).abs() < 1e-12);
        let warm = LrSchedule::new(Schedule::Constant, 0.1, 3).unwrap();
        let rates: Vec<f64> = (0..5).map(|e| warm.lr(e)).collect();
        assert_eq!(rates, [0.025, 0.05, 0.07500000000000001, 0.1, 0.1]);
        assert!(LrSchedule::new(Schedule::Constant, 0.0, 0).is_err());
    }
}
