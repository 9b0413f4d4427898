//! The Burn engine against ONNX Runtime on the same export, measured in turns: each round runs
//! a few batches on one engine, then on the other, and the report gives each engine's fastest
//! and median run and the ratio of the fastest. On a shared machine whose speed drifts by a
//! factor of two within minutes (ONNX Runtime alone gave 225 and 491 images/s for one batch-1
//! case in two criterion runs), separate runs of the two engines compare their luck; taken in
//! turns, both meet the same drift. Each turn starts with untimed runs for at least
//! [`SETTLE`]: the other engine's threads still spin for a while after its last run (ONNX
//! Runtime's by default, rayon's before they sleep) and take a core — osnet_x0_25's batch of 32
//! ran 20 % slower right after ONNX Runtime's, and a single image on the Burn engine, which
//! keeps both cores busy, 1.5× slower for the first 10–20 ms (with one untimed run per turn
//! its best run was 0.77 of ONNX Runtime's, with 20 ms of them 1.20, 2026-12-04). Needs ONNX
//! Runtime (found as the Extractor finds it).
//!
//! `cargo bench --bench engine_ratio [-- ROUNDS] [MODEL] [BATCH]` (default 15 rounds per case;
//! a model name such as `osnet_x0_25` or a batch size, `1` or `32`, keeps only those cases —
//! for profiling one of them).

use std::time::{Duration, Instant};

mod support;

use reid::device::default_device;
use reid::export::{ExportOptions, export_onnx_file};
use reid::extractor::{Engine, Extractor, ExtractorOptions};
use reid::models::{Arch, ReidModel};
use support::Cases;

// As the `reid` command line does.
#[global_allocator]
static ALLOCATOR: reid::allocator::ReusingAllocator =
    reid::allocator::ReusingAllocator::new(reid::allocator::DEFAULT_CAPACITY);

/// Timed runs per engine and round.
const RUNS_PER_TURN: usize = 3;

/// How long each turn runs its engine untimed first (at least once), while the other engine's
/// threads wind down.
const SETTLE: Duration = Duration::from_millis(50);

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let cases = Cases::from_args(15);
    let dir = tempfile::tempdir().unwrap();
    println!("model        batch  engine        fastest img/s  median img/s  ratio (fastest)");
    for arch in [Arch::OsnetX0_25, Arch::OsnetX1_0] {
        if !cases.wants(arch) {
            continue;
        }
        let model = ReidModel::new(arch, 751, &default_device());
        let onnx = dir.path().join(format!("{}.onnx", arch.name()));
        export_onnx_file(&model, &ExportOptions::new(256, 128), &onnx).unwrap();
        let open = |engine| {
            let options = ExtractorOptions {
                engine,
                max_batch: 32,
                ..Default::default()
            };
            Extractor::new(&onnx, &options)
        };
        let (ort, burn) = match (open(Engine::OnnxRuntime), open(Engine::Burn)) {
            (Ok(ort), Ok(burn)) => (ort, burn),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("{arch} skipped: {e}");
                continue;
            }
        };
        for &batch in &cases.batches {
            let input = vec![0.1f32; batch * ort.preprocessing().input_len()];
            for _ in 0..3 {
                ort.extract_prepared(&input, batch).unwrap();
                burn.extract_prepared(&input, batch).unwrap();
            }
            let (mut by_ort, mut by_burn) = (Vec::new(), Vec::new());
            for _ in 0..cases.rounds {
                for (engine, times) in [(&ort, &mut by_ort), (&burn, &mut by_burn)] {
                    let settling = Instant::now();
                    engine.extract_prepared(&input, batch).unwrap();
                    while settling.elapsed() < SETTLE {
                        engine.extract_prepared(&input, batch).unwrap();
                    }
                    for _ in 0..RUNS_PER_TURN {
                        times.push(timed(|| {
                            engine.extract_prepared(&input, batch).unwrap();
                        }));
                    }
                }
            }
            let rate = |d: Duration| batch as f64 / d.as_secs_f64();
            let (ort_fast, burn_fast) = (
                *by_ort.iter().min().unwrap(),
                *by_burn.iter().min().unwrap(),
            );
            for (name, fast, runs) in [
                ("onnxruntime", ort_fast, by_ort),
                ("burn", burn_fast, by_burn),
            ] {
                println!(
                    "{:<12} {batch:>5}  {name:<12}  {:>13.1}  {:>12.1}",
                    arch.name(),
                    rate(fast),
                    rate(median(runs))
                );
            }
            println!(
                "{:<12} {batch:>5}  burn / onnxruntime: {:.2}",
                arch.name(),
                rate(burn_fast) / rate(ort_fast)
            );
        }
    }
}
