//! FP16 and INT8 exports that must keep their retrieval accuracy. A float export is converted
//! to float16 (`export::fp16`) or quantized statically in ONNX's QDQ form (`export::qdq`) with
//! activation ranges calibrated on the user's own crops through ONNX Runtime, then checked
//! before it is handed back: the labelled query / gallery split is embedded by both models,
//! compared row by row (cosine) and scored (mAP, Rank-1), and a model that loses more than the
//! allowed mAP is refused with its report.

mod calibrate;

use std::path::{Path, PathBuf};

use onnx_protobuf::{Message, ModelProto};
use serde::Serialize;

use crate::data::Sample;
use crate::error::{Error, Result};
use crate::eval::{EvalOptions, Labels, Matrix, Metric, RankMetrics, evaluate};
use crate::export::{fp16, qdq};
use crate::extractor::{Engine, Extractor, ExtractorOptions};
use crate::preprocess::Preprocessing;
pub use calibrate::Method;

pub use crate::export::PRECISION;
/// Metadata key of a quantized export's [`Report`], as JSON.
pub const REPORT: &str = "quantization";

/// The reduced precision a float export is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// float16 weights and computation; with `float_io` the graph's input and output stay
    /// float32 (a cast at each end), otherwise they are float16 too.
    Fp16 {
        /// Keep a float32 input and output.
        float_io: bool,
    },
    /// INT8 static quantization (QDQ), its activation ranges calibrated.
    Int8,
}

impl Precision {
    /// The name of the precision (metadata, reports, the command line).
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp16 { .. } => "fp16",
            Precision::Int8 => "int8",
        }
    }
}

/// How to quantize and what the check allows.
#[derive(Debug, Clone)]
pub struct QuantizeOptions {
    /// A re-id dataset in Market-1501's layout (`reid eval --root` reads the same): its
    /// training images calibrate (its gallery when it has none), its query and gallery check.
    pub dataset: PathBuf,
    /// The precision converted to.
    pub precision: Precision,
    /// How activation ranges are found (INT8).
    pub method: Method,
    /// At most this many calibration images, spread evenly over the split (INT8).
    pub calibration_images: usize,
    /// The largest mAP loss accepted, in points (1 = one percentage point).
    pub max_map_drop: f64,
    /// The ONNX Runtime library (otherwise found as the Extractor finds it).
    pub ort_library: Option<PathBuf>,
}

impl QuantizeOptions {
    /// INT8 with min-max calibration on up to 256 images, at most 1 point of mAP lost.
    pub fn new(dataset: impl Into<PathBuf>) -> Self {
        Self {
            dataset: dataset.into(),
            precision: Precision::Int8,
            method: Method::MinMax,
            calibration_images: 256,
            max_map_drop: 1.0,
            ort_library: None,
        }
    }

    /// FP16 with a float32 input and output, at most 1 point of mAP lost.
    pub fn fp16(dataset: impl Into<PathBuf>) -> Self {
        Self {
            precision: Precision::Fp16 { float_io: true },
            ..Self::new(dataset)
        }
    }

    /// The options of an export at `precision` (`f32`, `fp16` or `int8`, as the command line
    /// and the C API name them) checked on `dataset`, with a float16 input and output when
    /// `fp16_io`: `None` for f32; an error for a dataset without a reduced precision, a reduced
    /// precision without one, or `fp16_io` with another precision than fp16.
    pub fn for_precision(
        precision: &str,
        fp16_io: bool,
        dataset: Option<PathBuf>,
    ) -> Result<Option<Self>> {
        if fp16_io && precision != "fp16" {
            return Err(Error::InvalidInput(format!(
                "a float16 input and output are for precision fp16, not {precision}"
            )));
        }
        match (precision, dataset) {
            ("f32", None) => Ok(None),
            ("f32", Some(_)) => Err(Error::InvalidInput(
                "a calibration / check dataset is for the fp16 and int8 precisions".into(),
            )),
            ("fp16", Some(dataset)) => Ok(Some(Self {
                precision: Precision::Fp16 { float_io: !fp16_io },
                ..Self::new(dataset)
            })),
            ("int8", Some(dataset)) => Ok(Some(Self::new(dataset))),
            ("fp16" | "int8", None) => Err(Error::InvalidInput(format!(
                "precision {precision} needs a calibration dataset (Market-1501's layout) to {} \
                 the model on",
                if precision == "int8" {
                    "calibrate and check"
                } else {
                    "check"
                }
            ))),
            (other, _) => Err(Error::InvalidInput(format!(
                "precision `{other}`: f32, fp16 or int8"
            ))),
        }
    }

