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
    /// Preprocessing recorded in the metadata: torchreid (RGB, ImageNet mean/std) or
    /// openvino-bgr (BGR, 0-255).
    #[arg(long, default_value = "torchreid")]
    pub preprocessing: String,
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
        } = self;
        let device = reid::device::default_device();
        let model = model.load(&device)?;
        let preprocessing = reid::preprocess::Preprocessing::named(&preprocessing, height, width)?;
        let options = reid::export::ExportOptions {
            preprocessing,
            opset,
            normalize,
        };
        reid::export::export_onnx_file(&model, &options, &output)?;
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
