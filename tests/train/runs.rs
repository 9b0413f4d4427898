//! The training loop end to end on a small synthetic dataset: it trains, evaluates,
//! checkpoints, exports; a cancelled or killed run resumes from its last checkpoint and ends
//! exactly where an uninterrupted run ends.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reid::data::{SynthOptions, synthesize};
use reid::extractor::{Engine, Extractor, ExtractorOptions};
use reid::train::{
    DataSection, EmaConfig, EpochLog, EvalSection, Event, MutualConfig, SamConfig, SamplerSection,
    ScheduleSection, TrainConfig, train,
};

pub(crate) fn dataset(dir: &Path) -> PathBuf {
    let root = dir.join("data");
    let options = SynthOptions {
        ids: 16,
        cameras: 3,
        distractors: 4,
        height: 64,
        width: 32,
        seed: 9,
        ..Default::default()
    };
    synthesize(&root.join("market1501"), &options).unwrap();
    root
}

pub(crate) fn config(root: &Path, save_dir: &Path, epochs: usize) -> TrainConfig {
    TrainConfig {
        data: DataSection {
            root: root.to_path_buf(),
            height: 64,
            width: 32,
            transforms: vec!["random_flip".into(), "random_crop".into()],
            ..Default::default()
        },
        sampler: SamplerSection {
            batch_size: 8,
            ..Default::default()
        },
        schedule: ScheduleSection {
            max_epoch: epochs,
            ..Default::default()
        },
        eval: EvalSection {
            eval_freq: 1,
            ..Default::default()
        },
        save_dir: save_dir.to_path_buf(),
        ..Default::default()
    }
}

/// The mAP `reid eval --weights` gives `weights` with a run's saved `config.json`.
fn cli_map(weights: &Path, save_dir: &Path) -> f64 {
    let out = Command::new(env!("CARGO_BIN_EXE_reid"))
        .args(["eval", "--json", "--weights", weights.to_str().unwrap()])
        .arg("--config")
        .arg(save_dir.join("config.json"))
        .output()
        .unwrap();
    common::assert_success(&out);
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    line["mAP"].as_f64().unwrap()
}

