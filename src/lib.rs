//! # reid
//!
//! Object re-identification SDK: torchreid's model zoo in [Burn](https://burn.dev) with
//! torchreid-compatible weights ([`models`], [`weights`]), ONNX export ([`export`]), embedding
//! extraction on ONNX Runtime or Burn ([`extractor::Extractor`]), gallery matching with durable
//! files ([`gallery::Gallery`]) and the re-id evaluation protocol ([`eval`]). The C ABI
//! ([`ffi`], `include/reid.h`) exposes extraction, galleries and export to C and C++.
//!
//! ```no_run
//! use reid::models;
//! let device = reid::device::default_device();
//! let model = models::build("osnet_x0_25", 751, &device).unwrap();
//! assert_eq!(model.feature_dim(), 512);
//! ```

#![warn(missing_docs)]

// The layers, lowest first (ARCHITECTURE.md; tests/architecture.rs keeps imports downward).
pub mod actmap;
pub mod allocator;
pub mod calibration;
pub mod classifier;
pub mod config;
pub mod data;
pub mod device;
pub mod distance;
#[cfg(feature = "mpi")]
pub mod distributed;
pub mod error;
pub mod eval;
pub mod export;
pub mod extractor;
pub mod ffi;
pub mod finetuner;
pub mod formats;
pub mod gallery;
pub mod identity_store;
pub mod logging;
pub mod models;
pub mod preprocess;
pub mod quantize;
pub mod train;
pub mod weights;
pub mod zoo;

pub use error::{Error, Result};
pub use extractor::{Extractor, ExtractorOptions};
pub use gallery::Gallery;
pub use models::{Arch, ReidModel};

/// The SDK's version (the crate version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
