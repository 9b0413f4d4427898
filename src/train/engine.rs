//! The training loop: each epoch samples batches, steps the model (`Stepper`), evaluates on
//! the target datasets every `eval_freq` epochs (keeping the best model), writes the history
//! and a checkpoint from which an interrupted run resumes, and stops early on a plateau; the
//! run ends with the final model and its ONNX export. The parts live beside this file:
//! `config` (what to train), `setup` (data, devices, the first model), `checkpoint` (state and
//! resumption), `stepper` (one step of the recipe), `history` and `tensorboard` (logs).

use std::path::PathBuf;
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::tensor::Tensor;

use super::checkpoint::{
    RunState, Start, Trained, read_json, resumable, start_or_resume, write_checkpoint,
};
use super::classify_eval::{ClassificationMetrics, Readout, evaluate_classifier};
use super::config::{Distributed, LrFindMode, TrainConfig};
use super::distributed::Team;
use super::early_stop::{judge, should_stop};
use super::evaluate::{evaluate_dataset, evaluate_video_dataset};
use super::history::{EpochLog, EvalLog, ScaleLog, write_history};
use super::layer_groups::{check_layers, closed_norms, open_layer_params};
use super::lr_find::{LrFindOptions, lr_find};
use super::lr_search::{SearchMode, SearchSettings, search};
use super::schedule::Schedule;
use super::setup::{Setup, scaled_for_classes, setup, teacher};
use super::step::StepStats;
use super::stepper::{Lesson, Peer, Stepper};
use super::tensorboard::write_events;
use crate::error::{Error, Result};
use crate::eval::RankMetrics;
use crate::models::{ReidModel, Task};
use crate::weights::{load_checkpoint, save_checkpoint};

/// Progress reports to the caller, who returns `false` to cancel. New kinds of report may come
/// in later versions: match with a wildcard arm.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Training resumed from a checkpoint after `epochs_done` epochs.
    Resumed {
        /// Completed epochs found.
        epochs_done: usize,
    },
    /// A step finished.
    Step {
        /// Epoch, from 1.
        epoch: usize,
        /// Step in the epoch, from 1.
        step: usize,
        /// Steps per epoch.
        steps: usize,
        /// Learning rate.
        lr: f64,
        /// The step's loss and accuracy.
        stats: StepStats,
    },
    /// An epoch finished (after its evaluation, before its checkpoint).
    Epoch(&'a EpochLog),
    /// A step of the learning-rate range test a run with `schedule.lr_finder` starts with.
    LrFinder {
        /// Step of the test, from 1.
        step: usize,
        /// Rate tried.
        lr: f64,
        /// Smoothed loss.
        loss: f64,
    },
    /// A trial run of the learning-rate search (`lr_finder.mode: grid_search | TPE`) finished
    /// a step (`score` none) or an epoch (`score`: rank-1 or top-1, mAP for multi-label).
    LrTrial {
        /// Trial, from 1.
        trial: usize,
        /// Its rate.
        lr: f64,
        /// Epoch of the trial, from 1.
        epoch: usize,
        /// The evaluation after the epoch.
        score: Option<f64>,
    },
    /// The rate the range test suggests or the search found, the rate the run trains at.
    LrFound {
        /// The rate.
        lr: f64,
    },
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// Epochs completed in all (across resumptions).
    pub epochs_done: usize,
    /// History, one entry per epoch.
    pub history: Vec<EpochLog>,
    /// Best mAP on the first target and its epoch, if evaluated.
    pub best: Option<(f64, usize)>,
    /// Whether the best model is the moving average of the weights (`optimizer.ema`), which
    /// evaluated better than the model itself.
    pub best_from_ema: bool,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// The best model (or the last, without evaluation), as a reid checkpoint.
    pub model: PathBuf,
    /// The ONNX export of that model, if asked for.
    pub onnx: Option<PathBuf>,
}

