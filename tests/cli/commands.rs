//! The `reid` binary end to end: model table, checkpoint inspection, reference embedding.

use crate::common;
use crate::common::fixture;

use std::path::{Path, PathBuf};
use std::process::Command;

use reid::formats::npy::read_npy;

/// `reid export --arch osnet_x0_25 --weights WEIGHTS -o OUT EXTRA…`.
fn export_osnet(weights: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "export",
        "--arch",
        "osnet_x0_25",
        "--weights",
        weights.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    reid(&args)
}

fn reid(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reid"))
        .args(args)
        .output()
        .expect("run reid")
}

#[test]
fn models_lists_every_architecture_with_its_complexity() {
    let out = reid(&["models"]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    for arch in reid::Arch::ALL {
        assert!(
            table.contains(arch.name()),
            "{} missing:\n{table}",
            arch.name()
        );
    }
    // torchreid's model zoo table: osnet_x1_0 has 2.2M parameters and 0.98 GFLOPs.
    let row = table
        .lines()
        .find(|l| l.starts_with("osnet_x1_0 "))
        .unwrap();
    assert!(row.contains("2.19M") && row.contains("0.979"), "{row}");
}

#[test]
fn embed_reproduces_torchreid_on_an_unseen_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("features.npy");
    let out = reid(&[
        "embed",
        "--arch",
        "osnet_x0_25",
        "--weights",
        fixture("osnet_x0_25/checkpoint.pth.tar").to_str().unwrap(),
        "--input",
        fixture("input_256x128.npy").to_str().unwrap(),
        "--height",
        "256",
        "--width",
        "128",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    common::assert_success(&out);
    let got = read_npy(&out_path).unwrap();
    let want = read_npy(fixture("osnet_x0_25/out_256x128.npy")).unwrap();
    assert_eq!(got.shape, want.shape);
    let worst = got
        .to_f32()
        .iter()
        .zip(want.to_f32())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-4, "max |Δ| = {worst}");
}

#[test]
fn info_names_the_architecture_and_keys() {
    let out = reid(&[
        "info",
        fixture("osnet_ain_x0_25/weights.safetensors")
            .to_str()
            .unwrap(),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("architecture: osnet_ain_x0_25"), "{text}");
    assert!(text.contains("conv2.0.IN.weight [64]"), "{text}");
    assert!(text.contains("classes: 10"), "{text}");
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let out = reid(&[
        "embed",
        "--arch",
        "osnet_x9",
        "--weights",
        "x.pth",
        "--input",
        "x.npy",
        "-o",
        "y.npy",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("unknown architecture `osnet_x9`"), "{err}");

    let out = reid(&[
        "embed",
        "--weights",
        fixture("osnet_x0_25/weights.safetensors").to_str().unwrap(),
        "--input",
        fixture("input_160x64.npy").to_str().unwrap(),
        "-o",
        "/nonexistent/y.npy",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--arch"), "{err}");
}

#[test]
fn eval_prints_torchreid_metrics_as_json() {
    let npz = fixture("eval/market_small.npz");
    let out = reid(&["eval", "--features", npz.to_str().unwrap(), "--json"]);
    common::assert_success(&out);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let arrays = reid::formats::npy::read_npz(&npz).unwrap();
    let map = arrays["map_cosine"].to_f64()[0];
    let rank1 = arrays["cmc_cosine"].to_f64()[0];
    assert!(
        (value["mAP"].as_f64().unwrap() - map).abs() < 1e-6,
        "{value}"
    );
    assert!(
        (value["rank1"].as_f64().unwrap() - rank1).abs() < 1e-6,
        "{value}"
    );

    let out = reid(&[
        "eval",
        "--features",
        npz.to_str().unwrap(),
        "--rerank",
        "--metric",
        "euclidean",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let map = arrays["rerank_map_euclidean"].to_f64()[0];
    assert!(
        text.contains(&format!("mAP:  {:.2}%", 100.0 * map)),
        "{text}"
    );

    let out = reid(&[
        "eval",
        "--features",
        fixture("input_160x64.npy").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
}

#[test]
fn gallery_commands_create_fill_search_and_export() {
    use reid::formats::npy::{NpyArray, write_npy};
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let dim = 8;
    let vectors: Vec<f32> = (0..6 * dim).map(|i| ((i * 37 % 11) as f32) - 5.0).collect();
    write_npy(p("v.npy"), &NpyArray::f32(vec![6, dim], vectors.clone())).unwrap();
    write_npy(
        p("ids.npy"),
        &NpyArray::i64(vec![6], vec![1, 1, 2, 2, 3, 3]),
    )
    .unwrap();
    write_npy(
        p("cams.npy"),
        &NpyArray::i64(vec![6], vec![0, 1, 0, 1, 0, 1]),
    )
    .unwrap();
    write_npy(
        p("q.npy"),
        &NpyArray::f32(vec![1, dim], vectors[2 * dim..3 * dim].to_vec()),
    )
    .unwrap();
    // Row i seen from 10·i to 10·i + 5 s.
    let times: Vec<f64> = (0..6)
        .flat_map(|i| [10.0 * i as f64, 10.0 * i as f64 + 5.0])
        .collect();
    write_npy(p("times.npy"), &NpyArray::f64(vec![6, 2], times)).unwrap();

    let ok = |args: &[&str]| {
        let out = reid(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // The same commands on a file and, when a server is given, on a database.
    let mut locations = vec![(p("g.db"), None)];
    if let Some(url) = crate::backends::database_url() {
        let (location, schema) = crate::backends::database_location(&url);
        locations.push((location, Some((url, schema))));
    }
    for (g, database) in locations {
        ok(&["gallery", "create", &g, "--dim", "8"]);
        let added = ok(&[
            "gallery",
            "add",
            &g,
            "--vectors",
            &p("v.npy"),
            "--identities",
            &p("ids.npy"),
            "--cameras",
            &p("cams.npy"),
            "--times",
            &p("times.npy"),
        ]);
        assert!(added.contains("added 6 entries"), "{added}");
        let windowed = ok(&[
            "gallery",
            "search",
            &g,
            "--queries",
            &p("q.npy"),
            "-k",
            "6",
            "--window",
            "22",
            "31",
            "--json",
        ]);
        let value: serde_json::Value = serde_json::from_str(&windowed).unwrap();
        let ids: Vec<u64> = value[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [2, 3], "entries seen between 22 and 31 s: {value}");
        let found = ok(&[
            "gallery",
            "search",
            &g,
            "--queries",
            &p("q.npy"),
            "-k",
            "2",
            "--json",
        ]);
        let value: serde_json::Value = serde_json::from_str(&found).unwrap();
        // The query is entry 2's own vector: it comes first, with similarity 1.
        assert_eq!(value[0][0]["id"], 2, "{value}");
        assert!((value[0][0]["score"].as_f64().unwrap() - 1.0).abs() < 1e-5);
        let excluded = ok(&[
            "gallery",
            "search",
            &g,
            "--queries",
            &p("q.npy"),
            "-k",
            "1",
            "--exclude-camera",
            "0",
            "--json",
        ]);
        let value: serde_json::Value = serde_json::from_str(&excluded).unwrap();
        assert_eq!(value[0][0]["camera"], 1, "{value}");
        let calibrated = ok(&[
            "gallery",
            "calibrate",
            &g,
            "--vectors",
            &p("v.npy"),
            "--identities",
            &p("ids.npy"),
            "--far",
            "0.25",
        ]);
        assert!(
            calibrated.contains("on 3 same-identity and 12 different-identity pairs"),
            "{calibrated}"
        );
        let found = ok(&[
            "gallery",
            "search",
            &g,
            "--queries",
            &p("q.npy"),
            "-k",
            "6",
            "--calibrated",
            "--json",
        ]);
        let value: serde_json::Value = serde_json::from_str(&found).unwrap();
        let kept = value[0].as_array().unwrap().len();
        assert!((1..6).contains(&kept), "{value}");
        ok(&["gallery", "remove", &g, "--identity", "3"]);
        let stats = ok(&["gallery", "stats", &g]);
        assert!(
            stats.contains("entries: 4") && stats.contains("identities: 2"),
            "{stats}"
        );
        ok(&["gallery", "export", &g, "-o", &p("g.npz")]);
        assert_eq!(
            reid::formats::npy::read_npz(p("g.npz")).unwrap()["vectors"].shape,
            vec![4, dim]
        );
        // A dimension mismatch is refused and adds nothing.
        write_npy(p("bad.npy"), &NpyArray::f32(vec![6, 4], vec![1.0; 24])).unwrap();
        let out = reid(&[
            "gallery",
            "add",
            &g,
            "--vectors",
            &p("bad.npy"),
            "--identities",
            &p("ids.npy"),
        ]);
        assert!(!out.status.success());
        assert!(ok(&["gallery", "stats", &g]).contains("entries: 4"));
        let bench = ok(&[
            "gallery",
            "bench",
            &g,
            "--queries",
            &p("q.npy"),
            "-k",
            "2",
            "--ef",
            "40",
        ]);
        assert!(bench.contains("exact, 1 queries in one call"), "{bench}");
        assert_eq!(
            bench.contains("ef_search 40"),
            database.is_some(),
            "{bench}"
        );
        if let Some((url, schema)) = database {
            assert!(bench.contains("recall@2 1.000"), "{bench}");
            crate::backends::drop_schema(&url, &schema);
        }
    }
}

#[test]
fn export_writes_an_onnx_model_with_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("model.onnx");
    let out = export_osnet(
        &fixture("osnet_x0_25/checkpoint.pth.tar"),
        &out_path,
        &["--height", "160", "--width", "64", "--normalize"],
    );
    common::assert_success(&out);
    let meta = reid::export::read_metadata(&std::fs::read(&out_path).unwrap()).unwrap();
    assert_eq!(meta["architecture"], "osnet_x0_25");
    assert_eq!(
        (meta["input_height"].as_str(), meta["input_width"].as_str()),
        ("160", "64")
    );
    assert_eq!(meta["normalized"], "true");
    let out = export_osnet(
        &fixture("osnet_x0_25/checkpoint.pth.tar"),
        &out_path,
        &["--preprocessing", "yuv"],
    );
    assert!(!out.status.success());
    // A graph taking raw uint8 pixels says so, with the layout; a float input is NCHW only.
    let out = export_osnet(
        &fixture("osnet_x0_25/checkpoint.pth.tar"),
        &out_path,
        &["--input", "uint8-bgr", "--layout", "nhwc"],
    );
    common::assert_success(&out);
    let meta = reid::export::read_metadata(&std::fs::read(&out_path).unwrap()).unwrap();
    assert_eq!(
        (
            meta["input_type"].as_str(),
            meta["input_layout"].as_str(),
            meta["channel_order"].as_str(),
            meta["pixel_scale"].as_str(),
        ),
        ("uint8", "NHWC", "BGR", "1")
    );
    for bad in [
        &["--input", "float", "--layout", "nhwc"][..],
        &["--input", "uint16"][..],
        &["--input", "uint8-rgb", "--layout", "hwc"][..],
    ] {
        let out = export_osnet(&fixture("osnet_x0_25/checkpoint.pth.tar"), &out_path, bad);
        assert!(!out.status.success(), "{bad:?}");
    }
}

/// The fixture's OSNet exported at 64 × 32 into `dir` by `reid export`, and options that run
/// it on the Burn engine.
fn small_osnet_export(dir: &Path) -> (PathBuf, reid::ExtractorOptions) {
    let model = dir.join("model.onnx");
    common::assert_success(&export_osnet(
        &fixture("osnet_x0_25/checkpoint.pth.tar"),
        &model,
        &["--height", "64", "--width", "32"],
    ));
    let burn = reid::ExtractorOptions {
        engine: reid::extractor::Engine::Burn,
        ..Default::default()
    };
    (model, burn)
}

/// `reid calibrate` writes the threshold into the model's metadata (an extractor of the file
/// reports it; the fingerprint stays) and, with `--gallery`, into a gallery.
#[test]
fn calibrate_writes_the_threshold_into_the_model_and_a_gallery() {
    use reid::formats::npy::{NpyArray, write_npy};
    let dir = tempfile::tempdir().unwrap();
    let (model, burn) = small_osnet_export(dir.path());
    let before = reid::Extractor::new(&model, &burn).unwrap();
    assert!(before.calibration().is_none());
    // Two identities of three rows each in 4-d; every pair is scored.
    let values: Vec<f32> = vec![
        1.0, 0.1, 0.0, 0.0, 0.9, 0.2, 0.1, 0.0, 1.0, 0.0, 0.2, 0.1, //
        0.0, 1.0, 0.1, 0.0, 0.1, 0.9, 0.0, 0.2, 0.3, 1.0, 0.0, 0.0,
    ];
    let (vectors, identities) = (dir.path().join("v.npy"), dir.path().join("i.npy"));
    write_npy(&vectors, &NpyArray::f32(vec![6, 4], values.clone())).unwrap();
    write_npy(&identities, &NpyArray::i64(vec![6], vec![1, 1, 1, 2, 2, 2])).unwrap();
    let gallery = dir.path().join("g.db");
    common::assert_success(&reid(&[
        "gallery",
        "create",
        gallery.to_str().unwrap(),
        "--dim",
        "4",
    ]));
    let out = reid(&[
        "calibrate",
        model.to_str().unwrap(),
        "--vectors",
        vectors.to_str().unwrap(),
        "--identities",
        identities.to_str().unwrap(),
        "--far",
        "0.2",
        "--gallery",
        gallery.to_str().unwrap(),
    ]);
    common::assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("on 6 same-identity and 9 different-identity pairs"),
        "{text}"
    );
    let after = reid::Extractor::new(&model, &burn).unwrap();
    let in_model = after
        .calibration()
        .expect("a calibration in the metadata")
        .clone();
    assert_eq!(after.fingerprint(), before.fingerprint());
    let kept = reid::Gallery::open(&gallery)
        .unwrap()
        .calibration()
        .unwrap();
    assert_eq!(kept.as_ref(), Some(&in_model));
    // The same threshold as a gallery calibrated on the same rows.
    let reference = reid::Gallery::new(4, reid::eval::Metric::Cosine).unwrap();
    let direct = reference
        .calibrate(&values, &[1, 1, 1, 2, 2, 2], 0.2)
        .unwrap();
    assert_eq!(in_model, direct);
    // A gallery of another metric refuses it; a file that is not ONNX is refused untouched.
    let euclidean = reid::Gallery::new(4, reid::eval::Metric::Euclidean).unwrap();
    assert!(euclidean.adopt_calibration(&in_model).is_err());
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"not a model").unwrap();
    let out = reid(&[
        "calibrate",
        junk.to_str().unwrap(),
        "--vectors",
        vectors.to_str().unwrap(),
        "--identities",
        identities.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert_eq!(std::fs::read(&junk).unwrap(), b"not a model");
}

/// `reid gallery reembed` replaces every entry's embedding with the new model's embedding of
/// its kept crop and binds the gallery to that model.
#[test]
fn gallery_reembed_embeds_the_kept_crops_with_a_new_model() {
    let dir = tempfile::tempdir().unwrap();
    let (model, burn) = small_osnet_export(dir.path());
    let extractor = reid::Extractor::new(&model, &burn).unwrap();
    let crops: Vec<Vec<u8>> = ["person0.jpg", "person2.png", "person4.bmp"]
        .iter()
        .map(|name| std::fs::read(fixture(&format!("images/{name}"))).unwrap())
        .collect();
    let path = dir.path().join("g.db");
    let ids: Vec<u64> = {
        let gallery =
            reid::Gallery::create(&path, extractor.dim(), reid::eval::Metric::Cosine).unwrap();
        gallery.keep_crops(1 << 20).unwrap();
        let entries = crops
            .iter()
            .enumerate()
            .map(|(i, crop)| {
                let mut stale = vec![0.0; extractor.dim()];
                stale[i] = 1.0;
                reid::gallery::NewEntry::new(i as u64, 0, stale).with_crop(crop.clone())
            })
            .collect();
        let ids = gallery.add_batch(entries).unwrap();
        gallery.bind_model("an-older-model", false).unwrap();
        ids
    };
    let out = reid(&[
        "gallery",
        "reembed",
        path.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--engine",
        "burn",
    ]);
    common::assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-embedded 3 entries"));
    let gallery = reid::Gallery::open(&path).unwrap();
    assert_eq!(
        gallery.model().unwrap().as_deref(),
        Some(extractor.fingerprint())
    );
    let refs: Vec<&[u8]> = crops.iter().map(Vec::as_slice).collect();
    let want = extractor.extract_encoded(&refs).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let got = gallery.get(*id).unwrap().unwrap().vector;
        common::assert_close(
            "re-embedded entry",
            &got,
            &want[i * got.len()..][..got.len()],
        );
    }
}

#[test]
fn extract_embeds_a_directory_in_sorted_order() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("feats.npy");
    let out = reid(&[
        "extract",
        "--model",
        fixture("osnet_x0_25/checkpoint.pth.tar").to_str().unwrap(),
        "--engine",
        "burn",
        "--arch",
        "osnet_x0_25",
        "--raw",
        fixture("images").to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    common::assert_success(&out);
    let feats = read_npy(&out_path).unwrap();
    assert_eq!(feats.shape, vec![6, 512]);
    let list = std::fs::read_to_string(dir.path().join("feats.txt")).unwrap();
    let names: Vec<&str> = list
        .lines()
        .map(|l| l.rsplit('/').next().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    // Same order as torchreid's features (files.txt is sorted too).
    let want = read_npy(fixture("images/torchreid_features.npy"))
        .unwrap()
        .to_f32();
    let got = feats.to_f32();
    for (g, w) in got.chunks(512).zip(want.chunks(512)) {
        let dot: f32 = g.iter().zip(w).map(|(a, b)| a * b).sum();
        let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(dot / (n(g) * n(w)) > 0.999);
    }
    // A corrupt file among the inputs is named in the error.
    std::fs::write(dir.path().join("broken.jpg"), b"\xff\xd8 truncated").unwrap();
    let out = reid(&[
        "extract",
        "--model",
        fixture("osnet_x0_25/checkpoint.pth.tar").to_str().unwrap(),
        "--engine",
        "burn",
        "--arch",
        "osnet_x0_25",
        dir.path().to_str().unwrap(),
        "-o",
        dir.path().join("x.npy").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.jpg"));
}

/// `reid extract --engine openvino` runs an export on OpenVINO: torchreid's features.
#[test]
fn extract_runs_an_export_on_openvino() {
    if !common::engine_available(reid::extractor::Engine::OpenVino) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.onnx");
    let out = export_osnet(&fixture("osnet_x0_25/weights.safetensors"), &model, &[]);
    common::assert_success(&out);
    let out_path = dir.path().join("feats.npy");
    let out = reid(&[
        "extract",
        "--model",
        model.to_str().unwrap(),
        "--engine",
        "openvino",
        "--raw",
        fixture("images").to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    common::assert_success(&out);
    let got = read_npy(&out_path).unwrap().to_f32();
    let want = read_npy(fixture("images/torchreid_features.npy"))
        .unwrap()
        .to_f32();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.chunks(512).zip(want.chunks(512)) {
        let dot: f32 = g.iter().zip(w).map(|(a, b)| a * b).sum();
        let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(dot / (n(g) * n(w)) > 0.999);
    }
}

/// `reid extract --execution-provider cuda` on a CPU-only ONNX Runtime runs on the CPU and
/// says so; with `--require-provider` it fails naming the provider.
#[test]
fn extract_reports_the_execution_provider_it_runs_on() {
    if !common::ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.onnx");
    common::assert_success(&export_osnet(
        &fixture("osnet_x0_25/weights.safetensors"),
        &model,
        &["--height", "64", "--width", "32"],
    ));
    let run = |extra: &[&str]| {
        let out_path = dir.path().join("f.npy");
        let mut args = vec![
            "extract",
            "--model",
            model.to_str().unwrap(),
            "--execution-provider",
            "cuda:0",
        ];
        args.extend_from_slice(extra);
        let image = fixture("images/person0.jpg");
        args.extend([image.to_str().unwrap(), "-o", out_path.to_str().unwrap()]);
        reid(&args)
    };
    let out = run(&[]);
    common::assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    if !text.contains("on CPUExecutionProvider") {
        assert!(text.contains("on CUDAExecutionProvider"), "{text}");
        return;
    }
    let out = run(&["--require-provider"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CUDAExecutionProvider"), "{err}");
}

#[test]
fn a_missing_onnx_runtime_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.onnx");
    let out = export_osnet(&fixture("osnet_x0_25/weights.safetensors"), &model, &[]);
    assert!(out.status.success());
    let out = reid(&[
        "extract",
        "--model",
        model.to_str().unwrap(),
        "--ort-library",
        "/nonexistent/libonnxruntime.so.1.32.0",
        fixture("images/person0.jpg").to_str().unwrap(),
        "-o",
        dir.path().join("f.npy").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ONNX Runtime")
            && err.contains("/nonexistent/libonnxruntime.so.1.32.0 (absent)"),
        "{err}"
    );
}

#[test]
fn extract_accepts_a_preprocessing_override() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture("osnet_x0_25/checkpoint.pth.tar");
    let image = fixture("images/person0.jpg");
    let run = |extra: &[&str], out: &str| {
        let out_path = dir.path().join(out);
        let mut args = vec![
            "extract",
            "--model",
            model.to_str().unwrap(),
            "--engine",
            "burn",
            "--arch",
            "osnet_x0_25",
        ];
        args.extend_from_slice(extra);
        args.extend([image.to_str().unwrap(), "-o", out_path.to_str().unwrap()]);
        let result = reid(&args);
        common::assert_success(&result);
        read_npy(&out_path).unwrap()
    };
    let default = run(&[], "a.npy");
    let same = run(
        &[
            "--preprocessing",
            "torchreid",
            "--height",
            "256",
            "--width",
            "128",
        ],
        "b.npy",
    );
    let bgr = run(
        &[
            "--preprocessing",
            "openvino-bgr",
            "--height",
            "256",
            "--width",
            "128",
        ],
        "c.npy",
    );
    assert_eq!(default, same);
    // The Burn engine converts BGR 0-255 input to the model's own, as an export's graph does:
    // the same embedding up to rounding; another size gives another.
    common::assert_close("BGR 0-255 input", &bgr.to_f32(), &default.to_f32());
    let smaller = run(
        &[
            "--preprocessing",
            "torchreid",
            "--height",
            "128",
            "--width",
            "64",
        ],
        "d.npy",
    );
    assert_ne!(default, smaller);
    // Without the size the override is refused by the argument parser.
    let out = reid(&[
        "extract",
        "--model",
        "m.onnx",
        "--preprocessing",
        "torchreid",
        "x.jpg",
        "-o",
        "y.npy",
    ]);
    assert!(!out.status.success());
}

#[test]
fn synth_writes_a_dataset_that_dataset_summarizes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("market1501");
    let out_s = out.to_str().unwrap();
    let run = reid(&[
        "synth",
        out_s,
        "--ids",
        "10",
        "--cameras",
        "3",
        "--seed",
        "5",
    ]);
    common::assert_success(&run);
    let said = String::from_utf8(run.stdout).unwrap();
    assert!(said.contains("10 identities, 3 cameras, seed 5"), "{said}");
    let summary = reid(&[
        "dataset",
        "market1501",
        "--root",
        dir.path().to_str().unwrap(),
    ]);
    assert!(summary.status.success());
    let table = String::from_utf8(summary.stdout).unwrap();
    let train = table
        .lines()
        .find(|l| l.trim_start().starts_with("train"))
        .unwrap();
    assert!(train.contains("|     5 |"), "{table}");
    // Bad options are refused with a message, and nothing is written.
    let bad = reid(&[
        "synth",
        dir.path().join("x").to_str().unwrap(),
        "--cameras",
        "9",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cameras"));
    assert!(!dir.path().join("x").exists());
}

/// `reid convert` writes torchreid's state_dict back: the torchreid checkpoint converted to
/// safetensors holds the same tensors under the same names as PyTorch's own safetensors
/// export of it (`tests/fixtures/osnet_x0_25/weights.safetensors`).
#[test]
fn convert_writes_torchreid_names_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("model.safetensors");
    let out = reid(&[
        "convert",
        "--arch",
        "osnet_x0_25",
        "--weights",
        fixture("osnet_x0_25/checkpoint.pth.tar").to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    common::assert_success(&out);
    let ours = reid::weights::StateDict::read(&out_path).unwrap();
    let torch = reid::weights::StateDict::read(fixture("osnet_x0_25/weights.safetensors")).unwrap();
    let mut compared = 0;
    for (key, tensor) in &ours.tensors {
        let reference = &torch.tensors[key];
        assert_eq!(tensor.shape, reference.shape, "{key}");
        assert_eq!(tensor.data, reference.data, "{key}");
        compared += 1;
    }
    assert!(compared >= 400, "{compared} tensors");
    let missing = reid(&[
        "convert",
        "--weights",
        "/nonexistent.pth",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
}
