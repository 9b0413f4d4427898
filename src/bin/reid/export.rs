//! `export`: a model to ONNX.

use std::path::PathBuf;

use crate::ModelArgs;

/// Arguments of `export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output .onnx file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Input height.
    #[arg(long, default_value_t = 256)]
    pub height: usize,
    /// Input width.
    #[arg(long, default_value_t = 128)]
    pub width: usize,
    /// ONNX opset (13–21).
    #[arg(long, default_value_t = reid::export::DEFAULT_OPSET)]
    pub opset: i64,
    /// L2-normalize the embedding inside the graph.
    #[arg(long)]
    pub normalize: bool,
    /// What a float input holds: torchreid (RGB, ImageNet mean/std) or openvino-bgr (BGR,
    /// 0-255); the graph converts it to the model's own input.
    #[arg(long, default_value = "torchreid")]
    pub preprocessing: String,
    /// The graph's input: float (prepared as --preprocessing says), or raw pixels, uint8-rgb
    /// or uint8-bgr, that the graph casts and normalizes itself.
    #[arg(long, default_value = "float")]
    pub input: String,
    /// Layout of a uint8 input: nchw or nhwc.
    #[arg(long, default_value = "nchw")]
    pub layout: String,
    /// Numeric precision: f32, fp16 (float16 weights and computation) or int8 (static QDQ
    /// quantization, calibrated on --calibration); a reduced precision is checked on
    /// --calibration's query / gallery split and refused if it loses more than --max-map-drop
    /// mAP points there.
    #[arg(long, default_value = "f32")]
    pub precision: String,
    /// For fp16 and int8: a re-id dataset in Market-1501's layout (as `reid eval --root`
    /// reads it): its training images calibrate (int8), its query / gallery split checks.
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// For fp16: the graph's input and output are float16 too (by default they stay float32).
    #[arg(long)]
    pub fp16_io: bool,
    /// For int8: how activation ranges are found: minmax (the default), percentile (99.99 %
    /// of the values kept) or percentile:P.
    #[arg(long, requires = "calibration")]
    pub calibration_method: Option<String>,
    /// For int8: at most this many calibration images (default 256).
    #[arg(long, requires = "calibration")]
    pub calibration_images: Option<usize>,
    /// For fp16 and int8: the largest mAP loss accepted, in points (default 1).
    #[arg(long, requires = "calibration")]
    pub max_map_drop: Option<f64>,
    /// For fp16 and int8: the ONNX Runtime library the calibration and the check run on
    /// (otherwise found automatically).
    #[arg(long, requires = "calibration")]
    pub ort_library: Option<PathBuf>,
}

impl ExportArgs {
    /// Runs the command.
    pub fn run(self) -> reid::Result<()> {
        let Self {
            model,
            output,
            height,
            width,
            opset,
            normalize,
            preprocessing,
            input,
            layout,
            precision,
            calibration,
            fp16_io,
            calibration_method,
            calibration_images,
            max_map_drop,
            ort_library,
        } = self;
        if precision == "fp16" && (calibration_method.is_some() || calibration_images.is_some()) {
            return Err(reid::Error::InvalidInput(
                "--calibration-method and --calibration-images are for --precision int8".into(),
            ));
        }
        let mut quantize =
            reid::quantize::QuantizeOptions::for_precision(&precision, fp16_io, calibration)?;
        if let Some(q) = &mut quantize {
            if let Some(method) = calibration_method {
                q.method = reid::quantize::Method::parse(&method)?;
            }
            if let Some(n) = calibration_images {
                q.calibration_images = n;
            }
            if let Some(drop) = max_map_drop {
                q.max_map_drop = drop;
            }
            q.ort_library = ort_library;
            q.validate()?;
        }
        let preprocessing = reid::preprocess::Preprocessing::for_graph_input(
            &preprocessing,
            &input,
            &layout,
            height,
            width,
        )?;
        let device = reid::device::default_device();
        let model = model.load(&device)?;
        let options = reid::export::ExportOptions {
            preprocessing,
            opset,
            normalize,
        };
        match &quantize {
            None => reid::export::export_onnx_file(&model, &options, &output)?,
            Some(q) => {
                let float = reid::export::export_onnx(&model, &options)?;
                let (bytes, report) = reid::quantize::quantize_export(&float, q)?;
                reid::formats::npy::write_atomically(&output, &bytes)?;
                let what = match q.precision {
                    reid::quantize::Precision::Int8 => format!(
                        "int8 ({} calibration, {} images)",
                        report.method, report.calibration_images
                    ),
                    reid::quantize::Precision::Fp16 { .. } => "fp16".into(),
                };
                println!(
                    "{what}: mAP {:.2}% -> {:.2}% ({:+.2} points, at most {} allowed), Rank-1 \
                     {:.2}% -> {:.2}%, cosine to f32 mean {:.4} / min {:.4} on {} images",
                    report.f32_map,
                    report.quantized_map,
                    -report.map_drop,
                    report.max_map_drop,
                    report.f32_rank1,
                    report.quantized_rank1,
                    report.mean_cosine,
                    report.min_cosine,
                    report.checked_images
                );
            }
        }
        println!(
            "{} -> {} ({height}x{width}, opset {opset}, {}-d{})",
            model.arch,
            output.display(),
            model.feature_dim(),
            if normalize { ", normalized" } else { "" }
        );
        Ok(())
    }
}
