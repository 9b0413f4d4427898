//! Classification through the training engine and the CLI on synthetic data: single-label
//! (softmax) and multi-label (ASL) runs train, evaluate with the classification metrics, export
//! ONNX with a `logits` output, and the Classifier reads the result (Burn and ONNX Runtime
//! agree with the model's own logits).

use std::path::{Path, PathBuf};
use std::process::Command;

use reid::classifier::Classifier;
use reid::data::synth::{ClassSynthOptions, synthesize_classes};
use reid::extractor::{Engine, ExtractorOptions};
use reid::models::Task;
use reid::train::{
    DataSection, EvalSection, ModelSection, OptimizerSection, SamplerSection, ScheduleSection,
    TrainConfig,
};

fn synth(dir: &Path, multilabel: bool) -> PathBuf {
    let out = dir.join(if multilabel { "shapes_ml" } else { "shapes" });
    let options = ClassSynthOptions {
        classes: 4,
        train_per_class: 32,
        val_per_class: 8,
        size: 48,
        multilabel,
        max_labels: 2,
        seed: 3,
    };
    synthesize_classes(&out, &options).unwrap();
    out
}

fn config(root: &Path, name: &str, save_dir: &Path, task: Task, epochs: usize) -> TrainConfig {
    TrainConfig {
        model: ModelSection {
            arch: "mobilenetv3_small".into(),
            task,
            ..Default::default()
        },
        data: DataSection {
            root: root.to_path_buf(),
            sources: vec![name.into()],
            targets: vec![name.into()],
            height: 48,
            width: 48,
            transforms: vec![],
            ..Default::default()
        },
        sampler: SamplerSection {
            batch_size: 16,
            ..Default::default()
        },
        optimizer: OptimizerSection {
            algorithm: reid::train::optim::OptimizerConfig {
                name: "adam".into(),
                ..Default::default()
            },
            ..Default::default()
        },
        schedule: ScheduleSection {
            lr: 0.003,
            policy: reid::train::schedule::Schedule::Cosine { max_epoch: epochs },
            max_epoch: epochs,
            ..Default::default()
        },
        eval: EvalSection {
            eval_freq: 1,
            ..Default::default()
        },
        save_dir: save_dir.to_path_buf(),
        ..TrainConfig::default()
    }
}

