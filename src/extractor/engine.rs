//! The two ways of running a model on prepared batches: an ONNX Runtime session pool and a
//! Burn model.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::tensor::{Device, Tensor, TensorData};
use ort::session::Session;
use ort::value::TensorElementType;

use crate::error::{Error, Result};
use crate::models::ReidModel;
use crate::models::embed::tensor_to_vec;

fn runtime_err(e: impl std::fmt::Display) -> Error {
    Error::Runtime(e.to_string())
}

/// ONNX Runtime sessions of one model. `Session::run` needs exclusive access, so each session
/// sits behind a lock and calls take the next one round-robin.
pub(crate) struct OrtPool {
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
    input: String,
    output: String,
    /// Height and width of the model's input, when fixed.
    pub input_hw: Option<(usize, usize)>,
}

impl OrtPool {
    /// A pool reading the output `output` (the first output when `None`).
    pub fn new(
        bytes: &[u8],
        library: Option<&Path>,
        threads: usize,
        sessions: usize,
        output: Option<&str>,
    ) -> Result<(Self, Option<usize>)> {
        let env = super::runtime::environment(library)?;
        let make = || -> Result<Session> {
            let mut builder = Session::builder(env).map_err(runtime_err)?;
            if threads > 0 {
                builder = builder.with_intra_threads(threads).map_err(runtime_err)?;
            }
            // The runtime loaded; a model it cannot build a session from is the file's fault.
            builder
                .commit_from_memory(bytes)
                .map_err(|e| Error::ModelFormat(e.to_string()))
        };
        let first = make()?;
        let input = first
            .inputs()
            .first()
            .ok_or_else(|| Error::ModelFormat("the model has no input".into()))?;
        let dims_ok = input
            .dtype()
            .tensor_shape()
            .is_some_and(|s| s.len() == 4 && (s[1] == 3 || s[1] < 0));
        if input.dtype().tensor_type() != Some(TensorElementType::Float32) || !dims_ok {
            return Err(Error::ModelFormat(format!(
                "model input `{}` is {:?}; expected a float32 NCHW tensor with 3 channels",
                input.name(),
                input.dtype()
            )));
        }
        let output = match output {
            Some(name) => first
                .outputs()
                .iter()
                .find(|o| o.name() == name)
                .ok_or_else(|| Error::ModelFormat(format!("the model has no output `{name}`")))?,
            None => first
                .outputs()
                .first()
                .ok_or_else(|| Error::ModelFormat("the model has no output".into()))?,
        };
        let dim = output
            .dtype()
            .tensor_shape()
            .and_then(|s| s.last().copied())
            .filter(|&d| d > 0)
            .map(|d| d as usize);
        let input_hw = input
            .dtype()
            .tensor_shape()
            .and_then(|s| (s[2] > 0 && s[3] > 0).then_some((s[2] as usize, s[3] as usize)));
        let (input, output) = (input.name().to_string(), output.name().to_string());
        let mut all = vec![Mutex::new(first)];
        for _ in 1..sessions.max(1) {
            all.push(Mutex::new(make()?));
        }
        Ok((
            Self {
                sessions: all,
                next: AtomicUsize::new(0),
                input,
                output,
                input_hw,
            },
            dim,
        ))
    }

    /// Runs `[n, 3, h, w]` floats; returns `[n, d]` floats and `d`.
    pub fn run(&self, data: Vec<f32>, shape: [usize; 4]) -> Result<(Vec<f32>, usize)> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len();
        let mut session = self.sessions[i].lock().unwrap_or_else(|p| p.into_inner());
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let tensor = ort::value::Tensor::from_array((dims, data)).map_err(runtime_err)?;
        let outputs = session
            .run(ort::inputs![self.input.as_str() => tensor])
            .map_err(runtime_err)?;
        let value = outputs
            .get(&self.output)
            .ok_or_else(|| Error::Runtime(format!("no output `{}`", self.output)))?;
        let (out_shape, values) = value.try_extract_tensor::<f32>().map_err(runtime_err)?;
        let d = values.len() / shape[0].max(1);
        if out_shape.first().copied() != Some(shape[0] as i64) || d * shape[0] != values.len() {
            return Err(Error::Runtime(format!(
                "model output has shape {out_shape:?} for a batch of {}",
                shape[0]
            )));
        }
        Ok((values.to_vec(), d))
    }
}

/// A zoo model run by Burn on a device.
pub(crate) struct BurnEngine {
    pub model: ReidModel,
    pub device: Device,
    /// Return the classifier's logits instead of the embedding.
    pub logits: bool,
}

impl BurnEngine {
    pub fn run(&self, data: Vec<f32>, shape: [usize; 4]) -> Result<(Vec<f32>, usize)> {
        let batch = Tensor::<4>::from_data(TensorData::new(data, shape), &self.device);
        if self.logits {
            let out = tensor_to_vec(self.model.logits(batch).logits);
            return Ok((out, self.model.num_classes()));
        }
        let out = tensor_to_vec(self.model.features(batch));
        Ok((out, self.model.feature_dim()))
    }
}
