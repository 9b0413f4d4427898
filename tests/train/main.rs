//! Training (layer `train`, with `config`): numerics against PyTorch, runs end to end, classification runs, MPI jobs.

#[path = "../common/mod.rs"]
mod common;

mod classification_runs;
mod consistency;
mod dor_config;
mod dor_schedules;
mod mixing;
mod mpi;
mod numerics;
mod random_patch;
mod rsc;
mod runs;
mod video;
