//! The `reid` command-line tool: model zoo, weight inspection and reference embedding.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use reid::device::parse_device;
use reid::models::{Arch, ReidModel};
use reid::npy::{read_npy, write_npy};
use reid::weights::{StateDict, load_any, matching_architectures};

#[derive(Parser)]
#[command(name = "reid", version, about = "Object re-identification SDK")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The model a command works on: architecture and weights.
#[derive(clap::Args)]
struct ModelArgs {
    /// Architecture (torchreid name); optional for the SDK's own checkpoints.
    #[arg(long)]
    arch: Option<String>,
    /// Weights: torchreid .pth / .pth.tar / .safetensors, or a reid checkpoint.
    #[arg(long)]
    weights: PathBuf,
}

impl ModelArgs {
    fn load(&self, device: &reid::device::Device) -> reid::Result<reid::models::ReidModel> {
        let arch = self.arch.as_deref().map(str::parse::<Arch>).transpose()?;
        load_any(arch, &self.weights, device)
    }
}

#[derive(Subcommand)]
enum Command {
    /// List the architectures of the model zoo.
    Models {
        /// Input height for the GFLOPs column.
        #[arg(long, default_value_t = 256)]
        height: usize,
        /// Input width for the GFLOPs column.
        #[arg(long, default_value_t = 128)]
        width: usize,
    },
    /// Run a prepared float32 NCHW batch (.npy) through a model in eval mode; write the
    /// features as a float32 [N, D] .npy.
    Embed {
        /// Architecture (torchreid name); optional for the SDK's own checkpoints.
        #[arg(long)]
        arch: Option<String>,
        /// Weights: torchreid .pth / .pth.tar / .safetensors, or a reid checkpoint.
        #[arg(long)]
        weights: PathBuf,
        /// Input array [N, 3, H, W], float32, already normalized.
        #[arg(long)]
        input: PathBuf,
        /// Output array [N, D].
        #[arg(long, short)]
        output: PathBuf,
        /// Expected input height (checked against the array).
        #[arg(long)]
        height: Option<usize>,
        /// Expected input width (checked against the array).
        #[arg(long)]
        width: Option<usize>,
        /// Images per forward pass.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Compute device: flex (CPU), wgpu[:N], cuda[:N].
        #[arg(long, default_value = "flex")]
        device: String,
    },
    /// Score query features against gallery features (Market-1501 protocol): CMC, mAP, mINP.
    Eval {
        /// .npz with torchreid's names: qf, gf, q_pids, g_pids, q_camids, g_camids.
        #[arg(long, required_unless_present = "weights")]
        features: Option<PathBuf>,
        /// Evaluate these weights (reid checkpoint or torchreid file) on the config's target
        /// datasets instead of a features file.
        #[arg(long, conflicts_with = "features")]
        weights: Option<PathBuf>,
        /// YAML config for `--weights` (model, input size, targets, metric).
        #[arg(long, requires = "weights")]
        config: Option<PathBuf>,
        /// Dataset root for `--weights` (overrides `data.root`).
        #[arg(long, requires = "weights")]
        root: Option<PathBuf>,
        /// cosine or euclidean (squared, as torchreid); default cosine, or the config's
        /// `test.dist_metric` with `--weights`.
        #[arg(long)]
        metric: Option<String>,
        /// Apply k-reciprocal re-ranking (k1 = 20, k2 = 6, lambda = 0.3).
        #[arg(long)]
        rerank: bool,
        /// CUHK03 single-gallery-shot CMC (expected value over the random draws).
        #[arg(long)]
        cuhk03: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// With `--weights`: write each query's ranked matches as a PNG into this folder
        /// (green frame: same identity, red: another).
        #[arg(long, requires = "weights")]
        visualize: Option<PathBuf>,
        /// Matches per query in the `--visualize` pictures.
        #[arg(long, default_value_t = 10, requires = "visualize")]
        topk: usize,
        /// Config overrides for `--weights`: `section.key=value`.
        overrides: Vec<String>,
    },
    /// Create, fill, search and inspect durable gallery files.
    #[command(subcommand)]
    Gallery(GalleryCommand),
    /// Write a synthetic re-id dataset in the Market-1501 layout (deterministic from the seed).
    Synth {
        /// Output folder (must not hold a dataset yet); name it `market1501` to use it from
        /// torchreid with the parent as root.
        out: PathBuf,
        /// Identities (half train, half test).
        #[arg(long, default_value_t = 200)]
        ids: usize,
        /// Cameras (2-6).
        #[arg(long, default_value_t = 6)]
        cameras: usize,
        /// Most images of an identity per camera.
        #[arg(long, default_value_t = 4)]
        images_per_camera: usize,
        /// Gallery distractors (pid 0).
        #[arg(long, default_value_t = 100)]
        distractors: usize,
        /// Image height.
        #[arg(long, default_value_t = 128)]
        height: usize,
        /// Image width.
        #[arg(long, default_value_t = 64)]
        width: usize,
        /// Random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Write a synthetic image-classification dataset: `train/` and `val/` ImageFolders, or
    /// with `--multilabel` deep-object-reid's multilabel JSON (`train.json`, `val.json`).
    SynthClasses {
        /// Output folder (must not hold a dataset yet).
        out: PathBuf,
        /// Classes (2-48).
        #[arg(long, default_value_t = 10)]
        classes: usize,
        /// Training images per class.
        #[arg(long, default_value_t = 40)]
        train_per_class: usize,
        /// Validation images per class.
        #[arg(long, default_value_t = 10)]
        val_per_class: usize,
        /// Square image side.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Several objects per image, each labelled.
        #[arg(long)]
        multilabel: bool,
        /// Most objects in a multi-label image (1-4).
        #[arg(long, default_value_t = 3)]
        max_labels: usize,
        /// Random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Train (or resume) a re-id model from a YAML config with torchreid's keys; `key=value`
    /// arguments override config entries (e.g. `train.max_epoch=10 data.height=128`).
    Train {
        /// YAML config (torchreid / deep-object-reid key names); defaults when absent.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Dataset root (overrides `data.root`).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Overrides: `section.key=value`.
        overrides: Vec<String>,
    },
    /// Learning-rate range test: train briefly with a growing rate and suggest one. Writes
    /// `lr_find.csv` (rate, smoothed loss) into the config's save_dir.
    LrFind {
        /// YAML config (as for `train`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Dataset root (overrides `data.root`).
        #[arg(long)]
        root: Option<PathBuf>,
        /// First rate.
        #[arg(long, default_value_t = 1e-6)]
        min_lr: f64,
        /// Last rate.
        #[arg(long, default_value_t = 1.0)]
        max_lr: f64,
        /// Steps.
        #[arg(long, default_value_t = 100)]
        steps: usize,
        /// Overrides: `section.key=value`.
        overrides: Vec<String>,
    },
    /// Print the summary of a dataset (identities, images, cameras per split).
    Dataset {
        /// Dataset name: market1501, dukemtmcreid, msmt17, cuhk03 (_labeled, _classic),
        /// viper, grid, cuhk01, prid, ilids, sensereid, folders.
        name: String,
        /// Root folder (as torchreid's `--root`).
        #[arg(long)]
        root: PathBuf,
        /// Split of the datasets with several (torchreid's `split_id`).
        #[arg(long, default_value_t = 0)]
        split_id: usize,
    },
    /// Export a model to ONNX (input `images`, output `output`, dynamic batch).
    Export {
        #[command(flatten)]
        model: ModelArgs,
        /// Output .onnx file.
        #[arg(short, long)]
        output: PathBuf,
        /// Input height.
        #[arg(long, default_value_t = 256)]
        height: usize,
        /// Input width.
        #[arg(long, default_value_t = 128)]
        width: usize,
        /// ONNX opset (13–21).
        #[arg(long, default_value_t = 17)]
        opset: i64,
        /// L2-normalize the embedding inside the graph.
        #[arg(long)]
        normalize: bool,
        /// Preprocessing recorded in the metadata: torchreid (RGB, ImageNet mean/std) or
        /// openvino-bgr (BGR, 0-255).
        #[arg(long, default_value = "torchreid")]
        preprocessing: String,
    },
    /// Activation maps: for each image a PNG of the input, where the model's last feature maps
    /// are strong (jet heat map), and the two blended (torchreid's `visualize_actmap`).
    Actmap {
        #[command(flatten)]
        model: ModelArgs,
        /// Input height.
        #[arg(long, default_value_t = 256)]
        height: usize,
        /// Input width.
        #[arg(long, default_value_t = 128)]
        width: usize,
        /// Output folder.
        #[arg(short, long)]
        output: PathBuf,
        /// Image files or folders (walked in sorted order).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Write a model's weights under torchreid's state_dict names as .safetensors (what
    /// `safetensors.torch.load_file` + `load_state_dict` read on the PyTorch side).
    Convert {
        #[command(flatten)]
        model: ModelArgs,
        /// Output .safetensors file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Embed image files (directories are walked in sorted order) into a float32 [N, D] .npy,
    /// with the file list beside it (`.txt`).
    Extract {
        /// The model: .onnx (either engine) or a checkpoint (Burn engine).
        #[arg(long)]
        model: PathBuf,
        /// onnxruntime or burn.
        #[arg(long, default_value = "onnxruntime")]
        engine: String,
        /// Architecture of a torchreid weight file (Burn engine).
        #[arg(long)]
        arch: Option<String>,
        /// Image files and directories.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output .npy.
        #[arg(short, long)]
        output: PathBuf,
        /// Images per forward pass.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Keep the raw (not L2-normalized) embeddings.
        #[arg(long)]
        raw: bool,
        /// Path of libonnxruntime (otherwise found automatically).
        #[arg(long)]
        ort_library: Option<PathBuf>,
        /// Override the model's preprocessing: torchreid or openvino-bgr (needs --height and
        /// --width).
        #[arg(long, requires_all = ["height", "width"])]
        preprocessing: Option<String>,
        /// Input height for --preprocessing.
        #[arg(long)]
        height: Option<usize>,
        /// Input width for --preprocessing.
        #[arg(long)]
        width: Option<usize>,
    },
    /// Classify image files (directories are walked in sorted order) with a classification
    /// model: the top-k classes with their probabilities, one line per image.
    Classify {
        /// The model: .onnx export of a classifier (either engine) or a checkpoint (Burn).
        #[arg(long)]
        model: PathBuf,
        /// onnxruntime or burn.
        #[arg(long, default_value = "onnxruntime")]
        engine: String,
        /// Image files and directories.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Classes per image.
        #[arg(short = 'k', long, default_value_t = 5)]
        top_k: usize,
        /// Input height (with --width) when the model does not record its input size.
        #[arg(long, requires = "width")]
        height: Option<usize>,
        /// Input width.
        #[arg(long, requires = "height")]
        width: Option<usize>,
    },
    /// Face verification on an LFW-style `pairs.txt`: embeds the pairs' images, scores each pair
    /// by cosine similarity, and prints the k-fold accuracy, the best threshold and ROC AUC.
    Verify {
        /// The embedding model: .onnx (either engine) or a checkpoint (Burn engine).
        #[arg(long)]
        model: PathBuf,
        /// onnxruntime or burn.
        #[arg(long, default_value = "onnxruntime")]
        engine: String,
        /// LFW's `pairs.txt` (`name i j` / `name1 i name2 j` lines).
        #[arg(long)]
        pairs: PathBuf,
        /// The image root (`ROOT/name/name_000i.jpg`).
        #[arg(long)]
        root: PathBuf,
        /// Cross-validation folds.
        #[arg(long, default_value_t = 10)]
        folds: usize,
    },
    /// Show what a weight file holds: format, keys, shapes, parameter count, architecture.
    Info {
        /// The weight file.
        file: PathBuf,
        /// Print only the summary, not every key.
        #[arg(long)]
        brief: bool,
    },
}

#[derive(Subcommand)]
enum GalleryCommand {
    /// Create an empty gallery file.
    Create {
        /// The new file.
        file: PathBuf,
        /// Embedding dimension.
        #[arg(long)]
        dim: usize,
        /// cosine or euclidean.
        #[arg(long, default_value = "cosine")]
        metric: String,
    },
    /// Add the rows of a float32 [N, D] .npy with their labels (one transaction).
    Add {
        /// The gallery file.
        file: PathBuf,
        /// Embeddings [N, D].
        #[arg(long)]
        vectors: PathBuf,
        /// Identity of each row, integer [N].
        #[arg(long)]
        identities: PathBuf,
        /// Camera of each row, integer [N] (default: all 0).
        #[arg(long)]
        cameras: Option<PathBuf>,
        /// Id of each row, integer [N] (default: assigned).
        #[arg(long)]
        ids: Option<PathBuf>,
    },
    /// Search the gallery for each row of a float32 [Q, D] .npy.
    Search {
        /// The gallery file.
        file: PathBuf,
        /// Queries [Q, D].
        #[arg(long)]
        queries: PathBuf,
        /// Results per query.
        #[arg(short, default_value_t = 10)]
        k: usize,
        /// Minimum similarity (cosine) or maximum distance (euclidean).
        #[arg(long)]
        min_score: Option<f32>,
        /// Only the best entry of each identity.
        #[arg(long)]
        group: bool,
        /// Skip entries of this camera.
        #[arg(long)]
        exclude_camera: Option<i32>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove one entry or a whole identity.
    Remove {
        /// The gallery file.
        file: PathBuf,
        /// Entry id.
        #[arg(
            long,
            conflicts_with = "identity",
            required_unless_present = "identity"
        )]
        id: Option<u64>,
        /// Identity label.
        #[arg(long)]
        identity: Option<u64>,
    },
    /// Entries, identities, cameras, dimension and metric of a gallery file.
    Stats {
        /// The gallery file.
        file: PathBuf,
    },
    /// Write the gallery as .npz (vectors, ids, identities, cameras) for Python / faiss.
    Export {
        /// The gallery file.
        file: PathBuf,
        /// Output .npz.
        #[arg(short, long)]
        output: PathBuf,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> reid::Result<()> {
    match cli.command {
        Command::Models { height, width } => models(height, width),
        Command::Embed {
            arch,
            weights,
            input,
            output,
            height,
            width,
            batch_size,
            device,
        } => {
            let device = parse_device(&device)?;
            let arch = arch.map(|a| a.parse::<Arch>()).transpose()?;
            let model = load_any(arch, &weights, &device)?;
            let array = read_npy(&input)?;
            if let Some(h) = height {
                check_dim(&array.shape, 2, h, "height")?;
            }
            if let Some(w) = width {
                check_dim(&array.shape, 3, w, "width")?;
            }
            let features = reid::embed::embed_array(&model, &array, batch_size, &device)?;
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
        Command::Info { file, brief } => info(&file, brief),
        Command::Gallery(command) => gallery(command),
        Command::Extract {
            model,
            engine,
            arch,
            inputs,
            output,
            batch_size,
            raw,
            ort_library,
            preprocessing,
            height,
            width,
        } => {
            let preprocessing = match (preprocessing, height, width) {
                (Some(name), Some(h), Some(w)) => Some(named_preprocessing(&name, h, w)?),
                _ => None,
            };
            let options = reid::infer::ExtractorOptions {
                preprocessing,
                engine: engine.parse()?,
                arch: arch.map(|a| a.parse()).transpose()?,
                max_batch: batch_size,
                normalize: !raw,
                ort_library,
                ..Default::default()
            };
            extract(&model, &options, &inputs, &output)
        }
        Command::Verify {
            model,
            engine,
            pairs,
            root,
            folds,
        } => {
            let pairs = reid::eval::verification::read_lfw_pairs(&pairs, &root)?;
            let options = reid::infer::ExtractorOptions {
                engine: engine.parse()?,
                ..Default::default()
            };
            let extractor = reid::infer::Extractor::new(&model, &options)?;
            let report = reid::eval::verification::verify_pairs(&extractor, &pairs, folds)?;
            println!(
                "{} pairs, {folds} folds: accuracy {:.2}% ± {:.2}, best threshold {:.4}, ROC AUC {:.4}",
                pairs.len(),
                report.accuracy * 100.0,
                report.accuracy_std * 100.0,
                report.best_threshold,
                report.auc
            );
            Ok(())
        }
        Command::Classify {
            model,
            engine,
            inputs,
            top_k,
            height,
            width,
        } => {
            let options = reid::infer::ExtractorOptions {
                engine: engine.parse()?,
                preprocessing: height
                    .zip(width)
                    .map(|(h, w)| reid::preprocess::Preprocessing::torchreid(h, w)),
                ..Default::default()
            };
            let classifier = reid::infer::Classifier::new(&model, &options)?;
            let files = collect_images(&inputs)?;
            let predictions = classifier.classify_files(&files, top_k.max(1))?;
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
        Command::Export {
            model,
            output,
            height,
            width,
            opset,
            normalize,
            preprocessing,
        } => {
            let device = reid::device::default_device();
            let model = model.load(&device)?;
            let preprocessing = named_preprocessing(&preprocessing, height, width)?;
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
        Command::Actmap {
            model,
            height,
            width,
            output,
            inputs,
        } => {
            let device = reid::device::default_device();
            let model = model.load(&device)?;
            model.check_input_size(height, width)?;
            let files = collect_images(&inputs)?;
            let preprocessing = reid::preprocess::Preprocessing::torchreid(height, width);
            let written =
                reid::actmap::write_actmaps(&model, &files, &preprocessing, &output, &device)?;
            println!("{} activation maps in {}", written.len(), output.display());
            Ok(())
        }
        Command::Convert { model, output } => {
            let device = reid::device::default_device();
            let model = model.load(&device)?;
            reid::weights::save_torchreid_safetensors(&model, &output)?;
            println!("{} -> {}", model.arch, output.display());
            Ok(())
        }
        Command::Synth {
            out,
            ids,
            cameras,
            images_per_camera,
            distractors,
            height,
            width,
            seed,
        } => {
            let options = reid::data::SynthOptions {
                ids,
                cameras,
                max_images_per_camera: images_per_camera,
                distractors,
                height,
                width,
                seed,
            };
            let written = reid::data::synthesize(&out, &options)?;
            println!(
                "{}: {} train, {} query, {} gallery images ({ids} identities, {cameras} cameras, seed {seed})",
                out.display(),
                written.train,
                written.query,
                written.gallery
            );
            Ok(())
        }
        Command::SynthClasses {
            out,
            classes,
            train_per_class,
            val_per_class,
            size,
            multilabel,
            max_labels,
            seed,
        } => {
            let options = reid::data::synth::ClassSynthOptions {
                classes,
                train_per_class,
                val_per_class,
                size,
                multilabel,
                max_labels,
                seed,
            };
            let written = reid::data::synth::synthesize_classes(&out, &options)?;
            println!(
                "{}: {} train, {} val images ({classes} classes{}, seed {seed})",
                out.display(),
                written.train,
                written.val,
                if multilabel { ", multi-label" } else { "" }
            );
            Ok(())
        }
        Command::Train {
            config,
            root,
            mut overrides,
        } => {
            if let Some(root) = root {
                overrides.push(format!("data.root={}", root.display()));
            }
            let config = reid::config::load_train_config(config.as_deref(), &overrides)?;
            run_training(&config)
        }
        Command::LrFind {
            config,
            root,
            min_lr,
            max_lr,
            steps,
            mut overrides,
        } => {
            if let Some(root) = root {
                overrides.push(format!("data.root={}", root.display()));
            }
            let config = reid::config::load_train_config(config.as_deref(), &overrides)?;
            let options = reid::train::lr_find::LrFindOptions {
                min_lr,
                max_lr,
                steps,
            };
            let report =
                reid::train::lr_find::lr_find(&config, &options, &mut |step, lr, loss| {
                    if step % 10 == 0 {
                        println!("step {step}/{steps}: lr {lr:.2e}, loss {loss:.4}");
                    }
                    true
                })?;
            std::fs::create_dir_all(&config.save_dir)
                .map_err(|e| reid::Error::io(&config.save_dir, e))?;
            let csv: String = std::iter::once("lr,loss\n".to_string())
                .chain(
                    report
                        .lrs
                        .iter()
                        .zip(&report.losses)
                        .map(|(l, v)| format!("{l},{v}\n")),
                )
                .collect();
            let path = config.save_dir.join("lr_find.csv");
            reid::npy::write_atomically(&path, csv.as_bytes())?;
            if report.diverged {
                println!("the loss diverged after {} steps", report.lrs.len());
            }
            println!(
                "suggested learning rate: {:.2e} (curve: {})",
                report.suggestion,
                path.display()
            );
            Ok(())
        }
        Command::Dataset {
            name,
            root,
            split_id,
        } => {
            let dataset = reid::data::load_dataset_split(&name, &root, split_id)?;
            print!("{}", dataset.summary());
            Ok(())
        }
        Command::Eval {
            features,
            weights,
            config,
            root,
            metric,
            rerank,
            cuhk03,
            json,
            visualize,
            topk,
            mut overrides,
        } => match (features, weights) {
            (Some(features), _) => eval(
                &features,
                metric.as_deref().unwrap_or("cosine"),
                rerank,
                cuhk03,
                json,
            ),
            (None, Some(weights)) => {
                if let Some(root) = root {
                    overrides.push(format!("data.root={}", root.display()));
                }
                let config = reid::config::load_train_config(config.as_deref(), &overrides)?;
                let options = WeightsEval {
                    metric: metric.as_deref(),
                    rerank,
                    cuhk03,
                    json,
                    visualize: visualize.as_deref(),
                    topk,
                };
                eval_weights(&config, &weights, &options)
            }
            (None, None) => unreachable!("clap requires --features or --weights"),
        },
    }
}

fn check_dim(shape: &[usize], axis: usize, want: usize, what: &str) -> reid::Result<()> {
    match shape.get(axis) {
        Some(&got) if got == want => Ok(()),
        _ => Err(reid::Error::InvalidInput(format!(
            "--{what} {want} does not match the input of shape {shape:?}"
        ))),
    }
}

fn models(height: usize, width: usize) -> reid::Result<()> {
    let device = reid::device::default_device();
    println!(
        "{:<22} {:<10} {:>5} {:>9} {:>8}  description",
        "name", "input", "dim", "params", "GFLOPs"
    );
    for arch in Arch::ALL {
        let model = ReidModel::new(arch, 1, &device);
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

fn info(file: &std::path::Path, brief: bool) -> reid::Result<()> {
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

fn eval(
    path: &std::path::Path,
    metric: &str,
    rerank: bool,
    cuhk03: bool,
    json: bool,
) -> reid::Result<()> {
    use reid::eval::{EvalOptions, Labels, Matrix, RerankParams, evaluate};
    let arrays = reid::npy::read_npz(path)?;
    let get = |name: &str| {
        arrays.get(name).ok_or_else(|| {
            reid::Error::InvalidInput(format!("{} has no array `{name}`", path.display()))
        })
    };
    let matrix = |name: &str| -> reid::Result<Matrix> {
        let a = get(name)?;
        match a.shape[..] {
            [rows, cols] => Matrix::new(rows, cols, a.to_f32()),
            _ => Err(reid::Error::InvalidInput(format!(
                "`{name}` must be 2-D, not {:?}",
                a.shape
            ))),
        }
    };
    let (qf, gf) = (matrix("qf")?, matrix("gf")?);
    let (q_ids, g_ids) = (get("q_pids")?.to_i64()?, get("g_pids")?.to_i64()?);
    let (q_cams, g_cams) = (get("q_camids")?.to_i64()?, get("g_camids")?.to_i64()?);
    let options = EvalOptions {
        metric: metric.parse()?,
        rerank: rerank.then(RerankParams::default),
        cuhk03,
    };
    let labels = Labels {
        query_ids: &q_ids,
        gallery_ids: &g_ids,
        query_cams: &q_cams,
        gallery_cams: &g_cams,
    };
    let metrics = evaluate(&qf, &gf, labels, options)?;
    if json {
        let mut value = serde_json::to_value(&metrics).expect("plain data");
        for k in [1, 5, 10, 20] {
            value[format!("rank{k}")] = metrics.rank(k).into();
        }
        println!("{value}");
    } else {
        println!(
            "queries: {} valid of {}",
            metrics.num_valid_queries, qf.rows
        );
        println!("mAP:  {:.2}%", 100.0 * metrics.map);
        println!("mINP: {:.2}%", 100.0 * metrics.minp);
        for k in [1, 5, 10, 20] {
            println!("Rank-{k:<2} {:.2}%", 100.0 * metrics.rank(k));
        }
    }
    Ok(())
}

fn int_column(path: &std::path::Path, n: usize) -> reid::Result<Vec<i64>> {
    let values = read_npy(path)?.to_i64()?;
    if values.len() != n {
        return Err(reid::Error::InvalidInput(format!(
            "{} holds {} values for {n} vectors",
            path.display(),
            values.len()
        )));
    }
    Ok(values)
}

fn gallery(command: GalleryCommand) -> reid::Result<()> {
    use reid::gallery::{Gallery, SearchOptions};
    match command {
        GalleryCommand::Create { file, dim, metric } => {
            Gallery::create(&file, dim, metric.parse()?)?;
            println!("created {} ({dim}-d, {metric})", file.display());
        }
        GalleryCommand::Add {
            file,
            vectors,
            identities,
            cameras,
            ids,
        } => {
            let gallery = Gallery::open(&file)?;
            let vectors = read_npy(&vectors)?;
            let n = vectors.shape.first().copied().unwrap_or(0);
            let identities: Vec<u64> = int_column(&identities, n)?
                .iter()
                .map(|&v| v as u64)
                .collect();
            let cameras: Vec<i32> = match cameras {
                Some(path) => int_column(&path, n)?.iter().map(|&v| v as i32).collect(),
                None => vec![0; n],
            };
            let ids: Option<Vec<u64>> = ids
                .map(|path| int_column(&path, n).map(|v| v.iter().map(|&i| i as u64).collect()))
                .transpose()?;
            let added = gallery.add_arrays(&vectors, ids.as_deref(), &identities, &cameras)?;
            println!(
                "added {} entries; {} in the gallery",
                added.len(),
                gallery.len()
            );
        }
        GalleryCommand::Search {
            file,
            queries,
            k,
            min_score,
            group,
            exclude_camera,
            json,
        } => {
            let gallery = Gallery::load(&file)?;
            let queries = read_npy(&queries)?;
            let options = SearchOptions {
                k,
                min_score,
                group_by_identity: group,
                exclude_camera,
            };
            let results = gallery.search(&queries.to_f32(), &options)?;
            if json {
                let value: Vec<Vec<serde_json::Value>> = results
                    .iter()
                    .map(|matches| {
                        matches
                            .iter()
                            .map(|m| {
                                serde_json::json!({"id": m.id, "identity": m.identity,
                                    "camera": m.camera, "score": m.score})
                            })
                            .collect()
                    })
                    .collect();
                println!("{}", serde_json::Value::from(value));
            } else {
                for (q, matches) in results.iter().enumerate() {
                    println!("query {q}:");
                    for m in matches {
                        println!(
                            "  id {:>8}  identity {:>8}  camera {:>3}  score {:.6}",
                            m.id, m.identity, m.camera, m.score
                        );
                    }
                }
            }
        }
        GalleryCommand::Remove { file, id, identity } => {
            let gallery = Gallery::open(&file)?;
            match (id, identity) {
                (Some(id), _) => {
                    gallery.remove(id)?;
                    println!("removed entry {id}");
                }
                (None, Some(identity)) => {
                    let n = gallery.remove_identity(identity)?;
                    println!("removed {n} entries of identity {identity}");
                }
                (None, None) => unreachable!("clap requires one of them"),
            }
        }
        GalleryCommand::Stats { file } => {
            let gallery = Gallery::load(&file)?;
            let entries = gallery.entries();
            let identities: std::collections::BTreeSet<u64> =
                entries.iter().map(|e| e.identity).collect();
            let cameras: std::collections::BTreeSet<i32> =
                entries.iter().map(|e| e.camera).collect();
            println!("entries: {}", entries.len());
            println!("identities: {}", identities.len());
            println!("cameras: {:?}", cameras);
            println!("dimension: {}", gallery.dim());
            println!("metric: {:?}", gallery.metric());
        }
        GalleryCommand::Export { file, output } => {
            let gallery = Gallery::load(&file)?;
            gallery.export_npz(&output)?;
            println!("wrote {} entries to {}", gallery.len(), output.display());
        }
    }
    Ok(())
}

const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "bmp", "webp", "jfif"];

/// Files named directly, and image files under directories, each directory in sorted order.
fn collect_images(inputs: &[PathBuf]) -> reid::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut stack = vec![input.clone()];
            let mut found = Vec::new();
            while let Some(dir) = stack.pop() {
                let entries = std::fs::read_dir(&dir).map_err(|e| reid::Error::io(&dir, e))?;
                for entry in entries {
                    let path = entry.map_err(|e| reid::Error::io(&dir, e))?.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                    }) {
                        found.push(path);
                    }
                }
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

/// Redraws a progress bar on stderr: `[####    ] done/total suffix`.
fn draw_progress(done: usize, total: usize, suffix: &str) {
    use std::io::Write;
    let width = 40 * done / total.max(1);
    eprint!(
        "\r[{}{}] {done}/{total} {suffix}",
        "#".repeat(width),
        " ".repeat(40 - width)
    );
    let _ = std::io::stderr().flush();
}

fn extract(
    model: &std::path::Path,
    options: &reid::infer::ExtractorOptions,
    inputs: &[PathBuf],
    output: &std::path::Path,
) -> reid::Result<()> {
    use std::io::IsTerminal;
    let files = collect_images(inputs)?;
    if files.is_empty() {
        return Err(reid::Error::InvalidInput("no image files found".into()));
    }
    let extractor = reid::infer::Extractor::new(model, options)?;
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
    let array = reid::npy::NpyArray::f32(vec![files.len(), extractor.dim()], features);
    write_npy(output, &array)?;
    let list: String = files.iter().map(|f| format!("{}\n", f.display())).collect();
    reid::npy::write_atomically(&output.with_extension("txt"), list.as_bytes())?;
    println!(
        "{} images -> {} ({}-d) and {}",
        files.len(),
        output.display(),
        extractor.dim(),
        output.with_extension("txt").display()
    );
    Ok(())
}

fn named_preprocessing(
    name: &str,
    height: usize,
    width: usize,
) -> reid::Result<reid::preprocess::Preprocessing> {
    use reid::preprocess::Preprocessing;
    match name {
        "torchreid" => Ok(Preprocessing::torchreid(height, width)),
        "openvino-bgr" => Ok(Preprocessing::openvino_bgr(height, width)),
        other => Err(reid::Error::InvalidInput(format!(
            "unknown preprocessing `{other}`; expected torchreid or openvino-bgr"
        ))),
    }
}

/// Runs `reid train`, printing a progress bar (on a terminal; else a line every 20 steps) and
/// the epoch summaries.
fn run_training(config: &reid::train::TrainConfig) -> reid::Result<()> {
    use reid::train::Event;
    use std::io::IsTerminal;
    let bar = std::io::stderr().is_terminal();
    println!(
        "training {} on {} ({}x{}, batch {}, {} epochs) -> {}",
        config.arch,
        config.sources.join("+"),
        config.height,
        config.width,
        config.batch_size,
        config.max_epoch,
        config.save_dir.display()
    );
    let mut report = |event: &Event| {
        match event {
            Event::Resumed { epochs_done } => {
                println!(
                    "resumed after epoch {epochs_done} from {}",
                    config.save_dir.display()
                )
            }
            Event::Step {
                epoch,
                step,
                steps,
                lr,
                stats,
            } => {
                let epochs = config.max_epoch;
                let numbers = format!(
                    "loss {:.4}  acc {:.3}  lr {lr:.2e}",
                    stats.loss, stats.accuracy
                );
                if bar {
                    draw_progress(*step, *steps, &format!("epoch {epoch}/{epochs}  {numbers}"));
                    if step == steps {
                        eprintln!();
                    }
                } else if step % 20 == 0 || step == steps {
                    println!("epoch {epoch}/{epochs} step {step}/{steps}  {numbers}");
                }
            }
            Event::Epoch(log) => {
                print!(
                    "epoch {} done in {:.1} s: loss {:.4}, acc {:.3}",
                    log.epoch, log.seconds, log.loss, log.accuracy
                );
                for e in &log.eval {
                    match (&e.classification, config.task) {
                        (Some(c), reid::models::Task::Multilabel) => print!(
                            "; {}: mAP {:.1}%, CF1 {:.1}%, OF1 {:.1}%",
                            e.target,
                            c.map * 100.0,
                            c.cf1 * 100.0,
                            c.of1 * 100.0
                        ),
                        (Some(c), _) => print!(
                            "; {}: top-1 {:.1}%, top-5 {:.1}%, mean class acc. {:.1}%, mAP {:.1}%",
                            e.target,
                            c.top1 * 100.0,
                            c.top5 * 100.0,
                            c.mean_class_accuracy * 100.0,
                            c.map * 100.0
                        ),
                        (None, _) => print!(
                            "; {}: mAP {:.1}%, Rank-1 {:.1}%, Rank-5 {:.1}%",
                            e.target,
                            e.map * 100.0,
                            e.rank1 * 100.0,
                            e.rank5 * 100.0
                        ),
                    }
                }
                println!();
            }
        }
        true
    };
    let result = reid::train::train(config, &mut report)?;
    if let Some((map, epoch)) = result.best {
        let what = match config.task {
            reid::models::Task::Classification => "top-1",
            _ => "mAP",
        };
        println!("best {what} {:.1}% at epoch {epoch}", map * 100.0);
    }
    if result.stopped_early {
        println!(
            "stopped early: no better mAP for {} evaluations",
            config.early_stop_patience
        );
    }
    println!("model: {}", result.model.display());
    if let Some(onnx) = result.onnx {
        println!("onnx: {}", onnx.display());
    }
    Ok(())
}

/// How `reid eval --weights` scores and reports.
struct WeightsEval<'a> {
    metric: Option<&'a str>,
    rerank: bool,
    cuhk03: bool,
    json: bool,
    visualize: Option<&'a std::path::Path>,
    topk: usize,
}

/// `reid eval --weights`: the model on each target dataset of the config.
fn eval_weights(
    config: &reid::train::TrainConfig,
    weights: &std::path::Path,
    options: &WeightsEval,
) -> reid::Result<()> {
    let device = reid::device::parse_devices(&config.device)?.remove(0);
    let arch: Arch = config.arch.parse()?;
    let model = load_any(Some(arch), weights, &device)?;
    let preprocessing = reid::preprocess::Preprocessing::torchreid(config.height, config.width);
    let scoring = reid::eval::EvalOptions {
        metric: options.metric.unwrap_or(&config.dist_metric).parse()?,
        rerank: options.rerank.then(Default::default),
        cuhk03: options.cuhk03,
    };
    for name in &config.targets {
        let dataset = reid::data::load_dataset_split(name, &config.root, config.split_id)?;
        let (queries, gallery) =
            reid::train::evaluate::embed_dataset(&model, &dataset, &preprocessing, 64, &device)?;
        let (m, distances) =
            reid::train::evaluate::score_dataset(&dataset, &queries, &gallery, scoring)?;
        if options.json {
            let value = serde_json::json!({"target": name, "mAP": m.map, "mINP": m.minp,
                "rank1": m.rank(1), "rank5": m.rank(5), "rank10": m.rank(10)});
            println!("{value}");
        } else {
            println!(
                "{name}: mAP {:.1}%, mINP {:.1}%, Rank-1 {:.1}%, Rank-5 {:.1}%, Rank-10 {:.1}%",
                m.map * 100.0,
                m.minp * 100.0,
                m.rank(1) * 100.0,
                m.rank(5) * 100.0,
                m.rank(10) * 100.0
            );
        }
        if let Some(dir) = options.visualize {
            let layout = reid::eval::visualize::GridLayout {
                width: config.width,
                height: config.height,
                topk: options.topk,
            };
            let dir = dir.join(name);
            let written = reid::eval::visualize::write_ranked_results(
                &distances,
                &dataset.query,
                &dataset.gallery,
                &dir,
                &layout,
            )?;
            if !options.json {
                println!(
                    "{} ranked-results pictures in {}",
                    written.len(),
                    dir.display()
                );
            }
        }
    }
    Ok(())
}
