//! Data-parallel training on several devices (`device: cuda:0,cuda:1`, `wgpu:0,wgpu:1`, or a
//! GPU with the CPU): each step cuts the batch into one contiguous chunk per device, every
//! device computes the gradient of its chunk on its own copy of the model (in its own
//! thread), the gradients are summed on the first device with each chunk weighted by its share
//! of the batch — the gradient of the whole batch's mean loss — and the optimizer steps once.
//! BatchNorm uses each chunk's statistics, as PyTorch's `DataParallel` does. The replicas share
//! the model's running statistics (a clone shares Burn's `RunningState`, which averages the
//! updates of every thread in the order they arrive): they mix every chunk's, and their last bits
//! may vary from run to run; the gradients and weights do not.

use burn::module::{Module, ParamId};
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsAccumulator, GradientsParams};

use burn::tensor::{Device, Int, Tensor};

use super::loss_scale::{scaled, step_scale, with_step_scale};
use super::optim::Optimizer;
use super::step::{LossConfig, StepStats, batch_loss, gradients};
use crate::models::ReidModel;
use crate::models::precision::{autocast, compute_precision};

/// Chunk boundaries of a batch of `n` for `parts` devices; chunks are whole multiples of
/// `group` (P × K batches keep each identity's images together) except perhaps the last.
pub fn chunk_bounds(n: usize, parts: usize, group: usize) -> Vec<(usize, usize)> {
    let group = group.max(1);
    let size = n.div_ceil(parts.max(1)).div_ceil(group) * group;
    (0..n)
        .step_by(size.max(1))
        .map(|start| (start, (start + size).min(n)))
        .collect()
}

/// The gradient of `weight ·` the chunk's loss for `model`, and the chunk's statistics.
pub(crate) fn chunk_gradients(
    model: &ReidModel,
    images: Tensor<4>,
    targets: Tensor<1, Int>,
    losses: &LossConfig,
    weight: f32,
    only: Option<&[ParamId]>,
) -> (GradientsParams, StepStats) {
    let (loss, stats) = batch_loss(model, images, targets, losses);
    (
        gradients(scaled(loss * weight).backward(), model, only),
        stats,
    )
}

/// One data-parallel step. `model` lives on the first device (in training mode, on its autodiff
/// device, like `images` and `targets`); `others` are the autodiff devices of the other
/// replicas. Returns the updated model and the batch's statistics.
#[allow(clippy::too_many_arguments)]
pub fn data_parallel_step(
    model: ReidModel,
    optimizer: &mut Optimizer,
    learning_rate: impl Into<ModuleLearningRate>,
    images: Tensor<4>,
    targets: Tensor<1, Int>,
    losses: &LossConfig,
    only: Option<&[ParamId]>,
    others: &[Device],
    group: usize,
) -> (ReidModel, StepStats) {
    let total = targets.dims()[0];
    let batch = Batch {
        images,
        targets,
        total,
    };
    let (grads, stats) = data_parallel_gradients(&model, batch, losses, only, others, group);
    (optimizer.step(learning_rate, model, grads), stats)
}

/// Images and targets of (a part of) a batch of `total` images.
pub(crate) struct Batch {
    /// Images `[B, 3, H, W]` on the model's device.
    pub images: Tensor<4>,
    /// Their classes `[B]`.
    pub targets: Tensor<1, Int>,
    /// Images of the whole batch these are part of (its mean loss is the objective).
    pub total: usize,
}

/// The gradient of `batch`'s share of the whole batch's mean loss, computed in chunks over
/// `model`'s device and `others`, summed on the first device; the statistics are weighted alike.
pub(crate) fn data_parallel_gradients(
    model: &ReidModel,
    batch: Batch,
    losses: &LossConfig,
    only: Option<&[ParamId]>,
    others: &[Device],
    group: usize,
) -> (GradientsParams, StepStats) {
    let Batch {
        images,
        targets,
        total,
    } = batch;
    let n = targets.dims()[0];
    let bounds = chunk_bounds(n, others.len() + 1, group);
    let main_device = images.device();
    let grads_device = main_device.clone().inner();
    let chunk = |(start, end): (usize, usize), device: &Device| {
        (
            images
                .clone()
                .narrow(0, start, end - start)
                .to_device(device),
            targets
                .clone()
                .narrow(0, start, end - start)
                .to_device(device),
            (end - start) as f32 / total as f32,
        )
    };
    let results: Vec<(GradientsParams, StepStats, f32)> = std::thread::scope(|scope| {
        let handles: Vec<_> = bounds
            .iter()
            .skip(1)
            .zip(others)
            .map(|(&range, device)| {
                let replica = model.clone().fork(device);
                let (images, targets, weight) = chunk(range, device);
                let grads_device = &grads_device;
                // The step's half precision and loss scale hold on the replicas' threads too.
                let (precision, scale) = (compute_precision(), step_scale());
                scope.spawn(move || {
                    let (grads, stats) = autocast(precision, || {
                        with_step_scale(scale, || {
                            chunk_gradients(&replica, images, targets, losses, weight, only)
                        })
                    });
                    (grads.to_device(grads_device, &replica), stats, weight)
                })
            })
            .collect();
        let (images, targets, weight) = chunk(bounds[0], &main_device);
        let (grads, stats) = chunk_gradients(model, images, targets, losses, weight, only);
        let mut all = vec![(grads, stats, weight)];
        all.extend(
            handles
                .into_iter()
                .map(|h| h.join().expect("a replica's step panicked")),
        );
        all
    });
    let mut accumulator = GradientsAccumulator::<ReidModel>::new();
    let mut stats = StepStats {
        loss: 0.0,
        accuracy: 0.0,
    };
    for (grads, part, weight) in results {
        accumulator.accumulate(model, grads);
        stats.loss += part.loss * weight;
        stats.accuracy += part.accuracy * weight;
    }
    (accumulator.grads(), stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_batch_and_keep_groups_whole() {
        assert_eq!(chunk_bounds(8, 2, 1), vec![(0, 4), (4, 8)]);
        assert_eq!(chunk_bounds(7, 2, 1), vec![(0, 4), (4, 7)]);
        assert_eq!(chunk_bounds(12, 2, 4), vec![(0, 8), (8, 12)]);
        assert_eq!(chunk_bounds(16, 3, 4), vec![(0, 8), (8, 16)]);
        assert_eq!(chunk_bounds(5, 1, 1), vec![(0, 5)]);
    }
}
