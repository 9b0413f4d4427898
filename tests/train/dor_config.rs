//! deep-object-reid's configs as reid reads them: its whole default config (dumped by its own
//! `get_default_config()`, tests/fixtures/make_dor_config_fixture.py) loads with its values;
//! keys of features reid lacks are refused by name once they ask for the feature; its names
//! for reid's keys, `train.sam`, a numeric `label_smooth` and `_base_` files.

use std::path::Path;

use reid::config::load_train_config;
use reid::train::TrainConfig;
use reid::train::multilabel_step::MultilabelLoss;

use crate::common::fixture;

fn dor_default() -> std::path::PathBuf {
    fixture("config/dor_default.yaml")
}

fn load(overrides: &[&str]) -> reid::Result<TrainConfig> {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    load_train_config(Some(&dor_default()), &overrides)
}

#[test]
fn deep_object_reids_default_config_loads_with_its_values() {
    let c = load(&[]).unwrap();
    assert_eq!(c.model.arch, "resnet50");
    assert_eq!((c.data.height, c.data.width), (256, 128));
    assert_eq!(c.optimizer.algorithm.name, "adam");
    assert_eq!(c.optimizer.algorithm.adam_beta2, 0.999);
    assert_eq!(c.schedule.lr, 0.0003);
    assert_eq!(c.schedule.max_epoch, 60);
    assert_eq!(c.loss.reid.label_smooth, 0.0);
    assert_eq!(c.loss.reid.am_scale, 30.0);
    assert!(c.optimizer.sam.is_none() && c.loss.mutual_learning.is_none());
    assert!(c.optimizer.ema.is_none());
    assert_eq!(c.eval.early_stop_patience, 0);
    assert_eq!(c.seed, 5);
    // Its names for reid's keys arrive: amb_k as AM-binary's k, p_m as ASL's clip.
    let ml = |loss: &str| {
        load(&["model.type=multilabel", &format!("loss.name={loss}")])
            .unwrap()
            .loss
            .multilabel
    };
    match ml("am_binary") {
        MultilabelLoss::AmBinary { k, .. } => assert_eq!(k, 0.7),
        other => panic!("{other:?}"),
    }
    match ml("asl") {
        MultilabelLoss::Asl { clip, .. } => assert_eq!(clip, 0.05),
        other => panic!("{other:?}"),
    }
}

