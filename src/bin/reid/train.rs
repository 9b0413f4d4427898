//! Training: `train`, `lr-find`.

use std::path::{Path, PathBuf};

use reid::train::{Event, TrainConfig};

use crate::progress::draw_progress;

/// The training configuration of a YAML file (or the defaults), with `--root` and the
/// `key=value` overrides applied.
pub fn load_config(
    config: Option<&Path>,
    root: Option<&Path>,
    mut overrides: Vec<String>,
) -> reid::Result<TrainConfig> {
    if let Some(root) = root {
        overrides.push(format!("data.root={}", root.display()));
    }
    reid::config::load_train_config(config, &overrides)
}

/// Arguments of `train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// YAML config (torchreid / deep-object-reid key names), or a run's `config.json` to run
    /// it again; defaults when absent.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Dataset root (overrides `data.root`).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// `mpi`: this process is one rank of an MPI job (`mpirun -np N reid train …`; needs a
    /// build with the `mpi` feature); overrides `distributed`.
    #[arg(long)]
    pub distributed: Option<reid::train::Distributed>,
    /// Overrides: `section.key=value`.
    pub overrides: Vec<String>,
}

impl TrainArgs {
    /// Runs the command.
    pub fn run(self) -> reid::Result<()> {
        let Self {
            config,
            root,
            distributed,
            mut overrides,
        } = self;
        if let Some(distributed) = distributed {
            overrides.push(format!("distributed={}", distributed.name()));
        }
        let config = load_config(config.as_deref(), root.as_deref(), overrides)?;
        run_training(&config)
    }
}

/// Whether this process reports the run: every process but the ranks after the first of a
/// distributed run, whose lines would repeat rank 0's.
#[cfg(feature = "mpi")]
fn reports(config: &TrainConfig) -> reid::Result<bool> {
    Ok(match config.distributed {
        reid::train::Distributed::Mpi => reid::distributed::Communicator::world()?.rank() == 0,
        reid::train::Distributed::None => true,
    })
}

#[cfg(not(feature = "mpi"))]
fn reports(_config: &TrainConfig) -> reid::Result<bool> {
    Ok(true)
}

/// Arguments of `lr-find`.
#[derive(clap::Args)]
pub struct LrFindArgs {
    /// YAML config (as for `train`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Dataset root (overrides `data.root`).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// First rate (default 1e-6).
    #[arg(long)]
    pub min_lr: Option<f64>,
    /// Last rate (default 1).
    #[arg(long)]
    pub max_lr: Option<f64>,
    /// Steps (default 100).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Overrides: `section.key=value`.
    pub overrides: Vec<String>,
}

impl LrFindArgs {
    /// Runs the command.
    pub fn run(self) -> reid::Result<()> {
        let Self {
            config,
            root,
            min_lr,
            max_lr,
            steps,
            overrides,
        } = self;
        let config = load_config(config.as_deref(), root.as_deref(), overrides)?;
        let d = reid::train::lr_find::LrFindOptions::default();
        let options = reid::train::lr_find::LrFindOptions {
            min_lr: min_lr.unwrap_or(d.min_lr),
            max_lr: max_lr.unwrap_or(d.max_lr),
            steps: steps.unwrap_or(d.steps),
            ..d
        };
        let report = reid::train::lr_find::lr_find(&config, &options, &mut |step, lr, loss| {
            if step % 10 == 0 {
                println!("step {step}/{}: lr {lr:.2e}, loss {loss:.4}", options.steps);
            }
            true
        })?;
        std::fs::create_dir_all(&config.save_dir)
            .map_err(|e| reid::Error::io(&config.save_dir, e))?;
        let path = config.save_dir.join("lr_find.csv");
        report.write_csv(&path)?;
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
}

/// Runs `reid train`, printing a progress bar (on a terminal; else a line every 20 steps) and
/// the epoch summaries.
fn run_training(config: &TrainConfig) -> reid::Result<()> {
    use std::io::IsTerminal;
    if !reports(config)? {
        reid::train::train(config, &mut |_| true)?;
        return Ok(());
    }
    let bar = std::io::stderr().is_terminal();
    println!(
        "training {} on {} ({}x{}, batch {}, {} epochs) -> {}",
        config.model.arch,
        config.data.sources.join("+"),
        config.data.height,
        config.data.width,
        config.sampler.batch_size,
        config.schedule.max_epoch,
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
                let epochs = config.schedule.max_epoch;
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
                    match (&e.classification, config.model.task) {
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
                for e in &log.ema_eval {
                    print!(
                        "; moving average on {}: mAP {:.1}%, Rank-1 {:.1}%",
                        e.target,
                        e.map * 100.0,
                        e.rank1 * 100.0
                    );
                }
                println!();
            }
            Event::LrFinder { step, lr, loss } if step % 10 == 0 => {
                println!("lr finder step {step}: lr {lr:.2e}, loss {loss:.4}");
            }
            Event::LrTrial {
                trial,
                lr,
                epoch,
                score: Some(score),
            } => println!(
                "lr search trial {trial} (lr {lr:.2e}), epoch {epoch}: {:.1}%",
                score * 100.0
            ),
            Event::LrFound { lr } => println!("training at the learning rate found: {lr:.2e}"),
            _ => {}
        }
        true
    };
    let result = reid::train::train(config, &mut report)?;
    if let Some((map, epoch)) = result.best {
        let what = match config.model.task {
            reid::models::Task::Classification => "top-1",
            _ => "mAP",
        };
        let of = if result.best_from_ema {
            " (the moving average of the weights)"
        } else {
            ""
        };
        println!("best {what} {:.1}% at epoch {epoch}{of}", map * 100.0);
    }
    if result.stopped_early {
        println!(
            "stopped early: no better mAP for {} evaluations",
            config.eval.early_stop_patience
        );
    }
    println!("model: {}", result.model.display());
    if let Some(onnx) = result.onnx {
        println!("onnx: {}", onnx.display());
    }
    Ok(())
}
