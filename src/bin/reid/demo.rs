//! `demo`: the main demo, on a CPU and without downloads. Synthesizes a re-id dataset,
//! finetunes osnet_x0_25 from a torchreid checkpoint for a few minutes, shows mAP and Rank-1
//! before and after, exports ONNX, re-extracts the images with ONNX Runtime (Burn when ONNX
//! Runtime is not installed) and searches a gallery with them.

use std::path::PathBuf;
use std::time::Instant;

use reid::data::{Sample, SynthOptions, load_dataset, synthesize};
use reid::eval::Metric;
use reid::extractor::{Engine, Extractor, ExtractorOptions};
use reid::gallery::{Gallery, NewEntry, SearchOptions};
use reid::models::Arch;
use reid::preprocess::Preprocessing;
use reid::train::evaluate::evaluate_dataset;
use reid::train::schedule::Schedule;
use reid::train::{Event, TrainConfig, train};

/// Arguments of `demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Finetuning epochs.
    #[arg(long, default_value_t = 8)]
    pub epochs: usize,
    /// Working folder (emptied first).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/target/finetune-demo"))]
    pub work: PathBuf,
    /// The starting torchreid checkpoint (by default the repository's test fixture).
    #[arg(
        long,
        default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/osnet_x0_25/checkpoint.pth.tar")
    )]
    pub checkpoint: PathBuf,
}

impl DemoArgs {
    /// Runs the demo.
    pub fn run(self) -> reid::Result<()> {
        let started = Instant::now();
        let DemoArgs {
            epochs,
            work,
            checkpoint,
        } = self;
        let _ = std::fs::remove_dir_all(&work);

        // 1. A synthetic dataset in the Market-1501 layout: 50 training and 50 test identities
        //    seen by 6 cameras.
        let root = work.join("data");
        let options = SynthOptions {
            ids: 100,
            height: 128,
            width: 64,
            ..Default::default()
        };
        let written = synthesize(&root.join("market1501"), &options)?;
        let dataset = load_dataset("market1501", &root)?;
        println!(
            "synthesized {} training, {} query and {} gallery images in {}",
            written.train,
            written.query,
            written.gallery,
            root.display()
        );

        // 2. The starting point: a torchreid checkpoint (here the test fixture's weights).
        let device = reid::device::default_device();
        let (start, _) = reid::weights::load_torchreid(Arch::OsnetX0_25, &checkpoint, &device)?;
        let preprocessing = Preprocessing::torchreid(128, 64);
        let before = evaluate_dataset(
            &start,
            &dataset,
            &preprocessing,
            Metric::Euclidean,
            64,
            &device,
        )?;
        println!(
            "before finetuning: mAP {:.1}%, Rank-1 {:.1}%",
            before.map * 100.0,
            before.rank(1) * 100.0
        );

        // 3. Finetune on the CPU.
        let config = TrainConfig {
            model: reid::train::ModelSection {
                arch: "osnet_x0_25".into(),
                weights: Some(checkpoint),
                ..Default::default()
            },
            data: reid::train::DataSection {
                root: root.clone(),
                height: 128,
                width: 64,
                transforms: vec![
                    "random_flip".into(),
                    "random_crop".into(),
                    "color_jitter".into(),
                ],
                ..Default::default()
            },
            sampler: reid::train::SamplerSection {
                batch_size: 32,
                ..Default::default()
            },
            schedule: reid::train::ScheduleSection {
                lr: 0.003,
                policy: Schedule::Cosine { max_epoch: epochs },
                max_epoch: epochs,
                ..Default::default()
            },
            eval: reid::train::EvalSection {
                eval_freq: 4,
                ..Default::default()
            },
            save_dir: work.join("run"),
            ..Default::default()
        };
        let mut progress = |event: &Event| {
            if let Event::Epoch(log) = event {
                print!(
                    "epoch {}/{epochs}: loss {:.3}, accuracy {:.2} ({:.0} s)",
                    log.epoch, log.loss, log.accuracy, log.seconds
                );
                for e in &log.eval {
                    print!(
                        "; mAP {:.1}%, Rank-1 {:.1}%",
                        e.map * 100.0,
                        e.rank1 * 100.0
                    );
                }
                println!();
            }
            true
        };
        let report = train(&config, &mut progress)?;
        let after = report.history.last().and_then(|e| e.eval.first()).cloned();
        if let Some(after) = &after {
            println!(
                "after finetuning: mAP {:.1}% (was {:.1}%), Rank-1 {:.1}% (was {:.1}%)",
                after.map * 100.0,
                before.map * 100.0,
                after.rank1 * 100.0,
                before.rank(1) * 100.0
            );
        }

        // 4. The exported model in the extractor: ONNX Runtime if it is installed, else Burn.
        let onnx = report.onnx.expect("export_onnx is on");
        let extractor = match Extractor::new(&onnx, &ExtractorOptions::default()) {
            Ok(e) => {
                println!("exported {} and loaded it in ONNX Runtime", onnx.display());
                e
            }
            Err(reid::Error::Runtime(why)) => {
                println!("ONNX Runtime not available ({why}); using the Burn engine");
                let burn = ExtractorOptions {
                    engine: Engine::Burn,
                    ..Default::default()
                };
                Extractor::new(&onnx, &burn)?
            }
            Err(e) => return Err(e),
        };

        // 5. A gallery of the test images, searched with each query across cameras.
        let paths = |s: &[Sample]| s.iter().map(|x| x.path.clone()).collect::<Vec<PathBuf>>();
        let gallery_vectors = extractor.extract_files(&paths(&dataset.gallery))?;
        let query_vectors = extractor.extract_files(&paths(&dataset.query))?;
        let dim = extractor.dim();
        let gallery = Gallery::new(dim, Metric::Cosine)?;
        let entries = dataset
            .gallery
            .iter()
            .zip(gallery_vectors.chunks(dim))
            .map(|(s, v)| NewEntry::new(s.pid as u64, s.camera, v.to_vec()))
            .collect();
        gallery.add_batch(entries)?;
        let mut hits = 0;
        for (q, v) in dataset.query.iter().zip(query_vectors.chunks(dim)) {
            let options = SearchOptions {
                exclude_camera: Some(q.camera),
                ..SearchOptions::top(1)
            };
            let best = &gallery.search(v, &options)?[0];
            hits += usize::from(best.first().is_some_and(|m| m.identity == q.pid as u64));
        }
        println!(
            "gallery of {} embeddings: the best match from another camera is the right person \
             for {hits} of {} queries ({:.1}%; cosine on normalized embeddings, where the \
             evaluation above uses torchreid's euclidean distance and keeps other cameras' \
             distractors)",
            gallery.len()?,
            dataset.query.len(),
            100.0 * hits as f64 / dataset.query.len() as f64
        );
        println!("done in {:.0} s", started.elapsed().as_secs_f64());
        Ok(())
    }
}
