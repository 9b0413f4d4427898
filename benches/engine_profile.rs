//! Where the Burn engine's time goes: the kernel graph of each model (the Extractor's Burn
//! engine runs it) profiled step by step, grouped by kind of step, with each kind's arithmetic
//! rate against the matrix product's peak measured in the same run (a 1024³ product on the same
//! threads), then by size (steps of one kind and the same multiply-adds). Each step's time is
//! its fastest of the rounds.
//!
//! `cargo bench --bench engine_profile [-- ROUNDS] [MODEL] [BATCH]` (default 20 rounds; a
//! model name or a batch size, `1` or `32`, keeps only those cases).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod support;

use reid::device::default_device;
use reid::models::{Arch, ReidModel};
use reid_kernels::matrix::{View, matmul};
use support::Cases;

#[global_allocator]
static ALLOCATOR: reid::allocator::ReusingAllocator =
    reid::allocator::ReusingAllocator::new(reid::allocator::DEFAULT_CAPACITY);

/// Multiply-adds per second of a 1024³ product, the fastest of five.
fn gemm_peak() -> f64 {
    let n = 1024;
    let a = vec![0.5f32; n * n];
    let b = vec![0.25f32; n * n];
    let mut c = vec![0.0f32; n * n];
    let fastest = (0..5)
        .map(|_| {
            let start = Instant::now();
            matmul(
                &mut c,
                View::rows(&a, n, n),
                View::rows(&b, n, n),
                false,
                true,
            );
            start.elapsed()
        })
        .min()
        .unwrap();
    (n * n * n) as f64 / fastest.as_secs_f64()
}

fn main() {
    let cases = Cases::from_args(20);
    let peak = gemm_peak();
    println!(
        "matrix product peak (1024³, {} threads): {:.1} GMAC/s",
        rayon::current_num_threads(),
        peak / 1e9
    );
    for arch in [Arch::OsnetX0_25, Arch::OsnetX1_0, Arch::Resnet50] {
        if !cases.wants(arch) {
            continue;
        }
        let model = ReidModel::new(arch, 751, &default_device());
        let Some(graph) = model.embedding_graph(None) else {
            println!("{arch}: no kernel graph (REID_KERNELS=burn?)");
            continue;
        };
        for &batch in &cases.batches {
            let dims = [batch, 3, 256, 128];
            let input = vec![0.1f32; dims.iter().product()];
            let mut fastest: Vec<Option<(Duration, &'static str, u64)>> = Vec::new();
            for _ in 0..cases.rounds + 1 {
                let (_, steps) = graph.profile(input.clone(), dims).unwrap();
                fastest.resize(steps.len(), None);
                for (best, step) in fastest.iter_mut().zip(steps) {
                    if best.is_none_or(|(t, _, _)| step.time < t) {
                        *best = Some((step.time, step.kind, step.macs));
                    }
                }
            }
            // Steps of one kind and size together: which layers stand far from the peak.
            let mut sizes: BTreeMap<(&str, u64), (Duration, u64)> = BTreeMap::new();
            for &(time, kind, macs) in fastest.iter().flatten() {
                let entry = sizes.entry((kind, macs)).or_default();
                *entry = (entry.0 + time, entry.1 + 1);
            }
            let mut kinds: BTreeMap<&str, (Duration, u64, usize)> = BTreeMap::new();
            for (time, kind, macs) in fastest.into_iter().flatten() {
                let entry = kinds.entry(kind).or_default();
                *entry = (entry.0 + time, entry.1 + macs, entry.2 + 1);
            }
            let total: Duration = kinds.values().map(|k| k.0).sum();
            let by_size = sizes.into_iter().filter(|((_, macs), _)| *macs > 0);
            println!(
                "\n{arch}, batch {batch}: {:.2} ms by the steps' fastest rounds",
                total.as_secs_f64() * 1e3
            );
            println!("  kind           steps      ms   share   GMAC/s   of peak");
            let mut rows: Vec<_> = kinds.into_iter().collect();
            rows.sort_by_key(|row| std::cmp::Reverse(row.1.0));
            for (kind, (time, macs, steps)) in rows {
                let rate = macs as f64 / time.as_secs_f64();
                let (rate, share_of_peak) = if macs > 0 {
                    (
                        format!("{:8.1}", rate / 1e9),
                        format!("{:8.0}%", 100.0 * rate / peak),
                    )
                } else {
                    ("       -".into(), "        -".into())
                };
                println!(
                    "  {kind:<13} {steps:>6} {:>7.2} {:>6.1}% {rate} {share_of_peak}",
                    time.as_secs_f64() * 1e3,
                    100.0 * time.as_secs_f64() / total.as_secs_f64(),
                );
            }
            println!("  by size: kind, multiply-adds per step × steps, ms, GMAC/s, of peak");
            for ((kind, macs), (time, steps)) in by_size {
                let rate = (macs * steps) as f64 / time.as_secs_f64();
                println!(
                    "    {kind:<11} {macs:>10} ×{steps:<3} {:>7.3} {:>8.1} {:>6.0}%",
                    time.as_secs_f64() * 1e3,
                    rate / 1e9,
                    100.0 * rate / peak
                );
            }
        }
    }
}
