//! ONNX Runtime execution providers (CUDA, TensorRT, OpenVINO) an extractor asks for before
//! the CPU: which ones register is reported, and a run that falls back to the CPU says so.

use std::path::PathBuf;
use std::str::FromStr;

use ort::ep::ExecutionProvider as _;
use ort::session::builder::SessionBuilder;

use crate::error::{Error, Result};

/// An ONNX Runtime execution provider to run on instead of the CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionProvider {
    /// NVIDIA CUDA on GPU `device_id` (the `onnxruntime-gpu` wheel's library).
    Cuda {
        /// The GPU.
        device_id: i32,
    },
    /// NVIDIA TensorRT on GPU `device_id`; the engines it builds are cached in `engine_cache`
    /// when given (building one takes minutes).
    TensorRt {
        /// The GPU.
        device_id: i32,
        /// A folder for the built engines.
        engine_cache: Option<PathBuf>,
    },
    /// Intel OpenVINO inside ONNX Runtime (`onnxruntime-openvino`), on `device_type`.
    OpenVino {
        /// `CPU`, `GPU`, `NPU`, …
        device_type: String,
    },
}

impl FromStr for ExecutionProvider {
    type Err = Error;

    /// `cuda`, `cuda:N`, `tensorrt`, `tensorrt:N`, `openvino` or `openvino:DEVICE` (the
    /// TensorRT engine cache is set on the value, not in the name).
    fn from_str(s: &str) -> Result<Self> {
        let (name, arg) = match s.trim().split_once(':') {
            Some((name, arg)) => (name, Some(arg)),
            None => (s.trim(), None),
        };
        let device_id = |arg: Option<&str>| -> Result<i32> {
            arg.map_or(Ok(0), |a| {
                a.parse::<i32>().ok().filter(|&d| d >= 0).ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "execution provider `{s}`: GPU `{a}` is not a number"
                    ))
                })
            })
        };
        match name.to_ascii_lowercase().as_str() {
            "cuda" => Ok(Self::Cuda {
                device_id: device_id(arg)?,
            }),
            "tensorrt" => Ok(Self::TensorRt {
                device_id: device_id(arg)?,
                engine_cache: None,
            }),
            "openvino" => Ok(Self::OpenVino {
                device_type: arg.unwrap_or("CPU").to_string(),
            }),
            _ => Err(Error::InvalidInput(format!(
                "execution provider `{s}`: cuda[:N], tensorrt[:N] or openvino[:DEVICE]"
            ))),
        }
    }
}

impl ExecutionProvider {
    /// ONNX Runtime's name for it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Cuda { .. } => "CUDAExecutionProvider",
            Self::TensorRt { .. } => "TensorrtExecutionProvider",
            Self::OpenVino { .. } => "OpenVINOExecutionProvider",
        }
    }

    /// Refuses a negative GPU, an empty engine cache folder or OpenVINO device.
    pub fn validate(&self) -> Result<()> {
        let bad = |why: &str| Err(Error::InvalidInput(format!("{}: {why}", self.name())));
        match self {
            Self::Cuda { device_id } | Self::TensorRt { device_id, .. } if *device_id < 0 => {
                bad("the GPU index is negative")
            }
            Self::TensorRt {
                engine_cache: Some(dir),
                ..
            } if dir.as_os_str().is_empty() => bad("the engine cache folder is empty"),
            Self::OpenVino { device_type } if device_type.trim().is_empty() => {
                bad("the device is empty")
            }
            _ => Ok(()),
        }
    }

    /// Registers it on `builder`: an error (this library lacks it, or it cannot start) says why.
    fn register(&self, builder: &mut SessionBuilder) -> std::result::Result<(), String> {
        let available = |ok: ort::Result<bool>| match ok {
            Ok(true) => Ok(()),
            Ok(false) => Err("not in this ONNX Runtime library".to_string()),
            Err(e) => Err(e.to_string()),
        };
        match self {
            Self::Cuda { device_id } => {
                available(ort::ep::CUDA::is_available())?;
                ort::ep::CUDA::default()
                    .with_device_id(*device_id)
                    .register(builder)
            }
            Self::TensorRt {
                device_id,
                engine_cache,
            } => {
                available(ort::ep::TensorRT::is_available())?;
                let mut ep = ort::ep::TensorRT::default().with_device_id(*device_id);
                if let Some(dir) = engine_cache {
                    ep = ep
                        .with_engine_cache(true)
                        .with_engine_cache_path(dir.display());
                }
                ep.register(builder)
            }
            Self::OpenVino { device_type } => {
                available(ort::ep::OpenVINO::is_available())?;
                ort::ep::OpenVINO::default()
                    .with_device_type(device_type)
                    .register(builder)
            }
        }
        .map_err(|e| e.to_string())
    }
}

/// Registers `providers` in order on `builder`; returns the names of those that registered
/// (empty: the CPU only) and, for each that did not, why. With `required`, none registering
/// is an error.
pub(crate) fn register_all(
    builder: &mut SessionBuilder,
    providers: &[ExecutionProvider],
    required: bool,
) -> Result<(Vec<&'static str>, Vec<String>)> {
    let mut active = Vec::new();
    let mut failures = Vec::new();
    for provider in providers {
        match provider.register(builder) {
            Ok(()) => active.push(provider.name()),
            Err(why) => failures.push(format!("{}: {why}", provider.name())),
        }
    }
    if required && active.is_empty() && !providers.is_empty() {
        return Err(Error::Runtime(format!(
            "no execution provider could be used ({}); the CPU fallback was not allowed",
            failures.join("; ")
        )));
    }
    Ok((active, failures))
}