pub(crate) fn history(save_dir: &Path) -> Vec<EpochLog> {
    std::fs::read_to_string(save_dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn training_learns_evaluates_checkpoints_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let save = dir.path().join("run");
    let mut steps = 0;
    let report = train(&config(&root, &save, 4), &mut |e| {
        if matches!(e, Event::Step { .. }) {
            steps += 1;
        }
        true
    })
    .unwrap();
    assert_eq!(report.epochs_done, 4);
    assert!(steps >= 4 * 5, "{steps} steps");
    same_history(&report.history, &history(&save));
    assert!(report.history.iter().all(|e| e.eval.len() == 1));
    let (first, last) = (&report.history[0], &report.history[3]);
    assert!(
        last.loss < first.loss,
        "loss {} -> {}",
        first.loss,
        last.loss
    );
    let (best_map, best_epoch) = report.best.unwrap();
    let maps: Vec<f64> = report.history.iter().map(|e| e.eval[0].map).collect();
    assert_eq!(best_map, maps.iter().cloned().fold(f64::MIN, f64::max));
    assert_eq!(maps[best_epoch - 1], best_map);
    assert!(save.join("last/state.json").is_file() && report.model.is_file());
    // The run's configuration is saved beside it and reads back as the same one.
    let saved = reid::config::load_train_config(Some(&save.join("config.json")), &[]).unwrap();
    assert_eq!(saved, config(&root, &save, 4));
    // `reid eval --weights` on the best model, with the run's saved config, gives the mAP the
    // run recorded for it.
    let cli_map = cli_map(&report.model, &save);
    assert!(
        (cli_map - best_map).abs() < 1e-6,
        "eval {cli_map} vs run {best_map}"
    );
    // With re-ranking and ranked-results pictures: one grid per query, top 3.
    let pictures = dir.path().join("ranked");
    let out = Command::new(env!("CARGO_BIN_EXE_reid"))
        .args(["eval", "--json", "--rerank", "--topk", "3", "--visualize"])
        .arg(&pictures)
        .args(["--weights", report.model.to_str().unwrap(), "--root"])
        .arg(&root)
        .args(["data.height=64", "data.width=32"])
        .output()
        .unwrap();
    common::assert_success(&out);
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reranked = line["mAP"].as_f64().unwrap();
    assert!(
        reranked > 0.0 && (reranked - cli_map).abs() > 1e-9,
        "{reranked} vs {cli_map}"
    );
    let queries = std::fs::read_dir(root.join("market1501/query"))
        .unwrap()
        .count();
    let grids: Vec<_> = std::fs::read_dir(pictures.join("market1501"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(grids.len(), queries);
    let layout = reid::eval::visualize::GridLayout {
        width: 32,
        height: 64,
        topk: 3,
    };
    let grid = image::open(&grids[0]).unwrap();
    let size = (grid.width() as usize, grid.height() as usize);
    assert_eq!(size, layout.size());
    // The export runs in the extractor (Burn engine: no native library needed).
    let onnx = report.onnx.unwrap();
    let options = ExtractorOptions {
        engine: Engine::Burn,
        ..Default::default()
    };
    let extractor = Extractor::new(&onnx, &options).unwrap();
    let query = std::fs::read_dir(root.join("market1501/query"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(extractor.extract_files(&[query]).unwrap().len(), 512);
}

/// Trains `config` for `epochs` uninterrupted, and again cancelled during epoch 2 and resumed:
/// both histories must be the same. Returns the resumed run's folder.
pub(crate) fn assert_resumes_exactly(
    dir: &Path,
    config: impl Fn(&Path, usize) -> TrainConfig,
    epochs: usize,
) -> PathBuf {
    let whole = dir.join("whole");
    train(&config(&whole, epochs), &mut |_| true).unwrap();
    let parts = dir.join("parts");
    let err = train(&config(&parts, epochs), &mut |e| {
        !matches!(
            e,
            Event::Step {
                epoch: 2,
                step: 3,
                ..
            }
        )
    })
    .unwrap_err();
    assert!(matches!(err, reid::Error::Cancelled));
    assert_eq!(history(&parts).len(), 1, "epoch 1 was checkpointed");
    let mut resumed_after = None;
    train(&config(&parts, epochs), &mut |e| {
        if let Event::Resumed { epochs_done } = e {
            resumed_after = Some(*epochs_done);
        }
        true
    })
    .unwrap();
    assert_eq!(resumed_after, Some(1));
    same_history(&history(&whole), &history(&parts));
    parts
}

#[test]
fn a_cancelled_run_resumes_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    // RAdam: its optimizer state (our own record format) must survive the checkpoint too.
    let config = |save: &Path, epochs| {
        let mut c = config(&root, save, epochs);
        c.optimizer.algorithm.name = "radam".into();
        c
    };
    assert_resumes_exactly(dir.path(), config, 3);
}

/// Center loss, SAM and AugMix together, then deep mutual learning: each trains, and resumes exactly
/// (the centers and the peer model with its optimizer are part of the checkpoint).
#[test]
fn center_loss_sam_and_mutual_learning_train_and_resume_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let center_sam = |save: &Path, epochs| {
        let mut c = config(&root, save, epochs);
        c.loss.reid.center_weight = 0.005;
        c.optimizer.sam = Some(SamConfig::default());
        c.data.transforms.push("augmix".into());
        c.export_onnx = false;
        c
    };
    let run = assert_resumes_exactly(&dir.path().join("center_sam"), center_sam, 2);
    assert!(run.join("last/centers.npy").is_file());
    let mutual = |save: &Path, epochs| {
        let mut c = config(&root, save, epochs);
        c.loss.mutual_learning = Some(MutualConfig {
            arch: "osnet_x0_25".into(),
            weight: 1.0,
        });
        c.export_onnx = false;
        c
    };
    let run = assert_resumes_exactly(&dir.path().join("mutual"), mutual, 2);
    assert!(run.join("last/peer.bpk").is_file() && run.join("last/peer_optimizer.bpk").is_file());
    // Mutual learning changes the training: its losses differ from the plain run's.
    let plain = dir.path().join("plain");
    let mut c = config(&root, &plain, 1);
    c.export_onnx = false;
    train(&c, &mut |_| true).unwrap();
    assert!((history(&plain)[0].loss - history(&run)[0].loss).abs() > 1e-4);
}

/// Gradient clipping and the moving average of the weights (deep-object-reid's
/// `train.clip_grad` and `train.ema`) in a whole run: the average is evaluated beside the model
/// after every epoch, the better of the two at the best evaluation is the run's model (and
/// evaluates to the mAP recorded), and the run resumes exactly: the average is part of the
/// checkpoint.
#[test]
fn clipped_runs_with_a_moving_average_evaluate_it_and_resume_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let config = |save: &Path, epochs| {
        let mut c = config(&root, save, epochs);
        c.optimizer.clip_grad = 5.0;
        c.optimizer.ema = Some(EmaConfig { decay: 0.8 });
        c.export_onnx = false;
        c
    };
    let run = assert_resumes_exactly(dir.path(), config, 3);
    // The resumed average holds the uninterrupted one's values.
    let (resumed, whole) = (
        tensors(&run.join("last/ema.bpk")),
        tensors(&dir.path().join("whole/last/ema.bpk")),
    );
    assert_eq!(resumed.len(), whole.len());
    for (name, values) in &resumed {
        let worst = values
            .iter()
            .zip(&whole[name])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-6, "{name}: {worst}");
    }
    let log = history(&run);
    assert!(
        log.iter()
            .all(|e| e.ema_eval.len() == 1 && e.eval.len() == 1)
    );
    assert!(
        log.iter()
            .any(|e| (e.ema_eval[0].map - e.eval[0].map).abs() > 1e-6),
        "the average evaluates as the model itself"
    );
    // Running the finished run again changes nothing and reports its best.
    let report = train(&config(&run, 3), &mut |_| true).unwrap();
    let mut best = (f64::MIN, 0, false);
    for e in &log {
        for (map, from_ema) in [(e.eval[0].map, false), (e.ema_eval[0].map, true)] {
            if map > best.0 {
                best = (map, e.epoch, from_ema);
            }
        }
    }
    assert_eq!(report.best, Some((best.0, best.1)));
    assert_eq!(report.best_from_ema, best.2);
    let map = cli_map(&report.model, &run);
    assert!(
        (map - best.0).abs() < 1e-6,
        "best.bpk {map}, recorded {}",
        best.0
    );
}

/// Two sources train as one set with their identities kept apart (the classifier has both
/// sets' identities), batches balanced between them (`RandomDatasetSampler`), and each target
/// is evaluated on its own — one of them a dataset the
/// model never trained on (cross-dataset evaluation, as torchreid's `targets`).
#[test]
fn two_sources_train_together_and_each_target_is_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    // A second generated set in DukeMTMC-reID's place (its file names read as Duke's).
    let options = SynthOptions {
        ids: 10,
        cameras: 3,
        distractors: 2,
        height: 64,
        width: 32,
        seed: 21,
        ..Default::default()
    };
    synthesize(&root.join("dukemtmc-reid/DukeMTMC-reID"), &options).unwrap();
    let save = dir.path().join("run");
    let mut c = config(&root, &save, 1);
    c.data.sources = vec!["market1501".into(), "dukemtmcreid".into()];
    c.data.targets = vec!["market1501".into(), "dukemtmcreid".into()];
    c.sampler.name = "RandomDatasetSampler".into();
    c.sampler.num_datasets = 2;
    c.export_onnx = false;
    let report = train(&c, &mut |_| true).unwrap();
    // That sampler takes half of every batch from each source.
    let sets = ["market1501", "dukemtmcreid"].map(|n| reid::data::load_dataset(n, &root).unwrap());
    let train_set = reid::data::combine_train(&sets);
    let sampler = reid::data::sampler::Sampler::RandomDataset { datasets: 2 };
    let order = sampler.epoch(&train_set, 8, 0, 0).unwrap();
    assert!(!order.is_empty());
    for batch in order.chunks(8) {
        let first = batch.iter().filter(|&&i| train_set[i].dataset == 0).count();
        assert_eq!((batch.len(), first), (8, 4));
    }
    let targets: Vec<&str> = report.history[0]
        .eval
        .iter()
        .map(|e| e.target.as_str())
        .collect();
    assert_eq!(targets, ["market1501", "dukemtmcreid"]);
    // 8 + 5 training identities, one classifier row each.
    let model =
        reid::weights::load_checkpoint(&report.model, &reid::device::default_device()).unwrap();
    assert_eq!(model.num_classes(), 8 + 5);
    // Trained on Market alone, evaluated on Duke alone: another dataset than the source.
    let cross = dir.path().join("cross");
    let mut c = config(&root, &cross, 1);
    c.data.targets = vec!["dukemtmcreid".into()];
    c.export_onnx = false;
    let report = train(&c, &mut |_| true).unwrap();
    let eval = &report.history[0].eval;
    assert_eq!(eval.len(), 1);
    assert_eq!(eval[0].target, "dukemtmcreid");
    assert!(eval[0].map > 0.0 && eval[0].map <= 1.0);
    let map = cli_map(&report.model, &cross);
    assert!((map - eval[0].map).abs() < 1e-6, "{map} vs {}", eval[0].map);
    let model =
        reid::weights::load_checkpoint(&report.model, &reid::device::default_device()).unwrap();
    assert_eq!(model.num_classes(), 8);
}

