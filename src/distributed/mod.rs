//! Several processes working as one job: the ranks of an MPI launch (`mpirun`, Slurm's `srun`),
//! each usually on its own machine, and the few collective operations data-parallel training
//! needs: all-reduce (sum) of `f32`s, broadcast of bytes from rank 0, and abort.
//!
//! Open MPI's library is loaded when a job first asks for it (`libmpi.so.40`, or the file named by
//! `REID_MPI_LIBRARY`), as ONNX Runtime's is: building needs no MPI headers, no compiler wrapper and
//! no libclang, so the feature costs nothing to build and is tested in every build, and a program
//! that never trains across machines never touches MPI. Only Open MPI (3.x to 5.x, the library of
//! Debian's `openmpi-bin` and of most clusters) is supported: its handles (`MPI_COMM_WORLD`,
//! `MPI_FLOAT`, …) are addresses of exported objects, where MPICH's are integers with another
//! ABI; another MPI library is refused with a message that says so.
//!
//! A process joins the job once ([`Communicator::world`]) and must leave it once, before it exits
//! ([`Communicator::finalize`]): Open MPI's launcher treats a rank that exits without finalizing
//! as failed. Every collective blocks until all ranks reach it; a rank that cannot go on calls
//! [`Communicator::abort`], which ends every rank (a rank that dies is noticed by the launcher,
//! which ends the others).

mod open_mpi;

use std::sync::{Mutex, OnceLock};

use crate::error::{Error, Result};
use open_mpi::OpenMpi;

/// The environment variable naming the MPI library to load instead of `libmpi.so.40`.
pub const LIBRARY_VARIABLE: &str = "REID_MPI_LIBRARY";

/// Elements per MPI call: MPI counts are C `int`s, so longer buffers go in pieces.
const MAX_COUNT: usize = i32::MAX as usize;

/// This process's place in the job, and the collective operations over all of it.
pub struct Communicator {
    mpi: OpenMpi,
    rank: usize,
    size: usize,
    /// MPI is initialized for serialized calls: one thread at a time, any thread.
    calls: Mutex<()>,
}

static WORLD: OnceLock<std::result::Result<Communicator, String>> = OnceLock::new();

impl Communicator {
    /// Joins the job this process was launched in (every rank of `MPI_COMM_WORLD`); the first
    /// call loads and initializes MPI, later calls return the same communicator. A process started
    /// without a launcher is a job of one rank.
    pub fn world() -> Result<&'static Communicator> {
        WORLD
            .get_or_init(|| {
                let mpi = OpenMpi::load(std::env::var_os(LIBRARY_VARIABLE))?;
                let (rank, size) = mpi.init()?;
                Ok(Communicator {
                    mpi,
                    rank,
                    size,
                    calls: Mutex::new(()),
                })
            })
            .as_ref()
            .map_err(|e| Error::Runtime(format!("MPI: {e}")))
    }

    /// This process's rank, from 0.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks in the job.
    pub fn size(&self) -> usize {
        self.size
    }

    fn call<T>(&self, op: impl FnOnce(&OpenMpi) -> std::result::Result<T, String>) -> Result<T> {
        let _serial = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        op(&self.mpi).map_err(|e| Error::Runtime(format!("MPI (rank {}): {e}", self.rank)))
    }

    /// Replaces `values` on every rank by their element-wise sum over all ranks. Every rank must
    /// pass the same length.
    pub fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()> {
        self.call(|mpi| {
            values
                .chunks_mut(MAX_COUNT)
                .try_for_each(|part| mpi.all_reduce_sum_f32(part))
        })
    }

    /// Sends rank 0's `bytes` to every rank (whose own are replaced, whatever their length).
    pub fn broadcast(&self, bytes: &mut Vec<u8>) -> Result<()> {
        self.call(|mpi| {
            let mut len = (bytes.len() as u64).to_le_bytes();
            mpi.broadcast_bytes(&mut len)?;
            let len = usize::try_from(u64::from_le_bytes(len))
                .map_err(|_| "a broadcast longer than this machine's memory".to_string())?;
            if self.rank != 0 {
                bytes.clear();
                bytes.resize(len, 0);
            }
            bytes
                .chunks_mut(MAX_COUNT)
                .try_for_each(|part| mpi.broadcast_bytes(part))
        })
    }

    /// Ends every rank of the job with `code` (Open MPI's launcher reports which rank aborted).
    pub fn abort(&self, code: i32) -> ! {
        // Not behind `calls`: a thread blocked in a collective must not keep the job alive.
        self.mpi.abort(code);
        // MPI_Abort does not return; should an MPI library let it, the job must still end.
        std::process::exit(code.max(1))
    }

    /// Leaves the job (MPI_Finalize): after every collective of this process, before it exits.
    /// Calling it again does nothing.
    pub fn finalize(&self) -> Result<()> {
        self.call(|mpi| mpi.finalize())
    }
}
