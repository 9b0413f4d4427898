//! The `reid` command-line tool. Each command group lives in its own file and is a few calls of
//! the library's public API; this file only parses the command line and dispatches.

mod dataset;
mod demo;
mod eval;
mod export;
mod extract;
mod gallery;
mod progress;
mod train;
mod weights;
mod zoo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "reid", version, about = "Object re-identification SDK")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The model a command works on: architecture and weights.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// Architecture (torchreid name); optional for the SDK's own checkpoints.
    #[arg(long)]
    pub arch: Option<String>,
    /// Weights: torchreid .pth / .pth.tar / .safetensors, or a reid checkpoint.
    #[arg(long)]
    pub weights: PathBuf,
}

impl ModelArgs {
    /// Loads the model on `device`.
    pub fn load(&self, device: &reid::device::Device) -> reid::Result<reid::models::ReidModel> {
        let arch = self
            .arch
            .as_deref()
            .map(str::parse::<reid::models::Arch>)
            .transpose()?;
        load_model(arch, &self.weights, device)
    }
}

/// The library's `load_any`, with its advice put in the CLI's terms (`--arch`).
pub fn load_model(
    arch: Option<reid::models::Arch>,
    weights: &std::path::Path,
    device: &reid::device::Device,
) -> reid::Result<reid::models::ReidModel> {
    reid::weights::load_any(arch, weights, device).map_err(|e| match e {
        reid::Error::InvalidInput(message) if arch.is_none() => {
            reid::Error::InvalidInput(message.replace("the `arch` option", "--arch NAME"))
        }
        other => other,
    })
}

#[derive(Subcommand)]
enum Command {
    /// The main demo: synthesize a re-id dataset, finetune osnet_x0_25 on the CPU, show mAP and
    /// Rank-1 before and after, export ONNX, re-extract the images and search a gallery.
    Demo(demo::DemoArgs),
    /// The published pretrained models by name: list them (`reid zoo`), fetch them into the
    /// cache (`reid zoo fetch NAME`).
    Zoo(zoo::ZooArgs),
    /// List the architectures of the model zoo.
    Models(weights::ModelsArgs),
    /// Run a prepared float32 NCHW batch (.npy) through a model in eval mode; write the
    /// features as a float32 [N, D] .npy.
    Embed(weights::EmbedArgs),
    /// Show what a weight file holds: format, keys, shapes, parameter count, architecture.
    Info(weights::InfoArgs),
    /// Write a model's weights under torchreid's state_dict names as .safetensors (what
    /// `safetensors.torch.load_file` + `load_state_dict` read on the PyTorch side).
    Convert(weights::ConvertArgs),
    /// Score query features against gallery features (Market-1501 protocol): CMC, mAP, mINP.
    Eval(eval::EvalArgs),
    /// Face verification on an LFW-style `pairs.txt`: embeds the pairs' images, scores each pair
    /// by cosine similarity, and prints the k-fold accuracy, the best threshold and ROC AUC.
    Verify(eval::VerifyArgs),
    /// Create, fill, search and inspect durable gallery files.
    #[command(subcommand)]
    Gallery(gallery::GalleryCommand),
    /// Find the score threshold that accepts a target share of different-identity pairs of a
    /// model's embeddings of a labelled set, and write it into the model's ONNX metadata
    /// (extractors of the file report it; `--gallery` also keeps it in a gallery).
    Calibrate(gallery::CalibrateArgs),
    /// Write a synthetic re-id dataset in the Market-1501 layout (deterministic from the seed).
    Synth(dataset::SynthArgs),
    /// Write a synthetic image-classification dataset: `train/` and `val/` ImageFolders, or
    /// with `--multilabel` deep-object-reid's multilabel JSON (`train.json`, `val.json`).
    SynthClasses(dataset::SynthClassesArgs),
    /// Print the summary of a dataset (identities, images, cameras per split).
    Dataset(dataset::DatasetArgs),
    /// Train (or resume) a re-id model from a YAML config with torchreid's keys; `key=value`
    /// arguments override config entries (e.g. `train.max_epoch=10 data.height=128`).
    Train(train::TrainArgs),
    /// Learning-rate range test: train briefly with a growing rate and suggest one. Writes
    /// `lr_find.csv` (rate, smoothed loss) into the config's save_dir.
    LrFind(train::LrFindArgs),
    /// Export a model to ONNX (input `images`, output `output`, dynamic batch).
    Export(export::ExportArgs),
    /// Embed image files (directories are walked in sorted order) into a float32 [N, D] .npy,
    /// with the file list beside it (`.txt`).
    Extract(extract::ExtractArgs),
    /// Classify image files (directories are walked in sorted order) with a classification
    /// model: the top-k classes with their probabilities, one line per image.
    Classify(extract::ClassifyArgs),
    /// Activation maps: for each image a PNG of the input, where the model's last feature maps
    /// are strong (jet heat map), and the two blended (torchreid's `visualize_actmap`).
    Actmap(extract::ActmapArgs),
}

// Training and the Burn engine free activation-sized blocks on every step: keep them for reuse.
#[global_allocator]
static ALLOCATOR: reid::allocator::ReusingAllocator =
    reid::allocator::ReusingAllocator::new(reid::allocator::DEFAULT_CAPACITY);

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let result = match Cli::parse().command {
        Command::Demo(args) => args.run(),
        Command::Zoo(args) => args.run(),
        Command::Models(args) => args.run(),
        Command::Embed(args) => args.run(),
        Command::Info(args) => args.run(),
        Command::Convert(args) => args.run(),
        Command::Eval(args) => args.run(),
        Command::Verify(args) => args.run(),
        Command::Gallery(command) => command.run(),
        Command::Synth(args) => args.run(),
        Command::SynthClasses(args) => args.run(),
        Command::Dataset(args) => args.run(),
        Command::Train(args) => args.run(),
        Command::LrFind(args) => args.run(),
        Command::Export(args) => args.run(),
        Command::Calibrate(args) => args.run(),
        Command::Extract(args) => args.run(),
        Command::Classify(args) => args.run(),
        Command::Actmap(args) => args.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
