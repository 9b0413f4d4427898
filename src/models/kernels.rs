//! Which kernels run a model's convolutions, training-mode batch normalizations, poolings, SiLU
//! and OSNet's gated sums: on the CPU (Burn's Flex device) reid's own (`reid-kernels`, with
//! their backward; in inference a convolution has the following BatchNorm folded in and its ReLU
//! applied as the output is written), elsewhere Burn's. `REID_KERNELS=burn` runs Burn's on the
//! CPU too, so that both paths stay testable.

use std::sync::OnceLock;

use burn::backend::DispatchDevice;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, MaxPool2d};
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::Tensor;
use reid_kernels::{ConvParams, PoolParams};

use crate::logging::{self, Level};

/// The environment variable choosing the CPU kernels: `reid` (the default) or `burn`.
pub const KERNELS_VAR: &str = "REID_KERNELS";

/// Kernels for the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuKernels {
    /// reid's kernels (`reid-kernels`).
    Reid,
    /// Burn Flex's own operations.
    Burn,
}

/// The CPU kernels chosen by [`KERNELS_VAR`], read once per process; an unknown value is
/// reported through [`crate::logging`] and the default kept.
pub fn cpu_kernels() -> CpuKernels {
    static CHOICE: OnceLock<CpuKernels> = OnceLock::new();
    *CHOICE.get_or_init(|| match std::env::var(KERNELS_VAR).as_deref() {
        Err(_) | Ok("" | "reid") => CpuKernels::Reid,
        Ok("burn") => CpuKernels::Burn,
        Ok(other) => {
            let message = format!("{KERNELS_VAR}={other:?} is not reid or burn; using reid");
            logging::emit(Level::Warning, "reid::models", &message);
            CpuKernels::Reid
        }
    })
}

/// Whether reid's kernels run operations on `x`: a tensor on the CPU, and not
/// `REID_KERNELS=burn`.
pub fn reid_kernels_for<const D: usize>(x: &Tensor<D>) -> bool {
    let on_cpu = matches!(
        x.device().as_dispatch().clone().inner(),
        DispatchDevice::Flex(_)
    );
    on_cpu && cpu_kernels() == CpuKernels::Reid
}

/// reid's kernel parameters for `conv`: no dilation, symmetric padding; `None` for a
/// convolution the kernels do not take.
pub fn conv_params(conv: &Conv2d) -> Option<ConvParams> {
    let padding = symmetric(&conv.padding)?;
    (conv.dilation == [1, 1]).then_some(ConvParams {
        stride: conv.stride,
        padding,
        groups: conv.groups,
    })
}

/// reid's kernel parameters for `conv` applied to `x`, when reid's kernels run it: a CPU
/// tensor and a convolution they take ([`conv_params`]).
pub fn reid_kernel_params(conv: &Conv2d, x: &Tensor<4>) -> Option<ConvParams> {
    conv_params(conv).filter(|_| reid_kernels_for(x))
}

/// `conv` applied to `x` by reid's kernels, with its bias; `None` where they do not apply
/// ([`reid_kernel_params`]).
pub fn reid_conv(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    let params = reid_kernel_params(conv, x)?;
    let y = reid_kernels::conv2d(x.clone(), conv.weight.val(), params);
    Some(match &conv.bias {
        Some(bias) => {
            let channels = bias.dims()[0];
            y + bias.val().reshape([1, channels, 1, 1])
        }
        None => y,
    })
}

