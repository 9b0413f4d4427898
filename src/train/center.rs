//! Center loss (Wen et al., ECCV 2016): each identity keeps a center in feature space, the loss
//! pulls features towards their identity's center, and the centers follow the features with
//! the paper's update `c_j ← c_j − α · Σ_{i: y_i = j} (c_j − x_i) / (1 + n_j)` after each step.
//!
//! The centers are state, not parameters: they are saved with the checkpoint (`centers.npy`)
//! so that a resumed run continues with them.

use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::formats::npy::{NpyArray, read_npy, write_atomically};

/// The identity centers of a run.
#[derive(Debug, Clone)]
pub struct CenterLoss {
    centers: Tensor<2>,
    alpha: f32,
}

impl CenterLoss {
    /// Zero centers for `classes` identities of `dim`-dimensional features.
    pub fn new(classes: usize, dim: usize, alpha: f32, device: &Device) -> Self {
        Self {
            centers: Tensor::zeros([classes, dim], device),
            alpha,
        }
    }

    /// The centers, `[classes, dim]`.
    pub fn centers(&self) -> Tensor<2> {
        self.centers.clone()
    }

    /// `mean_i ‖x_i − c_{y_i}‖²` (the centers are constants of the graph).
    pub fn loss(&self, features: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        let chosen = self.centers.clone().select(0, targets.inner());
        let chosen = Tensor::from_inner(chosen);
        (features - chosen).powf_scalar(2.0).sum_dim(1).mean()
    }

    /// Moves the centers of the batch's identities towards their features.
    pub fn update(&mut self, features: Tensor<2>, targets: Tensor<1, Int>) {
        let features = features.inner();
        let classes = self.centers.dims()[0];
        let onehot: Tensor<2> = targets.inner().one_hot::<2>(classes).float();
        let counts = onehot.clone().sum_dim(0).transpose(); // [classes, 1]
        let sums = onehot.transpose().matmul(features); // [classes, dim]
        let delta = (self.centers.clone() * counts.clone() - sums) / (counts + 1.0);
        self.centers = self.centers.clone() - delta * self.alpha;
    }

    /// Writes the centers to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let [classes, dim] = self.centers.dims();
        let values = self
            .centers
            .to_data()
            .try_to_vec::<f32>()
            .map_err(|e| Error::InvalidInput(format!("center values: {e:?}")))?;
        write_atomically(path, &NpyArray::f32(vec![classes, dim], values).to_bytes())
    }

    /// Reads centers saved by [`CenterLoss::save`]; they must be `[classes, dim]`.
    pub fn load(
        path: &Path,
        classes: usize,
        dim: usize,
        alpha: f32,
        device: &Device,
    ) -> Result<Self> {
        let array = read_npy(path)?;
        if array.shape != [classes, dim] {
            return Err(Error::InvalidInput(format!(
                "{}: centers of shape {:?}, expected [{classes}, {dim}]",
                path.display(),
                array.shape
            )));
        }
        let centers = Tensor::from_data(TensorData::new(array.to_f32(), [classes, dim]), device);
        Ok(Self { centers, alpha })
    }
}
