//! Data-parallel training across the ranks of an MPI job (`distributed: mpi`; ARCHITECTURE.md,
//! "Several machines"), with the semantics of one process whose batch is cut into one chunk per
//! rank:
//! - rank 0 starts or resumes the run and sends the model, the optimizer's state and the run
//!   state to every rank ([`Team::broadcast`] of `checkpoint::Start`'s bytes);
//! - every rank draws the same epoch order (same seed) and reads only its chunk of each batch
//!   ([`Team::shard`]: whole P × K groups, as `chunk_bounds` cuts a batch across devices);
//! - each rank's gradient is weighted by its chunk's share of the batch, summed over its local
//!   devices, flattened and summed over the ranks by one all-reduce ([`Team::reduce`]), so every
//!   rank takes the same optimizer step on the whole batch's gradient;
//! - rank 0 evaluates, writes checkpoints and logs, and sends the run state (best score, early
//!   stopping, the plateau schedule) after each epoch ([`Team::share`]); then every rank
//!   checks that its trained parameters are bit for bit rank 0's and takes rank 0's BatchNorm
//!   running statistics ([`Team::align`]), as PyTorch's DDP broadcasts its buffers.
//!
//! A rank that fails ends the whole job ([`Team::fail`]) instead of leaving the others waiting
//! in a collective; a rank that dies is noticed by the launcher, which ends the others.

use std::collections::HashSet;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::config::{Distributed, TrainConfig};
use super::flat::{Values, adopt};
use super::parallel::chunk_bounds;
use super::step::StepStats;
use crate::error::{Error, Result};
use crate::models::ReidModel;

#[cfg(feature = "mpi")]
type Communicator = crate::distributed::Communicator;

/// Stands for the communicator in a build without the `mpi` feature, where no team can form.
#[cfg(not(feature = "mpi"))]
enum Communicator {}

#[cfg(not(feature = "mpi"))]
impl Communicator {
    fn rank(&self) -> usize {
        match *self {}
    }
    fn size(&self) -> usize {
        match *self {}
    }
    fn all_reduce_sum(&self, _: &mut [f32]) -> Result<()> {
        match *self {}
    }
    fn broadcast(&self, _: &mut Vec<u8>) -> Result<()> {
        match *self {}
    }
    fn abort(&self, _: i32) -> ! {
        match *self {}
    }
    fn finalize(&self) -> Result<()> {
        match *self {}
    }
}

/// This process's part in a distributed run.
pub(crate) struct Team {
    comm: &'static Communicator,
    /// Every parameter that has received a summed gradient: they must agree across ranks.
    trained: HashSet<ParamId>,
}

impl Team {
    /// Joins the job `config` asks for: `None` for a run of one process.
    pub fn join(config: &TrainConfig) -> Result<Option<Team>> {
        match config.distributed {
            Distributed::None => Ok(None),
            Distributed::Mpi => join_mpi().map(Some),
        }
    }

    /// Another handle on the same job (for ending it or leaving it after the run).
    pub fn handle(&self) -> Team {
        Team {
            comm: self.comm,
            trained: HashSet::new(),
        }
    }

    /// This process's rank, from 0.
    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    /// Whether this rank evaluates and writes the run's files (rank 0).
    pub fn leads(&self) -> bool {
        self.rank() == 0
    }

    /// Checks that a batch of `batch_size` in groups of `group` gives every rank a chunk.
    pub fn check_batch(&self, batch_size: usize, group: usize) -> Result<()> {
        let chunks = chunk_bounds(batch_size, self.comm.size(), group).len();
        if chunks < self.comm.size() {
            return Err(Error::InvalidInput(format!(
                "a batch of {batch_size} in groups of {group} gives only {chunks} chunks for {} \
                 ranks: raise batch_size or run fewer ranks",
                self.comm.size()
            )));
        }
        Ok(())
    }