/// Knowledge distillation (fast-reid's `Distiller`): a student learns from a teacher
/// checkpoint trained on the same identities — its loss carries the distillation term, so it
/// differs from the same run without the teacher (which is the teacher's own run: same
/// config, same seed) — and a teacher of other identities is refused.
#[test]
fn a_student_learns_from_a_teacher_checkpoint() {
    use reid::train::DistillConfig;
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let plain = |save: &Path| {
        let mut c = config(&root, save, 1);
        c.export_onnx = false;
        c
    };
    let teacher_run = dir.path().join("teacher");
    let teacher = train(&plain(&teacher_run), &mut |_| true).unwrap().model;
    let student = |teacher: &Path, save: &Path| {
        let mut c = plain(save);
        c.loss.distillation = Some(DistillConfig {
            teacher: teacher.to_path_buf(),
            temperature: 4.0,
            ..Default::default()
        });
        c
    };
    let run = dir.path().join("student");
    let report = train(&student(&teacher, &run), &mut |_| true).unwrap();
    let (with, without) = (report.history[0].loss, history(&teacher_run)[0].loss);
    assert!(
        with.is_finite() && (with - without).abs() > 1e-4,
        "{with} vs {without}"
    );
    assert_eq!(report.history[0].eval.len(), 1);
    // The embedding term alone (fast-reid's probabilistic knowledge transfer) changes the
    // loss by its own amount.
    let mut embeddings = student(&teacher, &dir.path().join("pkt"));
    if let Some(d) = embeddings.loss.distillation.as_mut() {
        d.weight = 0.0;
        d.feature_weight = 1e4;
    }
    let pkt = train(&embeddings, &mut |_| true).unwrap().history[0].loss;
    assert!(
        pkt.is_finite() && (pkt - without).abs() > 1e-4 && (pkt - with).abs() > 1e-4,
        "{pkt} vs {without} and {with}"
    );
    // A teacher of 3 identities for a training set of 8.
    let other = dir.path().join("other.bpk");
    let device = reid::device::default_device();
    let three = reid::models::ReidModel::new(reid::models::Arch::OsnetX0_25, 3, &device);
    reid::weights::save_checkpoint(&three, &other).unwrap();
    let err = train(&student(&other, &dir.path().join("refused")), &mut |_| true).unwrap_err();
    assert!(err.to_string().contains("3 identities"), "{err}");
}