#[test]
fn single_label_training_learns_the_classes_and_exports_a_classifier() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), false);
    let save = dir.path().join("run");
    let config = config(dir.path(), "shapes", &save, Task::Classification, 10);
    let report = reid::train::train(&config, &mut |_| true).unwrap();
    let first = &report.history[0];
    let last = report.history.last().unwrap();
    assert!(last.loss < first.loss, "{first:?} → {last:?}");
    let metrics = last.eval[0].classification.expect("classification metrics");
    // Four classes: chance is 25 % top-1 and about 40 % mAP.
    let (best, _) = report.best.unwrap();
    assert!(
        best >= 0.5 && metrics.map >= 0.65,
        "best top-1 {best}, last {metrics:?}"
    );
    assert!(metrics.top5 >= metrics.top1 && metrics.mean_class_accuracy > 0.4);
    let tops: Vec<f64> = report.history.iter().map(|e| e.eval[0].rank1).collect();
    assert!(
        tops.iter().all(|&t| t <= best),
        "the best top-1 is kept: {tops:?}"
    );

    let model =
        reid::weights::load_checkpoint(&report.model, &reid::device::default_device()).unwrap();
    assert_eq!(model.task, Task::Classification);
    assert_eq!(
        model.class_names,
        ["class_00", "class_01", "class_02", "class_03"]
    );

    // The checkpoint and its ONNX export classify the validation images alike.
    let images: Vec<PathBuf> = (0..4)
        .map(|c| {
            let folder = dir.path().join(format!("shapes/val/class_{c:02}"));
            let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            files[0].clone()
        })
        .collect();
    // The checkpoint records the input size it was trained at, and runs at it.
    assert_eq!(model.trained_input, Some((48, 48)));
    let burn = Classifier::new(
        &report.model,
        &ExtractorOptions {
            engine: Engine::Burn,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(burn.preprocessing().height, 48);
    assert_eq!(burn.num_classes(), 4);
    let from_burn = burn.classify_files(&images, 4).unwrap();
    for row in &from_burn {
        let total: f32 = row.iter().map(|p| p.score).sum();
        assert!(
            (total - 1.0).abs() < 1e-4,
            "softmax over all classes: {row:?}"
        );
        assert!(row.windows(2).all(|w| w[0].score >= w[1].score));
    }
    // Its export alike on ONNX Runtime and OpenVINO.
    let onnx = report.onnx.as_ref().unwrap();
    for engine in [Engine::OnnxRuntime, Engine::OpenVino] {
        let options = ExtractorOptions {
            engine,
            ..Default::default()
        };
        match Classifier::new(onnx, &options) {
            Ok(runtime) => {
                assert_eq!(runtime.class_names(), burn.class_names());
                let from_runtime = runtime.classify_files(&images, 2).unwrap();
                for (a, b) in from_runtime.iter().zip(&from_burn) {
                    assert_eq!(a[0].class, b[0].class);
                    assert!((a[0].score - b[0].score).abs() < 1e-3, "{a:?} vs {b:?}");
                }
            }
            Err(e) if std::env::var("REID_REQUIRE_ONNX_CHECK").is_err() => {
                eprintln!("skipped the {engine:?} half: {e}");
            }
            Err(e) => panic!("{e}"),
        }
    }
    // A re-id model is not a classifier.
    let reid_model = dir.path().join("reid.bpk");
    reid::weights::save_checkpoint(
        &reid::models::ReidModel::new(reid::Arch::OsnetX0_25, 3, &reid::device::default_device()),
        &reid_model,
    )
    .unwrap();
    let options = ExtractorOptions {
        engine: Engine::Burn,
        ..Default::default()
    };
    assert!(Classifier::new(&reid_model, &options).is_err());
}

#[test]
fn multilabel_training_with_asl_beats_the_label_prior() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), true);
    let save = dir.path().join("run");
    let mut config = config(dir.path(), "shapes_ml", &save, Task::Multilabel, 10);
    config.export_onnx = false;
    let report = reid::train::train(&config, &mut |_| true).unwrap();
    let metrics = report.history.last().unwrap().eval[0]
        .classification
        .expect("classification metrics");
    // With one or two of four labels per image a constant ranking scores the label prior
    // (about 0.4) as mAP; learning the objects must do clearly better.
    assert!(metrics.map > 0.6, "{metrics:?}");
    assert!(metrics.of1 > 0.0 && metrics.cf1 > 0.0, "{metrics:?}");
    // Single-label data for a multi-label run (and the reverse) is refused.
    let wrong = TrainConfig {
        model: ModelSection {
            task: Task::Classification,
            ..config.model.clone()
        },
        save_dir: dir.path().join("wrong"),
        ..config.clone()
    };
    assert!(reid::train::train(&wrong, &mut |_| true).is_err());
}

/// Runs the `reid` CLI; its standard output, after checking that it succeeded (`what` names
/// the run in the failure message).
fn reid_cli<S: AsRef<std::ffi::OsStr>>(args: &[S], what: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_reid"))
        .args(args)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    said
}

/// `reid synth-classes` of `classes` classes of `size`² images into `dir/shapes`.
fn synth_cli(dir: &Path, classes: usize, train: usize, val: usize, size: usize) {
    let counts = [classes, train, val, size].map(|n| n.to_string());
    let shapes = dir.join("shapes").display().to_string();
    reid_cli(
        &[
            "synth-classes",
            "--classes",
            &counts[0],
            "--train-per-class",
            &counts[1],
            "--val-per-class",
            &counts[2],
            "--size",
            &counts[3],
            &shapes,
        ],
        "synth-classes",
    );
}

