//! The Extractor on real image files: torchreid's preprocessing reproduced (Pillow's resize
//! exactly), embeddings equal to torchreid's `FeatureExtractor` on the same files and weights
//! (cosine ≥ 0.999), both engines agreeing, every pixel format and the box path, bad input.

use crate::common::fixture;

use crate::common;

use std::path::PathBuf;

use reid::Error;
use reid::export::{ExportOptions, export_onnx_file};
use reid::extractor::{Engine, Extractor, ExtractorOptions};
use reid::formats::npy::read_npy;
use reid::models::Arch;
use reid::preprocess::{ImageView, PixelFormat, Rect, decode};

fn image_files() -> Vec<PathBuf> {
    std::fs::read_to_string(fixture("images/files.txt"))
        .unwrap()
        .lines()
        .map(|name| fixture(&format!("images/{name}")))
        .collect()
}

fn burn_options() -> ExtractorOptions {
    ExtractorOptions {
        engine: Engine::Burn,
        arch: Some(Arch::OsnetX0_25),
        normalize: false,
        max_batch: 4,
        ..Default::default()
    }
}

fn burn_extractor() -> Extractor {
    Extractor::new(fixture("osnet_x0_25/checkpoint.pth.tar"), &burn_options()).unwrap()
}

/// The fixture's torchreid weights in a Burn model.
fn fixture_model() -> reid::ReidModel {
    let device = reid::device::default_device();
    reid::weights::load_torchreid(
        Arch::OsnetX0_25,
        fixture("osnet_x0_25/checkpoint.pth.tar"),
        &device,
    )
    .unwrap()
    .0
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}

fn assert_matches_torchreid(what: &str, got: &[f32], dim: usize) {
    let want = read_npy(fixture("images/torchreid_features.npy"))
        .unwrap()
        .to_f32();
    for (i, (g, w)) in got.chunks(dim).zip(want.chunks(dim)).enumerate() {
        let c = cosine(g, w);
        assert!(c >= 0.999, "{what}: image {i}: cosine {c}");
    }
}

#[test]
fn resize_equals_pillow() {
    let (rgb, w, h) = decode(&std::fs::read(fixture("images/person2.png")).unwrap()).unwrap();
    let ours = reid::preprocess::resample::resize_rgb(&rgb, w, h, 128, 256);
    let pil = read_npy(fixture("images/person2_pil_256x128.npy")).unwrap();
    let pil: Vec<u8> = pil.to_i64().unwrap().iter().map(|&v| v as u8).collect();
    assert_eq!(ours, pil);
}

#[test]
fn burn_engine_matches_torchreid_feature_extractor() {
    let extractor = burn_extractor();
    assert_eq!(extractor.dim(), 512);
    let got = extractor.extract_files(&image_files()).unwrap();
    assert_matches_torchreid("burn", &got, 512);
}

#[test]
fn onnxruntime_engine_matches_torchreid_and_burn() {
    if !common::ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("osnet.onnx");
    let (model, _) = reid::weights::load_torchreid(
        Arch::OsnetX0_25,
        fixture("osnet_x0_25/checkpoint.pth.tar"),
        &reid::device::default_device(),
    )
    .unwrap();
    export_onnx_file(&model, &ExportOptions::new(256, 128), &onnx).unwrap();
    let options = ExtractorOptions {
        normalize: false,
        sessions: 2,
        ..Default::default()
    };
    let ort = Extractor::new(&onnx, &options).unwrap();
    let files = image_files();
    let got = ort.extract_files(&files).unwrap();
    assert_matches_torchreid("onnxruntime", &got, 512);
    // The Burn engine reads the same ONNX file back (its initializers carry torchreid names).
    let burn = Extractor::new(
        &onnx,
        &ExtractorOptions {
            engine: Engine::Burn,
            ..options.clone()
        },
    )
    .unwrap();
    let from_burn = burn.extract_files(&files).unwrap();
    let scale = from_burn.iter().fold(1f32, |m, v| m.max(v.abs()));
    let worst = got
        .iter()
        .zip(&from_burn)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(worst <= 1e-4 * scale, "engines differ by {worst}");
    // Sessions are shared between threads.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let again = ort.extract_files(&files[..2]).unwrap();
                assert_eq!(again.len(), 2 * 512);
            });
        }
    });
}

