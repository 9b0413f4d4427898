//! What a run leaves behind after every epoch and resumes from: the run state, the model, the
//! optimizer (and the peer's, the centers), written into `last.new/` and swapped for `last/`.

use std::path::{Path, PathBuf};

use burn::tensor::{Bytes, Device};
use serde::{Deserialize, Serialize};

use super::center::CenterLoss;
use super::config::TrainConfig;
use super::ema::Ema;
use super::history::EpochLog;
use super::optim::Optimizer;
use super::schedule::LrSchedule;
use super::setup::{Setup, initial_model, initial_peer};
use super::stepper::Peer;
use crate::error::{Error, Result};
use crate::models::ReidModel;
use crate::weights::{load_checkpoint, save_checkpoint};

/// What a run leaves to resume from (`last/state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// The learning-rate schedule, with what it has observed.
    pub schedule: LrSchedule,
    /// Best selection score so far.
    pub best_map: Option<f64>,
    /// Epoch of the best score.
    pub best_epoch: usize,
    /// Whether the best model is the moving average of the weights.
    #[serde(default)]
    pub best_from_ema: bool,
    /// Evaluations since the best one (early stopping).
    pub evals_since_best: usize,
    /// One entry per epoch.
    pub history: Vec<EpochLog>,
    /// The configuration the run started with.
    pub config: TrainConfig,
    /// When the run began (Unix seconds), for the TensorBoard time axis.
    #[serde(default)]
    pub started: f64,
    /// The loss scale of float16 training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<super::loss_scale::LossScaler>,
}

/// What a checkpoint holds besides the run state.
pub(crate) struct Trained<'a> {
    pub model: &'a ReidModel,
    pub optimizer: &'a Optimizer,
    pub peer: Option<(&'a ReidModel, &'a Optimizer)>,
    pub centers: Option<&'a CenterLoss>,
    pub ema: Option<&'a Ema>,
}

/// Reads a JSON file into `T`.
pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))
}

/// The checkpoint folder to resume from: `last/`, or `last.old/` when a crash came between
/// the two renames of a checkpoint swap.
pub(crate) fn resumable(save_dir: &Path) -> Option<PathBuf> {
    ["last", "last.old"]
        .iter()
        .map(|d| save_dir.join(d))
        .find(|d| d.join("state.json").is_file())
}

/// Writes the optimizer's state, atomically.
pub(crate) fn save_optimizer(optimizer: &Optimizer, path: &Path) -> Result<()> {
    crate::formats::npy::write_atomically(path, &optimizer.to_bytes()?)
}

/// The optimizer `config` builds, with the state saved at `path`.
pub(crate) fn load_optimizer(config: &TrainConfig, path: &Path) -> Result<Optimizer> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    config
        .optimizer
        .build()?
        .with_state(Bytes::from_bytes_vec(bytes), &path.display().to_string())
}

