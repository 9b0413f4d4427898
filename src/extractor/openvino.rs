//! The OpenVINO engine: a compiled model and a pool of infer requests, OpenVINO's C library
//! loaded at run time (the `openvino` Python package's, found as ONNX Runtime's is).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use openvino::{
    CompiledModel, Core, DeviceType, ElementType, InferRequest, RwPropertyKey, Shape, Tensor,
};

use super::engine::{check_output_batch, rows};
use super::library::{Library, LoadedOnce};
use crate::error::{Error, Result};
use crate::preprocess::{InputTensor, Layout, to_uint8};

/// OpenVINO's C library: `REID_OPENVINO_LIBRARY`, the `openvino` Python package's `libs/`
/// folder, the system's library path.
const OPENVINO: Library = Library {
    stem: "libopenvino_c",
    name: "OpenVINO",
    what: "OpenVINO (2024.2 or later)",
    env: "REID_OPENVINO_LIBRARY",
    package: &["openvino", "libs"],
    advice: "Set REID_OPENVINO_LIBRARY or the extractor's OpenVINO library option to \
             libopenvino_c, or `pip install openvino`.",
};

/// OpenVINO's library, once loaded (a process holds one).
static LOADED: LoadedOnce<()> = LoadedOnce::new();

/// Loads OpenVINO's C library once per process; a later call naming another file is an error.
fn load(explicit: Option<&Path>) -> Result<()> {
    LOADED.get_or_load(&OPENVINO, explicit, |path| {
        openvino_sys::library::load_from(path.to_path_buf())
    })?;
    Ok(())
}

fn ov_err(e: impl std::fmt::Display) -> Error {
    Error::Runtime(format!("OpenVINO: {e}"))
}

/// How OpenVINO compiles the model (`ExtractorOptions::openvino`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenVinoOptions {
    /// OpenVINO's C library (otherwise found: `REID_OPENVINO_LIBRARY`, the `openvino` Python
    /// package, the system library path).
    pub library: Option<PathBuf>,
    /// The device: `CPU`, `GPU`, `GPU.1`, `NPU`, `AUTO`, …
    pub device: String,
    /// The inference precision hint: `f32` (exact; the CPU plugin otherwise computes in bf16
    /// where the CPU has it), `bf16` or `f16`.
    pub precision: String,
    /// The performance hint: `latency` or `throughput` (`None`: the device's default).
    pub hint: Option<String>,
}

impl Default for OpenVinoOptions {
    fn default() -> Self {
        Self {
            library: None,
            device: "CPU".into(),
            precision: "f32".into(),
            hint: None,
        }
    }
}

impl OpenVinoOptions {
    /// Refuses an empty device, an unknown precision or hint.
    pub fn validate(&self) -> Result<()> {
        if self.device.trim().is_empty() {
            return Err(Error::InvalidInput("the OpenVINO device is empty".into()));
        }
        if !matches!(self.precision.as_str(), "f32" | "bf16" | "f16") {
            return Err(Error::InvalidInput(format!(
                "OpenVINO precision `{}`: f32, bf16 or f16",
                self.precision
            )));
        }
        if let Some(hint) = &self.hint
            && !matches!(hint.as_str(), "latency" | "throughput")
        {
            return Err(Error::InvalidInput(format!(
                "OpenVINO performance hint `{hint}`: latency or throughput"
            )));
        }
        Ok(())
    }
}

/// A compiled model and its infer requests (one per concurrent extraction).
pub(crate) struct OpenVinoPool {
    requests: Vec<Mutex<InferRequest>>,
    next: AtomicUsize,
    input: String,
    output: String,
    /// The element type of a float input (f32, or f16 for an FP16 export's float16 ends).
    float_input: ElementType,
    /// Height and width of the model's input, when fixed.
    pub input_hw: Option<(usize, usize)>,
    /// What the model's input tensor holds.
    pub tensor: InputTensor,
    /// The device it was compiled for.
    pub device: String,
    /// The batch the input is fixed at, if it is.
    pub fixed_batch: Option<usize>,
    // Kept alive while its requests run (behind a lock: OpenVINO's handle is not `Sync`).
    _compiled: Mutex<CompiledModel>,
}

