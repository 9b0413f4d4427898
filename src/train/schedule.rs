//! Learning-rate schedules: torchreid's (single step, multi step, cosine, stepped once per
//! epoch, with an optional linear warm-up in front) and deep-object-reid's (its `warmup`
//! scheduler in front of a base one, reduce-on-plateau with its floor and forced decay,
//! one-cycle and cosine cycles with restarts stepped after every batch).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A schedule's shape (`train.lr_scheduler` and its parameters).
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
    /// Torch's `OneCycleLR` over `total` epochs: cosine rise from `base / div_factor` to the
    /// base rate for the first `pct_start` of the run, then cosine decay to
    /// `base / div_factor / final_div_factor`; per epoch, or per step over `total` epochs'
    /// steps (deep-object-reid's `onecycle`: `div_factor` 100, `final_div_factor` its
    /// `lr_decay_factor`).
    OneCycle {
        /// Epochs in all.
        total: usize,
        /// Fraction of rising epochs (or steps).
        pct_start: f64,
        /// First rate = base / this.
        #[serde(default = "default_div_factor")]
        div_factor: f64,
        /// Last rate = first rate / this.
        #[serde(default = "default_final_div_factor")]
        final_div_factor: f64,
        /// Stepped after every batch instead of every epoch.
        #[serde(default)]
        per_step: bool,
    },
    /// deep-object-reid's `cosine_cycle` (`CosineAnnealingCycleRestart`), stepped after every
    /// batch: cycles of a linear warm-up from `min_lr` to the cycle's peak over
    /// `warmup_steps`, then a half cosine back to `min_lr`; the first cycle lasts
    /// `first_cycle_steps`, each next one `cycle_mult` times as long (warm-up excluded) and
    /// peaks `gamma` times lower. The very first step runs at `min_lr`.
    CosineCycle {
        /// Steps of the first cycle.
        first_cycle_steps: usize,
        /// Growth of the cycles (≥ 1).
        cycle_mult: f64,
        /// Peak of the first cycle.
        max_lr: f64,
        /// Bottom of every cycle.
        min_lr: f64,
        /// Steps of linear rise at the start of each cycle.
        warmup_steps: usize,
        /// Peak decay per cycle.
        gamma: f64,
    },
    /// Constant until the watched metric stops improving for more than `patience` epochs,
    /// then multiplied by `factor` (not below the floor): torch's `ReduceLROnPlateau` with a
    /// relative `threshold`; with `force_after`, deep-object-reid's `ReduceLROnPlateauV2`,
    /// which decays once by force if the rate has not fallen after that many observations.
    ReduceOnPlateau {
        /// Decay factor.
        factor: f64,
        /// Observations without improvement tolerated before a decay.
        patience: usize,
        /// Lowest rate (unless `floor_divisor` is set).
        min_lr: f64,
        /// Relative improvement that counts as better.
        #[serde(default)]
        threshold: f64,
        /// What is watched.
        #[serde(default)]
        watch: Watch,
        /// Decay by force after this many observations without a decay.
        #[serde(default)]
        force_after: Option<usize>,
        /// The lowest rate is the base rate divided by this (deep-object-reid's
        /// `lr_decay_factor`) instead of `min_lr`.
        #[serde(default)]
        floor_divisor: Option<f64>,
    },
    /// deep-object-reid's `warmup` scheduler: epochs `0..=epochs` rise linearly from
    /// `base / multiplier` to the base rate, then `then` (its `base_scheduler`) runs from its
    /// own first epoch.
    Warmup {
        /// Start rate = base / this.
        multiplier: f64,
        /// Epochs of the rise (the rate reaches the base rate at this epoch).
        epochs: usize,
        /// The schedule after the warm-up.
        then: Box<Schedule>,
    },
}

fn default_div_factor() -> f64 {
    25.0
}

fn default_final_div_factor() -> f64 {
    1e4
}

/// What a reduce-on-plateau schedule watches, once per epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Watch {
    /// The evaluation's score (higher is better), at each evaluation.
    #[default]
    Evaluation,
    /// The epoch's mean training loss (lower is better; deep-object-reid's
    /// `target_metric: train_loss`).
    TrainingLoss,
    /// deep-object-reid's `target_metric: test_acc`: the mean of the evaluation scores that
    /// were at least the mean so far (a smoothed accuracy, higher is better).
    SmoothedScore,
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
    /// Reduce-on-plateau: the rate now, the best metric and observations since it.
    plateau: (f64, f64, usize),
    /// Reduce-on-plateau: observations so far and the smoothed score's sum and count.
    #[serde(default)]
    watched: (usize, f64, usize),
}