    /// Refuses a number of images of 0 and a negative or non-finite allowed drop.
    pub fn validate(&self) -> Result<()> {
        if self.calibration_images == 0 {
            return Err(Error::InvalidInput(
                "calibration needs at least one image".into(),
            ));
        }
        if !(self.max_map_drop.is_finite() && self.max_map_drop >= 0.0) {
            return Err(Error::InvalidInput(format!(
                "max_map_drop {}: a number of mAP points, 0 or more",
                self.max_map_drop
            )));
        }
        self.method.validate()
    }
}

/// What the check found: the float and the converted model on the same query / gallery split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The precision converted to (`fp16`, `int8`).
    pub precision: String,
    /// The calibration method, as named on the command line (`none` for FP16).
    pub method: String,
    /// Images the ranges were calibrated on.
    pub calibration_images: usize,
    /// Query and gallery images embedded by both models.
    pub checked_images: usize,
    /// mAP of the float model, in %.
    pub f32_map: f64,
    /// mAP of the converted model, in %.
    pub quantized_map: f64,
    /// Rank-1 of the float model, in %.
    pub f32_rank1: f64,
    /// Rank-1 of the converted model, in %.
    pub quantized_rank1: f64,
    /// Cosine similarity of the two models' embeddings of one image: the mean over images.
    pub mean_cosine: f64,
    /// The same: the lowest.
    pub min_cosine: f64,
    /// The mAP lost, in points (negative: gained).
    pub map_drop: f64,
    /// The largest drop allowed.
    pub max_map_drop: f64,
    /// Whether the drop is within it.
    pub passed: bool,
}

/// The FP16 or INT8 model of the float export `float_onnx` (reid's, as `export_onnx` writes
/// it) with its check's report, or [`Error::InvalidInput`] carrying the report when it loses
/// more mAP than `options` allow.
pub fn quantize_export(float_onnx: &[u8], options: &QuantizeOptions) -> Result<(Vec<u8>, Report)> {
    options.validate()?;
    let mut proto = ModelProto::parse_from_bytes(float_onnx)
        .map_err(|e| Error::ModelFormat(format!("not an ONNX model: {e}")))?;
    let meta = crate::export::read_metadata(float_onnx)?;
    if meta.get(PRECISION).is_some_and(|p| p != "f32") {
        return Err(Error::InvalidInput(format!(
            "the model is {} already; quantize a float export",
            meta[PRECISION]
        )));
    }
    let preprocessing = Preprocessing::from_metadata(&meta).map_err(|e| {
        Error::InvalidInput(format!("not an export of reid (its preprocessing: {e})"))
    })?;
    let dataset = crate::data::load_dataset("market1501", &options.dataset)?;
    let pool = if dataset.train.is_empty() {
        &dataset.gallery
    } else {
        &dataset.train
    };
    let images = match options.precision {
        Precision::Int8 => spread(pool, options.calibration_images),
        Precision::Fp16 { .. } => Vec::new(),
    };
    let calibrates = options.precision == Precision::Int8;
    if (calibrates && images.is_empty()) || dataset.query.is_empty() || dataset.gallery.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{}: quantization needs calibration images and a query / gallery split",
            options.dataset.display()
        )));
    }

    qdq::fold_batch_norms(&mut proto)?;
    match options.precision {
        Precision::Fp16 { float_io } => fp16::to_fp16(&mut proto, float_io)?,
        Precision::Int8 => {
            let ranges = calibrate::ranges(&proto, &preprocessing, &images, options)?;
            qdq::insert_qdq(&mut proto, &ranges)?;
        }
    }
    let graph_bytes = serialize(&proto)?;

    let checked = [dataset.query.as_slice(), dataset.gallery.as_slice()].concat();
    let dir = tempfile_dir()?;
    let report = check(
        float_onnx,
        &graph_bytes,
        &dir,
        &checked,
        dataset.query.len(),
        options,
    );
    let _ = std::fs::remove_dir_all(&dir);
    let report = Report {
        calibration_images: images.len(),
        ..report?
    };

    // What the file is, and what produces its embeddings: a fingerprint of its own.
    let weights = crate::weights::fingerprint::of_bytes(&graph_bytes);
    let fingerprint = crate::weights::fingerprint::of_pipeline(
        &weights,
        &preprocessing,
        crate::weights::fingerprint::output_name(false),
    );
    let json = serde_json::to_string(&report).expect("plain data");
    crate::export::set_metadata(
        &mut proto,
        &[
            (PRECISION, options.precision.name().to_string()),
            (REPORT, json.clone()),
            (crate::export::WEIGHTS_FINGERPRINT, weights),
            (crate::export::FINGERPRINT, fingerprint),
        ],
    );
    if !report.passed {
        return Err(Error::InvalidInput(format!(
            "the {} model loses {:.2} mAP points, more than the {:.2} allowed; not written \
             (report: {json})",
            report.precision, report.map_drop, report.max_map_drop
        )));
    }
    Ok((serialize(&proto)?, report))
}

