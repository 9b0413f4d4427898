//! INT8 exports: static QDQ quantization calibrated on a synthetic re-id set, checked by
//! retrieval accuracy before it is handed back, run by ONNX Runtime and OpenVINO; one that
//! loses too much is refused with its report, through the library and the command line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use onnx_protobuf::{Message, ModelProto};
use reid::data::synth::{SynthOptions, synthesize};
use reid::quantize::{Method, QuantizeOptions, Report, quantize_export};
use reid::train::{DataSection, EvalSection, SamplerSection, ScheduleSection, TrainConfig};

use crate::common;

/// A synthetic Market-1501 layout of 64 × 32 crops, and osnet_x0_25 trained on it (the check
/// needs a model whose accuracy can be lost): its checkpoint and its float export.
struct Trained {
    root: PathBuf,
    checkpoint: PathBuf,
    float: Vec<u8>,
}

fn trained() -> &'static Trained {
    static TRAINED: OnceLock<Trained> = OnceLock::new();
    TRAINED.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("quantize");
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("data");
        let options = SynthOptions {
            ids: 24,
            cameras: 3,
            distractors: 4,
            height: 64,
            width: 32,
            seed: 11,
            ..Default::default()
        };
        synthesize(&root.join("market1501"), &options).unwrap();
        let config = TrainConfig {
            data: DataSection {
                root: root.clone(),
                height: 64,
                width: 32,
                transforms: vec!["random_flip".into()],
                ..Default::default()
            },
            sampler: SamplerSection {
                batch_size: 16,
                ..Default::default()
            },
            schedule: ScheduleSection {
                lr: 0.003,
                max_epoch: 30,
                ..Default::default()
            },
            eval: EvalSection {
                eval_freq: 30,
                ..Default::default()
            },
            save_dir: dir.join("run"),
            ..Default::default()
        };
        let report = reid::train::train(&config, &mut |_| true).unwrap();
        let onnx = report.onnx.expect("training exports the model");
        Trained {
            root,
            checkpoint: report.model,
            float: std::fs::read(onnx).unwrap(),
        }
    })
}

fn ops(bytes: &[u8]) -> Vec<String> {
    let proto = ModelProto::parse_from_bytes(bytes).unwrap();
    proto.graph.node.iter().map(|n| n.op_type.clone()).collect()
}

/// The fixture's OSNet (untrained weights, whose embeddings quantize almost losslessly)
/// exported at 64 × 32.
fn fixture_export() -> Vec<u8> {
    let device = reid::device::default_device();
    let (model, _) = reid::weights::load_torchreid(
        reid::Arch::OsnetX0_25,
        common::fixture("osnet_x0_25/checkpoint.pth.tar"),
        &device,
    )
    .unwrap();
    reid::export::export_onnx(&model, &reid::export::ExportOptions::new(64, 32)).unwrap()
}

/// The report of a quantization, whether it passed (`Ok`) or was refused (in the error).
fn report_of(result: reid::Result<(Vec<u8>, Report)>) -> serde_json::Value {
    match result {
        Ok((_, report)) => serde_json::to_value(&report).unwrap(),
        Err(err) => {
            let err = err.to_string();
            assert!(err.contains("not written"), "{err}");
            serde_json::from_str(&err[err.find('{').unwrap()..=err.rfind('}').unwrap()]).unwrap()
        }
    }
}