fn cos_anneal(start: f64, end: f64, pct: f64) -> f64 {
    end + (start - end) / 2.0 * (1.0 + (std::f64::consts::PI * pct).cos())
}

/// The plateau schedule inside `schedule`, and the epochs of warm-up in front of it.
fn plateau_of(schedule: &Schedule) -> Option<(&Schedule, usize)> {
    match schedule {
        Schedule::ReduceOnPlateau { .. } => Some((schedule, 0)),
        Schedule::Warmup { epochs, then, .. } => {
            plateau_of(then).map(|(plateau, _)| (plateau, *epochs + 1))
        }
        _ => None,
    }
}

impl Schedule {
    fn check(&self) -> std::result::Result<(), &'static str> {
        let fraction = |v: &f64| (0.0..1.0).contains(v);
        match self {
            Schedule::SingleStep { step: 0, .. } => Err("step must be at least 1"),
            Schedule::Cosine { max_epoch: 0 } => Err("max_epoch must be at least 1"),
            Schedule::OneCycle {
                total,
                pct_start,
                div_factor,
                final_div_factor,
                ..
            } if *total < 2
                || !fraction(pct_start)
                || !(*div_factor >= 1.0 && *final_div_factor >= 1.0) =>
            {
                Err("one-cycle needs 2+ epochs, pct_start in [0, 1) and division factors >= 1")
            }
            Schedule::CosineCycle {
                first_cycle_steps,
                cycle_mult,
                max_lr,
                min_lr,
                warmup_steps,
                gamma,
            } if !(warmup_steps < first_cycle_steps
                && *cycle_mult >= 1.0
                && cycle_mult.is_finite()
                && *min_lr >= 0.0
                && max_lr > min_lr
                && max_lr.is_finite()
                && *gamma > 0.0
                && *gamma <= 1.0) =>
            {
                Err(
                    "cosine_cycle needs warmup < first_cycle_steps, cycle_mult >= 1, \
                     0 <= min_lr < max_lr and gamma in (0, 1]",
                )
            }
            Schedule::ReduceOnPlateau {
                factor,
                threshold,
                floor_divisor,
                ..
            } if !fraction(factor)
                || !fraction(threshold)
                || floor_divisor.is_some_and(|d| !(d >= 1.0 && d.is_finite())) =>
            {
                Err("plateau: factor and threshold in [0, 1), lr_decay_factor >= 1")
            }
            Schedule::Warmup {
                multiplier,
                epochs,
                then,
            } => {
                if *epochs == 0 || !(*multiplier >= 1.0 && multiplier.is_finite()) {
                    return Err("warmup needs 1+ epochs and a multiplier >= 1");
                }
                match **then {
                    Schedule::Warmup { .. } => Err("a warm-up cannot follow a warm-up"),
                    Schedule::OneCycle { per_step: true, .. } | Schedule::CosineCycle { .. } => {
                        Err("onecycle and cosine_cycle rise by themselves: not after a warm-up")
                    }
                    ref then => then.check(),
                }
            }
            _ => Ok(()),
        }
    }

    /// Whether the rate changes after every batch rather than every epoch.
    pub fn per_step(&self) -> bool {
        matches!(
            self,
            Schedule::OneCycle { per_step: true, .. } | Schedule::CosineCycle { .. }
        )
    }
}

impl LrSchedule {
    /// A schedule starting at `base_lr`.
    pub fn new(schedule: Schedule, base_lr: f64, warmup: usize) -> Result<Self> {
        let bad = |m: &str| Err(Error::InvalidInput(format!("learning-rate schedule: {m}")));
        if !(base_lr.is_finite() && base_lr > 0.0) {
            return bad("the learning rate must be positive");
        }
        if let Err(m) = schedule.check() {
            return bad(m);
        }
        let first_best = match plateau_of(&schedule) {
            Some((
                Schedule::ReduceOnPlateau {
                    watch: Watch::TrainingLoss,
                    ..
                },
                _,
            )) => f64::MAX,
            _ => f64::MIN,
        };
        Ok(Self {
            schedule,
            base_lr,
            warmup,
            plateau: (base_lr, first_best, 0),
            watched: (0, 0.0, 0),
        })
    }

    /// Whether the rate changes after every batch rather than every epoch.
    pub fn per_step(&self) -> bool {
        self.schedule.per_step()
    }

