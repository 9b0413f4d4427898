//! The architectures and weight files: `models`, `info`, `convert`, `embed`.

use std::path::{Path, PathBuf};

use reid::device::parse_device;
use reid::formats::npy::{read_npy, write_npy};
use reid::models::{Arch, ReidModel};
use reid::weights::{StateDict, matching_architectures};

use crate::ModelArgs;

/// Arguments of `models`.
#[derive(clap::Args)]
pub struct ModelsArgs {
    /// Input height for the GFLOPs column.
    #[arg(long, default_value_t = 256)]
    pub height: usize,
    /// Input width for the GFLOPs column.
    #[arg(long, default_value_t = 128)]
    pub width: usize,
}

impl ModelsArgs {
    /// Runs the command.
    pub fn run(self) -> reid::Result<()> {
        let Self { height, width } = self;
        models(height, width)
    }
}

/// Arguments of `info`.
#[derive(clap::Args)]
pub struct InfoArgs {
    /// The weight file.
    pub file: PathBuf,
    /// Print only the summary, not every key.
    #[arg(long)]
    pub brief: bool,
}

impl InfoArgs {
    /// Runs the command.
    pub fn run(self) -> reid::Result<()> {
        let Self { file, brief } = self;
        info(&file, brief)
    }
}

/// Arguments of `convert`.
#[derive(clap::Args)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output .safetensors file.
    #[arg(short, long)]
    pub output: PathBuf,
}

impl ConvertArgs {
    /// Runs the command.
    pub fn run(self) -> reid::Result<()> {
        let Self { model, output } = self;
        let device = reid::device::default_device();
        let model = model.load(&device)?;
        reid::weights::save_torchreid_safetensors(&model, &output)?;
        println!("{} -> {}", model.arch, output.display());
        Ok(())
    }
}

/// Arguments of `embed`.
#[derive(clap::Args)]
pub struct EmbedArgs {
    /// Architecture (torchreid name); optional for the SDK's own checkpoints.
    #[arg(long)]
    pub arch: Option<String>,
    /// Weights: torchreid .pth / .pth.tar / .safetensors, or a reid checkpoint.
    #[arg(long)]
    pub weights: PathBuf,
    /// Input array [N, 3, H, W], float32, already normalized.
    #[arg(long)]
    pub input: PathBuf,
    /// Output array [N, D].
    #[arg(long, short)]
    pub output: PathBuf,
    /// Expected input height (checked against the array).
    #[arg(long)]
    pub height: Option<usize>,
    /// Expected input width (checked against the array).
    #[arg(long)]
    pub width: Option<usize>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Compute device: flex (CPU), wgpu[:N], cuda[:N].
    #[arg(long, default_value = "flex")]
    pub device: String,
}

impl EmbedArgs {
    /// Runs the command.
    pub fn run(self) -> reid::Result<()> {
        let Self {
            arch,
            weights,
            input,
            output,
            height,
            width,
            batch_size,
            device,
        } = self;
        let device = parse_device(&device)?;
        let arch = arch.map(|a| a.parse::<Arch>()).transpose()?;
        let model = crate::load_model(arch, &weights, &device)?;
        let array = read_npy(&input)?;
        if let Some(h) = height {
            check_dim(&array.shape, 2, h, "height")?;
        }
        if let Some(w) = width {
            check_dim(&array.shape, 3, w, "width")?;
        }
        let features = reid::models::embed::embed_array(&model, &array, batch_size, &device)?;
        write_npy(&output, &features)?;
        println!(
            "{}: {} images -> {} features of dimension {} ({})",
            model.arch,
            features.shape[0],
            output.display(),
            features.shape[1],
            weights.display()
        );
        Ok(())
    }
}

fn models(height: usize, width: usize) -> reid::Result<()> {
    let device = reid::device::default_device();
    println!(
        "{:<22} {:<10} {:>5} {:>9} {:>8}  description",
        "name", "input", "dim", "params", "GFLOPs"
    );
    for arch in Arch::ALL {
        let model = ReidModel::unloaded(arch, 1, &device);
        let (h, w) = arch.default_input();
        println!(
            "{:<22} {:<10} {:>5} {:>8.2}M {:>8.3}  {}",
            arch.name(),
            format!("{h}x{w}"),
            model.feature_dim(),
            model.num_backbone_params() as f64 / 1e6,
            model.macs(height, width) as f64 / 1e9,
            arch.description()
        );
    }
    Ok(())
}

fn info(file: &Path, brief: bool) -> reid::Result<()> {
    let device = reid::device::default_device();
    if let Ok(model) = reid::weights::load_checkpoint(file, &device) {
        println!("format: reid checkpoint (burnpack)");
        println!("architecture: {}", model.arch);
        println!("classes: {}", model.num_classes());
        println!("parameters: {}", model.num_backbone_params());
        return Ok(());
    }
    let dict = StateDict::read(file)?;
    println!("format: {}", dict.format);
    println!(
        "tensors: {} float, {} integer",
        dict.tensors.len(),
        dict.integer_tensors.len()
    );
    println!("values: {} (parameters and buffers)", dict.num_elements());
    if let Some(classifier) = dict.tensors.get("classifier.weight") {
        println!("classes: {}", classifier.shape[0]);
    }
    let matches = matching_architectures(&dict, &device);
    match matches.as_slice() {
        [] => println!("architecture: none of the model zoo matches"),
        found => println!(
            "architecture: {}",
            found
                .iter()
                .map(|a| a.name())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    if !brief {
        for (name, tensor) in &dict.tensors {
            println!("  {name} {:?}", tensor.shape);
        }
        for (name, shape) in &dict.integer_tensors {
            println!("  {name} {shape:?} (integer)");
        }
    }
    Ok(())
}

fn check_dim(shape: &[usize], axis: usize, want: usize, what: &str) -> reid::Result<()> {
    match shape.get(axis) {
        Some(&got) if got == want => Ok(()),
        _ => Err(reid::Error::InvalidInput(format!(
            "--{what} {want} does not match the input of shape {shape:?}"
        ))),
    }
}