/// The TensorBoard event file holds the history's scalars; TensorBoard's own reader (PyPI
/// `tensorboard`, through `REID_PYTHON`) reads them back.
#[test]
fn tensorboard_reads_the_runs_scalars() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let save = dir.path().join("run");
    let mut c = config(&root, &save, 2);
    c.export_onnx = false;
    let report = train(&c, &mut |_| true).unwrap();
    let events = save.join(reid::train::tensorboard::EVENTS_FILE);
    assert!(events.is_file());
    let Some(python) = std::env::var_os("REID_PYTHON") else {
        assert!(
            std::env::var_os("REID_REQUIRE_TENSORBOARD").is_none(),
            "REID_PYTHON is not set"
        );
        eprintln!("skipped the TensorBoard reader check: REID_PYTHON is not set");
        return;
    };
    let script = r#"
import json, sys
try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
except ImportError:
    print("NO_TENSORBOARD"); sys.exit(0)
acc = EventAccumulator(sys.argv[1]); acc.Reload()
print(json.dumps({tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}))
"#;
    let out = Command::new(python)
        .args(["-c", script])
        .arg(&save)
        .output()
        .unwrap();
    common::assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim() == "NO_TENSORBOARD" {
        assert!(
            std::env::var_os("REID_REQUIRE_TENSORBOARD").is_none(),
            "the tensorboard package is missing"
        );
        eprintln!("skipped the TensorBoard reader check: no tensorboard package");
        return;
    }
    let scalars: std::collections::BTreeMap<String, Vec<(i64, f64)>> =
        serde_json::from_str(text.trim()).unwrap();
    let series = |tag: &str| {
        scalars
            .get(tag)
            .unwrap_or_else(|| panic!("{tag}: {scalars:?}"))
    };
    for (i, epoch) in report.history.iter().enumerate() {
        let (step, loss) = series("Train/loss")[i];
        assert_eq!(step as usize, epoch.epoch);
        assert!((loss - epoch.loss).abs() < 1e-5 * epoch.loss.abs().max(1.0));
        let (_, map) = series("Test/market1501/mAP")[i];
        assert!((map - epoch.eval[0].map).abs() < 1e-6);
        let (_, lr) = series("Train/lr")[i];
        assert!((lr - epoch.lr).abs() < 1e-6 * epoch.lr);
    }
}

/// Every tensor of a reid checkpoint, by its torchreid name.
fn tensors(checkpoint: &Path) -> std::collections::BTreeMap<String, Vec<f32>> {
    let model =
        reid::weights::load_checkpoint(checkpoint, &reid::device::default_device()).unwrap();
    reid::weights::torch_named_values(&model)
        .into_iter()
        .map(|(name, (_, values))| (name, values))
        .collect()
}

fn same_history(a: &[EpochLog], b: &[EpochLog]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.epoch, y.epoch);
        assert!(
            (x.loss - y.loss).abs() < 1e-6,
            "epoch {}: {} vs {}",
            x.epoch,
            x.loss,
            y.loss
        );
        assert!((x.eval[0].map - y.eval[0].map).abs() < 1e-6);
        assert_eq!(x.ema_eval.len(), y.ema_eval.len());
        for (p, q) in x.ema_eval.iter().zip(&y.ema_eval) {
            assert!((p.map - q.map).abs() < 1e-6, "epoch {}: average", x.epoch);
        }
    }
}