/// Runs (or resumes) training as `config` says, reporting to `progress`.
///
/// With `distributed: mpi` this process is one rank of an MPI job (`train::distributed`): it
/// trains on its chunk of every batch, only rank 0 evaluates and writes the run's files, every
/// rank returns the same report, and the process leaves the job at the end (so it trains across
/// machines once). An error on any rank ends the whole job: this function then does not return
/// but says why on stderr and aborts every rank, which would otherwise wait for it forever.
pub fn train(
    config: &TrainConfig,
    progress: &mut dyn FnMut(&Event) -> bool,
) -> Result<TrainReport> {
    let found;
    let config = match &config.schedule.lr_finder {
        Some(options) => {
            found = with_found_rate(config, options, progress)?;
            &found
        }
        None => config,
    };
    let Some(team) = Team::join(config)? else {
        return run(config, progress, None);
    };
    let handle = team.handle();
    match run(config, progress, Some(team)) {
        Ok(report) => handle.finish().map(|()| report),
        Err(e) => handle.fail(&e),
    }
}

/// `config` training at the rate the range test suggests (written with its curve to
/// `lr_find.csv`) or the search by trial runs found (`lr_search.csv`), or, resuming, at the
/// rate the run found when it started.
fn with_found_rate(
    config: &TrainConfig,
    options: &LrFindOptions,
    progress: &mut dyn FnMut(&Event) -> bool,
) -> Result<TrainConfig> {
    if config.distributed != Distributed::None {
        return Err(Error::InvalidInput(
            "schedule.lr_finder runs in one process: find the rate with `reid lr-find` and set \
             train.lr for a distributed run"
                .into(),
        ));
    }
    let lr = match resumable(&config.save_dir) {
        Some(dir) => {
            read_json::<RunState>(&dir.join("state.json"))?
                .config
                .schedule
                .lr
        }
        None if options.mode == LrFindMode::RangeTest => {
            let report = lr_find(config, options, &mut |step, lr, loss| {
                progress(&Event::LrFinder { step, lr, loss })
            })?;
            std::fs::create_dir_all(&config.save_dir)
                .map_err(|e| Error::io(&config.save_dir, e))?;
            report.write_csv(&config.save_dir.join("lr_find.csv"))?;
            report.suggestion
        }
        None => searched_rate(config, options, progress)?,
    };
    if !progress(&Event::LrFound { lr }) {
        return Err(Error::Cancelled);
    }
    let mut config = config.clone();
    config.schedule.lr = lr;
    config.schedule.lr_finder = None;
    Ok(config)
}

/// The rate of deep-object-reid's search by trial runs (`train::lr_search`): each trial a run
/// of `config` at a constant rate for the search's epochs, evaluated after each, in a folder
/// under `save_dir/lr_search/` removed once the search ends; the trials go to
/// `save_dir/lr_search.csv`.
fn searched_rate(
    config: &TrainConfig,
    options: &LrFindOptions,
    progress: &mut dyn FnMut(&Event) -> bool,
) -> Result<f64> {
    let settings = SearchSettings {
        mode: match options.mode {
            LrFindMode::Tpe => SearchMode::Tpe,
            _ => SearchMode::Grid,
        },
        min_lr: options.min_lr,
        max_lr: options.max_lr,
        step: options.step,
        epochs: options.epochs.unwrap_or(3),
        trials: options.trials,
        seed: config.seed,
    };
    let folder = config.save_dir.join("lr_search");
    let report = search(&settings, &mut |count, lr, verdict| {
        let mut c = config.clone();
        c.schedule.lr = lr;
        c.schedule.lr_finder = None;
        c.schedule.policy = Schedule::Constant;
        c.schedule.warmup = 0;
        c.schedule.max_epoch = settings.epochs;
        c.eval.eval_freq = 1;
        c.eval.early_stop_patience = 0;
        c.export_onnx = false;
        c.save_dir = folder.join(format!("trial_{count}"));
        if c.save_dir.exists() {
            // Left by an interrupted search: the trial starts again.
            std::fs::remove_dir_all(&c.save_dir).map_err(|e| Error::io(&c.save_dir, e))?;
        }
        let multilabel = c.model.task == Task::Multilabel;
        let (mut scores, mut pruned) = (Vec::new(), false);
        let outcome = run(
            &c,
            &mut |event| match event {
                Event::Step { epoch, .. } => progress(&Event::LrTrial {
                    trial: count,
                    lr,
                    epoch: *epoch,
                    score: None,
                }),
                Event::Epoch(log) => {
                    let Some(e) = log.eval.first() else {
                        return true;
                    };
                    let score = if multilabel { e.map } else { e.rank1 };
                    scores.push(score);
                    let trial = Event::LrTrial {
                        trial: count,
                        lr,
                        epoch: log.epoch,
                        score: Some(score),
                    };
                    pruned = !verdict(log.epoch, score);
                    progress(&trial) && !pruned
                }
                _ => true,
            },
            None,
        );
        // A trial's checkpoints are of no further use (and a search holds many trials).
        std::fs::remove_dir_all(&c.save_dir).map_err(|e| Error::io(&c.save_dir, e))?;
        match outcome {
            Ok(_) => Ok(scores),
            Err(Error::Cancelled) if pruned => Ok(scores),
            // A rate too high for the model: the trial scores nothing from then on.
            Err(Error::Diverged { .. }) => {
                scores.push(f64::NEG_INFINITY);
                Ok(scores)
            }
            Err(e) => Err(e),
        }
    });
    // Gone however the search ended (a cancelled or failed trial leaves its folder).
    if folder.exists() {
        std::fs::remove_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
    }
    let report = report?;
    std::fs::create_dir_all(&config.save_dir).map_err(|e| Error::io(&config.save_dir, e))?;
    report.write_csv(&config.save_dir.join("lr_search.csv"))?;
    Ok(report.best)
}

