//! # reid
//!
//! Object re-identification SDK: torchreid's model zoo in [Burn](https://burn.dev) with
//! torchreid-compatible weights, embedding extraction and gallery matching, for Rust and,
//! through a stable C ABI, for C and C++ applications.
//!
//! ```no_run
//! use reid::models;
//! let device = reid::device::default_device();
//! let model = models::build("osnet_x0_25", 751, &device).unwrap();
//! assert_eq!(model.feature_dim(), 512);
//! ```

#![warn(missing_docs)]

pub mod device;
pub mod embed;
pub mod error;
pub mod eval;
pub mod export;
pub mod gallery;
pub mod infer;
pub mod models;
pub mod npy;
pub mod preprocess;
pub mod resample;
pub mod weights;

pub use error::{Error, Result};
pub use models::{Arch, ReidModel};

/// The SDK's version (the crate version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
