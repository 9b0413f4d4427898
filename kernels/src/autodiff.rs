//! The kernels on Burn's Autodiff backend: the forward runs on the inner backend and records a
//! backward that calls the two gradient kernels.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::{ActivationOps, FloatTensorOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, TensorMetadata};

use crate::{
    ActivationKernels, ConvKernels, ConvParams, GateKernels, NormKernels, PoolKernels, PoolParams,
};

fn dims<B: Backend>(t: &FloatTensor<B>) -> [usize; 4] {
    let shape = t.shape();
    [shape[0], shape[1], shape[2], shape[3]]
}

#[derive(Debug)]
struct ConvBackward;

impl<B: Backend + ConvKernels> Backward<B, 2> for ConvBackward {
    /// The input, the weight and the parameters.
    type State = (FloatTensor<B>, FloatTensor<B>, ConvParams);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight, params) = ops.state;
        if let Some(node) = node_x {
            let dx = B::reid_conv2d_input_grad(grad.clone(), weight.clone(), dims::<B>(&x), params);
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_weight {
            let dw = B::reid_conv2d_weight_grad(x, grad, dims::<B>(&weight), params);
            grads.register::<B>(node.id, dw);
        }
    }
}

impl<B: Backend + ConvKernels, C: CheckpointStrategy> ConvKernels for Autodiff<B, C> {
    fn reid_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        params: ConvParams,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), weight.node()];
        let (x, weight) = (x.into_primitive(), weight.into_primitive());
        let out = B::reid_conv2d(x.clone(), weight.clone(), params);
        match ConvBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((x, weight, params), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn reid_conv2d_inference(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        params: ConvParams,
        relu: bool,
    ) -> FloatTensor<Self> {
        let y = Self::reid_conv2d(x, weight, params);
        let channels = bias.shape()[0];
        let y = Self::float_add(y, Self::float_reshape(bias, [1, channels, 1, 1].into()));
        if relu { Self::relu(y) } else { y }
    }

    // The gradient kernels themselves are not differentiated again: no model of ours takes a
    // second derivative through a convolution.
    fn reid_conv2d_input_grad(
        grad: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        input_shape: [usize; 4],
        params: ConvParams,
    ) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(B::reid_conv2d_input_grad(
            grad.into_primitive(),
            weight.into_primitive(),
            input_shape,
            params,
        ))
    }

    fn reid_conv2d_weight_grad(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        weight_shape: [usize; 4],
        params: ConvParams,
    ) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(B::reid_conv2d_weight_grad(
            x.into_primitive(),
            grad.into_primitive(),
            weight_shape,
            params,
        ))
    }
}

#[derive(Debug)]
struct BatchNormBackward;

/// What the BatchNorm backward keeps of its forward.
#[derive(Clone, Debug)]
struct BatchNormSaved<B: Backend> {
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    mean: FloatTensor<B>,
    var: FloatTensor<B>,
    epsilon: f64,
    relu: bool,
}

impl<B: Backend + NormKernels> Backward<B, 3> for BatchNormBackward {
    type State = BatchNormSaved<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let s = ops.state;
        let (dx, dgamma, dbeta) = B::reid_batch_norm_backward(
            s.x, grad, s.mean, s.var, s.gamma, s.beta, s.epsilon, s.relu,
        );
        for (node, grad) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: Backend + NormKernels, C: CheckpointStrategy> NormKernels for Autodiff<B, C> {
    fn reid_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let nodes = [x.node(), gamma.node(), beta.node()];
        let (x, gamma, beta) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
        );
        let (y, mean, var) =
            B::reid_batch_norm_train(x.clone(), gamma.clone(), beta.clone(), epsilon, relu);
        let y = match BatchNormBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let saved = BatchNormSaved {
                    x,
                    gamma,
                    beta,
                    mean: mean.clone(),
                    var: var.clone(),
                    epsilon,
                    relu,
                };
                prep.finish(saved, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        (
            y,
            FloatTensor::<Self>::new(mean),
            FloatTensor::<Self>::new(var),
        )
    }

    fn reid_batch_norm_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dgamma, dbeta) = B::reid_batch_norm_backward(
            x.into_primitive(),
            grad.into_primitive(),
            mean.into_primitive(),
            var.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
            epsilon,
            relu,
        );
        (
            FloatTensor::<Self>::new(dx),
            FloatTensor::<Self>::new(dgamma),
            FloatTensor::<Self>::new(dbeta),
        )
    }
}

#[derive(Debug)]
struct MaxPoolBackward;

impl<B: Backend + PoolKernels> Backward<B, 1> for MaxPoolBackward {
    /// The input (its maxima are found again rather than kept as an index tensor) and the
    /// parameters.
    type State = (FloatTensor<B>, PoolParams);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, params) = ops.state;
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::reid_max_pool2d_backward(x, grad, params));
        }
    }
}

