//! RAdam (Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond"), as
//! `torch.optim.RAdam` computes it (L2 weight decay added to the gradient): Adam whose
//! adaptive step is switched on only once the variance of the second moment is tractable,
//! and rectified by it.

use burn::optim::{Optimizer, RecordState, StateSink, StateSource};
use burn::store::burn_pack::Scalar;
use burn::tensor::{Device, Tensor};

/// The optimizer's hyper-parameters.
#[derive(Debug, Clone, Copy)]
pub struct RAdam {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub epsilon: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
}

/// Per-parameter state: step count and the two moments.
#[derive(Clone)]
pub struct RAdamState<const D: usize> {
    time: usize,
    moment1: Tensor<D>,
    moment2: Tensor<D>,
}

impl<const D: usize> RecordState for RAdamState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_scalar(prefix, "time", Scalar::from(self.time));
        out.push_tensor(prefix, "moment1", self.moment1.to_data());
        out.push_tensor(prefix, "moment2", self.moment2.to_data());
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let time = usize::try_from(src.take_scalar(prefix, "time")?).ok()?;
        let moment1 = Tensor::from_data(src.take_tensor(prefix, "moment1")?, device);
        let moment2 = Tensor::from_data(src.take_tensor(prefix, "moment2")?, device);
        Some(Self {
            time,
            moment1,
            moment2,
        })
    }
}

impl Optimizer for RAdam {
    type State<const D: usize> = RAdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let grad = if self.weight_decay > 0.0 {
            grad + tensor.clone() * self.weight_decay
        } else {
            grad
        };
        let (b1, b2) = (self.beta1, self.beta2);
        let (time, moment1, moment2) = match state {
            Some(s) => (
                s.time + 1,
                s.moment1 * b1 + grad.clone() * (1.0 - b1),
                s.moment2 * b2 + grad.clone().powf_scalar(2.0) * (1.0 - b2),
            ),
            None => (
                1,
                grad.clone() * (1.0 - b1),
                grad.clone().powf_scalar(2.0) * (1.0 - b2),
            ),
        };
        let t = time as i32;
        let corrected1 = moment1.clone() / (1.0 - b1.powi(t));
        let rho_inf = 2.0 / (1.0 - b2) - 1.0;
        let rho = rho_inf - 2.0 * time as f64 * b2.powi(t) / (1.0 - b2.powi(t));
        let update = if rho > 5.0 {
            let rect = ((rho - 4.0) * (rho - 2.0) * rho_inf
                / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho))
                .sqrt();
            let adaptive =
                (moment2.clone().sqrt() + self.epsilon).recip() * (1.0 - b2.powi(t)).sqrt();
            corrected1 * adaptive * (rect * lr)
        } else {
            corrected1 * lr
        };
        (
            tensor - update,
            Some(RAdamState {
                time,
                moment1,
                moment2,
            }),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        RAdamState {
            time: state.time,
            moment1: state.moment1.to_device(device),
            moment2: state.moment2.to_device(device),
        }
    }
}