    /// The learning rate of epoch `epoch` (from 0); a per-step schedule's first step of it, as
    /// if each epoch had one step.
    pub fn lr(&self, epoch: usize) -> f64 {
        self.rate(epoch, 0, 1)
    }

    /// The learning rate of step `step` (from 0) of `steps` in epoch `epoch` (from 0).
    pub fn rate(&self, epoch: usize, step: usize, steps: usize) -> f64 {
        let scheduled = self.scheduled(&self.schedule, epoch, step, steps.max(1));
        if epoch < self.warmup {
            scheduled * (epoch + 1) as f64 / (self.warmup + 1) as f64
        } else {
            scheduled
        }
    }

    fn scheduled(&self, schedule: &Schedule, epoch: usize, step: usize, steps: usize) -> f64 {
        let base = self.base_lr;
        match schedule {
            Schedule::Constant => base,
            Schedule::SingleStep { step, gamma } => base * gamma.powi((epoch / step) as i32),
            Schedule::MultiStep { milestones, gamma } => {
                base * gamma.powi(milestones.iter().filter(|&&m| m <= epoch).count() as i32)
            }
            Schedule::Cosine { max_epoch } => {
                cos_anneal(base, 0.0, epoch.min(*max_epoch) as f64 / *max_epoch as f64)
            }
            Schedule::OneCycle {
                total,
                pct_start,
                div_factor,
                final_div_factor,
                per_step,
            } => {
                let (t, total) = if *per_step {
                    (epoch * steps + step, total * steps)
                } else {
                    (epoch, *total)
                };
                let initial = base / div_factor;
                let last = initial / final_div_factor;
                let rise_end = pct_start * total as f64 - 1.0;
                let end = (total - 1) as f64;
                let t = t as f64;
                if t <= rise_end {
                    cos_anneal(initial, base, t / rise_end)
                } else {
                    cos_anneal(base, last, ((t - rise_end) / (end - rise_end)).min(1.0))
                }
            }
            Schedule::CosineCycle {
                first_cycle_steps,
                cycle_mult,
                max_lr,
                min_lr,
                warmup_steps,
                gamma,
            } => {
                let t = epoch * steps + step;
                if t == 0 {
                    return *min_lr;
                }
                // The cycle holding step t, walked cycle by cycle as the scheduler steps
                // (lengths grow by cycle_mult ≥ 1, so there are few of them).
                let (mut at, mut length, mut cycle) = (t, *first_cycle_steps, 0);
                while at >= length {
                    at -= length;
                    cycle += 1;
                    length = ((length - warmup_steps) as f64 * cycle_mult) as usize + warmup_steps;
                }
                let peak = max_lr * gamma.powi(cycle);
                if at < *warmup_steps {
                    (peak - min_lr) * at as f64 / *warmup_steps as f64 + min_lr
                } else {
                    let pct = (at - warmup_steps) as f64 / (length - warmup_steps) as f64;
                    cos_anneal(peak, *min_lr, pct)
                }
            }
            Schedule::ReduceOnPlateau { .. } => self.plateau.0,
            Schedule::Warmup {
                multiplier,
                epochs,
                then,
            } => {
                if epoch <= *epochs {
                    let start = base / multiplier;
                    start * ((multiplier - 1.0) * epoch as f64 / *epochs as f64 + 1.0)
                } else {
                    self.scheduled(then, epoch - epochs - 1, step, steps)
                }
            }
        }
    }

    /// Whether the last step of epoch `epoch` ran below the base rate after the warm-up
    /// (deep-object-reid's condition for counting epochs towards early stopping: "one drop
    /// has been done"). Call it before [`LrSchedule::end_epoch`] of that epoch.
    pub fn past_peak(&self, epoch: usize, steps: usize) -> bool {
        let steps = steps.max(1);
        let warmed = epoch >= self.warmup
            && match &self.schedule {
                Schedule::Warmup { epochs, .. } => epoch > *epochs,
                Schedule::OneCycle {
                    total,
                    pct_start,
                    per_step,
                    ..
                } => {
                    let (t, total) = if *per_step {
                        ((epoch + 1) * steps - 1, total * steps)
                    } else {
                        (epoch, *total)
                    };
                    t as f64 >= pct_start * total as f64 - 1.0
                }
                _ => true,
            };
        // To 8 decimals, as deep-object-reid compares them.
        let rounded = |v: f64| (v * 1e8).round();
        warmed && rounded(self.rate(epoch, steps - 1, steps)) < rounded(self.base_lr)
    }