/// `bn(conv(x))`, then ReLU when `relu`, as one convolution: outside training, on the CPU, the
/// BatchNorm's running statistics scale the weights and become the bias, and the kernel adds
/// the bias and applies the ReLU while writing its output. `None` where this does not apply
/// (training-mode BatchNorm, or [`reid_kernel_params`] says no).
pub fn reid_conv_batch_norm(
    conv: &Conv2d,
    bn: &BatchNorm,
    x: &Tensor<4>,
    relu: bool,
) -> Option<Tensor<4>> {
    if x.device().is_autodiff() && bn.training.is_enabled() {
        return None;
    }
    let params = reid_kernel_params(conv, x)?;
    let device = x.device();
    let var = bn.running_var.value().to_device(&device);
    let mean = bn.running_mean.value().to_device(&device);
    let scale = bn.gamma.val() / (var + bn.epsilon).sqrt();
    let mut bias = bn.beta.val() - mean * scale.clone();
    if let Some(conv_bias) = &conv.bias {
        bias = bias + conv_bias.val() * scale.clone();
    }
    let channels = scale.dims()[0];
    let weight = conv.weight.val() * scale.reshape([channels, 1, 1, 1]);
    Some(reid_kernels::conv2d_inference(
        x.clone(),
        weight,
        bias,
        params,
        relu,
    ))
}

/// Training-mode `bn(x)`, then ReLU when `relu`, through reid's fused kernel when `x` is on the
/// CPU: the output, the batch mean and the biased batch variance.
pub fn reid_batch_norm<const D: usize>(
    bn: &BatchNorm,
    x: &Tensor<D>,
    relu: bool,
) -> Option<(Tensor<D>, Tensor<1>, Tensor<1>)> {
    reid_kernels_for(x).then(|| {
        let (gamma, beta) = (bn.gamma.val(), bn.beta.val());
        reid_kernels::batch_norm_train(x.clone(), gamma, beta, bn.epsilon, relu)
    })
}

/// Symmetric padding as `[rows, columns]`; `None` for asymmetric or "same" padding, which the
/// kernels do not take.
fn symmetric(padding: &PaddingConfig2d) -> Option<[usize; 2]> {
    match *padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some([top, left])
        }
        _ => None,
    }
}

/// reid's kernel parameters for `pool`, when the kernel covers it (floor mode, no dilation,
/// symmetric padding).
pub fn max_pool_params(pool: &MaxPool2d) -> Option<PoolParams> {
    let padding = symmetric(&pool.padding)?;
    let covered = pool.dilation == [1, 1] && !pool.ceil_mode;
    covered.then_some(PoolParams {
        kernel: pool.kernel_size,
        stride: pool.stride,
        padding,
        count_include_pad: true,
    })
}

/// reid's kernel parameters for `pool`, when the kernel covers it (floor mode, symmetric
/// padding).
pub fn avg_pool_params(pool: &AvgPool2d) -> Option<PoolParams> {
    let padding = symmetric(&pool.padding)?;
    (!pool.ceil_mode).then_some(PoolParams {
        kernel: pool.kernel_size,
        stride: pool.stride,
        padding,
        count_include_pad: pool.count_include_pad,
    })
}

/// `pool(x)` through reid's kernel when `x` is on the CPU and the pooling is one it covers.
pub fn reid_max_pool(pool: &MaxPool2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    let params = max_pool_params(pool).filter(|_| reid_kernels_for(x))?;
    Some(reid_kernels::max_pool2d(x.clone(), params))
}

/// `pool(x)` through reid's kernel when `x` is on the CPU and the pooling is one it covers.
pub fn reid_avg_pool(pool: &AvgPool2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    let params = avg_pool_params(pool).filter(|_| reid_kernels_for(x))?;
    Some(reid_kernels::avg_pool2d(x.clone(), params))
}

/// SiLU through reid's kernel when `x` is on the CPU.
pub fn reid_silu<const D: usize>(x: &Tensor<D>) -> Option<Tensor<D>> {
    reid_kernels_for(x).then(|| reid_kernels::silu(x.clone()))
}

/// `Σ_t x_t · g_t` of OSNet's four gated streams through reid's one-pass kernel when they are on
/// the CPU.
pub fn reid_gated_sum(streams: &[(Tensor<4>, Tensor<4>); 4]) -> Option<Tensor<4>> {
    reid_kernels_for(&streams[0].0).then(|| reid_kernels::gated_sum(streams.clone()))
}