/// `reid train` with the example classification config under `root`, plus `overrides`.
fn train_cli(root: &Path, overrides: &[String], what: &str) -> String {
    let config = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/configs/mobilenetv3_small_classification.yaml");
    let mut args = vec![
        "train".to_string(),
        "--config".into(),
        config.display().to_string(),
        "--root".into(),
        root.display().to_string(),
    ];
    args.extend(overrides.iter().cloned());
    reid_cli(&args, what)
}

#[test]
fn cli_writes_a_class_dataset_and_trains_a_classifier_from_a_config() {
    let dir = tempfile::tempdir().unwrap();
    synth_cli(dir.path(), 3, 8, 4, 32);
    let overrides = [
        format!("data.save_dir={}", dir.path().join("log").display()),
        "train.max_epoch=1".into(),
        "data.height=32".into(),
        "data.width=32".into(),
        "train.batch_size=8".into(),
    ];
    let said = train_cli(dir.path(), &overrides, "reid train");
    assert!(
        said.contains("top-1") && said.contains("mean class acc."),
        "{said}"
    );
    assert!(dir.path().join("log/model.onnx").is_file() || said.contains("best top-1"));
}

#[test]
fn am_softmax_classifiers_are_read_on_scaled_cosines() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), false);
    let mut config = config(
        dir.path(),
        "shapes",
        &dir.path().join("run"),
        Task::Classification,
        1,
    );
    config.loss.reid.am_margin = 0.35;
    config.export_onnx = false;
    let report = reid::train::train(&config, &mut |_| true).unwrap();
    let device = reid::device::default_device();
    let model = reid::weights::load_checkpoint(&report.model, &device).unwrap();
    assert_eq!(model.cosine_scale, Some(config.loss.reid.am_scale));
    // Its logits are the scaled cosines of the embedding with the class weights.
    // Drawn while no seeded model is being built in another test (models::seeding).
    let x = reid::models::seeding::exclusively(|| {
        burn::tensor::Tensor::<4>::random(
            [2, 3, 48, 48],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        )
    });
    let out = model.logits(x);
    let cosines = model.cosine_logits(out.features) * config.loss.reid.am_scale;
    let (a, b) = (
        reid::models::embed::tensor_to_vec(out.logits),
        reid::models::embed::tensor_to_vec(cosines),
    );
    assert!(
        a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-4),
        "{a:?} vs {b:?}"
    );
    assert!(
        a.iter()
            .all(|v| v.abs() <= config.loss.reid.am_scale + 1e-3)
    );
}

/// Every new family trains and evaluates through `reid train` on synthetic data (one short
/// epoch each: this checks the path, not the accuracy).
#[test]
fn every_new_family_trains_and_evaluates_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    synth_cli(dir.path(), 2, 4, 2, 112);
    for (arch, size) in [
        ("mobilenetv3_large_075", 64),
        ("efficientnet_b0", 64),
        ("inceptionv4", 80),
        ("mobilefacenet", 112),
    ] {
        let overrides = [
            format!("data.save_dir={}", dir.path().join(arch).display()),
            format!("model.name={arch}"),
            format!("data.height={size}"),
            format!("data.width={size}"),
            "train.max_epoch=1".into(),
            "train.batch_size=4".into(),
            "test.export_onnx=false".into(),
        ];
        let said = train_cli(dir.path(), &overrides, arch);
        assert!(
            said.contains("top-1") && said.contains("best top-1"),
            "{arch}: {said}"
        );
    }
}