    /// This rank's chunk of `batch`.
    pub fn shard<'a>(&self, batch: &'a [usize], group: usize) -> &'a [usize] {
        let (start, end) = chunk_bounds(batch.len(), self.comm.size(), group)[self.rank()];
        &batch[start..end]
    }

    /// The sum over ranks of every rank's (already weighted) gradients and statistics.
    pub fn reduce(
        &mut self,
        model: &ReidModel,
        mut grads: GradientsParams,
        stats: StepStats,
    ) -> Result<(GradientsParams, StepStats)> {
        let mut flat = Flatten {
            grads: &mut grads,
            values: Vec::new(),
            taken: Vec::new(),
            device: None,
        };
        model.visit(&mut flat);
        let Flatten {
            mut values,
            taken,
            device,
            ..
        } = flat;
        values.extend([stats.loss, stats.accuracy]);
        self.comm.all_reduce_sum(&mut values)?;
        let accuracy = values.pop().expect("pushed above");
        let loss = values.pop().expect("pushed above");
        self.trained.extend(taken.iter().map(|(id, _)| *id));
        let mut reduced = GradientsParams::new();
        if let Some(device) = device {
            let mut unflatten = Unflatten {
                values: &values,
                taken: &taken,
                next: 0,
                offset: 0,
                grads: &mut reduced,
                device: &device,
            };
            model.visit(&mut unflatten);
        }
        Ok((reduced, StepStats { loss, accuracy }))
    }

    /// Sends rank 0's `bytes` to every rank (whose own are replaced).
    pub fn broadcast(&self, bytes: &mut Vec<u8>) -> Result<()> {
        self.comm.broadcast(bytes)
    }

    /// Replaces `value` on every rank by rank 0's (the run state after its evaluation).
    pub fn share<T: Serialize + DeserializeOwned>(&self, value: &mut T) -> Result<()> {
        let mut bytes = if self.leads() {
            serde_json::to_vec(value).expect("shared values serialize")
        } else {
            Vec::new()
        };
        self.comm.broadcast(&mut bytes)?;
        if !self.leads() {
            *value = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Runtime(format!("a value from rank 0: {e}")))?;
        }
        Ok(())
    }

    /// Checks that this rank's trained parameters are rank 0's, bit for bit, and gives it rank
    /// 0's other values (BatchNorm's running statistics, which each rank updates from its chunk).
    pub fn align(&self, model: ReidModel) -> Result<ReidModel> {
        let mine = Values::of(&model);
        let mut bytes: Vec<u8> = if self.leads() {
            mine.values.iter().flat_map(|v| v.to_le_bytes()).collect()
        } else {
            Vec::new()
        };
        self.comm.broadcast(&mut bytes)?;
        if self.leads() {
            return Ok(model);
        }
        if bytes.len() != 4 * mine.values.len() {
            return Err(Error::Runtime(format!(
                "rank 0's model has {} values, rank {}'s {}",
                bytes.len() / 4,
                self.rank(),
                mine.values.len()
            )));
        }
        let theirs: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        if let Some(id) = first_difference(&mine, &theirs, &self.trained) {
            return Err(Error::Runtime(format!(
                "rank {}'s parameter {id} differs from rank 0's: the ranks no longer train the \
                 same model",
                self.rank()
            )));
        }
        Ok(adopt(model, &theirs))
    }

    /// Ends the whole job after `error` on this rank, saying why on stderr: the other ranks
    /// would otherwise wait for this one in their next collective.
    pub fn fail(&self, error: &Error) -> ! {
        eprintln!("reid: rank {}: {error}; ending the MPI job", self.rank());
        self.comm.abort(1)
    }

    /// Leaves the job after the run (MPI_Finalize; a process trains across machines once).
    pub fn finish(self) -> Result<()> {
        self.comm.finalize()
    }
}

#[cfg(feature = "mpi")]
fn join_mpi() -> Result<Team> {
    Ok(Team {
        comm: crate::distributed::Communicator::world()?,
        trained: HashSet::new(),
    })
}

#[cfg(not(feature = "mpi"))]
fn join_mpi() -> Result<Team> {
    Err(Error::InvalidInput(
        "distributed: mpi needs a build with the `mpi` feature (cargo build --features mpi)".into(),
    ))
}

/// Takes every gradient of the model's parameters out of `grads`, in the model's order, as one
/// flat vector.
struct Flatten<'a> {
    grads: &'a mut GradientsParams,
    values: Vec<f32>,
    taken: Vec<(ParamId, Vec<usize>)>,
    device: Option<Device>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            self.device.get_or_insert_with(|| grad.device());
            self.taken.push((param.id, grad.dims().to_vec()));
            self.values
                .extend(crate::models::embed::tensor_to_vec(grad));
        }
    }
}

/// Registers the flat vector's pieces back as the gradients of the parameters `Flatten` took.
struct Unflatten<'a> {
    values: &'a [f32],
    taken: &'a [(ParamId, Vec<usize>)],
    next: usize,
    offset: usize,
    grads: &'a mut GradientsParams,
    device: &'a Device,
}

impl ModuleVisitor for Unflatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some((id, dims)) = self.taken.get(self.next) else {
            return;
        };
        if *id != param.id {
            return;
        }
        let len: usize = dims.iter().product();
        let piece = self.values[self.offset..self.offset + len].to_vec();
        let grad = Tensor::<D>::from_data(TensorData::new(piece, dims.clone()), self.device);
        self.grads.register(param.id, grad);
        self.next += 1;
        self.offset += len;
    }
}

/// The first tensor in `trained` whose values in `mine` and `theirs` differ in any bit.
fn first_difference(mine: &Values, theirs: &[f32], trained: &HashSet<ParamId>) -> Option<ParamId> {
    mine.ranges.iter().find_map(|(id, range)| {
        let differs = mine.values[range.clone()]
            .iter()
            .zip(&theirs[range.clone()])
            .any(|(a, b)| a.to_bits() != b.to_bits());
        (trained.contains(id) && differs).then_some(*id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trained_tensor_that_differs_is_a_difference() {
        let (a, b) = (ParamId::new(), ParamId::new());
        let mine = Values {
            values: vec![1.0, 2.0, 3.0, 4.0],
            ranges: vec![(a, 0..2), (b, 2..4)],
        };
        let trained: HashSet<ParamId> = [a].into();
        // b differs but is a running statistic (not trained): rank 0's value is taken.
        assert_eq!(
            first_difference(&mine, &[1.0, 2.0, 0.0, 4.0], &trained),
            None
        );
        assert_eq!(
            first_difference(&mine, &[1.0, 2.5, 3.0, 4.0], &trained),
            Some(a)
        );
        // -0.0 and 0.0 are equal numbers but not the same bits.
        let zero = Values {
            values: vec![0.0],
            ranges: vec![(a, 0..1)],
        };
        assert_eq!(first_difference(&zero, &[-0.0], &trained), Some(a));
    }

    #[test]
    fn distributed_names_parse() {
        assert_eq!("mpi".parse::<Distributed>().unwrap(), Distributed::Mpi);
        assert_eq!("none".parse::<Distributed>().unwrap(), Distributed::None);
        assert!("nccl".parse::<Distributed>().is_err());
    }
}
