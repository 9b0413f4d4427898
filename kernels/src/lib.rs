//! reid's CPU convolution kernels.
//!
//! Burn's Flex backend runs small-channel, depthwise and backward convolutions through generic
//! loops that made a training step 3–4× slower than PyTorch's; these kernels replace them. They
//! enter Burn as a backend extension ([`ConvKernels`]): an implementation on `Flex` that works on
//! the raw `f32` buffers, and one on `Autodiff` whose backward calls the two gradient kernels.
//! Other backends (wgpu, cuda) keep Burn's own convolution: [`conv2d`] is only for Flex tensors.
//!
//! - `dense`: unfolding (im2col) + one matrix product per image and group, for dense and
//!   grouped convolutions of any kernel and stride; 1×1 stride-1 ones use the input directly.
//! - `depthwise`: direct per-plane loops for one channel per group.
//! - [`matrix`]: the row-major matrix product everything above (and reid's distances) runs on.
//! - `batch_norm`: training-mode batch normalization fused into a few passes
//!   ([`NormKernels`], [`batch_norm_train`]).
//! - `gate`: OSNet's gated sum of four streams ([`GateKernels`], [`gated_sum`]).
//! - `activation`: SiLU and its gradient in one pass each ([`ActivationKernels`], [`silu`]).
//! - `pool`: max and average pooling per plane ([`PoolKernels`], [`max_pool2d`],
//!   [`avg_pool2d`]).
//! - [`inference`]: a network's eval-mode forward as a list of these kernels' steps on plain
//!   buffers, weights prepared once, without Burn's per-operation costs.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;

mod activation;
mod autodiff;
mod batch_norm;
mod dense;
mod depthwise;
#[cfg(target_arch = "x86_64")]
mod depthwise_avx512;
#[cfg(target_arch = "x86_64")]
mod direct;
mod flex;
mod gate;
pub mod inference;
pub mod matrix;
mod output;
mod pool;
#[cfg(target_arch = "x86_64")]
mod pool_avx512;
mod scratch;
mod shape;
mod simd;

pub use pool::PoolParams;
pub use shape::ConvParams;

/// Convolution without bias and its two gradients, as a Burn backend extension.
#[backend_extension(Flex, Autodiff)]
pub trait ConvKernels: Backend {
    /// `x` `[n, c, h, w]` convolved with `weight` `[o, c / groups, kh, kw]` → `[n, o, oh, ow]`.
    fn reid_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        params: ConvParams,
    ) -> FloatTensor<Self>;

    /// [`reid_conv2d`](Self::reid_conv2d) followed by adding `bias` (`[o]`) and, when `relu`,
    /// ReLU, all in the pass that writes the output: the inference form of a convolution with
    /// its BatchNorm folded in. Differentiable as the same three operations.
    fn reid_conv2d_inference(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        params: ConvParams,
        relu: bool,
    ) -> FloatTensor<Self>;

    /// The gradient of [`reid_conv2d`](Self::reid_conv2d) with respect to its input, of shape
    /// `input_shape`, from the output's gradient `grad`.
    fn reid_conv2d_input_grad(
        grad: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        input_shape: [usize; 4],
        params: ConvParams,
    ) -> FloatTensor<Self>;

    /// The gradient of [`reid_conv2d`](Self::reid_conv2d) with respect to its weight, of shape
    /// `weight_shape`, from the input `x` and the output's gradient `grad`.
    fn reid_conv2d_weight_grad(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        weight_shape: [usize; 4],
        params: ConvParams,
    ) -> FloatTensor<Self>;
}

/// Convolves `x` with `weight`, adds `bias` (`[o]`) and applies ReLU when `relu`, in one pass
/// over the output (see [`ConvKernels::reid_conv2d_inference`]). Flex tensors only.
pub fn conv2d_inference(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    params: ConvParams,
    relu: bool,
) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as ConvKernels>::reid_conv2d_inference(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        params,
        relu,
    ))
}

/// Convolves `x` with `weight` through these kernels, differentiable when the tensors are on an
/// autodiff device. Both must live on the Flex (CPU) device, with or without autodiff.
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, params: ConvParams) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as ConvKernels>::reid_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        params,
    ))
}