/// The OpenVINO engine gives ONNX Runtime's embeddings (within 1e-4 of the largest value, f32
/// precision hint) and torchreid's, from a float export and from one taking uint8 BGR pixels
/// in NHWC, with infer requests shared between threads; its options are checked.
#[test]
fn openvino_engine_matches_onnxruntime_and_torchreid() {
    if !common::engine_available(Engine::OnnxRuntime) || !common::engine_available(Engine::OpenVino)
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = fixture_model();
    let float = dir.path().join("float.onnx");
    export_onnx_file(&model, &ExportOptions::new(256, 128), &float).unwrap();
    let pixels = dir.path().join("uint8.onnx");
    let uint8 = reid::preprocess::Preprocessing::uint8(
        256,
        128,
        reid::preprocess::ChannelOrder::Bgr,
        reid::preprocess::Layout::Nhwc,
    );
    export_onnx_file(&model, &ExportOptions::with_preprocessing(uint8), &pixels).unwrap();
    let options = ExtractorOptions {
        normalize: false,
        ..Default::default()
    };
    let files = image_files();
    let ort = Extractor::new(&float, &options).unwrap();
    let want = ort.extract_files(&files).unwrap();
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    let openvino = ExtractorOptions {
        engine: Engine::OpenVino,
        sessions: 2,
        threads: 1,
        ..options.clone()
    };
    for model in [&float, &pixels] {
        let ov = Extractor::new(model, &openvino).unwrap();
        assert_eq!(ov.dim(), 512);
        let got = ov.extract_files(&files).unwrap();
        assert_matches_torchreid("openvino", &got, 512);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst <= 1e-4 * scale, "{}: {worst}", model.display());
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    let again = ov.extract_files(&files[..2]).unwrap();
                    assert_eq!(again, got[..2 * 512]);
                });
            }
        });
    }
    let with = |change: &dyn Fn(&mut reid::extractor::OpenVinoOptions)| {
        let mut o = openvino.clone();
        change(&mut o.openvino);
        Extractor::new(&float, &o)
    };
    for bad in [
        with(&|o| o.precision = "f64".into()),
        with(&|o| o.hint = Some("fastest".into())),
        with(&|o| o.device = " ".into()),
    ] {
        assert!(matches!(bad, Err(Error::InvalidInput(_))));
    }
    assert!(matches!(
        with(&|o| o.device = "NO_SUCH_DEVICE".into()),
        Err(Error::Runtime(_))
    ));
    let elsewhere = dir.path().join("libopenvino_c.so");
    std::fs::write(&elsewhere, b"not a library").unwrap();
    let Err(Error::Runtime(message)) = with(&|o| o.library = Some(elsewhere.clone())) else {
        panic!("a second OpenVINO library accepted");
    };
    assert!(message.contains("already loaded"), "{message}");
    assert!(with(&|o| o.hint = Some("throughput".into())).is_ok());
}