#[test]
fn a_killed_training_process_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let args = |save: &Path| {
        vec![
            "train".to_string(),
            "--root".into(),
            root.display().to_string(),
            "data.height=64".into(),
            "data.width=32".into(),
            "train.batch_size=8".into(),
            "train.max_epoch=4".into(),
            "test.eval_freq=1".into(),
            "test.export_onnx=false".into(),
            format!("data.save_dir={}", save.display()),
        ]
    };
    let reid = env!("CARGO_BIN_EXE_reid");
    let whole = dir.path().join("whole");
    let out = Command::new(reid).args(args(&whole)).output().unwrap();
    common::assert_success(&out);

    let killed = dir.path().join("killed");
    let mut child = Command::new(reid)
        .args(args(&killed))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    // Kill (SIGKILL: no chance to clean up) as soon as the first epoch is checkpointed.
    while !killed.join("last/state.json").is_file() {
        assert!(Instant::now() < deadline, "no checkpoint appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "training ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done_at_kill = history(&killed).len();
    assert!(
        (1..4).contains(&done_at_kill),
        "{done_at_kill} epochs before the kill"
    );

    let out = Command::new(reid).args(args(&killed)).output().unwrap();
    common::assert_success(&out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("resumed after epoch"), "{said}");
    same_history(&history(&whole), &history(&killed));
}

#[test]
fn example_configs_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let config = reid::config::load_train_config(Some(&path), &[]).unwrap();
        config.model.arch.parse::<reid::Arch>().unwrap();
        reid::train::optim::OptimizerConfig::build(&config.optimizer.algorithm).unwrap();
        n += 1;
    }
    assert!(n >= 4);
}

#[test]
fn lr_range_test_grows_the_rate_and_stops_on_divergence() {
    use reid::train::lr_find::{LrFindOptions, lr_find};
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let config = config(&root, &dir.path().join("unused"), 1);
    let options = LrFindOptions {
        min_lr: 1e-5,
        max_lr: 1e3,
        steps: 16,
        ..Default::default()
    };
    let report = lr_find(&config, &options, &mut |_, _, _| true).unwrap();
    assert!((report.lrs[0] - 1e-5).abs() < 1e-12);
    assert!(report.lrs.windows(2).all(|w| w[1] > w[0] * 2.0));
    assert!(report.diverged, "a rate of 1000 must blow the loss up");
    assert!(report.lrs.len() < 16 && report.losses.len() == report.lrs.len());
    assert!(report.lrs.contains(&report.suggestion));
    assert!(
        !dir.path().join("unused").exists(),
        "the range test saves nothing"
    );
    let bad = LrFindOptions {
        min_lr: 1.0,
        max_lr: 0.1,
        steps: 10,
        ..Default::default()
    };
    assert!(lr_find(&config, &bad, &mut |_, _, _| true).is_err());
}

/// deep-object-reid's `lr_finder.epochs_warmup`: the range test starts from the model a few
/// epochs at the run's rate leave (lower loss than the starting model's), over the same number
/// of steps.
#[test]
fn the_range_test_can_start_after_warm_up_epochs() {
    use reid::train::lr_find::{LrFindOptions, lr_find};
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let mut config = config(&root, &dir.path().join("unused"), 1);
    config.schedule.lr = 3e-3;
    let options = |warmup_epochs| LrFindOptions {
        min_lr: 1e-7,
        max_lr: 1e-6,
        steps: 6,
        warmup_epochs,
        ..Default::default()
    };
    let cold = lr_find(&config, &options(0), &mut |_, _, _| true).unwrap();
    let warm = lr_find(&config, &options(3), &mut |_, _, _| true).unwrap();
    assert_eq!(cold.losses.len(), warm.losses.len());
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean(&warm.losses) < mean(&cold.losses),
        "warm {:?} vs cold {:?}",
        warm.losses,
        cold.losses
    );
}

/// deep-object-reid's `lr_finder.enable`: a run first runs the range test (its curve written to
/// `lr_find.csv`), then trains at the rate the same test suggests on its own; a cancelled run
/// resumes at that rate, exactly, without testing again.
#[test]
fn a_run_with_the_lr_finder_trains_at_its_suggestion() {
    use reid::train::lr_find::{LrFindOptions, lr_find};
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let options = LrFindOptions {
        min_lr: 1e-5,
        max_lr: 1.0,
        steps: 12,
        ..Default::default()
    };
    let alone = lr_find(
        &config(&root, &dir.path().join("alone"), 2),
        &options,
        &mut |_, _, _| true,
    )
    .unwrap()
    .suggestion;
    let with_finder = |save: &Path, epochs| {
        let mut c = config(&root, save, epochs);
        c.schedule.lr_finder = Some(options.clone());
        c.export_onnx = false;
        c
    };
    let run = assert_resumes_exactly(&dir.path().join("runs"), with_finder, 2);
    assert!(run.join("lr_find.csv").is_file());
    let log = history(&run);
    assert!(log.iter().all(|e| e.lr == alone), "{alone} vs {log:?}");
    // The finished run, started again, finds nothing new: no test, the same rate.
    let (mut tested, mut found) = (0, None);
    train(&with_finder(&run, 2), &mut |e| {
        match e {
            Event::LrFinder { .. } => tested += 1,
            Event::LrFound { lr } => found = Some(*lr),
            _ => {}
        }
        true
    })
    .unwrap();
    assert_eq!((tested, found), (0, Some(alone)));
}