fn serialize(proto: &ModelProto) -> Result<Vec<u8>> {
    proto
        .write_to_bytes()
        .map_err(|e| Error::InvalidInput(format!("cannot serialize the ONNX model: {e}")))
}

/// Up to `n` of `samples`, evenly spread.
fn spread(samples: &[Sample], n: usize) -> Vec<Sample> {
    let take = n.min(samples.len());
    (0..take)
        .map(|i| samples[i * samples.len() / take].clone())
        .collect()
}

/// A fresh private folder for the two models the check loads.
fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "reid-quantize-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    Ok(dir)
}

/// Cosine similarity of two vectors (1 for two zero vectors: the same output).
fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot = |x: &[f32], y: &[f32]| {
        x.iter()
            .zip(y)
            .map(|(p, q)| *p as f64 * *q as f64)
            .sum::<f64>()
    };
    let norms = (dot(a, a) * dot(b, b)).sqrt();
    if norms == 0.0 { 1.0 } else { dot(a, b) / norms }
}

/// Embeds `images` (the first `queries` of them the query split) with both models and scores
/// both.
fn check(
    float_onnx: &[u8],
    quantized_onnx: &[u8],
    dir: &Path,
    images: &[Sample],
    queries: usize,
    options: &QuantizeOptions,
) -> Result<Report> {
    let embed = |name: &str, bytes: &[u8]| -> Result<Vec<f32>> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
        let extractor = Extractor::new(
            &path,
            &ExtractorOptions {
                engine: Engine::OnnxRuntime,
                ort_library: options.ort_library.clone(),
                ..Default::default()
            },
        )?;
        let paths: Vec<&Path> = images.iter().map(|s| s.path.as_path()).collect();
        extractor.extract_files(&paths)
    };
    let before = embed("f32.onnx", float_onnx)?;
    let after = embed("quantized.onnx", quantized_onnx)?;
    let dim = before.len() / images.len().max(1);
    if dim == 0 || after.len() != before.len() {
        return Err(Error::ModelFormat(
            "the float and the converted model do not give embeddings of one size".into(),
        ));
    }
    let cosines: Vec<f64> = before
        .chunks_exact(dim)
        .zip(after.chunks_exact(dim))
        .map(|(a, b)| cosine(a, b))
        .collect();
    let score = |vectors: &[f32]| -> Result<RankMetrics> {
        let (q, g) = vectors.split_at(queries * dim);
        let ids: Vec<i64> = images.iter().map(|s| s.pid).collect();
        let cams: Vec<i64> = images.iter().map(|s| s.camera as i64).collect();
        evaluate(
            &Matrix::new(queries, dim, q.to_vec())?,
            &Matrix::new(images.len() - queries, dim, g.to_vec())?,
            Labels {
                query_ids: &ids[..queries],
                gallery_ids: &ids[queries..],
                query_cams: &cams[..queries],
                gallery_cams: &cams[queries..],
            },
            EvalOptions {
                metric: Metric::Cosine,
                ..Default::default()
            },
        )
    };
    let (f32_metrics, quantized) = (score(&before)?, score(&after)?);
    let map_drop = 100.0 * (f32_metrics.map - quantized.map);
    Ok(Report {
        precision: options.precision.name().into(),
        method: match options.precision {
            Precision::Int8 => options.method.name(),
            Precision::Fp16 { .. } => "none".into(),
        },
        calibration_images: 0,
        checked_images: images.len(),
        f32_map: 100.0 * f32_metrics.map,
        quantized_map: 100.0 * quantized.map,
        f32_rank1: 100.0 * f32_metrics.rank(1),
        quantized_rank1: 100.0 * quantized.rank(1),
        mean_cosine: cosines.iter().sum::<f64>() / cosines.len().max(1) as f64,
        min_cosine: cosines.iter().copied().fold(f64::INFINITY, f64::min),
        map_drop,
        max_map_drop: options.max_map_drop,
        passed: map_drop <= options.max_map_drop,
    })
}
