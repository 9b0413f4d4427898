//! Evaluation: `eval` (features or weights), `verify` (face pairs).

use std::path::{Path, PathBuf};

use reid::eval::{EvalOptions, Features, RerankParams, evaluate};
use reid::models::Arch;
use reid::weights::load_any;

use crate::train::load_config;

/// Arguments of `eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// .npz with torchreid's names: qf, gf, q_pids, g_pids, q_camids, g_camids.
    #[arg(long, required_unless_present = "weights")]
    pub features: Option<PathBuf>,
    /// Evaluate these weights (reid checkpoint or torchreid file) on the config's target
    /// datasets instead of a features file.
    #[arg(long, conflicts_with = "features")]
    pub weights: Option<PathBuf>,
    /// YAML config or a run's `config.json` for `--weights` (model, input size, targets,
    /// metric).
    #[arg(long, requires = "weights")]
    pub config: Option<PathBuf>,
    /// Dataset root for `--weights` (overrides `data.root`).
    #[arg(long, requires = "weights")]
    pub root: Option<PathBuf>,
    /// cosine or euclidean (squared, as torchreid); default cosine, or the config's
    /// `test.dist_metric` with `--weights`.
    #[arg(long)]
    pub metric: Option<String>,
    /// Apply k-reciprocal re-ranking (k1 = 20, k2 = 6, lambda = 0.3).
    #[arg(long)]
    pub rerank: bool,
    /// CUHK03 single-gallery-shot CMC (expected value over the random draws).
    #[arg(long)]
    pub cuhk03: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// With `--weights`: write each query's ranked matches as a PNG into this folder
    /// (green frame: same identity, red: another).
    #[arg(long, requires = "weights")]
    pub visualize: Option<PathBuf>,
    /// Matches per query in the `--visualize` pictures.
    #[arg(long, default_value_t = 10, requires = "visualize")]
    pub topk: usize,
    /// Config overrides for `--weights`: `section.key=value`.
    pub overrides: Vec<String>,
}

impl EvalArgs {
    /// Runs the command.
    pub fn run(self) -> reid::Result<()> {
        let Self {
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
            overrides,
        } = self;
        match (features, weights) {
            (Some(features), _) => eval(
                &features,
                metric.as_deref().unwrap_or("cosine"),
                rerank,
                cuhk03,
                json,
            ),
            (None, Some(weights)) => {
                let config = load_config(config.as_deref(), root.as_deref(), overrides)?;
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
        }
    }
}

/// Arguments of `verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The embedding model: .onnx (ONNX Runtime, OpenVINO or Burn) or a checkpoint (Burn engine).
    #[arg(long)]
    pub model: PathBuf,
    /// onnxruntime, openvino or burn.
    #[arg(long, default_value = "onnxruntime")]
    pub engine: String,
    /// LFW's `pairs.txt` (`name i j` / `name1 i name2 j` lines).
    #[arg(long)]
    pub pairs: PathBuf,
    /// The image root (`ROOT/name/name_000i.jpg`).
    #[arg(long)]
    pub root: PathBuf,
    /// Cross-validation folds.
    #[arg(long, default_value_t = 10)]
    pub folds: usize,
}

impl VerifyArgs {
    /// Runs the command.
    pub fn run(self) -> reid::Result<()> {
        let Self {
            model,
            engine,
            pairs,
            root,
            folds,
        } = self;
        let pairs = reid::eval::verification::read_lfw_pairs(&pairs, &root)?;
        let options = reid::extractor::ExtractorOptions {
            engine: engine.parse()?,
            ..Default::default()
        };
        let extractor = reid::extractor::Extractor::new(&model, &options)?;
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
}

/// `reid eval --features`: scores a torchreid features file.
fn eval(path: &Path, metric: &str, rerank: bool, cuhk03: bool, json: bool) -> reid::Result<()> {
    let features = Features::read_npz(path)?;
    let options = EvalOptions {
        metric: metric.parse()?,
        rerank: rerank.then(RerankParams::default),
        cuhk03,
    };
    let metrics = evaluate(
        &features.queries,
        &features.gallery,
        features.labels(),
        options,
    )?;
    if json {
        let mut value = serde_json::to_value(&metrics).expect("plain data");
        for k in [1, 5, 10, 20] {
            value[format!("rank{k}")] = metrics.rank(k).into();
        }
        println!("{value}");
    } else {
        println!(
            "queries: {} valid of {}",
            metrics.num_valid_queries, features.queries.rows
        );
        println!("mAP:  {:.2}%", 100.0 * metrics.map);
        println!("mINP: {:.2}%", 100.0 * metrics.minp);
        for k in [1, 5, 10, 20] {
            println!("Rank-{k:<2} {:.2}%", 100.0 * metrics.rank(k));
        }
    }
    Ok(())
}

/// `reid eval --weights`: the model on each target dataset of the config.
fn eval_weights(
    config: &reid::train::TrainConfig,
    weights: &Path,
    options: &WeightsEval,
) -> reid::Result<()> {
    let device = reid::device::parse_devices(&config.device)?.remove(0);
    let arch: Arch = config.model.arch.parse()?;
    let model = load_any(Some(arch), weights, &device)?;
    let preprocessing = config.data.test_preprocessing();
    let scoring = reid::eval::EvalOptions {
        metric: options.metric.unwrap_or(&config.eval.dist_metric).parse()?,
        rerank: options.rerank.then(Default::default),
        cuhk03: options.cuhk03,
    };
    for name in &config.data.targets {
        let (root, split) = (&config.data.root, config.data.split_id);
        // A video dataset is scored tracklet against tracklet (`video:` says how).
        let (dataset, queries, gallery) =
            if reid::data::video::VIDEO_DATASETS.contains(&name.as_str()) {
                let videos = reid::data::video::load_video_dataset(name, root, split)?;
                reid::train::evaluate::embed_video_dataset(
                    &model,
                    &videos,
                    &preprocessing,
                    &config.video,
                    64,
                    &device,
                )?
            } else {
                let dataset = reid::data::load_dataset_split(name, root, split)?;
                let (queries, gallery) = reid::train::evaluate::embed_dataset(
                    &model,
                    &dataset,
                    &preprocessing,
                    64,
                    &device,
                )?;
                (dataset, queries, gallery)
            };
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
                width: config.data.width,
                height: config.data.height,
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

/// How `reid eval --weights` scores and reports.
struct WeightsEval<'a> {
    metric: Option<&'a str>,
    rerank: bool,
    cuhk03: bool,
    json: bool,
    visualize: Option<&'a Path>,
    topk: usize,
}