/// `reid verify` on an LFW-style layout gives what embedding each pair's images and scoring
/// them by cosine similarity gives (the metrics themselves are checked against scikit-learn in
/// tests/eval/classification_metrics.rs).
#[test]
fn cli_verifies_lfw_style_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let source = synth(dir.path(), false);
    let root = dir.path().join("lfw");
    let names = ["Ann_Lee", "Bo_Ma", "Cy_Oh", "Di_Xu"];
    for (c, name) in names.iter().enumerate() {
        let folder = source.join(format!("train/class_{c:02}"));
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        std::fs::create_dir_all(root.join(name)).unwrap();
        for (i, f) in files.iter().take(4).enumerate() {
            std::fs::copy(f, root.join(name).join(format!("{name}_{:04}.jpg", i + 1))).unwrap();
        }
    }
    let mut lines = vec!["2 6".to_string()];
    for fold in 0..2 {
        for (k, name) in names.iter().enumerate().take(3) {
            lines.push(format!("{name} {} {}", 1 + fold, 3 + (k + fold) % 2));
        }
        for k in 0..3 {
            let (a, b) = (names[k], names[(k + 1 + fold) % 4]);
            lines.push(format!("{a} {} {b} {}", 1 + k % 4, 4 - fold));
        }
    }
    let pairs_file = dir.path().join("pairs.txt");
    std::fs::write(&pairs_file, lines.join("\n") + "\n").unwrap();

    let device = reid::device::default_device();
    let model = reid::models::ReidModel::new(reid::Arch::OsnetX0_25, 1, &device);
    let onnx = dir.path().join("net.onnx");
    reid::export::export_onnx_file(&model, &reid::export::ExportOptions::new(64, 64), &onnx)
        .unwrap();
    let [model_arg, pairs_arg, root_arg] =
        [&onnx, &pairs_file, &root].map(|p| p.display().to_string());
    let said = reid_cli(
        &[
            "verify", "--engine", "burn", "--folds", "2", "--model", &model_arg, "--pairs",
            &pairs_arg, "--root", &root_arg,
        ],
        "reid verify",
    );

    // The same by hand, as `reid verify` documents it: every distinct image embedded once (one
    // call, so the same batches and the same bits), rows L2-normalized, each pair's cosine.
    // Embedding each pair on its own would differ in the last bits, and a printed threshold can
    // hang on them.
    let options = ExtractorOptions {
        engine: Engine::Burn,
        ..Default::default()
    };
    let extractor = reid::extractor::Extractor::new(&onnx, &options).unwrap();
    let pairs = reid::eval::verification::read_lfw_pairs(&pairs_file, &root).unwrap();
    assert_eq!(pairs.len(), 12);
    let mut images: Vec<&std::path::PathBuf> =
        pairs.iter().flat_map(|p| [&p.first, &p.second]).collect();
    images.sort();
    images.dedup();
    let mut embeddings = extractor.extract_files(&images).unwrap();
    let d = embeddings.len() / images.len();
    for row in embeddings.chunks(d) {
        let norm = row
            .iter()
            .map(|v| (*v as f64) * (*v as f64))
            .sum::<f64>()
            .sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-5,
            "the extractor's rows are unit vectors"
        );
    }
    reid::distance::normalize_rows(&mut embeddings, d);
    let embedding = |path: &std::path::PathBuf| {
        let i = images.iter().position(|p| *p == path).unwrap();
        &embeddings[i * d..(i + 1) * d]
    };
    let (mut similarity, mut same) = (Vec::new(), Vec::new());
    for p in &pairs {
        let (a, b) = (embedding(&p.first), embedding(&p.second));
        similarity.push(a.iter().zip(b).map(|(a, b)| a * b).sum::<f32>());
        same.push(p.same);
    }
    let want = reid::eval::verification::verify(&similarity, &same, 2).unwrap();
    let expected = format!(
        "12 pairs, 2 folds: accuracy {:.2}% ± {:.2}, best threshold {:.4}, ROC AUC {:.4}",
        want.accuracy * 100.0,
        want.accuracy_std * 100.0,
        want.best_threshold,
        want.auc
    );
    assert_eq!(said.trim(), expected);
    // A pair naming a missing image fails with its path.
    std::fs::write(&pairs_file, "Ann_Lee 1 9\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_reid"))
        .args(["verify", "--engine", "burn", "--model"])
        .arg(&onnx)
        .arg("--pairs")
        .arg(&pairs_file)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Ann_Lee_0009.jpg"));
}