    /// Reports epoch `epoch`'s mean training loss and, when it was evaluated, its score
    /// (higher is better); a reduce-on-plateau schedule may lower the rate of the epochs after.
    pub fn end_epoch(&mut self, epoch: usize, loss: f64, score: Option<f64>) {
        let Some((plateau, warm_epochs)) = plateau_of(&self.schedule) else {
            return;
        };
        let Schedule::ReduceOnPlateau {
            factor,
            patience,
            min_lr,
            threshold,
            watch,
            force_after,
            floor_divisor,
        } = *plateau
        else {
            unreachable!("plateau_of returns a plateau schedule");
        };
        let (observations, sum, count) = &mut self.watched;
        // The smoothed score takes in every evaluation, the warm-up's too.
        if let (Watch::SmoothedScore, Some(score)) = (watch, score) {
            let mean = if *count == 0 {
                0.0
            } else {
                *sum / *count as f64
            };
            if score >= mean {
                *sum += score;
                *count += 1;
            }
        }
        if epoch < warm_epochs {
            return;
        }
        let (metric, lower_is_better) = match (watch, score) {
            (Watch::TrainingLoss, _) => (loss, true),
            (Watch::Evaluation, Some(score)) => (score, false),
            (Watch::SmoothedScore, Some(_)) => (*sum / *count as f64, false),
            (_, None) => return,
        };
        *observations += 1;
        let floor = floor_divisor.map_or(min_lr, |d| self.base_lr / d);
        let (lr, best, waited) = &mut self.plateau;
        let better = if lower_is_better {
            metric < *best * (1.0 - threshold)
        } else {
            metric > *best * (1.0 + threshold)
        };
        if better {
            *best = metric;
            *waited = 0;
        } else {
            *waited += 1;
        }
        let decay = |lr: &mut f64| {
            let lower = (*lr * factor).max(floor);
            // torch's eps: smaller changes are not made.
            if *lr - lower > 1e-8 {
                *lr = lower;
            }
        };
        if *waited > patience {
            decay(lr);
            *waited = 0;
        }
        if force_after.is_some_and(|after| *observations >= after) && *lr >= self.base_lr {
            decay(lr);
            *waited = 0;
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
            threshold: 0.0,
            watch: Watch::Evaluation,
            force_after: None,
            floor_divisor: None,
        };
        let mut s = LrSchedule::new(plateau, 0.1, 0).unwrap();
        for (epoch, m) in [0.5, 0.6, 0.6, 0.6].into_iter().enumerate() {
            s.end_epoch(epoch, 1.0, Some(m));
        }
        assert!((s.lr(9) - 0.05).abs() < 1e-12);
        // Epochs without an evaluation are not observed.
        for epoch in 4..24 {
            s.end_epoch(epoch, 1.0, None);
        }
        assert!((s.lr(9) - 0.05).abs() < 1e-12);
        for epoch in 24..44 {
            s.end_epoch(epoch, 1.0, Some(0.1));
        }
        assert!((s.lr(9) - 0.01).abs() < 1e-12);
        let warm = LrSchedule::new(Schedule::Constant, 0.1, 3).unwrap();
        let rates: Vec<f64> = (0..5).map(|e| warm.lr(e)).collect();
        assert_eq!(rates, [0.025, 0.05, 0.07500000000000001, 0.1, 0.1]);
        assert!(LrSchedule::new(Schedule::Constant, 0.0, 0).is_err());
    }

    #[test]
    fn shapes_that_cannot_run_are_refused() {
        let warmup = |then| Schedule::Warmup {
            multiplier: 10.0,
            epochs: 2,
            then: Box::new(then),
        };
        let cycle = Schedule::CosineCycle {
            first_cycle_steps: 4,
            cycle_mult: 1.0,
            max_lr: 0.1,
            min_lr: 0.0,
            warmup_steps: 4,
            gamma: 1.0,
        };
        for bad in [
            warmup(warmup(Schedule::Constant)),
            warmup(cycle.clone()),
            cycle,
            Schedule::Warmup {
                multiplier: 10.0,
                epochs: 0,
                then: Box::new(Schedule::Constant),
            },
        ] {
            assert!(LrSchedule::new(bad.clone(), 0.1, 0).is_err(), "{bad:?}");
        }
        assert!(LrSchedule::new(warmup(Schedule::Constant), 0.1, 0).is_ok());
    }
}