/// deep-object-reid's `grid_search`: a trial run per rate of the grid, each evaluated after
/// every epoch; the run trains at the rate whose trial scored best, the trials' scores in
/// `lr_search.csv` and their folders gone.
#[test]
fn a_run_with_the_grid_search_trains_at_the_best_trials_rate() {
    use reid::train::config::LrFindMode;
    use reid::train::lr_find::LrFindOptions;
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let save = dir.path().join("run");
    let mut c = config(&root, &save, 1);
    c.export_onnx = false;
    c.schedule.lr_finder = Some(LrFindOptions {
        mode: LrFindMode::GridSearch,
        min_lr: 1e-4,
        max_lr: 0.3,
        step: Some(0.1),
        epochs: Some(2),
        ..Default::default()
    });
    let (mut trial_epochs, mut found) = (Vec::new(), None);
    train(&c, &mut |e| {
        match e {
            Event::LrTrial {
                trial,
                lr,
                epoch,
                score: Some(score),
            } => trial_epochs.push((*trial, *lr, *epoch, *score)),
            Event::LrFound { lr } => found = Some(*lr),
            _ => {}
        }
        true
    })
    .unwrap();
    // Three rates (1e-4, 0.1001, 0.2001), two epochs each (fewer than five trials: none pruned).
    assert_eq!(trial_epochs.len(), 6, "{trial_epochs:?}");
    let last = |t: usize| trial_epochs.iter().rfind(|e| e.0 == t).unwrap();
    let best = (1..=3)
        .map(last)
        .max_by(|a, b| a.3.total_cmp(&b.3))
        .unwrap();
    assert_eq!(found, Some(best.1));
    let saved: reid::train::TrainConfig =
        serde_json::from_slice(&std::fs::read(save.join("config.json")).unwrap()).unwrap();
    assert!(
        (saved.schedule.lr - best.1).abs() < 1e-12,
        "{}",
        saved.schedule.lr
    );
    assert_eq!(history(&save).len(), 1);
    let csv = std::fs::read_to_string(save.join("lr_search.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.starts_with("trial,lr,pruned,score_epoch_1,score_epoch_2\n"));
    assert!(!save.join("lr_search").exists());
    // A rate that blows the loss up ends its trial with no score; the search goes on.
    let save = dir.path().join("diverged");
    let mut c = config(&root, &save, 1);
    c.export_onnx = false;
    c.schedule.lr_finder = Some(LrFindOptions {
        mode: LrFindMode::GridSearch,
        min_lr: 1e-4,
        max_lr: 2e30,
        step: Some(1e30),
        epochs: Some(1),
        ..Default::default()
    });
    let report = train(&c, &mut |_| true).unwrap();
    assert_eq!(report.epochs_done, 1);
    let csv = std::fs::read_to_string(save.join("lr_search.csv")).unwrap();
    assert!(csv.lines().nth(2).unwrap().ends_with(",-inf"), "{csv}");
    let saved: reid::train::TrainConfig =
        serde_json::from_slice(&std::fs::read(save.join("config.json")).unwrap()).unwrap();
    assert!((saved.schedule.lr - 1e-4).abs() < 1e-12);
}

#[test]
fn lr_find_command_writes_the_curve_and_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let save = dir.path().join("lr");
    let out = Command::new(env!("CARGO_BIN_EXE_reid"))
        .args([
            "lr-find",
            "--root",
            root.to_str().unwrap(),
            "--steps",
            "8",
            "--max-lr",
            "0.1",
        ])
        .args(["data.height=64", "data.width=32", "train.batch_size=8"])
        .arg(format!("data.save_dir={}", save.display()))
        .output()
        .unwrap();
    common::assert_success(&out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("suggested learning rate"), "{said}");
    let csv = std::fs::read_to_string(save.join("lr_find.csv")).unwrap();
    assert_eq!(csv.lines().next(), Some("lr,loss"));
    assert_eq!(csv.lines().count(), 9, "{csv}");
}

#[test]
fn am_softmax_and_triplet_runs_train() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    for (name, losses) in [
        (
            "am",
            reid::train::LossConfig {
                am_margin: 0.35,
                ..Default::default()
            },
        ),
        (
            "triplet",
            reid::train::LossConfig {
                triplet_weight: 1.0,
                ..Default::default()
            },
        ),
    ] {
        let mut c = config(&root, &dir.path().join(name), 1);
        c.loss.reid = losses;
        c.sampler.name = "RandomIdentitySampler".into();
        c.export_onnx = false;
        let report = train(&c, &mut |_| true).unwrap();
        assert!(report.history[0].loss.is_finite(), "{name}");
    }
}

