//! What the one all-reduce of a distributed training step costs, per model of the zoo: each
//! model's gradient (its parameters with a 751-identity classifier, as f32) summed over the
//! ranks of an MPI job, the median of 10 rounds after 2 of warm-up, printed by rank 0 with the
//! rate it implies. Run it under the launcher and the network you mean to train on:
//!
//! ```sh
//! cargo build --release --features mpi --example allreduce_cost
//! mpirun -np 2 [--hostfile hosts] target/release/examples/allreduce_cost [ARCH ...]
//! ```
//!
//! A step pays its way on N machines when this time is small beside the step's compute time
//! (README, "Several machines").

use std::time::Instant;

use burn::module::Module;
use reid::distributed::Communicator;
use reid::models::{Arch, ReidModel};

fn main() -> reid::Result<()> {
    let world = Communicator::world()?;
    let chosen: Vec<String> = std::env::args().skip(1).collect();
    let device = reid::device::default_device();
    if world.rank() == 0 {
        println!("{} ranks; median of 10 all-reduces per model", world.size());
        println!(
            "{:<22} {:>12} {:>10} {:>12}",
            "model", "gradient MB", "ms", "MB/s"
        );
    }
    for arch in Arch::ALL {
        if !chosen.is_empty() && !chosen.iter().any(|c| c == arch.name()) {
            continue;
        }
        let values = ReidModel::new(arch, 751, &device).num_params();
        let mut gradient = vec![1.0f32; values];
        let mut times = Vec::new();
        for round in 0..12 {
            let start = Instant::now();
            world.all_reduce_sum(&mut gradient)?;
            if round >= 2 {
                times.push(start.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let megabytes = (values * 4) as f64 / 1e6;
        if world.rank() == 0 {
            println!(
                "{:<22} {:>12.1} {:>10.1} {:>12.0}",
                arch.name(),
                megabytes,
                median * 1e3,
                megabytes / median
            );
        }
    }
    world.finalize()
}