#[test]
fn an_int8_export_keeps_its_accuracy_and_runs_in_onnxruntime_and_openvino() {
    if !common::ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let float = fixture_export();
    let (int8, report) = quantize_export(&float, &QuantizeOptions::new(&trained().root)).unwrap();
    eprintln!("{report:?}");
    assert!(report.passed && report.map_drop <= 1.0, "{report:?}");
    assert!(
        report.mean_cosine > 0.999 && report.min_cosine > 0.99,
        "{report:?}"
    );
    assert_eq!(report.checked_images, 102);
    // Every BatchNorm after a convolution folded into it; every Conv and Gemm reads int8
    // weights through a DequantizeLinear and activations through a Quantize/Dequantize pair.
    let proto = ModelProto::parse_from_bytes(&int8).unwrap();
    let made_by: std::collections::HashMap<&String, &str> = proto
        .graph
        .node
        .iter()
        .map(|n| (&n.output[0], n.op_type.as_str()))
        .collect();
    assert!(proto.graph.node.iter().all(|n| n.op_type != "BatchNormalization"
        || made_by.get(&n.input[0]) != Some(&"Conv")));
    let op_names = ops(&int8);
    let count = |op: &str| op_names.iter().filter(|o| *o == op).count();
    let float_norms = ops(&float)
        .iter()
        .filter(|o| *o == "BatchNormalization")
        .count();
    assert!(count("BatchNormalization") < float_norms);
    assert!(count("QuantizeLinear") > 0 && count("DequantizeLinear") > count("Conv"));
    let int8_weights = proto
        .graph
        .initializer
        .iter()
        .filter(|t| t.data_type == onnx_protobuf::tensor_proto::DataType::INT8 as i32)
        .count();
    assert!(
        int8_weights >= count("Conv"),
        "{int8_weights} int8 initializers"
    );
    // The metadata says what it is, with the report, and the fingerprint is its own.
    let meta = reid::export::read_metadata(&int8).unwrap();
    assert_eq!(meta[reid::quantize::PRECISION], "int8");
    let stored: serde_json::Value = serde_json::from_str(&meta[reid::quantize::REPORT]).unwrap();
    let expected = serde_json::to_value(&report).unwrap();
    for (key, value) in expected.as_object().unwrap() {
        match (value.as_f64(), stored[key].as_f64()) {
            (Some(want), Some(got)) => assert!((want - got).abs() < 1e-9, "{key}"),
            _ => assert_eq!(&stored[key], value, "{key}"),
        }
    }
    let float_meta = reid::export::read_metadata(&float).unwrap();
    assert_ne!(meta["fingerprint"], float_meta["fingerprint"]);

    let int8_path = dir.path().join("int8.onnx");
    let float_path = dir.path().join("f32.onnx");
    std::fs::write(&int8_path, &int8).unwrap();
    std::fs::write(&float_path, &float).unwrap();
    // The Burn engine runs float exports only.
    let burn = reid::ExtractorOptions {
        engine: reid::extractor::Engine::Burn,
        ..Default::default()
    };
    let err = reid::Extractor::new(&int8_path, &burn)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("int8 export"), "{err}");
    // ONNX Runtime and OpenVINO run it; their int8 outputs agree, and stay close to the
    // float model's.
    let Some(python) = common::python_with(&["onnxruntime", "openvino"]) else {
        return;
    };
    let script = r#"
import json, sys
import numpy as np, onnxruntime as ort, openvino as ov
x = np.random.default_rng(3).normal(size=(8, 3, 64, 32)).astype(np.float32)
run = lambda path: ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(["output"], {"images": x})[0]
compiled = ov.Core().compile_model(sys.argv[2], "CPU")
vino = compiled([x])[compiled.output("output")]
unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)
cos = lambda a, b: float((unit(a) * unit(b)).sum(axis=1).min())
f32, int8 = run(sys.argv[1]), run(sys.argv[2])
print(json.dumps({"int8_vs_f32": cos(int8, f32), "openvino_vs_onnxruntime": cos(vino, int8)}))
"#;
    let out = Command::new(python)
        .args(["-c", script])
        .arg(&float_path)
        .arg(&int8_path)
        .output()
        .unwrap();
    common::assert_success(&out);
    let cosines: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{cosines}");
    assert!(cosines["int8_vs_f32"].as_f64().unwrap() > 0.99, "{cosines}");
    assert!(
        cosines["openvino_vs_onnxruntime"].as_f64().unwrap() > 0.99,
        "{cosines}"
    );
}

