//! Running models on images: `extract`, `classify`, `actmap`.

use std::path::{Path, PathBuf};

use reid::formats::npy::write_npy;

use crate::ModelArgs;
use crate::progress::draw_progress;

/// Arguments of `extract`.
#[derive(clap::Args)]
pub struct ExtractArgs {
    /// The model: .onnx (ONNX Runtime, OpenVINO or Burn) or a checkpoint (Burn engine).
    #[arg(long)]
    pub model: PathBuf,
    /// onnxruntime, openvino or burn.
    #[arg(long, default_value = "onnxruntime")]
    pub engine: String,
    /// Architecture of a torchreid weight file (Burn engine).
    #[arg(long)]
    pub arch: Option<String>,
    /// Image files and directories.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output .npy.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Keep the raw (not L2-normalized) embeddings.
    #[arg(long)]
    pub raw: bool,
    /// Path of libonnxruntime (otherwise found automatically).
    #[arg(long)]
    pub ort_library: Option<PathBuf>,
    /// ONNX Runtime execution providers to ask for before the CPU, in order: cuda[:N],
    /// tensorrt[:N], openvino[:DEVICE] (repeatable); the one in use is printed.
    #[arg(long)]
    pub execution_provider: Vec<String>,
    /// Fail instead of running on the CPU when no --execution-provider can be used.
    #[arg(long, requires = "execution_provider")]
    pub require_provider: bool,
    /// Override the model's preprocessing: torchreid or openvino-bgr (needs --height and
    /// --width).
    #[arg(long, requires_all = ["height", "width"])]
    pub preprocessing: Option<String>,
    /// Input height for --preprocessing.
    #[arg(long)]
    pub height: Option<usize>,
    /// Input width for --preprocessing.
    #[arg(long)]
    pub width: Option<usize>,
}

impl ExtractArgs {
    /// Runs the command.
    pub fn run(self) -> reid::Result<()> {
        let Self {
            model,
            engine,
            arch,
            inputs,
            output,
            batch_size,
            raw,
            ort_library,
            execution_provider,
            require_provider,
            preprocessing,
            height,
            width,
        } = self;
        let preprocessing = match (preprocessing, height, width) {
            (Some(name), Some(h), Some(w)) => {
                Some(reid::preprocess::Preprocessing::named(&name, h, w)?)
            }
            _ => None,
        };
        let options = reid::extractor::ExtractorOptions {
            preprocessing,
            engine: engine.parse()?,
            arch: arch.map(|a| a.parse()).transpose()?,
            max_batch: batch_size,
            normalize: !raw,
            ort_library,
            providers: execution_provider
                .iter()
                .map(|p| p.parse())
                .collect::<reid::Result<_>>()?,
            require_provider,
            ..Default::default()
        };
        extract(&model, &options, &inputs, &output)
    }
}

/// Arguments of `classify`.
#[derive(clap::Args)]
pub struct ClassifyArgs {
    /// The model: .onnx export of a classifier (ONNX Runtime, OpenVINO or Burn) or a checkpoint (Burn).
    #[arg(long)]
    pub model: PathBuf,
    /// onnxruntime, openvino or burn.
    #[arg(long, default_value = "onnxruntime")]
    pub engine: String,
    /// Image files and directories.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Classes per image.
    #[arg(short = 'k', long, default_value_t = 5)]
    pub top_k: usize,
    /// Input height (with --width) when the model does not record its input size.
    #[arg(long, requires = "width")]
    pub height: Option<usize>,
    /// Input width.
    #[arg(long, requires = "height")]
    pub width: Option<usize>,
}

impl ClassifyArgs {
    /// Runs the command.
    pub fn run(self) -> reid::Result<()> {
        let Self {
            model,
            engine,
            inputs,
            top_k,
            height,
            width,
        } = self;
        let options = reid::extractor::ExtractorOptions {
            engine: engine.parse()?,
            preprocessing: height
                .zip(width)
                .map(|(h, w)| reid::preprocess::Preprocessing::torchreid(h, w)),
            ..Default::default()
        };
        let classifier = reid::classifier::Classifier::new(&model, &options)?;
        let files = reid::data::files::collect_images(&inputs)?;
        let predictions = classifier.classify_files(&files, top_k)?;
        let names = classifier.class_names();
        for (file, row) in files.iter().zip(predictions) {
            let shown: Vec<String> = row
                .iter()
                .map(|p| {
                    let name = names
                        .get(p.class)
                        .cloned()
                        .unwrap_or_else(|| p.class.to_string());
                    format!("{name} {:.3}", p.score)
                })
                .collect();
            println!("{}: {}", file.display(), shown.join(", "));
        }
        Ok(())
    }
}

/// Arguments of `actmap`.
#[derive(clap::Args)]
pub struct ActmapArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Input height.
    #[arg(long, default_value_t = 256)]
    pub height: usize,
    /// Input width.
    #[arg(long, default_value_t = 128)]
    pub width: usize,
    /// Output folder.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Image files or folders (walked in sorted order).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

impl ActmapArgs {
    /// Runs the command.
    pub fn run(self) -> reid::Result<()> {
        let Self {
            model,
            height,
            width,
            output,
            inputs,
        } = self;
        let device = reid::device::default_device();
        let model = model.load(&device)?;
        model.check_input_size(height, width)?;
        let files = reid::data::files::collect_images(&inputs)?;
        let preprocessing = reid::preprocess::Preprocessing::torchreid(height, width);
        let written =
            reid::actmap::write_actmaps(&model, &files, &preprocessing, &output, &device)?;
        println!("{} activation maps in {}", written.len(), output.display());
        Ok(())
    }
}

fn extract(
    model: &Path,
    options: &reid::extractor::ExtractorOptions,
    inputs: &[PathBuf],
    output: &Path,
) -> reid::Result<()> {
    use std::io::IsTerminal;
    let files = reid::data::files::collect_images(inputs)?;
    if files.is_empty() {
        return Err(reid::Error::InvalidInput("no image files found".into()));
    }
    let extractor = reid::extractor::Extractor::new(model, options)?;
    let progress = std::io::stderr().is_terminal();
    let mut features = Vec::with_capacity(files.len() * extractor.dim());
    let chunk = options.max_batch.max(1) * 8;
    for (i, part) in files.chunks(chunk).enumerate() {
        features.extend(extractor.extract_files(part).map_err(|e| match e {
            reid::Error::BadInput { index, reason } => {
                reid::Error::InvalidInput(format!("{}: {reason}", part[index].display()))
            }
            other => other,
        })?);
        if progress {
            let done = (i * chunk + part.len()).min(files.len());
            draw_progress(done, files.len(), "");
        }
    }
    if progress {
        eprintln!();
    }
    let array = reid::formats::npy::NpyArray::f32(vec![files.len(), extractor.dim()], features);
    write_npy(output, &array)?;
    let list: String = files.iter().map(|f| format!("{}\n", f.display())).collect();
    reid::formats::npy::write_atomically(&output.with_extension("txt"), list.as_bytes())?;
    println!(
        "{} images -> {} ({}-d, on {}) and {}",
        files.len(),
        output.display(),
        extractor.dim(),
        extractor.execution_provider(),
        output.with_extension("txt").display()
    );
    Ok(())
}
