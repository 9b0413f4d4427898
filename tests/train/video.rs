//! Video re-id evaluation: a tracklet's embedding is the pooled embedding of the frames
//! torchreid's sampling picks (checked frame by frame against the image path), and
//! `reid eval` scores a video target tracklet against tracklet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use reid::data::Sample;
use reid::data::rng::Rng;
use reid::data::video::load_video_dataset;
use reid::data::video::sampling::{FrameSampling, Pooling, TrackletSampling, frame_indices};
use reid::data::{SynthOptions, synthesize};
use reid::device::default_device;
use reid::models::ReidModel;
use reid::preprocess::Preprocessing;
use reid::train::evaluate::{embed_tracklets, embed_video_dataset, score_dataset};
use reid::train::loader::embed_samples;

use crate::common;

/// A PRID2011-layout copy of a generated set under `root`: each identity seen by both of the
/// first two cameras gives one tracklet per camera (its images, as PNG frames); the first half
/// of those identities train, the rest test.
fn prid_from_synthetic(root: &Path) {
    let synthetic = root.join("synthetic");
    let options = SynthOptions {
        ids: 12,
        cameras: 2,
        distractors: 0,
        height: 32,
        width: 16,
        seed: 5,
        ..Default::default()
    };
    synthesize(&synthetic, &options).unwrap();
    let set = reid::data::reid::market::market1501(&synthetic).unwrap();
    let mut by_person: BTreeMap<(u8, i64), [Vec<PathBuf>; 2]> = BTreeMap::new();
    for (part, samples) in [(0u8, &set.train), (1, &set.query), (1, &set.gallery)] {
        for s in samples.iter().filter(|s| s.camera < 2) {
            by_person.entry((part, s.pid)).or_default()[s.camera as usize].push(s.path.clone());
        }
    }
    let shots = root.join("prid2011/prid_2011/multi_shot");
    let mut persons = Vec::new();
    for (n, tracks) in by_person
        .values()
        .filter(|t| t.iter().all(|f| !f.is_empty()))
        .enumerate()
    {
        let person = format!("person_{:04}", n + 1);
        for (cam, frames) in ["cam_a", "cam_b"].iter().zip(tracks) {
            let dir = shots.join(cam).join(&person);
            std::fs::create_dir_all(&dir).unwrap();
            for (k, frame) in frames.iter().enumerate() {
                let img = image::open(frame).unwrap().into_rgb8();
                reid::preprocess::write_png(&img, &dir.join(format!("{:04}.png", k + 1))).unwrap();
            }
        }
        persons.push(person);
    }
    assert!(persons.len() >= 6, "{} persons", persons.len());
    let (train, test) = persons.split_at(persons.len() / 2);
    let splits = serde_json::json!([{"train": train, "test": test}]);
    std::fs::write(
        root.join("prid2011/splits_prid2011.json"),
        splits.to_string(),
    )
    .unwrap();
}

