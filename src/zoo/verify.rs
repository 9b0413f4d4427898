//! Whether a file is the published one: its SHA-256 where the project publishes it, else that
//! it loads as the entry's architecture.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::catalog::{Expected, ZooModel, ZooTask};
use crate::error::{Error, Result};
use crate::models::ReidModel;
use crate::weights::{StateDict, load_backbone, load_state_dict};

/// Checks `path` against `model`'s checksum, or loads it as `model`'s architecture when no
/// checksum is published. The error says what differs.
pub(crate) fn verify(model: &ZooModel, path: &Path) -> Result<()> {
    let mismatch = |reason: String| Error::WeightFormat {
        path: path.to_path_buf(),
        reason: format!("not the published {} ({reason})", model.name),
    };
    match model.expected() {
        Expected::Sha256(expected) => {
            let actual = sha256_hex(path)?;
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(mismatch(format!("SHA-256 {actual}, published {expected}")));
            }
        }
        Expected::Sha256Prefix(prefix) => {
            let actual = sha256_hex(path)?;
            if !actual
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
            {
                return Err(mismatch(format!(
                    "SHA-256 {actual} does not start with the file name's {prefix}"
                )));
            }
        }
        Expected::Loadable => {
            let arch = model.architecture()?;
            let dict = StateDict::read(path)?;
            let device = crate::device::default_device();
            let classes = dict
                .tensors
                .get("classifier.weight")
                .map_or(1, |t| t.shape[0]);
            // A skeleton: nothing is drawn, the file's values are what gets loaded.
            let skeleton = ReidModel::unloaded(arch, classes, &device);
            match model.task {
                ZooTask::Reid => load_state_dict(skeleton, &dict).map(drop)?,
                ZooTask::Imagenet => {
                    // Training starts from whatever part of a backbone matches; the published
                    // file itself holds all of it.
                    let (_, report) = load_backbone(skeleton, &dict)?;
                    let absent: Vec<&String> = report
                        .skipped
                        .iter()
                        .filter(|k| !k.starts_with("classifier."))
                        .collect();
                    if !absent.is_empty() {
                        return Err(mismatch(format!(
                            "not all of {arch}'s backbone: {}",
                            absent
                                .iter()
                                .take(5)
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join("; ")
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The SHA-256 of a file, lower-case hex.
pub(crate) fn sha256_hex(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