/// The run of `train`, as one process or as one rank of `team`.
fn run(
    config: &TrainConfig,
    progress: &mut dyn FnMut(&Event) -> bool,
    team: Option<Team>,
) -> Result<TrainReport> {
    let s = setup(config)?;
    let scaled = scaled_for_classes(config, &s);
    let config = scaled.as_ref().unwrap_or(config);
    let group = s.group();
    let leads = team.as_ref().is_none_or(Team::leads);
    if let Some(team) = &team {
        team.check_batch(config.sampler.batch_size, group)?;
    }
    if leads {
        std::fs::create_dir_all(&config.save_dir).map_err(|e| Error::io(&config.save_dir, e))?;
        // The whole configuration beside the checkpoints, as the run was started or resumed.
        let json = serde_json::to_vec_pretty(config).expect("a TrainConfig serializes");
        crate::formats::npy::write_atomically(&config.save_dir.join("config.json"), &json)?;
    }
    let start = match &team {
        None => start_or_resume(config, &s)?,
        // Rank 0 alone reads `last/`: the other ranks take what it found.
        Some(team) if team.leads() => {
            let start = start_or_resume(config, &s)?;
            team.broadcast(&mut start.to_bytes()?)?;
            start
        }
        Some(team) => {
            let mut bytes = Vec::new();
            team.broadcast(&mut bytes)?;
            Start::from_bytes(&bytes, config, &s.device)?
        }
    };
    let Start {
        model,
        optimizer,
        mut state,
        peer,
        centers,
        ema,
        resumed,
    } = start;
    if resumed
        && !progress(&Event::Resumed {
            epochs_done: state.epochs_done,
        })
    {
        return Err(Error::Cancelled);
    }
    model.check_input_size(config.data.height, config.data.width)?;
    let peer = peer.map(|p| Peer {
        model: p.model.fork(&s.train_device).train(),
        optimizer: p.optimizer,
    });
    let model = model.fork(&s.train_device).train();
    let mut stepper = Stepper::new(model, optimizer, peer, centers, team, config, &s)
        .with_ema(ema)
        .with_teacher(teacher(config, &s)?)
        .with_scaler(state.loss_scale);
    let best_path = config.save_dir.join("best.bpk");
    let mut stopped_early = false;

    if state.epochs_done < config.schedule.fixbase_epoch {
        // A misspelt layer would otherwise freeze the whole model for these epochs (and the
        // mutual-learning peer, of another architecture maybe, is opened alike).
        check_layers(&stepper.model, &config.schedule.open_layers, "open_layers")?;
        if let Some(peer) = &stepper.peer {
            check_layers(&peer.model, &config.schedule.open_layers, "open_layers")?;
        }
    }
    for epoch in state.epochs_done..config.schedule.max_epoch {
        let started = Instant::now();
        let order = s
            .sampler
            .epoch(&s.train_set, config.sampler.batch_size, config.seed, epoch)?;
        let batches: Vec<&[usize]> = order.chunks_exact(config.sampler.batch_size).collect();
        if batches.is_empty() {
            return Err(Error::InvalidInput(format!(
                "{} training images make no full batch of {}",
                s.train_set.len(),
                config.sampler.batch_size
            )));
        }
        // The epoch's first rate (its log's).
        let lr = state.schedule.rate(epoch, 0, batches.len());
        let skipped_before = stepper.scaler.map_or(0, |s| s.skipped_steps);
        let only = (epoch < config.schedule.fixbase_epoch
            && !config.schedule.open_layers.is_empty())
        .then(|| open_layer_params(&stepper.model, &config.schedule.open_layers));
        // The closed layers' norms run as in eval mode for the epoch (torchreid's
        // `open_specified_layers`), and train again before anything is evaluated or saved.
        let closed = only
            .is_some()
            .then(|| closed_norms(&stepper.model, &config.schedule.open_layers));
        if let Some(group) = &closed {
            stepper.model = stepper.model.clone().freeze_group(group.clone());
        }
        // The peer of deep mutual learning too: deep-object-reid's engine opens the same
        // layers of every model.
        let peer_closed = closed
            .as_ref()
            .and(stepper.peer.as_ref())
            .map(|p| closed_norms(&p.model, &config.schedule.open_layers));
        if let (Some(group), Some(p)) = (&peer_closed, stepper.peer.as_mut()) {
            p.model = p.model.clone().freeze_group(group.clone());
        }
        let rates_at = |model: &ReidModel, lr: f64| -> Result<ModuleLearningRate> {
            Ok(match &config.optimizer.staged_lr {
                Some(staged) => staged.rates(model, lr)?,
                None => lr.into(),
            })
        };
        let mut rates = rates_at(&stepper.model, lr)?;
        let (mut loss_sum, mut acc_sum) = (0.0, 0.0);
        for (step, batch) in batches.iter().enumerate() {
            // deep-object-reid's one-cycle and cosine cycles move the rate after every batch.
            let lr = state.schedule.rate(epoch, step, batches.len());
            if step > 0 && state.schedule.per_step() {
                rates = rates_at(&stepper.model, lr)?;
            }
            let indices = match &stepper.team {
                Some(team) => team.shard(batch, group),
                None => batch,
            };
            let (images, labels) = s.batch(indices, &config.video, config.seed, epoch)?;
            let lesson = Lesson {
                images,
                labels,
                indices,
                rates: rates.clone(),
                only: only.as_deref(),
            };
            let (next, stats) = stepper.step(lesson, config);
            stepper = next;
            if !stats.loss.is_finite() {
                return Err(Error::Diverged {
                    epoch: epoch + 1,
                    step: step + 1,
                    loss: stats.loss,
                });
            }
            loss_sum += stats.loss as f64;
            acc_sum += stats.accuracy as f64;
            let event = Event::Step {
                epoch: epoch + 1,
                step: step + 1,
                steps: batches.len(),
                lr,
                stats,
            };
            if !progress(&event) {
                return Err(Error::Cancelled);
            }
        }
        if let Some(group) = closed {
            stepper.model = stepper.model.clone().unfreeze_group(group);
        }
        if let (Some(group), Some(p)) = (peer_closed, stepper.peer.as_mut()) {
            p.model = p.model.clone().unfreeze_group(group);
        }
        let seconds = started.elapsed().as_secs_f64();
        let last = epoch + 1 == config.schedule.max_epoch;
        let due = last || (config.eval.eval_freq > 0 && (epoch + 1) % config.eval.eval_freq == 0);
        let inference = stepper.model.valid();
        if due && !weights_are_finite(&inference) {
            // Finite losses can still leave infinite weights (the last step's update).
            return Err(Error::Diverged {
                epoch: epoch + 1,
                step: batches.len(),
                loss: (loss_sum / batches.len().max(1) as f64) as f32,
            });
        }
        // The average is built as a model only for an evaluation.
        let average = stepper
            .ema
            .as_ref()
            .filter(|_| due && leads)
            .map(|ema| ema.model(&stepper.model));
        let (eval, ema_eval) = if due && leads {
            let ema_eval = match &average {
                Some(average) => evaluate_targets(config, &s, average)?,
                None => Vec::new(),
            };
            (evaluate_targets(config, &s, &inference)?, ema_eval)
        } else {
            (Vec::new(), Vec::new())
        };
        let mean_loss = loss_sum / batches.len() as f64;
        // Read before the schedule sees the epoch: the rate it trained at.
        let decayed = state.schedule.past_peak(epoch, batches.len());
        // The plateau schedule follows the model it steps.
        let score = eval
            .first()
            .map(|first| selection_score(config.model.task, first));
        state.schedule.end_epoch(epoch, mean_loss, score);
        if let Some(score) = score {
            // deep-object-reid keeps the moving average when it evaluates better.
            let ema_score = ema_eval
                .first()
                .map(|log| selection_score(config.model.task, log));
            let (score, candidate, from_ema) = match (ema_score, &average) {
                (Some(ema_score), Some(average)) if ema_score > score => (ema_score, average, true),
                _ => (score, &inference, false),
            };
            let after_decay = config.eval.early_stop_after_decay;
            if judge(
                &mut state.best_map,
                &mut state.evals_since_best,
                score,
                after_decay,
                decayed,
            ) {
                state.best_epoch = epoch + 1;
                state.best_from_ema = from_ema;
                save_checkpoint(candidate, &best_path)?;
            }
        }
        let log = EpochLog {
            epoch: epoch + 1,
            lr,
            loss: mean_loss,
            accuracy: acc_sum / batches.len() as f64,
            steps: batches.len(),
            seconds,
            eval,
            ema_eval,
            loss_scale: stepper.scaler.map(|s| ScaleLog {
                scale: s.scale,
                skipped_steps: s.skipped_steps - skipped_before,
            }),
        };
        state.history.push(log);
        state.epochs_done = epoch + 1;
        state.loss_scale = stepper.scaler;
        if let Some(team) = stepper.team.take() {
            team.share(&mut state)?;
            stepper.model = team.align(stepper.model)?;
            stepper.team = Some(team);
        }
        if leads {
            write_history(&config.save_dir, &state.history)?;
            write_events(&config.save_dir, &state.history, state.started)?;
            save_epoch(config, &stepper, &inference, &state)?;
        }
        let log = state.history.last().expect("pushed above");
        if !progress(&Event::Epoch(log)) {
            return Err(Error::Cancelled);
        }
        if should_stop(state.evals_since_best, config.eval.early_stop_patience) {
            stopped_early = true;
            break;
        }
    }
    finish(config, &s, &stepper.model, state, stopped_early, leads)
}