/// A model trained briefly from scratch is fragile under INT8: ours loses as much as ONNX
/// Runtime's own `quantize_static` (QDQ, per-channel weights, min-max) does on the same model,
/// calibration crops and check images; with ranges clipped to the middle 1 % of each tensor's
/// values it collapses and is refused, its report in the error; a quantized file is not
/// quantized again; bad options are refused.
#[test]
fn int8_matches_onnxruntimes_quantizer_and_a_wrecked_one_is_refused() {
    if !common::ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Trained { root, float, .. } = trained();
    let ours = report_of(quantize_export(float, &QuantizeOptions::new(root)));
    eprintln!("ours: {ours}");
    if let Some(python) = common::python_with(&["onnxruntime", "onnx", "PIL"]) {
        let float_path = dir.path().join("f32.onnx");
        std::fs::write(&float_path, float).unwrap();
        let script = r#"
import glob, sys
import numpy as np, onnxruntime as ort
from PIL import Image
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
model, root, out = sys.argv[1], sys.argv[2] + "/market1501", sys.argv[3]
mean = np.array([0.485, 0.456, 0.406], np.float32)
std = np.array([0.229, 0.224, 0.225], np.float32)
def load(path):
    image = Image.open(path).convert("RGB").resize((32, 64), Image.BILINEAR)
    return ((np.asarray(image, np.float32) / 255.0 - mean) / std).transpose(2, 0, 1)
class Crops(CalibrationDataReader):
    def __init__(self):
        self.it = iter([{"images": load(p)[None]} for p in sorted(glob.glob(root + "/bounding_box_train/*.jpg"))])
    def get_next(self):
        return next(self.it, None)
quantize_static(model, out, Crops(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
x = np.stack([load(p) for p in sorted(glob.glob(root + "/query/*.jpg")) + sorted(glob.glob(root + "/bounding_box_test/*.jpg"))])
f, q = (ort.InferenceSession(m).run(["output"], {"images": x})[0] for m in (model, out))
unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)
print(float((unit(f) * unit(q)).sum(axis=1).mean()))
"#;
        let out = Command::new(python)
            .args(["-c", script])
            .arg(&float_path)
            .arg(root)
            .arg(dir.path().join("ort_int8.onnx"))
            .output()
            .unwrap();
        common::assert_success(&out);
        let theirs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        eprintln!("ONNX Runtime's quantize_static: mean cosine {theirs}");
        let mean_cosine = ours["mean_cosine"].as_f64().unwrap();
        assert!(
            mean_cosine >= theirs - 0.02,
            "ours {mean_cosine}, theirs {theirs}"
        );
    }
    let wrecked = QuantizeOptions {
        method: Method::Percentile(1.0),
        calibration_images: 16,
        ..QuantizeOptions::new(root)
    };
    let Err(err) = quantize_export(float, &wrecked) else {
        panic!("a wrecked model was accepted");
    };
    let err = err.to_string();
    assert!(
        err.contains("not written") && err.contains("\"passed\":false"),
        "{err}"
    );
    let report = report_of(Err(reid::Error::InvalidInput(err)));
    eprintln!("wrecked: {report}");
    assert!(report["map_drop"].as_f64().unwrap() > 1.0, "{report}");
    assert!(report["mean_cosine"].as_f64().unwrap() < 0.9, "{report}");
    let lenient = QuantizeOptions {
        max_map_drop: 100.0,
        ..QuantizeOptions::new(root)
    };
    let (int8, _) = quantize_export(float, &lenient).unwrap();
    assert!(quantize_export(&int8, &lenient).is_err());
    for bad in [
        QuantizeOptions {
            calibration_images: 0,
            ..QuantizeOptions::new(root)
        },
        QuantizeOptions {
            max_map_drop: f64::NAN,
            ..QuantizeOptions::new(root)
        },
        QuantizeOptions::new(dir.path().join("absent")),
    ] {
        assert!(quantize_export(float, &bad).is_err(), "{bad:?}");
    }
}

/// An FP16 export of the trained model keeps its accuracy (checked as INT8's is), holds every
/// weight as float16, and runs through the extractor with float32 or float16 ends, the two
/// giving the same embeddings; a converted file is not converted again; precisions and
/// datasets that do not go together are refused.
#[test]
fn an_fp16_export_keeps_its_accuracy_with_float32_or_float16_ends() {
    if !common::ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Trained { root, float, .. } = trained();
    let (fp16, report) = quantize_export(float, &QuantizeOptions::fp16(root)).unwrap();
    eprintln!("{report:?}");
    assert_eq!(
        (report.precision.as_str(), report.method.as_str()),
        ("fp16", "none")
    );
    assert!(report.passed && report.map_drop.abs() <= 1.0, "{report:?}");
    assert!(
        report.mean_cosine > 0.9999 && report.min_cosine > 0.999,
        "{report:?}"
    );
    assert_eq!(report.checked_images, 102);
    let meta = reid::export::read_metadata(&fp16).unwrap();
    assert_eq!(meta["precision"], "fp16");
    let proto = ModelProto::parse_from_bytes(&fp16).unwrap();
    let (float32, float16) = (1, 10);
    assert!(
        proto
            .graph
            .initializer
            .iter()
            .all(|t| t.data_type != float32)
    );
    let elem_type = |info: &onnx_protobuf::ValueInfoProto| match &info.type_.value {
        Some(onnx_protobuf::type_proto::Value::TensorType(t)) => t.elem_type,
        _ => 0,
    };
    assert_eq!(elem_type(&proto.graph.input[0]), float32);
    assert!(quantize_export(&fp16, &QuantizeOptions::fp16(root)).is_err());

    let half_ends = QuantizeOptions::for_precision("fp16", true, Some(root.clone()))
        .unwrap()
        .unwrap();
    let (fp16_io, _) = quantize_export(float, &half_ends).unwrap();
    let proto = ModelProto::parse_from_bytes(&fp16_io).unwrap();
    assert_eq!(elem_type(&proto.graph.input[0]), float16);
    assert_eq!(elem_type(&proto.graph.output[0]), float16);
    let images: Vec<PathBuf> = std::fs::read_dir(root.join("market1501/query"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let paths: Vec<&Path> = images.iter().map(PathBuf::as_path).collect();
    let embed = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let options = reid::extractor::ExtractorOptions {
            engine: reid::extractor::Engine::OnnxRuntime,
            ..Default::default()
        };
        let extractor = reid::extractor::Extractor::new(&path, &options).unwrap();
        extractor.extract_files(&paths).unwrap()
    };
    let (ends32, ends16) = (embed("a.onnx", &fp16), embed("b.onnx", &fp16_io));
    let dim = ends32.len() / paths.len();
    for (a, b) in ends32.chunks(dim).zip(ends16.chunks(dim)) {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(dot / (norm(a) * norm(b)) > 0.9999);
    }

    let some = || Some(root.clone());
    for (precision, fp16_io, dataset) in [
        ("f32", false, some()),
        ("fp16", false, None),
        ("int8", false, None),
        ("int8", true, some()),
        ("f32", true, None),
        ("bf16", false, some()),
    ] {
        assert!(
            QuantizeOptions::for_precision(precision, fp16_io, dataset).is_err(),
            "{precision} {fp16_io}"
        );
    }
    assert!(
        QuantizeOptions::for_precision("f32", false, None)
            .unwrap()
            .is_none()
    );
}

/// `reid export --precision int8|fp16 --calibration ROOT` writes the checked model and prints
/// its report; one refused exits with an error and writes nothing.
#[test]
fn export_command_writes_an_int8_or_fp16_model_or_refuses_it() {
    if !common::ort_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Trained {
        root, checkpoint, ..
    } = trained();
    let export = |out: &Path, precision: &str, extra: &[&str]| {
        let mut args = vec![
            "export".to_string(),
            "--weights".into(),
            checkpoint.display().to_string(),
            "--height".into(),
            "64".into(),
            "--width".into(),
            "32".into(),
            "-o".into(),
            out.display().to_string(),
            "--precision".into(),
            precision.into(),
            "--calibration".into(),
            root.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Command::new(env!("CARGO_BIN_EXE_reid"))
            .args(&args)
            .output()
            .unwrap()
    };
    let good = dir.path().join("int8.onnx");
    let out = export(
        &good,
        "int8",
        &["--calibration-images", "32", "--max-map-drop", "100"],
    );
    common::assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("int8 (minmax calibration, 32 images): mAP"),
        "{text}"
    );
    let meta = reid::export::read_metadata(&std::fs::read(&good).unwrap()).unwrap();
    assert_eq!(meta["precision"], "int8");
    let refused = dir.path().join("refused.onnx");
    let out = export(&refused, "int8", &["--calibration-method", "percentile:1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not written"));
    assert!(!refused.exists());
    let out = export(&refused, "int8", &["--calibration-method", "entropy"]);
    assert!(!out.status.success());
    for (precision, extra) in [
        ("int8", &["--fp16-io"][..]),
        ("fp16", &["--calibration-images", "8"][..]),
    ] {
        assert!(!export(&refused, precision, extra).status.success());
    }
    assert!(!refused.exists());

    let fp16 = dir.path().join("fp16.onnx");
    let out = export(&fp16, "fp16", &["--fp16-io"]);
    common::assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("fp16: mAP"), "{text}");
    let meta = reid::export::read_metadata(&std::fs::read(&fp16).unwrap()).unwrap();
    assert_eq!(meta["precision"], "fp16");
}