/// The pooled embedding of a tracklet is the average (or maximum) of its picked frames'
/// embeddings, each embedded as an image; `reid eval` on the video target gives the metrics of
/// those embeddings.
#[test]
fn tracklets_pool_their_frames_and_reid_eval_scores_video_targets() {
    let dir = tempfile::tempdir().unwrap();
    prid_from_synthetic(dir.path());
    let videos = load_video_dataset("prid2011", dir.path(), 0).unwrap();
    let device = default_device();
    let model = reid::train::step::for_inference(&ReidModel::new(
        "osnet_x0_25".parse().unwrap(),
        videos.num_train_pids(),
        &device,
    ));
    let pre = Preprocessing::torchreid(32, 16);
    let dim = model.feature_dim();
    for (method, pooling) in [
        (FrameSampling::Evenly, Pooling::Avg),
        (FrameSampling::All, Pooling::Max),
    ] {
        let sampling = TrackletSampling {
            seq_len: 3,
            sample_method: method,
            pooling_method: pooling,
        };
        let pooled = embed_tracklets(&model, &videos.query, &pre, &sampling, 8, &device).unwrap();
        for (i, t) in videos.query.iter().enumerate() {
            let picked = frame_indices(t.frames.len(), 3, method, &mut Rng::new(0));
            let frames: Vec<Sample> = picked
                .iter()
                .map(|&k| Sample {
                    path: t.frames[k].clone(),
                    pid: t.pid,
                    camera: t.camera,
                    dataset: 0,
                })
                .collect();
            let each = embed_samples(&model, &frames, &pre, 8, &device).unwrap();
            for d in 0..dim {
                let column = each.chunks(dim).map(|row| row[d]);
                let want = match pooling {
                    Pooling::Avg => column.sum::<f32>() / picked.len() as f32,
                    Pooling::Max => column.fold(f32::NEG_INFINITY, f32::max),
                };
                let got = pooled.row(i)[d];
                assert!(
                    (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                    "{method:?} {i} {d}: {got} vs {want}"
                );
            }
        }
    }
    // `reid eval --weights` with a video target.
    let weights = dir.path().join("model.bpk");
    reid::weights::save_checkpoint(&model, &weights).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_reid"))
        .args([
            "eval",
            "--json",
            "--weights",
            weights.to_str().unwrap(),
            "--root",
        ])
        .arg(dir.path())
        .args([
            "data.targets=[prid2011]",
            "data.height=32",
            "data.width=16",
            "video.seq_len=3",
        ])
        .output()
        .unwrap();
    common::assert_success(&out);
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sampling = TrackletSampling {
        seq_len: 3,
        ..Default::default()
    };
    let (samples, queries, gallery) =
        embed_video_dataset(&model, &videos, &pre, &sampling, 8, &device).unwrap();
    assert_eq!(queries.rows, videos.query.len());
    let options = reid::eval::EvalOptions {
        metric: reid::train::TrainConfig::default()
            .eval
            .dist_metric
            .parse()
            .unwrap(),
        ..Default::default()
    };
    let (metrics, _) = score_dataset(&samples, &queries, &gallery, options).unwrap();
    let cli = line["mAP"].as_f64().unwrap();
    assert!((cli - metrics.map).abs() < 1e-6, "{cli} vs {}", metrics.map);
    assert_eq!(line["target"], "prid2011");
    // `reid dataset` summarizes the tracklets.
    let out = Command::new(env!("CARGO_BIN_EXE_reid"))
        .args(["dataset", "prid2011", "--root"])
        .arg(dir.path())
        .output()
        .unwrap();
    common::assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("# tracklets") && text.contains("prid2011"),
        "{text}"
    );
}

/// `reid synth --video` writes tracklets the `dukemtmcvidreid` reader reads: every test identity
/// has one query and gallery tracklets from other cameras; a tracklet's frames are one person
/// moving in front of one background (consecutive frames closer to each other than to another
/// identity's frames); the same seed writes the same bytes.
#[test]
fn synthetic_tracklets_read_as_dukemtmc_video() {
    let dir = tempfile::tempdir().unwrap();
    let synth = |root: &Path| {
        Command::new(env!("CARGO_BIN_EXE_reid"))
            .args([
                "synth",
                "--video",
                "--ids",
                "8",
                "--cameras",
                "3",
                "--min-frames",
                "3",
            ])
            .args([
                "--max-frames",
                "5",
                "--height",
                "64",
                "--width",
                "32",
                "--seed",
                "4",
            ])
            .arg(root)
            .output()
            .unwrap()
    };
    let out = synth(dir.path());
    common::assert_success(&out);
    let videos = load_video_dataset("dukemtmcvidreid", dir.path(), 0).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let tracklets = videos.train.len() + videos.query.len() + videos.gallery.len();
    assert!(
        text.contains(&format!("{} query", videos.query.len())),
        "{text}"
    );
    assert_eq!(videos.num_train_pids(), 4);
    assert_eq!(videos.query.len(), 4);
    for q in &videos.query {
        assert!(
            videos
                .gallery
                .iter()
                .any(|g| g.pid == q.pid && g.camera != q.camera)
        );
    }
    let mut frames = 0;
    for t in videos
        .train
        .iter()
        .chain(&videos.query)
        .chain(&videos.gallery)
    {
        assert!((3..=5).contains(&t.frames.len()));
        frames += t.frames.len();
    }
    assert!(
        text.contains(&format!("{frames} frames")) && tracklets > 8,
        "{text}"
    );
    let pixels = |p: &Path| image::open(p).unwrap().into_rgb8().into_raw();
    let distance = |a: &[u8], b: &[u8]| -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).abs())
            .sum::<f64>()
            / a.len() as f64
    };
    let (mut within, mut across) = (0.0, 0.0);
    for (i, t) in videos.query.iter().enumerate() {
        within += distance(&pixels(&t.frames[0]), &pixels(&t.frames[1]));
        let other = &videos.query[(i + 1) % videos.query.len()];
        across += distance(&pixels(&t.frames[0]), &pixels(&other.frames[0]));
    }
    assert!(
        within * 2.0 < across,
        "consecutive frames {within} vs other identities {across}"
    );
    // The same seed, the same bytes.
    let again = tempfile::tempdir().unwrap();
    common::assert_success(&synth(again.path()));
    let first = &videos.gallery[0].frames[0];
    let copy = again.path().join(first.strip_prefix(dir.path()).unwrap());
    assert_eq!(std::fs::read(first).unwrap(), std::fs::read(copy).unwrap());
    // A folder that already holds the dataset is refused.
    assert!(!synth(dir.path()).status.success());
}