/// Whether every parameter of `model` is a finite number (one read of the device).
fn weights_are_finite(model: &ReidModel) -> bool {
    struct Sum(Option<Tensor<1>>);
    impl ModuleVisitor for Sum {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let total = param.val().abs().sum();
            // Parameters may live on several devices (a model spread over replicas).
            self.0 = Some(match self.0.take() {
                Some(sum) => {
                    let device = sum.device();
                    sum + total.to_device(&device)
                }
                None => total,
            });
        }
    }
    let mut sum = Sum(None);
    model.visit(&mut sum);
    sum.0.is_none_or(|s| s.into_scalar::<f32>().is_finite())
}

/// The evaluation of the model on each target dataset.
fn evaluate_targets(config: &TrainConfig, s: &Setup, model: &ReidModel) -> Result<Vec<EvalLog>> {
    let mut eval = Vec::new();
    for (name, dataset) in config.data.targets.iter().zip(&s.targets) {
        let m = evaluate_dataset(model, dataset, &s.preprocessing, s.metric, 64, &s.device)?;
        eval.push(eval_log(name, &m));
    }
    for (name, videos) in config.data.targets.iter().zip(&s.video_targets) {
        let (pre, sampling) = (&s.preprocessing, &config.video);
        let m = evaluate_video_dataset(model, videos, pre, sampling, s.metric, 64, &s.device)?;
        eval.push(eval_log(name, &m));
    }
    for (name, dataset) in config.data.targets.iter().zip(&s.class_targets) {
        let m = evaluate_classifier(
            model,
            dataset,
            readout(config),
            &s.preprocessing,
            64,
            &s.device,
        )?;
        eval.push(classification_log(name, m));
    }
    Ok(eval)
}

