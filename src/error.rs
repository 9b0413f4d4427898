//! The crate's single error type.

use std::path::PathBuf;

/// Every failure the SDK reports, one variant per kind of failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An architecture name that the model zoo does not know.
    #[error("unknown architecture `{name}`; known: {known}")]
    UnknownArchitecture {
        /// The name asked for.
        name: String,
        /// Comma-separated list of supported names.
        known: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A weight file that cannot be parsed (corrupt, truncated, unsupported format).
    #[error("cannot read weights from {path}: {reason}")]
    WeightFormat {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Weights whose keys or shapes do not match the architecture.
    #[error("weights do not match `{arch}`: {details}")]
    WeightMismatch {
        /// The architecture the weights were loaded into.
        arch: String,
        /// Missing, unexpected and mis-shaped keys, named.
        details: String,
    },
    /// A model file that cannot be used: not ONNX, corrupt, or not an image-embedding model.
    #[error("unusable model: {0}")]
    ModelFormat(String),
    /// A tensor or array with the wrong shape or type for the operation.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A `.npy` / `.npz` file that cannot be parsed.
    #[error("{path}: not a valid numpy file: {reason}")]
    Npy {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A gallery file that cannot be created, opened or written (corrupt, foreign, I/O).
    #[error("gallery file {path}: {reason}")]
    GalleryFile {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A gallery database that cannot be reached, created, opened or written.
    #[error("gallery database {location}: {reason}")]
    GalleryDatabase {
        /// The database's URL, without its password.
        location: String,
        /// What went wrong.
        reason: String,
    },
    /// Embeddings of one model offered to a gallery that holds another model's.
    #[error(
        "the gallery holds embeddings of model {gallery}, not of model {model}: re-embed its \
         entries with this model, or allow the change explicitly"
    )]
    ModelMismatch {
        /// The fingerprint the gallery recorded.
        gallery: String,
        /// The fingerprint offered.
        model: String,
    },
    /// A native runtime (ONNX Runtime, OpenVINO, MPI) could not be loaded or failed.
    #[error("runtime: {0}")]
    Runtime(String),
    /// One input of a batch could not be used; the others were not processed.
    #[error("input {index}: {reason}")]
    BadInput {
        /// Position of the input in the call.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Training diverged: the loss, or the weights after an epoch, stopped being finite.
    #[error(
        "training diverged at epoch {epoch}, step {step} (loss {loss}): lower the learning rate"
    )]
    Diverged {
        /// Epoch, from 1.
        epoch: usize,
        /// Step in the epoch, from 1.
        step: usize,
        /// The step's loss (the epoch's mean when the weights were found non-finite).
        loss: f32,
    },
    /// The operation was stopped by its caller (a progress callback asked to cancel).
    #[error("cancelled")]
    Cancelled,
    /// An entry, identity or item that does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A pretrained file could not be downloaded or was not the published one; the message
    /// names the file and the folder to put it in by hand.
    #[error("download failed: {0}")]
    Download(String),
    /// A device name that is not recognised or whose backend was not compiled in.
    #[error("device `{0}` is not available: {1}")]
    Device(String, String),
}

/// Shorthand for results carrying [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