/// Execution providers asked of a CPU-only ONNX Runtime (the PyPI wheel CI installs): CUDA,
/// TensorRT and OpenVINO are not in the library, so the extractor reports the CPU and gives the
/// CPU's embeddings, or fails when the fallback is not allowed, saying why for each; bad
/// provider names and values are refused.
#[test]
fn execution_providers_fall_back_to_the_cpu_and_say_so() {
    use reid::extractor::ExecutionProvider;
    if !common::ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("osnet.onnx");
    export_onnx_file(&fixture_model(), &ExportOptions::new(64, 32), &onnx).unwrap();
    let files = image_files();
    let cpu = Extractor::new(&onnx, &ExtractorOptions::default()).unwrap();
    assert_eq!(cpu.execution_provider(), "CPUExecutionProvider");
    let providers: Vec<ExecutionProvider> = ["cuda:0", "tensorrt", "openvino:GPU"]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
    let asking = ExtractorOptions {
        providers: providers.clone(),
        ..Default::default()
    };
    let fallback = Extractor::new(&onnx, &asking).unwrap();
    if fallback.execution_provider() != "CPUExecutionProvider" {
        eprintln!(
            "this ONNX Runtime has {}: the CPU-only checks do not apply",
            fallback.execution_provider()
        );
        return;
    }
    assert_eq!(
        fallback.extract_files(&files).unwrap(),
        cpu.extract_files(&files).unwrap()
    );
    let required = ExtractorOptions {
        require_provider: true,
        ..asking.clone()
    };
    let Err(Error::Runtime(message)) = Extractor::new(&onnx, &required) else {
        panic!("a required provider that cannot run was accepted");
    };
    for name in ["CUDA", "Tensorrt", "OpenVINO"] {
        assert!(
            message.contains(&format!(
                "{name}ExecutionProvider: not in this ONNX Runtime library"
            )),
            "{message}"
        );
    }
    for bad in ["cuda:x", "cuda:-1", "rocm", ""] {
        assert!(
            matches!(
                bad.parse::<ExecutionProvider>(),
                Err(Error::InvalidInput(_))
            ),
            "{bad}"
        );
    }
    let empty_cache = ExtractorOptions {
        providers: vec![ExecutionProvider::TensorRt {
            device_id: 0,
            engine_cache: Some(PathBuf::new()),
        }],
        ..Default::default()
    };
    let on_burn = ExtractorOptions {
        engine: Engine::Burn,
        ..asking
    };
    for options in [empty_cache, on_burn] {
        assert!(matches!(
            Extractor::new(&onnx, &options),
            Err(Error::InvalidInput(_))
        ));
    }
}

/// A model shaped as the Open Model Zoo's re-id models (input `data` fixed at 1 × 3 × 256 ×
/// 128, BGR pixels 0–255, a 256-d output, no reid metadata) built and run by ONNX Runtime in
/// Python on Pillow-resized BGR pixels: `ExtractorOptions::open_model_zoo()` gives the same
/// embeddings on ONNX Runtime and OpenVINO, one image per run; torchreid's default
/// preprocessing does not.
#[test]
fn open_model_zoo_inputs_give_what_omz_users_fed() {
    let Some(python) = common::python_with(&["onnx", "onnxruntime", "PIL", "numpy"]) else {
        assert!(std::env::var("REID_REQUIRE_ONNX_CHECK").is_err());
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import sys
import numpy as np, onnx, onnxruntime as ort
from onnx import helper, numpy_helper, TensorProto
from PIL import Image
out_dir, images = sys.argv[1], sys.argv[2:]
rng = np.random.default_rng(3)
weights = [
    numpy_helper.from_array((rng.standard_normal((16, 3, 3, 3)) * 0.01).astype(np.float32), "w"),
    numpy_helper.from_array(rng.standard_normal((256, 16)).astype(np.float32), "fc"),
]
nodes = [
    helper.make_node("Conv", ["data", "w"], ["c"], pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["c"], ["r"]),
    helper.make_node("GlobalAveragePool", ["r"], ["p"]),
    helper.make_node("Flatten", ["p"], ["f"]),
    helper.make_node("Gemm", ["f", "fc"], ["reid_embedding"], transB=1),
]
graph = helper.make_graph(nodes, "omz_like",
    [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 256, 128])],
    [helper.make_tensor_value_info("reid_embedding", TensorProto.FLOAT, [1, 256])], weights)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.save(model, out_dir + "/omz_like.onnx")
session = ort.InferenceSession(out_dir + "/omz_like.onnx", providers=["CPUExecutionProvider"])
rows = []
for path in images:
    rgb = np.asarray(Image.open(path).convert("RGB").resize((128, 256), Image.BILINEAR), np.float32)
    bgr = np.ascontiguousarray(rgb[..., ::-1].transpose(2, 0, 1)[None])
    rows.append(session.run(None, {"data": bgr})[0][0])