/// Writes the checkpoint into `last.new/`, then swaps it for `last/`.
pub(crate) fn write_checkpoint(save_dir: &Path, trained: &Trained, state: &RunState) -> Result<()> {
    let fresh = save_dir.join("last.new");
    let _ = std::fs::remove_dir_all(&fresh);
    std::fs::create_dir_all(&fresh).map_err(|e| Error::io(&fresh, e))?;
    save_checkpoint(trained.model, fresh.join("model.bpk"))?;
    save_optimizer(trained.optimizer, &fresh.join("optimizer.bpk"))?;
    if let Some((peer, optimizer)) = trained.peer {
        save_checkpoint(peer, fresh.join("peer.bpk"))?;
        save_optimizer(optimizer, &fresh.join("peer_optimizer.bpk"))?;
    }
    if let Some(centers) = trained.centers {
        centers.save(&fresh.join("centers.npy"))?;
    }
    if let Some(ema) = trained.ema {
        ema.save(trained.model, &fresh.join("ema.bpk"))?;
    }
    let json = serde_json::to_vec_pretty(state).expect("serializable state");
    crate::formats::npy::write_atomically(&fresh.join("state.json"), &json)?;
    let (last, old) = (save_dir.join("last"), save_dir.join("last.old"));
    let _ = std::fs::remove_dir_all(&old);
    if last.exists() {
        std::fs::rename(&last, &old).map_err(|e| Error::io(&last, e))?;
    }
    std::fs::rename(&fresh, &last).map_err(|e| Error::io(&last, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Now, in seconds since the Unix epoch.
pub(crate) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Where a run starts: the model, its optimizer, the run state, the peer and the centers,
/// either read back from the last checkpoint in `save_dir` or made fresh.
pub(crate) struct Start {
    /// The model (on the evaluation device).
    pub model: ReidModel,
    /// Its optimizer.
    pub optimizer: Optimizer,
    /// The run state.
    pub state: RunState,
    /// Deep mutual learning's second model.
    pub peer: Option<Peer>,
    /// The center loss's class centers.
    pub centers: Option<CenterLoss>,
    /// The moving average of the weights (kept by the process that evaluates: one alone, or
    /// rank 0).
    pub ema: Option<Ema>,
    /// Whether this resumes an earlier run.
    pub resumed: bool,
}

impl Start {
    /// The start as bytes for the other ranks of a distributed run: the model (as a checkpoint
    /// file), the optimizer's state, the run state and whether it resumes, each length-prefixed.
    /// Distributed runs have no peer and no centers.
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>> {
        let model = crate::weights::checkpoint::checkpoint_bytes(&self.model)
            .map_err(|e| Error::Runtime(format!("cannot serialize the model: {e}")))?;
        let optimizer = self.optimizer.to_bytes()?;
        let state = serde_json::to_vec(&self.state).expect("serializable state");
        let mut bytes = Vec::new();
        for part in [
            &model[..],
            &optimizer[..],
            &state[..],
            &[self.resumed as u8],
        ] {
            bytes.extend((part.len() as u64).to_le_bytes());
            bytes.extend_from_slice(part);
        }
        Ok(bytes)
    }

    /// The start of [`Start::to_bytes`], with the model on `device`.
    pub(crate) fn from_bytes(bytes: &[u8], config: &TrainConfig, device: &Device) -> Result<Self> {
        let malformed = || Error::Runtime("a malformed start from rank 0".into());
        let parts = split_parts(bytes).ok_or_else(malformed)?;
        let [model, optimizer, state, resumed] = parts[..] else {
            return Err(malformed());
        };
        let origin = Path::new("the start sent by rank 0");
        let model = crate::weights::checkpoint::checkpoint_from_bytes(
            Bytes::from_bytes_vec(model.to_vec()),
            device,
            origin,
        )?;
        let optimizer = config.optimizer.build()?.with_state(
            Bytes::from_bytes_vec(optimizer.to_vec()),
            "the start sent by rank 0",
        )?;
        let state: RunState = serde_json::from_slice(state)
            .map_err(|e| Error::Runtime(format!("the run state from rank 0: {e}")))?;
        Ok(Start {
            model,
            optimizer,
            state,
            peer: None,
            centers: None,
            ema: None,
            resumed: resumed == [1],
        })
    }
}

/// Length-prefixed parts (`u64` little-endian length, then the bytes), or `None` if malformed.
fn split_parts(mut bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut parts = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_first_chunk::<8>()?;
        let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
        if len > rest.len() {
            return None;
        }
        let (part, rest) = rest.split_at(len);
        parts.push(part);
        bytes = rest;
    }
    Some(parts)
}

/// Reads the last checkpoint of `config.save_dir`, or starts afresh when there is none.
pub(crate) fn start_or_resume(config: &TrainConfig, s: &Setup) -> Result<Start> {
    let device = &s.device;
    let center_alpha = config.loss.reid.center_alpha;
    let Some(dir) = resumable(&config.save_dir) else {
        let model = initial_model(config, s)?;
        let peer = match &config.loss.mutual_learning {
            Some(mutual) => Some(Peer {
                model: initial_peer(config, s, mutual)?,
                optimizer: config.optimizer.build()?,
            }),
            None => None,
        };
        let centers = (config.loss.reid.center_weight > 0.0)
            .then(|| CenterLoss::new(s.classes, model.feature_dim(), center_alpha, device));
        let ema = match &config.optimizer.ema {
            Some(ema) => Some(Ema::new(&model, ema)?),
            None => None,
        };
        let state = RunState {
            epochs_done: 0,
            schedule: LrSchedule::new(
                config.schedule.policy.clone(),
                config.schedule.lr,
                config.schedule.warmup,
            )?,
            best_map: None,
            best_epoch: 0,
            best_from_ema: false,
            evals_since_best: 0,
            history: vec![],
            config: config.clone(),
            started: unix_now(),
            loss_scale: None,
        };
        return Ok(Start {
            model,
            optimizer: config.optimizer.build()?,
            state,
            peer,
            centers,
            ema,
            resumed: false,
        });
    };
    let state: RunState = read_json(&dir.join("state.json"))?;
    let model = load_checkpoint(dir.join("model.bpk"), device)?;
    let optimizer = load_optimizer(config, &dir.join("optimizer.bpk"))?;
    let peer = match &config.loss.mutual_learning {
        Some(_) => Some(Peer {
            model: load_checkpoint(dir.join("peer.bpk"), device)?,
            optimizer: load_optimizer(config, &dir.join("peer_optimizer.bpk"))?,
        }),
        None => None,
    };
    let centers = if config.loss.reid.center_weight > 0.0 {
        let (classes, dim) = (model.num_classes(), model.feature_dim());
        let path = dir.join("centers.npy");
        Some(CenterLoss::load(&path, classes, dim, center_alpha, device)?)
    } else {
        None
    };
    let ema = match &config.optimizer.ema {
        Some(ema) => Some(Ema::load(&dir.join("ema.bpk"), &model, ema, device)?),
        None => None,
    };
    Ok(Start {
        model,
        optimizer,
        state,
        peer,
        centers,
        ema,
        resumed: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_and_malformed_ones_are_refused() {
        let mut bytes = Vec::new();
        for part in [&b"model"[..], b"", b"xy"] {
            bytes.extend((part.len() as u64).to_le_bytes());
            bytes.extend_from_slice(part);
        }
        let parts = split_parts(&bytes).unwrap();
        assert_eq!(parts, vec![&b"model"[..], b"", b"xy"]);
        assert!(split_parts(&bytes[..bytes.len() - 1]).is_none());
        assert!(split_parts(&[1, 2, 3]).is_none());
        assert!(split_parts(&u64::MAX.to_le_bytes()).is_none());
    }
}