#[derive(Debug)]
struct AvgPoolBackward;

impl<B: Backend + PoolKernels> Backward<B, 1> for AvgPoolBackward {
    /// The input's shape and the parameters.
    type State = ([usize; 4], PoolParams);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (shape, params) = ops.state;
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::reid_avg_pool2d_backward(grad, shape, params));
        }
    }
}

impl<B: Backend + PoolKernels, C: CheckpointStrategy> PoolKernels for Autodiff<B, C> {
    fn reid_max_pool2d(x: FloatTensor<Self>, params: PoolParams) -> FloatTensor<Self> {
        let nodes = [x.node()];
        let x = x.into_primitive();
        let out = B::reid_max_pool2d(x.clone(), params);
        match MaxPoolBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x, params), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn reid_avg_pool2d(x: FloatTensor<Self>, params: PoolParams) -> FloatTensor<Self> {
        let nodes = [x.node()];
        let x = x.into_primitive();
        let shape = dims::<B>(&x);
        let out = B::reid_avg_pool2d(x, params);
        match AvgPoolBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((shape, params), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    // As for the convolutions, the gradients are not differentiated again.
    fn reid_max_pool2d_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        params: PoolParams,
    ) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(B::reid_max_pool2d_backward(
            x.into_primitive(),
            grad.into_primitive(),
            params,
        ))
    }

    fn reid_avg_pool2d_backward(
        grad: FloatTensor<Self>,
        input_shape: [usize; 4],
        params: PoolParams,
    ) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(B::reid_avg_pool2d_backward(
            grad.into_primitive(),
            input_shape,
            params,
        ))
    }
}

#[derive(Debug)]
struct SiluBackward;

impl<B: Backend + ActivationKernels> Backward<B, 1> for SiluBackward {
    /// The input.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::reid_silu_backward(ops.state, grad));
        }
    }
}

impl<B: Backend + ActivationKernels, C: CheckpointStrategy> ActivationKernels for Autodiff<B, C> {
    fn reid_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let nodes = [x.node()];
        let x = x.into_primitive();
        let out = B::reid_silu(x.clone());
        match SiluBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(x, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    // Not differentiated again, as the other gradients.
    fn reid_silu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(B::reid_silu_backward(
            x.into_primitive(),
            grad.into_primitive(),
        ))
    }
}

#[derive(Debug)]
struct GatedSumBackward;

impl<B: Backend + GateKernels> Backward<B, 8> for GatedSumBackward {
    /// The streams and their gates, in the parents' order `x1, g1, …, x4, g4`.
    type State = [FloatTensor<B>; 8];

    fn backward(self, ops: Ops<Self::State, 8>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let [x1, g1, x2, g2, x3, g3, x4, g4] = ops.state;
        let [n1, m1, n2, m2, n3, m3, n4, m4] = ops.parents;
        for ((x, g), (node_x, node_g)) in [(x1, g1), (x2, g2), (x3, g3), (x4, g4)]
            .into_iter()
            .zip([(n1, m1), (n2, m2), (n3, m3), (n4, m4)])
        {
            if node_x.is_none() && node_g.is_none() {
                continue;
            }
            let (dx, dg) = B::reid_gated_sum_backward(x, g, grad.clone());
            for (node, grad) in [(node_x, dx), (node_g, dg)] {
                if let Some(node) = node {
                    grads.register::<B>(node.id, grad);
                }
            }
        }
    }
}

impl<B: Backend + GateKernels, C: CheckpointStrategy> GateKernels for Autodiff<B, C> {
    fn reid_gated_sum(
        x1: FloatTensor<Self>,
        g1: FloatTensor<Self>,
        x2: FloatTensor<Self>,
        g2: FloatTensor<Self>,
        x3: FloatTensor<Self>,
        g3: FloatTensor<Self>,
        x4: FloatTensor<Self>,
        g4: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let all = [x1, g1, x2, g2, x3, g3, x4, g4];
        let nodes = all.each_ref().map(|t| t.node());
        let inner = all.map(|t| t.into_primitive());
        let [x1, g1, x2, g2, x3, g3, x4, g4] = inner.clone();
        let out = B::reid_gated_sum(x1, g1, x2, g2, x3, g3, x4, g4);
        match GatedSumBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(inner, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn reid_gated_sum_backward(
        x: FloatTensor<Self>,
        g: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dg) = B::reid_gated_sum_backward(
            x.into_primitive(),
            g.into_primitive(),
            grad.into_primitive(),
        );
        (FloatTensor::<Self>::new(dx), FloatTensor::<Self>::new(dg))
    }
}