impl OpenVinoPool {
    /// A pool reading the output `output` (the first output when `None`), with `requests`
    /// infer requests; `threads` (0: OpenVINO's default) for the CPU.
    pub fn new(
        bytes: &[u8],
        options: &OpenVinoOptions,
        threads: usize,
        requests: usize,
        output: Option<&str>,
    ) -> Result<(Self, Option<usize>)> {
        options.validate()?;
        load(options.library.as_deref())?;
        let mut core = Core::new().map_err(ov_err)?;
        let model = core
            .read_model_from_buffer(bytes, None)
            .map_err(|e| Error::ModelFormat(format!("OpenVINO cannot read the model: {e}")))?;
        let device = DeviceType::from(options.device.as_str());
        let mut properties = vec![(
            RwPropertyKey::HintInferencePrecision,
            options.precision.clone(),
        )];
        if threads > 0 && options.device == "CPU" {
            properties.push((RwPropertyKey::InferenceNumThreads, threads.to_string()));
        }
        if let Some(hint) = &options.hint {
            properties.push((
                RwPropertyKey::HintPerformanceMode,
                hint.to_ascii_uppercase(),
            ));
        }
        for (key, value) in &properties {
            core.set_property(&device, key, value).map_err(ov_err)?;
        }
        let mut compiled = core.compile_model(&model, device).map_err(ov_err)?;

        let input = compiled.get_input_by_index(0).map_err(ov_err)?;
        let element = input.get_element_type().map_err(ov_err)?;
        let dims: Vec<Option<usize>> = input
            .get_partial_shape()
            .map_err(ov_err)?
            .get_dimensions()
            .iter()
            .map(|d| (!d.is_dynamic()).then_some(d.get_min() as usize))
            .collect();
        let tensor = match (element, dims.as_slice()) {
            (ElementType::F32 | ElementType::F16, [_, c, _, _]) if c.is_none_or(|c| c == 3) => {
                InputTensor::Float
            }
            (ElementType::U8, [_, Some(3), _, _]) => InputTensor::Uint8(Layout::Nchw),
            (ElementType::U8, [_, _, _, Some(3)]) => InputTensor::Uint8(Layout::Nhwc),
            _ => {
                return Err(Error::ModelFormat(format!(
                    "model input is {element:?} {dims:?}; expected a float32 (or float16) NCHW \
                     tensor with 3 channels, or uint8 pixels (NCHW or NHWC)"
                )));
            }
        };
        let (h, w) = match tensor {
            InputTensor::Uint8(Layout::Nhwc) => (dims[1], dims[2]),
            _ => (dims[2], dims[3]),
        };
        let output_node = match output {
            Some(name) => compiled
                .get_output_by_name(name)
                .map_err(|_| Error::ModelFormat(format!("the model has no output `{name}`")))?,
            None => compiled.get_output_by_index(0).map_err(ov_err)?,
        };
        let dim = output_node
            .get_partial_shape()
            .map_err(ov_err)?
            .get_dimensions()
            .last()
            .filter(|d| !d.is_dynamic())
            .map(|d| d.get_min() as usize);
        let names = |node: openvino::Node| node.get_name().map_err(ov_err);
        let (input, output) = (names(input)?, names(output_node)?);
        let requests = (0..requests.max(1))
            .map(|_| compiled.create_infer_request().map(Mutex::new))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(ov_err)?;
        Ok((
            Self {
                requests,
                next: AtomicUsize::new(0),
                input,
                output,
                float_input: element,
                input_hw: h.zip(w),
                tensor,
                device: options.device.clone(),
                fixed_batch: dims.first().copied().flatten(),
                _compiled: Mutex::new(compiled),
            },
            dim,
        ))
    }

    /// Runs `[n, 3, h, w]` prepared floats (as the model's input tensor); returns `[n, d]`
    /// floats and `d`.
    pub fn run(&self, data: Vec<f32>, shape: [usize; 4]) -> Result<(Vec<f32>, usize)> {
        let (element, order) = match self.tensor {
            InputTensor::Float => (self.float_input, [0, 1, 2, 3]),
            InputTensor::Uint8(Layout::Nchw) => (ElementType::U8, [0, 1, 2, 3]),
            InputTensor::Uint8(Layout::Nhwc) => (ElementType::U8, [0, 2, 3, 1]),
        };
        let dims: Vec<i64> = order.iter().map(|&a| shape[a] as i64).collect();
        let mut tensor =
            Tensor::new(element, &Shape::new(&dims).map_err(ov_err)?).map_err(ov_err)?;
        // The prepared values go straight into OpenVINO's buffer, converted on the way.
        let raw = tensor.get_raw_data_mut().map_err(ov_err)?;
        let width = raw.len() / data.len().max(1);
        if width * data.len() != raw.len() {
            return Err(Error::Runtime(format!(
                "OpenVINO: an input tensor of {} bytes for {} values",
                raw.len(),
                data.len()
            )));
        }
        match (self.tensor, element) {
            (InputTensor::Uint8(layout), _) => raw.copy_from_slice(&to_uint8(&data, shape, layout)),
            (InputTensor::Float, ElementType::F16) => {
                for (to, v) in raw.chunks_exact_mut(2).zip(&data) {
                    to.copy_from_slice(&half::f16::from_f32(*v).to_le_bytes());
                }
            }
            (InputTensor::Float, _) => {
                for (to, v) in raw.chunks_exact_mut(4).zip(&data) {
                    to.copy_from_slice(&v.to_le_bytes());
                }
            }
        }

        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.requests.len();
        let mut request = self.requests[i].lock().unwrap_or_else(|p| p.into_inner());
        request.set_tensor(&self.input, &tensor).map_err(ov_err)?;
        request.infer().map_err(ov_err)?;
        let name = &self.output;
        let out = request
            .get_tensor(name)
            .map_err(|e| Error::Runtime(format!("OpenVINO: no output `{name}`: {e}")))?;
        let out_shape = out.get_shape().map_err(ov_err)?;
        check_output_batch(name, out_shape.get_dimensions(), shape[0])?;
        let raw = out.get_raw_data().map_err(ov_err)?;
        let values = match out.get_element_type().map_err(ov_err)? {
            ElementType::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            ElementType::F16 => raw
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(Error::ModelFormat(format!(
                    "model output `{name}` is {other:?}; expected float32 or float16"
                )));
            }
        };
        rows(vec![values], shape[0])
    }
}