#[test]
fn features_reid_lacks_are_refused_by_name() {
    for (set, key) in [
        ("model.bn_eval=true", "model.bn_eval"),
        ("model.IN_first=true", "model.IN_first"),
        ("model.dropout_cls.dist=bernoulli", "model.dropout_cls.dist"),
        (
            "model.dropout_backbone.dist=gaussian",
            "model.dropout_backbone.dist",
        ),
        ("model.feature_dim=256", "model.feature_dim"),
        ("model.pooling_type=gmp", "model.pooling_type"),
        ("model.resume=last.pth", "model.resume"),
        ("loss.softmax.conf_penalty=0.3", "loss.softmax.conf_penalty"),
        (
            "loss.softmax.symmetric_ce=true",
            "loss.softmax.symmetric_ce",
        ),
        ("loss.am_binary.amb_t=2.0", "loss.am_binary.amb_t"),
        ("test.test_before_train=true", "test.test_before_train"),
        ("nncf.nncf_config_path=nncf.json", "nncf.nncf_config_path"),
        (
            "mutual_learning.aux_configs=[aux.yaml]",
            "mutual_learning.aux_configs",
        ),
    ] {
        let e = load(&[set]).unwrap_err().to_string();
        assert!(
            e.contains(key) && e.contains("does not implement"),
            "{set}: {e}"
        );
    }
    // The range test's plot matters only when the range test runs.
    assert!(load(&["lr_finder.path_to_savefig=lr.jpg"]).is_ok());
    let e = load(&["lr_finder.enable=true", "lr_finder.path_to_savefig=lr.jpg"]).unwrap_err();
    assert!(e.to_string().contains("lr_finder.path_to_savefig"), "{e}");
    // Its metric losses (a section its default config has) switched off.
    assert!(
        load(&[
            "metric_losses.enable=false",
            "metric_losses.triplet_coeff=0.5"
        ])
        .is_ok()
    );
    let e = load(&["metric_losses.enable=true"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("metric_losses.enable"), "{e}");
    // The searches by trial runs never plot: their configs' path is not read.
    let tpe = load(&[
        "lr_finder.enable=true",
        "lr_finder.mode=TPE",
        "lr_finder.step=0.001",
        "lr_finder.path_to_savefig=lr_finder.jpg",
    ]);
    assert!(tpe.is_ok(), "{:?}", tpe.err());
    let c = load(&["lr_finder.enable=true", "lr_finder.epochs_warmup=2"]).unwrap();
    assert_eq!(c.schedule.lr_finder.unwrap().warmup_epochs, 2);
    // Keys that change nothing in reid whatever their value; deep-object-reid's dropout with
    // `dist: none` (its default) returns its input whatever its `p`.
    assert!(load(&["model.export_onnx_opset=11", "model.save_all_chkpts=false"]).is_ok());
    // Keys its code never reads.
    assert!(load(&["data.min_samples_per_id=3", "sc_integration.lr_scale=2.0"]).is_ok());
    assert!(load(&["model.dropout_cls.p=0.1"]).is_ok());
    // Non-ImageNet normalization is still refused; ImageNet's spelt out is not.
    let e = load(&["data.norm_mean=[0.5, 0.5, 0.5]"]).unwrap_err();
    assert!(e.to_string().contains("ImageNet"), "{e}");
}

#[test]
fn its_spellings_of_reids_keys_are_read() {
    // SAM's parameters live in train.sam, used when train.optim is sam.
    let c = load(&[
        "train.optim=sam",
        "train.base_optim=sgd",
        "train.sam.rho=0.1",
    ])
    .unwrap();
    let sam = c.optimizer.sam.expect("SAM on");
    assert_eq!((sam.rho, c.optimizer.algorithm.name.as_str()), (0.1, "sgd"));
    // label_smooth: torchreid's switch or deep-object-reid's epsilon.
    assert_eq!(
        load(&["loss.softmax.label_smooth=0.2"])
            .unwrap()
            .loss
            .reid
            .label_smooth,
        0.2
    );
    assert_eq!(
        load(&["loss.softmax.label_smooth=true"])
            .unwrap()
            .loss
            .reid
            .label_smooth,
        0.1
    );
    assert!(load(&["loss.softmax.label_smooth=1.5"]).is_err());
    // One key by both names is refused.
    let e = load(&["test.ranks=[1, 5]"]).unwrap_err().to_string();
    assert!(e.contains("test.topk") && e.contains("keep one"), "{e}");
    let k = load_train_config(None, &["loss.am_binary.amb_k=0.6".into()]);
    assert!(k.is_ok(), "{k:?}");
}

/// `_base_`: the base file's keys under the file's own (yacs's merge), a chain of bases, a
/// path relative to the including file; a cycle and two bases are refused.
#[test]
fn base_files_are_merged_under_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    let default = std::fs::read_to_string(dor_default()).unwrap();
    write("default.yaml", &default);
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    write(
        "sub/base.yaml",
        "_base_: ../default.yaml\ntrain: {lr: 0.01, max_epoch: 7}\n",
    );
    write(
        "sub/run.yaml",
        "_base_: [base.yaml]\ntrain: {lr: 0.02}\nmodel: {name: osnet_x0_25, type: reid}\n",
    );
    let c = load_train_config(Some(&dir.path().join("sub/run.yaml")), &[]).unwrap();
    assert_eq!((c.schedule.lr, c.schedule.max_epoch), (0.02, 7));
    assert_eq!((c.model.arch.as_str(), c.seed), ("osnet_x0_25", 5));
    // Overrides come last.
    let over = ["train.max_epoch=3".to_string()];
    let c = load_train_config(Some(&dir.path().join("sub/run.yaml")), &over).unwrap();
    assert_eq!(c.schedule.max_epoch, 3);
    write("a.yaml", "_base_: b.yaml\n");
    write("b.yaml", "_base_: a.yaml\n");
    let e = load_train_config(Some(&dir.path().join("a.yaml")), &[]).unwrap_err();
    assert!(e.to_string().contains("includes itself"), "{e}");
    write("two.yaml", "_base_: [a.yaml, b.yaml]\n");
    assert!(load_train_config(Some(&dir.path().join("two.yaml")), &[]).is_err());
    let missing = load_train_config(Some(Path::new("/nonexistent/x.yaml")), &[]);
    assert!(missing.is_err());
}