/// Training-mode batch normalization and its backward, as a Burn backend extension.
#[backend_extension(Flex, Autodiff)]
pub trait NormKernels: Backend {
    /// Normalizes `x` `[n, c, …]` with its own per-channel statistics, then scales by `gamma`
    /// and shifts by `beta` (`[c]`), then applies ReLU when `relu`; returns the output, the
    /// batch mean and the biased batch variance (`[c]`; constants to autodiff).
    fn reid_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of [`reid_batch_norm_train`](Self::reid_batch_norm_train)'s output with
    /// respect to `x`, `gamma` and `beta`, from the output gradient and the forward's batch
    /// mean and variance (and `beta`, with which the ReLU's mask is found again when `relu`).
    #[allow(clippy::too_many_arguments)]
    fn reid_batch_norm_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Training-mode batch normalization of `x` `[n, c, …]` through these kernels, followed by ReLU
/// when `relu`: the output, differentiable with respect to `x`, `gamma` and `beta`, and the
/// batch mean and biased variance per channel. The tensors must live on the Flex (CPU) device.
pub fn batch_norm_train<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    relu: bool,
) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    let (y, mean, var) = <Dispatch as NormKernels>::reid_batch_norm_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
        relu,
    );
    (
        Tensor::from_dispatch(y),
        Tensor::from_dispatch(mean),
        Tensor::from_dispatch(var),
    )
}

/// Max and average pooling with their backward, as a Burn backend extension.
#[backend_extension(Flex, Autodiff)]
pub trait PoolKernels: Backend {
    /// Max pooling of `x` `[n, c, h, w]` (floor mode, padding never chosen).
    fn reid_max_pool2d(x: FloatTensor<Self>, params: PoolParams) -> FloatTensor<Self>;

    /// The gradient of [`reid_max_pool2d`](Self::reid_max_pool2d) with respect to `x`: each
    /// output gradient goes to the first maximum of its window in `x`.
    fn reid_max_pool2d_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        params: PoolParams,
    ) -> FloatTensor<Self>;

    /// Average pooling of `x` `[n, c, h, w]` (floor mode).
    fn reid_avg_pool2d(x: FloatTensor<Self>, params: PoolParams) -> FloatTensor<Self>;

    /// The gradient of [`reid_avg_pool2d`](Self::reid_avg_pool2d) with respect to its input of
    /// shape `input_shape`.
    fn reid_avg_pool2d_backward(
        grad: FloatTensor<Self>,
        input_shape: [usize; 4],
        params: PoolParams,
    ) -> FloatTensor<Self>;
}

/// Max pooling through these kernels, differentiable on an autodiff device. Flex tensors only.
pub fn max_pool2d(x: Tensor<4>, params: PoolParams) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as PoolKernels>::reid_max_pool2d(
        x.into_dispatch(),
        params,
    ))
}

/// Average pooling through these kernels, differentiable on an autodiff device. Flex tensors
/// only.
pub fn avg_pool2d(x: Tensor<4>, params: PoolParams) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as PoolKernels>::reid_avg_pool2d(
        x.into_dispatch(),
        params,
    ))
}

/// SiLU with its backward, as a Burn backend extension.
#[backend_extension(Flex, Autodiff)]
pub trait ActivationKernels: Backend {
    /// `x · sigmoid(x)` of every element of `x` (any shape).
    fn reid_silu(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The gradient of [`reid_silu`](Self::reid_silu) at `x`, times the output gradient `grad`.
    fn reid_silu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// SiLU (swish) through these kernels, differentiable on an autodiff device. Flex tensors only.
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as ActivationKernels>::reid_silu(
        x.into_dispatch(),
    ))
}

/// OSNet's gated sum of its four streams with its backward, as a Burn backend extension.
#[backend_extension(Flex, Autodiff)]
pub trait GateKernels: Backend {
    /// `x1·g1 + x2·g2 + x3·g3 + x4·g4` for activations `x_t` `[n, c, h, w]` and gates `g_t`
    /// `[n, c, 1, 1]`, the products added in that order.
    #[allow(clippy::too_many_arguments)]
    fn reid_gated_sum(
        x1: FloatTensor<Self>,
        g1: FloatTensor<Self>,
        x2: FloatTensor<Self>,
        g2: FloatTensor<Self>,
        x3: FloatTensor<Self>,
        g3: FloatTensor<Self>,
        x4: FloatTensor<Self>,
        g4: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The gradients of one stream's product `x·g` from the sum's gradient `grad`: `(dx, dg)`.
    fn reid_gated_sum_backward(
        x: FloatTensor<Self>,
        g: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// `Σ_t x_t · g_t` over four streams `[n, c, h, w]` with gates `[n, c, 1, 1]` through these
/// kernels, differentiable on an autodiff device. Flex tensors only.
pub fn gated_sum(streams: [(Tensor<4>, Tensor<4>); 4]) -> Tensor<4> {
    let [(x1, g1), (x2, g2), (x3, g3), (x4, g4)] = streams;
    Tensor::from_dispatch(<Dispatch as GateKernels>::reid_gated_sum(
        x1.into_dispatch(),
        g1.into_dispatch(),
        x2.into_dispatch(),
        g2.into_dispatch(),
        x3.into_dispatch(),
        g3.into_dispatch(),
        x4.into_dispatch(),
        g4.into_dispatch(),
    ))
}
