//! Multilabel losses (deep-object-reid's, for the classification half of the SDK): binary
//! cross-entropy, the asymmetric loss (ASL, Ridnik et al., ICCV 2021) and the additive-margin
//! binary loss over cosine scores (AM-binary, after SphereFace2). Targets are `[N, C]` in
//! {0, 1}; every loss is summed over classes and averaged over the batch.

use burn::tensor::Tensor;
use burn::tensor::activation::{log_sigmoid, sigmoid};

/// Binary cross-entropy on logits.
pub fn bce_with_logits(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let n = logits.dims()[0] as f32;
    let positive = log_sigmoid(logits.clone()) * targets.clone();
    let negative = log_sigmoid(logits.neg()) * (targets.neg() + 1.0);
    (positive + negative).sum().neg() / n
}

/// Settings of the asymmetric loss (the paper's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AsymmetricLoss {
    /// Focusing exponent on positives (γ+).
    pub gamma_pos: f32,
    /// Focusing exponent on negatives (γ−).
    pub gamma_neg: f32,
    /// Probability margin shifted off the negatives (m).
    pub clip: f32,
    /// Floor of the probabilities inside the logarithms.
    pub eps: f32,
}

impl Default for AsymmetricLoss {
    fn default() -> Self {
        Self {
            gamma_pos: 0.0,
            gamma_neg: 4.0,
            clip: 0.05,
            eps: 1e-8,
        }
    }
}

impl AsymmetricLoss {
    /// The loss of `logits` against `targets`. As in the paper's code, the focusing weights are
    /// constants of the graph (no gradient flows through them).
    pub fn forward(&self, logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
        let n = logits.dims()[0] as f32;
        let anti = targets.clone().neg() + 1.0;
        let p = sigmoid(logits);
        let p_neg = (p.clone().neg() + (1.0 + self.clip)).clamp_max(1.0);
        let mut loss = targets.clone() * p.clone().clamp_min(self.eps).log()
            + anti.clone() * p_neg.clone().clamp_min(self.eps).log();
        if self.gamma_pos > 0.0 || self.gamma_neg > 0.0 {
            // 1 − p_t: (1 − p) on positives, (1 − p_neg) on negatives.
            let complement =
                ((p.neg() + 1.0) * targets.clone() + (p_neg.neg() + 1.0) * anti.clone()).detach();
            let exponent = targets * self.gamma_pos + anti * self.gamma_neg;
            loss = loss * complement.powf(exponent).detach();
        }
        loss.sum().neg() / n
    }
}

/// Settings of the AM-binary loss (deep-object-reid's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AmBinaryLoss {
    /// Additive cosine margin.
    pub margin: f32,
    /// Scale of the margined cosines.
    pub scale: f32,
    /// Weight of the positive term (1 − k weighs the negatives).
    pub k: f32,
}

impl Default for AmBinaryLoss {
    fn default() -> Self {
        Self {
            margin: 0.35,
            scale: 30.0,
            k: 0.8,
        }
    }
}

impl AmBinaryLoss {
    /// The loss of cosine scores `cosine` (`[N, C]`, in [−1, 1]) against `targets`:
    /// `−(k/s)·y·log σ(s(cos − m)) − ((1 − k)/s)·(1 − y)·log σ(−s(cos + m))`.
    pub fn forward(&self, cosine: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
        let n = cosine.dims()[0] as f32;
        let anti = targets.clone().neg() + 1.0;
        let positive = log_sigmoid((cosine.clone() - self.margin) * self.scale) * targets;
        let negative = log_sigmoid((cosine + self.margin) * -self.scale) * anti;
        let loss = positive * (self.k / self.scale) + negative * ((1.0 - self.k) / self.scale);
        loss.sum().neg() / n
    }
}
