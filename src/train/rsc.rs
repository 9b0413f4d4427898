//! Representation Self-Challenging (Huang et al., ECCV 2020) as deep-object-reid applies it
//! (`model.self_challenging_cfg`, `ops/self_challenging.py`): for a challenged image, the
//! embedding channels on which its own class score rises fastest — those whose gradient lies
//! above the `1 − drop_p` quantile — are zeroed, the others scaled by `1 / (1 − drop_p)`, and
//! the identity loss is taken on the scores of that embedding, so the model must also
//! recognise the image without its most telling features. An image is challenged when a fair
//! coin says so and a uniform draw is at least `1 − drop_batch_p`: probability
//! `drop_batch_p / 2`, as deep-object-reid's two draws give.

use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::rng::Rng;
use crate::error::{Error, Result};

/// deep-object-reid's `model.self_challenging_cfg`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RscConfig {
    /// Share of an image's embedding channels dropped when it is challenged.
    pub drop_p: f32,
    /// Twice the probability that an image is challenged.
    pub drop_batch_p: f32,
}

impl Default for RscConfig {
    fn default() -> Self {
        Self {
            drop_p: 0.33,
            drop_batch_p: 0.33,
        }
    }
}

impl RscConfig {
    /// Refuses shares outside (0, 1) and [0, 1].
    pub fn check(&self) -> Result<()> {
        if !(self.drop_p > 0.0 && self.drop_p < 1.0 && (0.0..=1.0).contains(&self.drop_batch_p)) {
            return Err(Error::InvalidInput(format!(
                "model.self_challenging_cfg: drop_p must lie in (0, 1) and drop_batch_p in \
                 [0, 1] (got {} and {})",
                self.drop_p, self.drop_batch_p
            )));
        }
        Ok(())
    }

    /// Which images of a batch of `batch` are challenged: a coin (`torch.randint(2)`), then a
    /// uniform draw at least `1 − drop_batch_p` (`torch.rand`), per image.
    pub fn draw(&self, batch: usize, rng: &mut Rng) -> Challenge {
        let coins: Vec<bool> = (0..batch).map(|_| rng.chance(0.5)).collect();
        let uniforms: Vec<f32> = (0..batch).map(|_| rng.unit()).collect();
        Challenge::from_draws(self, &coins, &uniforms)
    }
}

/// One batch's challenge: the retained share and which images are challenged.
#[derive(Debug, Clone, PartialEq)]
pub struct Challenge {
    /// `1 − drop_p`.
    pub retain_p: f32,
    /// Per image: challenged or not.
    pub challenged: Vec<bool>,
}

impl Challenge {
    /// From deep-object-reid's two draws per image: `unchanged` (its coin) and `uniform`.
    pub fn from_draws(config: &RscConfig, unchanged: &[bool], uniform: &[f32]) -> Self {
        let retain_batch = 1.0 - config.drop_batch_p;
        Self {
            retain_p: 1.0 - config.drop_p,
            challenged: unchanged
                .iter()
                .zip(uniform)
                .map(|(&keep, &u)| !keep && u >= retain_batch)
                .collect(),
        }
    }

    /// The `[B · C]` factors of the embeddings: for a challenged image, 0 on the channels whose
    /// gradient `gradient` (row-major `[B, C]`) lies strictly above its `retain_p` quantile
    /// (NumPy's linear interpolation) and `1 / retain_p` on the others; 1 elsewhere.
    pub fn factors(&self, gradient: &[f32], channels: usize) -> Vec<f32> {
        let scale = 1.0 / self.retain_p;
        gradient
            .chunks(channels)
            .zip(&self.challenged)
            .flat_map(|(row, &challenged)| {
                let threshold = quantile(row, self.retain_p as f64) as f32;
                row.iter()
                    .map(move |&g| match (challenged, g > threshold) {
                        (false, _) => 1.0,
                        (true, true) => 0.0,
                        (true, false) => scale,
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// `np.quantile(values, q)` (linear interpolation between the order statistics).
fn quantile(values: &[f32], q: f64) -> f64 {
    let mut sorted: Vec<f64> = values.iter().map(|&v| v as f64).collect();
    sorted.sort_by(f64::total_cmp);
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let t = position - below as f64;
    sorted[below] + t * (sorted[above] - sorted[below])
}

/// The challenged embeddings: `features` times [`Challenge::factors`] of the gradient of each
/// image's own class score `score(features)[i, target_i]` with respect to its embedding. The
/// gradient is taken through `score` alone (the embeddings detached), as deep-object-reid's
/// `autograd.grad` of the scores with respect to the pooled features; the factors are
/// constants of the step.
pub fn challenge(
    features: Tensor<2>,
    targets: Tensor<1, Int>,
    score: impl Fn(Tensor<2>) -> Tensor<2>,
    challenge: &Challenge,
) -> Tensor<2> {
    let [batch, channels] = features.dims();
    let device = features.device();
    let leaf = features.clone().detach().require_grad();
    let own = score(leaf.clone()).gather(1, targets.reshape([batch, 1]));
    let grads = own.sum().backward();
    let gradient: Vec<f32> = leaf
        .grad(&grads)
        .expect("the scores depend on the embeddings")
        .into_data()
        .try_to_vec::<f32>()
        .expect("float gradients");
    let factors = challenge.factors(&gradient, channels);
    features * Tensor::from_data(TensorData::new(factors, [batch, channels]), &device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_is_numpys_linear_one() {
        // np.quantile([3, 1, 4, 1, 5], 0.67) = 3.68; np.quantile([2, 7], 0.25) = 3.25.
        assert!((quantile(&[3.0, 1.0, 4.0, 1.0, 5.0], 0.67) - 3.68).abs() < 1e-12);
        assert!((quantile(&[2.0, 7.0], 0.25) - 3.25).abs() < 1e-12);
        assert_eq!(quantile(&[4.0], 0.5), 4.0);
    }

    #[test]
    fn about_half_of_drop_batch_p_is_challenged() {
        let config = RscConfig {
            drop_p: 0.33,
            drop_batch_p: 0.6,
        };
        let mut rng = Rng::new(3);
        let n = 20_000;
        let challenged = config.draw(n, &mut rng).challenged;
        let share = challenged.iter().filter(|&&c| c).count() as f64 / n as f64;
        assert!((share - 0.3).abs() < 0.012, "{share}");
        assert!(
            RscConfig {
                drop_p: 1.0,
                ..config
            }
            .check()
            .is_err()
        );
        assert!(RscConfig::default().check().is_ok());
    }
}