/// Training on tracklets (torchreid's video engine: each tracklet's `seq_len` frames, each
/// labelled with its identity) on synthetic tracklets: it trains, evaluates the video target
/// tracklet against tracklet, and `reid eval` with the run's config gives the mAP it recorded.
#[test]
fn a_run_trains_on_tracklets_and_evaluates_them() {
    let dir = tempfile::tempdir().unwrap();
    let options = reid::data::synth::VideoSynthOptions {
        ids: 10,
        cameras: 3,
        min_frames: 3,
        max_frames: 6,
        height: 64,
        width: 32,
        seed: 2,
    };
    reid::data::synth::synthesize_video(dir.path(), &options).unwrap();
    let save = dir.path().join("run");
    let mut c = crate::runs::config(dir.path(), &save, 3);
    c.data.sources = vec!["dukemtmcvidreid".into()];
    c.data.targets = vec!["dukemtmcvidreid".into()];
    c.sampler.batch_size = 4;
    c.video.seq_len = 4;
    c.export_onnx = false;
    let report = reid::train::train(&c, &mut |_| true).unwrap();
    // A batch of three tracklets is their four frames each, labelled with their identities.
    let videos = load_video_dataset("dukemtmcvidreid", dir.path(), 0).unwrap();
    let augment = reid::data::transforms::Augment::default();
    let (images, labels) = reid::train::loader::tracklet_batch(
        &videos.train,
        &[0, 1, 2],
        &c.video,
        &Preprocessing::torchreid(64, 32),
        &augment,
        1,
        0,
        &default_device(),
    )
    .unwrap();
    assert_eq!(images.dims(), [12, 3, 64, 32]);
    let labels: Vec<i64> = labels
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    let want: Vec<i64> = videos.train[..3].iter().flat_map(|t| [t.pid; 4]).collect();
    assert_eq!(labels, want);
    let h = crate::runs::history(&save);
    assert_eq!(h.len(), 3);
    assert!(h[2].loss < h[0].loss, "{} -> {}", h[0].loss, h[2].loss);
    let eval = &h[2].eval[0];
    assert_eq!(eval.target, "dukemtmcvidreid");
    assert!(eval.map > 0.0 && eval.map <= 1.0);
    let (best, _) = report.best.unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_reid"))
        .args([
            "eval",
            "--json",
            "--weights",
            report.model.to_str().unwrap(),
            "--config",
        ])
        .arg(save.join("config.json"))
        .output()
        .unwrap();
    common::assert_success(&out);
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cli = line["mAP"].as_f64().unwrap();
    assert!((cli - best).abs() < 1e-6, "eval {cli} vs run {best}");
    // Image and video datasets do not mix.
    let mut mixed = c.clone();
    mixed.data.targets = vec!["market1501".into()];
    assert!(reid::train::train(&mixed, &mut |_| true).is_err());
}