/// Two devices (here the CPU twice; `cuda:0,cuda:1` or `wgpu:0,wgpu:1` on GPUs) train through
/// the data-parallel step with P × K batches; techniques that need the whole batch on one
/// device are refused with several.
#[test]
fn several_devices_train_data_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let mut c = config(&root, &dir.path().join("two"), 1);
    c.device = "flex,cpu".into();
    c.sampler.name = "RandomIdentitySampler".into();
    c.loss.reid.triplet_weight = 1.0;
    c.export_onnx = false;
    let report = train(&c, &mut |_| true).unwrap();
    assert!(report.history[0].loss.is_finite() && report.history[0].eval[0].map > 0.0);
    c.optimizer.sam = Some(SamConfig::default());
    let err = train(&c, &mut |_| true).unwrap_err().to_string();
    assert!(err.contains("one device"), "{err}");
    c.optimizer.sam = None;
    c.device = "flex,tpu:1".into();
    assert!(train(&c, &mut |_| true).is_err());
}

/// Early stopping against the run's own history: the run ends at the first evaluation that
/// completes `early_stop_patience` evaluations without a better mAP (never before, and it never
/// runs on past one), and the model it returns is the best one, written at the best epoch. A
/// rate of 1e-12 barely moves the weights, so the mAP plateaus within a few epochs and the
/// stopping path is taken, whatever rounding this machine's kernels give.
#[test]
fn early_stopping_ends_after_the_patience_and_keeps_the_best() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let save = dir.path().join("run");
    let patience = 2;
    let max_epoch = 12;
    let mut config = config(&root, &save, max_epoch);
    config.schedule.lr = 1e-12;
    config.eval.early_stop_patience = patience;
    let report = train(&config, &mut |_| true).unwrap();

    let maps: Vec<f64> = report.history.iter().map(|e| e.eval[0].map).collect();
    // Replay the rule on the history: stop once `patience` evaluations in a row were no better.
    let (mut best, mut best_epoch, mut since, mut stop) = (f64::MIN, 0, 0, None);
    for (i, &map) in maps.iter().enumerate() {
        if map > best {
            (best, best_epoch, since) = (map, i + 1, 0);
        } else {
            since += 1;
        }
        if since >= patience {
            stop = Some(i + 1);
            break;
        }
    }
    assert!(report.stopped_early, "no plateau in {maps:?}");
    assert_eq!(stop, Some(report.epochs_done), "maps {maps:?}");
    assert_eq!(report.history.len(), report.epochs_done);
    assert!(report.epochs_done < max_epoch && report.epochs_done > patience);
    assert_eq!(report.best, Some((best, best_epoch)));
    // The model returned is the best epoch's: best.bpk, written when that epoch was evaluated.
    assert_eq!(report.model, save.join("best.bpk"));
    let map = cli_map(&report.model, &save);
    assert!(
        (map - best).abs() < 1e-6,
        "best.bpk evaluates to {map}, the run recorded {best}"
    );
}

/// During `fixbase_epoch` the closed layers' BatchNorms run as in eval mode, as torchreid's
/// `open_specified_layers` leaves them: after one such epoch a backbone norm still holds a
/// fresh norm's statistics (mean 0, variance 1), the open `fc` block's have moved, and the
/// saved model's norms train again afterwards (a second, open epoch moves the backbone's).
#[test]
fn fixbase_epochs_keep_the_closed_norms_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let stats = |save: &Path| {
        let device = reid::device::default_device();
        let model = reid::weights::load_checkpoint(save.join("last/model.bpk"), &device).unwrap();
        let v = reid::weights::torch_named_values(&model);
        let get = |k: &str| v[k].1.clone();
        (
            get("conv1.bn.running_mean"),
            get("conv1.bn.running_var"),
            get("fc.1.running_mean"),
        )
    };
    let run = |name: &str, epochs: usize| {
        let save = dir.path().join(name);
        let mut config = config(&root, &save, epochs);
        config.eval.eval_freq = 0;
        config.export_onnx = false;
        config.schedule.fixbase_epoch = 1;
        config.schedule.open_layers = vec!["classifier".into(), "fc".into()];
        train(&config, &mut |_| true).unwrap();
        stats(&save)
    };
    let (mean, var, fc_mean) = run("fixbase", 1);
    assert!(mean.iter().all(|&m| m == 0.0), "{mean:?}");
    assert!(var.iter().all(|&v| v == 1.0), "{var:?}");
    assert!(fc_mean.iter().any(|&m| m != 0.0));
    let (mean, _, _) = run("then_open", 2);
    assert!(mean.iter().any(|&m| m != 0.0));
}