/// `custom_datasets`: its training and test sets become the sources and targets; kinds that do
/// not fit the model's task, or lists of another length, are refused.
#[test]
fn custom_datasets_name_the_training_and_test_sets() {
    let roots = "custom_datasets.roots=[data/cifar/train, data/cifar/val]";
    let folders =
        "custom_datasets.types=[classification_image_folder, classification_image_folder]";
    let c = load(&["model.type=classification", roots, folders]).unwrap();
    assert_eq!(c.data.sources, ["data/cifar/train"]);
    assert_eq!(c.data.targets, ["data/cifar/val"]);
    let json = "custom_datasets.types=[multilabel_classification, multilabel_classification]";
    let c = load(&["model.type=multilabel", "loss.name=asl", roots, json]).unwrap();
    assert_eq!(c.data.targets, ["data/cifar/val"]);
    for bad in [
        vec!["model.type=classification", roots, json],
        vec![
            "model.type=classification",
            roots,
            "custom_datasets.types=[coco, coco]",
        ],
        vec![
            "model.type=classification",
            "custom_datasets.roots=[a]",
            folders,
        ],
    ] {
        let e = load(&bad).unwrap_err().to_string();
        assert!(e.contains("custom_datasets"), "{bad:?}: {e}");
    }
}

/// `loss.softmax.compute_s`: the cosine scale from the number of classes, as
/// deep-object-reid's `compute_s` computes it (dor_compute_s.json), and a run with it trains,
/// saves and reports that scale (the training set's 16 identities: 7, where `s` says 30).
#[test]
fn the_cosine_scale_comes_from_the_classes_with_compute_s() {
    use reid::train::{scale_for_classes, train};
    let text = std::fs::read_to_string(fixture("config/dor_compute_s.json")).unwrap();
    let want: std::collections::BTreeMap<String, f64> = serde_json::from_str(&text).unwrap();
    assert!(want.len() >= 10);
    for (classes, scale) in &want {
        let ours = scale_for_classes(classes.parse().unwrap()) as f64;
        assert!(
            (ours - scale).abs() < 1e-5 * scale,
            "{classes}: {ours} vs {scale}"
        );
    }
    let keys = ["loss.name=am_softmax", "loss.softmax.compute_s=true"].map(String::from);
    let read = load_train_config(None, &keys).unwrap();
    assert!(read.loss.scale_from_classes && read.loss.reid.am_scale == 30.0);
    let dir = tempfile::tempdir().unwrap();
    let root = crate::runs::dataset(dir.path());
    let save = dir.path().join("run");
    let mut config = crate::runs::config(&root, &save, 1);
    config.loss = read.loss;
    config.eval.eval_freq = 0;
    config.export_onnx = false;
    train(&config, &mut |_| true).unwrap();
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(save.join("config.json")).unwrap()).unwrap();
    let scale = saved["loss"]["reid"]["am_scale"].as_f64().unwrap();
    assert_eq!(scale, scale_for_classes(16) as f64);
    assert_eq!(scale, 7.0);
    assert_eq!(saved["loss"]["scale_from_classes"], false);
}