np.save(out_dir + "/expected.npy", np.stack(rows).astype(np.float32))
"#;
    let files = image_files();
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .arg(dir.path())
        .args(&files)
        .output()
        .unwrap();
    common::assert_success(&out);
    let model = dir.path().join("omz_like.onnx");
    let want = read_npy(dir.path().join("expected.npy")).unwrap().to_f32();
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    for engine in [Engine::OnnxRuntime, Engine::OpenVino] {
        if !common::engine_available(engine) {
            continue;
        }
        let options = ExtractorOptions {
            engine,
            normalize: false,
            ..ExtractorOptions::open_model_zoo()
        };
        let extractor = Extractor::new(&model, &options).unwrap();
        assert_eq!(extractor.dim(), 256);
        assert_eq!(extractor.preprocessing().height, 256);
        let got = extractor.extract_files(&files).unwrap();
        // JPEG decoders differ by a grey level here and there (zune-jpeg, libjpeg).
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst <= 5e-3 * scale, "{engine:?}: {worst} of {scale}");
        for (g, w) in got.chunks(256).zip(want.chunks(256)) {
            assert!(cosine(g, w) > 0.9999, "{engine:?}: {}", cosine(g, w));
        }
        let default = ExtractorOptions {
            engine,
            normalize: false,
            ..Default::default()
        };
        let torchreid = Extractor::new(&model, &default).unwrap();
        let other = torchreid.extract_files(&files).unwrap();
        let off = cosine(&other[..256], &want[..256]);
        assert!(off < 0.99, "{off}");
    }
}

/// An export that L2-normalizes in its graph gives unit embeddings on both engines, with
/// normalization off in the options, and the same ones.
#[test]
fn in_graph_normalization_holds_on_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture_model();
    let onnx = dir.path().join("normalized.onnx");
    let export = ExportOptions {
        normalize: true,
        ..ExportOptions::new(256, 128)
    };
    export_onnx_file(&model, &export, &onnx).unwrap();
    let files = image_files();
    let unnormalized = ExtractorOptions {
        normalize: false,
        ..Default::default()
    };
    let burn = Extractor::new(
        &onnx,
        &ExtractorOptions {
            engine: Engine::Burn,
            ..unnormalized.clone()
        },
    )
    .unwrap()
    .extract_files(&files)
    .unwrap();
    for v in burn.chunks(512) {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "Burn norm {norm}");
    }
    assert_matches_torchreid("burn, normalized in the graph", &burn, 512);
    if common::ort_available() {
        let ort = Extractor::new(&onnx, &unnormalized)
            .unwrap()
            .extract_files(&files)
            .unwrap();
        let worst = ort
            .iter()
            .zip(&burn)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst <= 1e-5, "engines differ by {worst}");
    }
}

/// Exports whose graph takes another input — BGR 0–255 floats, raw uint8 pixels in NCHW or
/// NHWC, RGB or BGR — convert it to the model's own input in the graph (and the Burn engine
/// before the model): every one gives torchreid's embeddings on both engines, and the
/// metadata says what the input is.
#[test]
fn exports_taking_bgr_or_uint8_pixels_give_torchreids_embeddings_on_both_engines() {
    use reid::preprocess::{ChannelOrder, InputTensor, Layout, Preprocessing};
    let dir = tempfile::tempdir().unwrap();
    let model = fixture_model();
    let files = image_files();
    let ort = common::ort_available();
    for (name, preprocessing) in [
        ("bgr_0_255", Preprocessing::openvino_bgr(256, 128)),
        (
            "uint8_rgb_nchw",
            Preprocessing::uint8(256, 128, ChannelOrder::Rgb, Layout::Nchw),
        ),
        (
            "uint8_bgr_nhwc",
            Preprocessing::uint8(256, 128, ChannelOrder::Bgr, Layout::Nhwc),
        ),
    ] {
        let onnx = dir.path().join(format!("{name}.onnx"));
        export_onnx_file(
            &model,
            &ExportOptions::with_preprocessing(preprocessing.clone()),
            &onnx,
        )
        .unwrap();
        let meta = reid::export::read_metadata(&std::fs::read(&onnx).unwrap()).unwrap();
        assert_eq!(
            Preprocessing::from_metadata(&meta).unwrap(),
            preprocessing,
            "{name}"
        );
        let raw = ExtractorOptions {
            normalize: false,
            ..Default::default()
        };
        let burn = Extractor::new(
            &onnx,
            &ExtractorOptions {
                engine: Engine::Burn,
                ..raw.clone()
            },
        )
        .unwrap();
        assert_eq!(burn.preprocessing(), &preprocessing, "{name}");
        let by_burn = burn.extract_files(&files).unwrap();
        assert_matches_torchreid(&format!("{name} on Burn"), &by_burn, 512);
        if ort {
            let by_ort = Extractor::new(&onnx, &raw)
                .unwrap()
                .extract_files(&files)
                .unwrap();
            assert_matches_torchreid(&format!("{name} on ONNX Runtime"), &by_ort, 512);
            common::assert_close(&format!("{name}: ONNX Runtime vs Burn"), &by_ort, &by_burn);
        }
        if let InputTensor::Uint8(_) = preprocessing.input {
            // A uint8 graph takes raw pixels: a normalization of its own is refused.
            let normalized = ExtractorOptions {
                preprocessing: Some(Preprocessing {
                    scale: 1.0 / 255.0,
                    ..preprocessing.clone()
                }),
                ..raw.clone()
            };
            assert!(Extractor::new(&onnx, &normalized).is_err(), "{name}");
        }
    }
    // A float graph described as a uint8 one is refused too (the graph says what it takes).
    if ort {
        let onnx = dir.path().join("float.onnx");
        export_onnx_file(&model, &ExportOptions::new(256, 128), &onnx).unwrap();
        let wrong = ExtractorOptions {
            preprocessing: Some(Preprocessing::uint8(
                256,
                128,
                ChannelOrder::Rgb,
                Layout::Nchw,
            )),
            ..Default::default()
        };
        let err = Extractor::new(&onnx, &wrong).err().expect("refused");
        assert!(err.to_string().contains("the graph takes Float"), "{err}");
    }
}

