//! The model zoo and weight import (layers `models`, `weights`, `zoo`): parity of every architecture with its reference, torchreid / timm weight files, our checkpoints, the pretrained registry.

#[path = "../common/mod.rs"]
mod common;

mod classifier_weight_files;
mod init;
mod kernels;
mod pretrained;
mod torchreid_weight_files;
mod weight_import;
mod zoo_parity;
