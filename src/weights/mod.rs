//! Weights: torchreid checkpoint import (`.pth`, `.pth.tar`, `.safetensors`) by torchreid's
//! key names, export of weights under the same names, and the SDK's own checkpoints.

mod apply;
pub(crate) mod checkpoint;
pub mod fingerprint;
mod state_dict;

pub(crate) use apply::torch_flag_keys;
pub use apply::{LoadReport, expected_keys, load_backbone, load_state_dict, torch_keys_by_id};
pub use checkpoint::{
    load_checkpoint, save_checkpoint, save_torchreid_safetensors, torch_named_values,
};
pub use state_dict::{RawTensor, StateDict};

use std::path::Path;

use burn::tensor::Device;

use crate::error::Result;
use crate::models::{Arch, ReidModel};

/// Builds `arch` and loads torchreid weights from `path` into it.
///
/// The classifier is sized from the file when it has one, so `num_classes` need not be known.
pub fn load_torchreid(
    arch: Arch,
    path: impl AsRef<Path>,
    device: &Device,
) -> Result<(ReidModel, LoadReport)> {
    let dict = StateDict::read(path)?;
    let num_classes = dict
        .tensors
        .get("classifier.weight")
        .map(|t| t.shape[0])
        .unwrap_or(1);
    load_state_dict(ReidModel::unloaded(arch, num_classes, device), &dict)
}

/// Loads a model from any weight file the SDK reads: its own checkpoints (`.bpk`, which name
/// their architecture) or torchreid files, for which `arch` must be given.
pub fn load_any(arch: Option<Arch>, path: impl AsRef<Path>, device: &Device) -> Result<ReidModel> {
    let path = path.as_ref();
    if checkpoint::is_checkpoint(path) {
        let model = load_checkpoint(path, device)?;
        if let Some(arch) = arch.filter(|&a| a != model.arch) {
            return Err(crate::Error::InvalidInput(format!(
                "{} holds a {} checkpoint, not {arch}",
                path.display(),
                model.arch
            )));
        }
        return Ok(model);
    }
    let arch = arch.ok_or_else(|| {
        crate::Error::InvalidInput(format!(
            "{} is a torchreid weight file: name its architecture (the `arch` option)",
            path.display()
        ))
    })?;
    Ok(load_torchreid(arch, path, device)?.0)
}

/// The architectures whose parameter names and shapes `dict` matches exactly (the classifier's
/// class count aside).
pub fn matching_architectures(dict: &StateDict, device: &Device) -> Vec<Arch> {
    let file_keys: std::collections::BTreeMap<&str, &[usize]> = dict
        .tensors
        .iter()
        .filter(|(k, _)| !k.starts_with("classifier."))
        .map(|(k, t)| (k.as_str(), t.shape.as_slice()))
        .collect();
    Arch::ALL
        .into_iter()
        .filter(|&arch| {
            // A skeleton: its parameters are never drawn.
            let model = ReidModel::unloaded(arch, 1, device);
            let expected: std::collections::BTreeMap<String, Vec<usize>> = expected_keys(&model)
                .into_iter()
                .filter(|(k, _)| !k.starts_with("classifier."))
                .collect();
            expected.len() == file_keys.len()
                && expected
                    .iter()
                    .all(|(k, s)| file_keys.get(k.as_str()) == Some(&s.as_slice()))
        })
        .collect()
}
