//! The C ABI (`include/reid.h`): opaque handles for the extractor, its options and the
//! gallery, plus model export, following the conventions in the header's preamble: every
//! fallible call returns a [`reid_status`](status::reid_status) and keeps a thread-local
//! message, catches panics, checks pointers and sizes before touching memory, and writes its
//! outputs only on success. This module calls the public Rust API only.

#![allow(non_camel_case_types)]

pub mod boundary;
pub mod classifier;
pub mod export;
pub mod export_options;
pub mod extractor;
pub mod extractor_options;
pub mod finetuner;
pub mod gallery;
mod handle;
pub mod identity_store;
pub mod images;
pub mod logging;
pub mod matching_config;
pub mod search_options;
pub mod status;
pub mod version;