/// An empty or garbage `.onnx` is a model error with the same message on both engines.
#[test]
fn a_file_that_is_no_onnx_model_is_a_model_error_on_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("empty", &b""[..]),
        ("garbage", &b"\x08\x07 this is not a model at all"[..]),
    ] {
        let path = dir.path().join(format!("{name}.onnx"));
        std::fs::write(&path, bytes).unwrap();
        let messages: Vec<String> = [Engine::OnnxRuntime, Engine::Burn]
            .into_iter()
            .map(|engine| {
                let options = ExtractorOptions {
                    engine,
                    ..Default::default()
                };
                match Extractor::new(&path, &options) {
                    Err(Error::ModelFormat(message)) => message,
                    Err(other) => panic!("{name} on {engine:?}: {other:?}"),
                    Ok(_) => panic!("{name} on {engine:?} was accepted"),
                }
            })
            .collect();
        assert_eq!(messages[0], messages[1], "{name}");
        assert!(messages[0].contains("not an ONNX model"), "{}", messages[0]);
    }
}

#[test]
fn every_pixel_format_and_stride_gives_the_same_embedding() {
    let extractor = burn_extractor();
    let (rgb, w, h) = decode(&std::fs::read(fixture("images/person2.png")).unwrap()).unwrap();
    let reference = extractor
        .extract_images(&[ImageView::packed(&rgb, w, h, PixelFormat::Rgb8)])
        .unwrap();
    for format in [PixelFormat::Bgr8, PixelFormat::Rgba8, PixelFormat::Bgra8] {
        let bpp = format.bytes_per_pixel();
        let stride = w * bpp + 13; // padded rows
        let mut buffer = vec![0u8; stride * h];
        for y in 0..h {
            for x in 0..w {
                let p = &rgb[(y * w + x) * 3..(y * w + x) * 3 + 3];
                let dst = &mut buffer[y * stride + x * bpp..];
                match format {
                    PixelFormat::Bgr8 | PixelFormat::Bgra8 => {
                        dst[..3].copy_from_slice(&[p[2], p[1], p[0]])
                    }
                    _ => dst[..3].copy_from_slice(p),
                }
                if bpp == 4 {
                    dst[3] = 255;
                }
            }
        }
        let view = ImageView {
            data: &buffer,
            width: w,
            height: h,
            stride,
            format,
        };
        assert_eq!(
            extractor.extract_images(&[view]).unwrap(),
            reference,
            "{format:?}"
        );
    }
    let gray: Vec<u8> = rgb.chunks(3).map(|p| p[1]).collect();
    let out = extractor
        .extract_images(&[ImageView::packed(&gray, w, h, PixelFormat::Gray8)])
        .unwrap();
    assert_eq!(out.len(), 512);
}