/// The epoch's checkpoint: the model (as `inference`), the optimizer, the peer, the centers.
fn save_epoch(
    config: &TrainConfig,
    stepper: &Stepper,
    inference: &ReidModel,
    state: &RunState,
) -> Result<()> {
    let peer = stepper.peer.as_ref();
    let peer_inference = peer.map(|p| p.model.valid());
    let trained = Trained {
        model: inference,
        optimizer: &stepper.optimizer,
        peer: peer_inference.as_ref().zip(peer.map(|p| &p.optimizer)),
        centers: stepper.centers.as_ref(),
        ema: stepper.ema.as_ref(),
    };
    write_checkpoint(&config.save_dir, &trained, state)
}

/// The run's result: the best model (or the last, without evaluation) and its ONNX export,
/// written by the process that `leads` (the others report rank 0's files).
fn finish(
    config: &TrainConfig,
    s: &Setup,
    model: &ReidModel,
    state: RunState,
    stopped_early: bool,
    leads: bool,
) -> Result<TrainReport> {
    let best_path = config.save_dir.join("best.bpk");
    let final_model = if state.best_map.is_some() && (best_path.is_file() || !leads) {
        best_path
    } else {
        let path = config.save_dir.join("model.bpk");
        if leads {
            save_checkpoint(&model.valid(), &path)?;
        }
        path
    };
    let onnx = if config.export_onnx {
        let path = config.save_dir.join("model.onnx");
        if leads {
            let best = load_checkpoint(&final_model, &s.device)?;
            let options = crate::export::ExportOptions::with_preprocessing(s.preprocessing.clone());
            crate::export::export_onnx_file(&best, &options, &path)?;
        }
        Some(path)
    } else {
        None
    };
    Ok(TrainReport {
        epochs_done: state.epochs_done,
        best: state.best_map.map(|m| (m, state.best_epoch)),
        best_from_ema: state.best_from_ema,
        history: state.history,
        stopped_early,
        model: final_model,
        onnx,
    })
}

fn eval_log(target: &str, m: &RankMetrics) -> EvalLog {
    EvalLog {
        target: target.to_string(),
        map: m.map,
        rank1: m.rank(1),
        rank5: m.rank(5),
        minp: m.minp,
        classification: None,
    }
}

fn classification_log(target: &str, m: ClassificationMetrics) -> EvalLog {
    EvalLog {
        target: target.to_string(),
        map: m.map,
        rank1: m.top1,
        rank5: m.top5,
        minp: 0.0,
        classification: Some(m),
    }
}

/// How a classifier's outputs are read in evaluation, as it was trained.
fn readout(config: &TrainConfig) -> Readout {
    match config.model.task {
        Task::Multilabel => Readout::MultiLabel(config.loss.multilabel),
        _ => Readout::SingleLabel {
            cosine: config.loss.reid.am_margin > 0.0,
        },
    }
}

/// The number a run keeps its best model by: top-1 for single-label classifiers, mAP else.
fn selection_score(task: Task, log: &EvalLog) -> f64 {
    match task {
        Task::Classification => log.rank1,
        _ => log.map,
    }
}