/// Deep mutual learning's peer is opened as the main model is (deep-object-reid's engine opens
/// the same layers of every model): after a fixbase epoch its backbone holds the weights it
/// started with (those of a run at rate 1e-30, too small to move an f32) and its norms a fresh norm's statistics, while its
/// classifier and `fc` have trained.
#[test]
fn fixbase_epochs_open_the_same_layers_of_the_mutual_peer() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let peer = |name: &str, lr: f64| {
        let save = dir.path().join(name);
        let mut c = config(&root, &save, 1);
        c.eval.eval_freq = 0;
        c.export_onnx = false;
        c.schedule.lr = lr;
        c.schedule.fixbase_epoch = 1;
        c.schedule.open_layers = vec!["classifier".into(), "fc".into()];
        c.loss.mutual_learning = Some(MutualConfig {
            arch: "osnet_x0_25".into(),
            weight: 1.0,
        });
        train(&c, &mut |_| true).unwrap();
        let device = reid::device::default_device();
        let model = reid::weights::load_checkpoint(save.join("last/peer.bpk"), &device).unwrap();
        reid::weights::torch_named_values(&model)
    };
    let (trained, still) = (peer("trained", 0.003), peer("still", 1e-30));
    let same = |k: &str| trained[k].1 == still[k].1;
    assert!(same("conv1.conv.weight") && same("conv3.0.conv1.conv.weight"));
    assert!(!same("classifier.weight") && !same("fc.0.weight"));
    assert!(trained["conv1.bn.running_mean"].1.iter().all(|&m| m == 0.0));
    assert!(trained["conv1.bn.running_var"].1.iter().all(|&v| v == 1.0));
    assert!(trained["fc.1.running_mean"].1.iter().any(|&m| m != 0.0));
}

/// `model.pretrained: true` starts the backbone from the zoo's ImageNet weights for the
/// architecture (here a file placed in the cache: the tests have no network), the classifier
/// fresh for the training set; without the file the error says where to put it.
#[test]
fn pretrained_starts_the_backbone_from_the_zoos_imagenet_weights() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let cache = dir.path().join("zoo");
    let entry = reid::zoo::find("osnet_x0_25_imagenet").unwrap();
    let config = dir.path().join("pretrained.yaml");
    // One epoch with only the classifier open: the backbone ends as it started.
    let yaml = format!(
        "model: {{name: osnet_x0_25, pretrained: true}}\n\
         data: {{root: {}, sources: [market1501], targets: [market1501], height: 64, width: 32, \
         save_dir: {}}}\n\
         train: {{max_epoch: 1, fixbase_epoch: 1, open_layers: [classifier], batch_size: 8}}\n\
         test: {{eval_freq: 1}}\n",
        root.display(),
        dir.path().join("run").display()
    );
    std::fs::write(&config, yaml).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_reid"))
            .args(["train", "--config"])
            .arg(&config)
            .env("REID_ZOO_DIR", &cache)
            .env("REID_ZOO_MIRROR", &nowhere)
            // PyTorch's download folders are searched too: none here.
            .env("TORCH_HOME", dir.path().join("torch"))
            .output()
            .unwrap()
    };
    let out = run();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&entry.file) && stderr.contains(&cache.display().to_string()),
        "{stderr}"
    );

    std::fs::create_dir_all(&cache).unwrap();
    let placed = common::fixture("osnet_x0_25/checkpoint.pth.tar");
    std::fs::copy(&placed, cache.join(&entry.file)).unwrap();
    common::assert_success(&run());
    let trained = tensors(&dir.path().join("run/last/model.bpk"));
    // The same values as torch saved them (the safetensors twin of the placed checkpoint).
    let bytes = std::fs::read(common::fixture("osnet_x0_25/weights.safetensors")).unwrap();
    let imagenet = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for key in [
        "conv1.conv.weight",
        "conv2.0.conv1.conv.weight",
        "conv5.conv.weight",
    ] {
        let view = imagenet.tensor(key).unwrap();
        let want: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(trained[key], want, "{key}");
    }
    // The classifier: the training set's 8 identities, not the file's 10 classes.
    assert_eq!(trained["classifier.weight"].len(), 8 * 512);
}

/// deep-object-reid's `data.transforms` sections in a whole run: its test-time centre crop and
/// forced grey reach the evaluation, the exported model's metadata and the extractor that
/// loads it, and `reid eval` with the run's saved config gives the mAP the run recorded.
#[test]
fn deep_object_reid_transform_sections_reach_evaluation_and_export() {
    use reid::data::transform_sections::TransformSections;
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path());
    let save = dir.path().join("run");
    let mut c = config(&root, &save, 2);
    c.data.transforms.clear();
    let mut sections = TransformSections::default();
    sections.randaugment.enable = true;
    sections.cutout.enable = true;
    sections.coarse_dropout.enable = true;
    sections.center_crop.enable = true;
    sections.center_crop.margin = 2;
    sections.force_gray_scale.enable = true;
    c.data.transform_sections = Some(sections);
    let report = train(&c, &mut |_| true).unwrap();
    let onnx = report.onnx.unwrap();
    let meta = reid::export::read_metadata(&std::fs::read(&onnx).unwrap()).unwrap();
    assert_eq!(meta.get("grayscale").map(String::as_str), Some("1"));
    assert_eq!(meta.get("crop_margin").map(String::as_str), Some("2"));
    let options = ExtractorOptions {
        engine: Engine::Burn,
        ..Default::default()
    };
    let extractor = Extractor::new(&onnx, &options).unwrap();
    assert_eq!(*extractor.preprocessing(), c.data.test_preprocessing());
    let (best_map, _) = report.best.unwrap();
    let cli = cli_map(&report.model, &save);
    assert!(
        (cli - best_map).abs() < 1e-6,
        "eval {cli} vs run {best_map}"
    );
}