#[test]
fn boxes_in_a_frame_are_cropped_clipped_and_checked() {
    let extractor = burn_extractor();
    let (rgb, w, h) = decode(&std::fs::read(fixture("images/person2.png")).unwrap()).unwrap();
    // The crop pasted into a larger frame at (30, 20).
    let (fw, fh) = (200, 300);
    let mut frame = vec![90u8; fw * fh * 3];
    for y in 0..h {
        let src = &rgb[y * w * 3..(y + 1) * w * 3];
        frame[((y + 20) * fw + 30) * 3..((y + 20) * fw + 30 + w) * 3].copy_from_slice(src);
    }
    let view = ImageView::packed(&frame, fw, fh, PixelFormat::Rgb8);
    let alone = extractor
        .extract_images(&[ImageView::packed(&rgb, w, h, PixelFormat::Rgb8)])
        .unwrap();
    let exact = Rect {
        x: 30.0,
        y: 20.0,
        width: w as f32,
        height: h as f32,
    };
    let clipped = Rect {
        x: -40.0,
        y: 250.0,
        width: 100.0,
        height: 100.0,
    };
    let out = extractor.extract_boxes(&view, &[exact, clipped]).unwrap();
    // Same pixels; only the batch (and so the matrix blocking) differs.
    let worst = out[..512]
        .iter()
        .zip(&alone)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-5, "{worst}");
    let outside = Rect {
        x: 500.0,
        y: 10.0,
        width: 20.0,
        height: 20.0,
    };
    let empty = Rect {
        x: 5.0,
        y: 5.0,
        width: 0.0,
        height: 10.0,
    };
    for bad in [outside, empty] {
        match extractor.extract_boxes(&view, &[exact, bad]) {
            Err(Error::BadInput { index: 1, .. }) => {}
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

#[test]
fn bad_images_and_buffers_are_errors_naming_the_input() {
    let extractor = burn_extractor();
    let jpeg = std::fs::read(fixture("images/person0.jpg")).unwrap();
    let truncated = &jpeg[..jpeg.len() / 3];
    let garbage = b"not an image at all".as_slice();
    for bad in [truncated, garbage, &[][..]] {
        match extractor.extract_encoded(&[&jpeg, bad]) {
            Err(Error::BadInput { index: 1, .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let short = vec![0u8; 10];
    let view = ImageView::packed(&short, 8, 8, PixelFormat::Rgb8);
    assert!(extractor.extract_images(&[view]).is_err());
    let narrow_stride = ImageView {
        data: &short,
        width: 8,
        height: 1,
        stride: 3,
        format: PixelFormat::Rgb8,
    };
    assert!(extractor.extract_images(&[narrow_stride]).is_err());
    assert!(
        extractor
            .extract_files(&[fixture("images/absent.jpg")])
            .is_err()
    );
    // The ONNX Runtime engine takes ONNX files only; the Burn engine needs an architecture.
    assert!(
        Extractor::new(
            fixture("osnet_x0_25/checkpoint.pth.tar"),
            &ExtractorOptions::default()
        )
        .is_err()
    );
    let no_arch = ExtractorOptions {
        arch: None,
        ..burn_options()
    };
    assert!(Extractor::new(fixture("osnet_x0_25/checkpoint.pth.tar"), &no_arch).is_err());
    // Empty input is no work, not an error.
    assert!(extractor.extract_files::<PathBuf>(&[]).unwrap().is_empty());
}

/// An ONNX model `Identity(x)` whose input is float32 `[1, 10]`: not an image model.
fn non_image_model() -> Vec<u8> {
    use onnx_protobuf::tensor_shape_proto::{Dimension, dimension};
    use onnx_protobuf::type_proto::{Tensor as TypeTensor, Value};
    use onnx_protobuf::{
        GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto,
        TypeProto, ValueInfoProto,
    };
    let info = |name: &str| {
        let mut shape = TensorShapeProto::new();
        shape.dim = [1i64, 10]
            .iter()
            .map(|&d| {
                let mut dim = Dimension::new();
                dim.value = Some(dimension::Value::DimValue(d));
                dim
            })
            .collect();
        let mut tensor = TypeTensor::new();
        tensor.elem_type = 1; // FLOAT
        tensor.shape = Some(shape).into();
        let mut ty = TypeProto::new();
        ty.value = Some(Value::TensorType(tensor));
        let mut v = ValueInfoProto::new();
        v.name = name.into();
        v.type_ = Some(ty).into();
        v
    };
    let mut node = NodeProto::new();
    node.op_type = "Identity".into();
    node.input = vec!["x".into()];
    node.output = vec!["y".into()];
    let mut graph = GraphProto::new();
    graph.name = "not_an_image_model".into();
    graph.node = vec![node];
    graph.input = vec![info("x")];
    graph.output = vec![info("y")];
    let mut model = ModelProto::new();
    model.ir_version = 8;
    let mut opset = OperatorSetIdProto::new();
    opset.version = 17;
    model.opset_import = vec![opset];
    model.graph = Some(graph).into();
    model.write_to_bytes().unwrap()
}

#[test]
fn models_that_do_not_take_images_are_refused() {
    if !common::ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vector.onnx");
    std::fs::write(&path, non_image_model()).unwrap();
    match Extractor::new(&path, &ExtractorOptions::default()) {
        Err(Error::ModelFormat(message)) => {
            assert!(message.contains("NCHW"), "{message}");
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("a [1, 10] model was accepted"),
    }
    // A corrupt ONNX file is an error too, not a crash.
    std::fs::write(&path, b"\x08\x07garbage").unwrap();
    assert!(Extractor::new(&path, &ExtractorOptions::default()).is_err());
    // The Burn engine needs an export of ours (it names its architecture).
    std::fs::write(&path, non_image_model()).unwrap();
    let burn = ExtractorOptions {
        engine: Engine::Burn,
        ..Default::default()
    };
    assert!(Extractor::new(&path, &burn).is_err());
}

/// The model's fingerprint names the model, not the file: the same for torchreid's
/// checkpoint on the Burn engine, for reid's export of it on both engines and in the export's
/// own record; another for another input size and for other weights (the logits' own
/// fingerprint is a unit test of `weights::fingerprint`).
#[test]
fn fingerprints_name_the_model_not_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let device = reid::device::default_device();
    let checkpoint = fixture("osnet_x0_25/checkpoint.pth.tar");
    let burn = ExtractorOptions {
        engine: Engine::Burn,
        arch: Some(Arch::OsnetX0_25),
        ..Default::default()
    };
    let fingerprint = Extractor::new(&checkpoint, &burn)
        .unwrap()
        .fingerprint()
        .to_string();
    assert_eq!(fingerprint.len(), 64);
    assert!(fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));

    let (model, _) = reid::weights::load_torchreid(Arch::OsnetX0_25, &checkpoint, &device).unwrap();
    let onnx = dir.path().join("osnet.onnx");
    export_onnx_file(&model, &ExportOptions::new(256, 128), &onnx).unwrap();
    let meta = reid::export::read_metadata(&std::fs::read(&onnx).unwrap()).unwrap();
    assert_eq!(meta[reid::export::FINGERPRINT], fingerprint);
    let from_export = Extractor::new(&onnx, &burn).unwrap();
    assert_eq!(from_export.fingerprint(), fingerprint);
    if common::ort_available() {
        let ort = Extractor::new(&onnx, &ExtractorOptions::default()).unwrap();
        assert_eq!(ort.fingerprint(), fingerprint);
    }

    let smaller = ExtractorOptions {
        preprocessing: Some(reid::preprocess::Preprocessing::torchreid(128, 64)),
        ..burn.clone()
    };
    let other = Extractor::new(&checkpoint, &smaller).unwrap();
    assert_ne!(other.fingerprint(), fingerprint, "another input size");
    let untrained = reid::models::ReidModel::new(Arch::OsnetX0_25, model.num_classes(), &device);
    let other = dir.path().join("untrained.onnx");
    export_onnx_file(&untrained, &ExportOptions::new(256, 128), &other).unwrap();
    assert_ne!(
        Extractor::new(&other, &burn).unwrap().fingerprint(),
        fingerprint
    );
}
