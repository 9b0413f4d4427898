//! The two ways of running a model on prepared batches: an ONNX Runtime session pool and a
//! Burn model (on the CPU, where the model has one, its graph of reid's kernels).

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::tensor::{Device, Tensor, TensorData};
use ort::session::Session;
use ort::value::TensorElementType;

use crate::error::{Error, Result};
use crate::models::ReidModel;
use crate::models::embed::tensor_to_vec;
use crate::models::graph::Graph;
use crate::preprocess::{ChannelAffine, InputTensor, Layout, to_uint8};

use super::providers::{ExecutionProvider, register_all};

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
    /// What the model's input tensor holds (prepared batches are converted to it).
    pub tensor: InputTensor,
    /// A float input is float16 (an FP16 export without float32 ends).
    half_input: bool,
    /// The execution providers that registered, in order (empty: the CPU only).
    pub providers: Vec<&'static str>,
    /// The batch the input is fixed at, if it is.
    pub fixed_batch: Option<usize>,
}

impl OrtPool {
    /// A pool reading the output `output` (the first output when `None`), on the CPU.
    pub fn new(
        bytes: &[u8],
        library: Option<&Path>,
        threads: usize,
        sessions: usize,
        output: Option<&str>,
    ) -> Result<(Self, Option<usize>)> {
        Self::with_providers(bytes, library, threads, sessions, output, &[], false)
    }

    /// As [`OrtPool::new`], asking for `providers` first: those that cannot be used are
    /// reported through the SDK's log (a warning) and the CPU runs instead, or, when
    /// `required`, none being usable is an error.
    pub fn with_providers(
        bytes: &[u8],
        library: Option<&Path>,
        threads: usize,
        sessions: usize,
        output: Option<&str>,
        providers: &[ExecutionProvider],
        required: bool,
    ) -> Result<(Self, Option<usize>)> {
        let env = super::runtime::environment(library)?;
        let registered = std::cell::RefCell::new(None);
        let make = || -> Result<Session> {
            let mut builder = Session::builder(env).map_err(runtime_err)?;
            if threads > 0 {
                builder = builder.with_intra_threads(threads).map_err(runtime_err)?;
            }
            let outcome = register_all(&mut builder, providers, required)?;
            registered.borrow_mut().get_or_insert(outcome);
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
        let shape: Vec<i64> = input
            .dtype()
            .tensor_shape()
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        let element = input.dtype().tensor_type();
        let half_input = element == Some(TensorElementType::Float16);
        let tensor = match (element, shape.as_slice()) {
            (Some(TensorElementType::Float32 | TensorElementType::Float16), [_, c, _, _])
                if *c == 3 || *c < 0 =>
            {
                InputTensor::Float
            }
            (Some(TensorElementType::Uint8), [_, 3, _, _]) => InputTensor::Uint8(Layout::Nchw),
            (Some(TensorElementType::Uint8), [_, _, _, 3]) => InputTensor::Uint8(Layout::Nhwc),
            _ => {
                return Err(Error::ModelFormat(format!(
                    "model input `{}` is {:?}; expected a float32 (or float16) NCHW tensor \
                     with 3 channels, or uint8 pixels (NCHW or NHWC)",
                    input.name(),
                    input.dtype()
                )));
            }
        };
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
        let (h, w) = match tensor {
            InputTensor::Uint8(Layout::Nhwc) => (shape[1], shape[2]),
            _ => (shape[2], shape[3]),
        };
        let input_hw = (h > 0 && w > 0).then_some((h as usize, w as usize));
        let (input, output) = (input.name().to_string(), output.name().to_string());
        let (active, failures) = registered.take().unwrap_or_default();
        if !failures.is_empty() {
            crate::logging::emit(
                crate::logging::Level::Warning,
                "reid extractor",
                &format!(
                    "execution providers not used ({}); running on {}",
                    failures.join("; "),
                    active.first().copied().unwrap_or("the CPU")
                ),
            );
        }
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
                tensor,
                half_input,
                providers: active,
                fixed_batch: shape.first().filter(|&&b| b > 0).map(|&b| b as usize),
            },
            dim,
        ))
    }

    /// Runs `[n, 3, h, w]` prepared floats (as the model's input tensor: uint8 pixels are
    /// rounded and laid out); returns `[n, d]` floats and `d`.
    pub fn run(&self, data: Vec<f32>, shape: [usize; 4]) -> Result<(Vec<f32>, usize)> {
        let output = self.output.clone();
        rows(
            self.run_outputs(data, shape, std::slice::from_ref(&output))?,
            shape[0],
        )
    }

    /// Runs prepared floats as [`OrtPool::run`] does and returns the outputs `names`, each
    /// flattened (its first dimension checked to be the batch).
    pub fn run_outputs(
        &self,
        data: Vec<f32>,
        shape: [usize; 4],
        names: &[String],
    ) -> Result<Vec<Vec<f32>>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len();
        let mut session = self.sessions[i].lock().unwrap_or_else(|p| p.into_inner());
        let dims =
            |order: [usize; 4]| -> Vec<i64> { order.iter().map(|&a| shape[a] as i64).collect() };
        let outputs = match self.tensor {
            InputTensor::Float if self.half_input => {
                let halves: Vec<half::f16> = data.into_iter().map(half::f16::from_f32).collect();
                let tensor = ort::value::Tensor::from_array((dims([0, 1, 2, 3]), halves))
                    .map_err(runtime_err)?;
                session.run(ort::inputs![self.input.as_str() => tensor])
            }
            InputTensor::Float => {
                let tensor = ort::value::Tensor::from_array((dims([0, 1, 2, 3]), data))
                    .map_err(runtime_err)?;
                session.run(ort::inputs![self.input.as_str() => tensor])
            }
            InputTensor::Uint8(layout) => {
                let order = match layout {
                    Layout::Nchw => [0, 1, 2, 3],
                    Layout::Nhwc => [0, 2, 3, 1],
                };
                let pixels = to_uint8(&data, shape, layout);
                let tensor =
                    ort::value::Tensor::from_array((dims(order), pixels)).map_err(runtime_err)?;
                session.run(ort::inputs![self.input.as_str() => tensor])
            }
        }
        .map_err(runtime_err)?;
        names
            .iter()
            .map(|name| {
                let value = outputs
                    .get(name)
                    .ok_or_else(|| Error::Runtime(format!("no output `{name}`")))?;
                let (out_shape, values) = match value.try_extract_tensor::<half::f16>() {
                    Ok((s, halves)) => (s, halves.iter().map(|h| h.to_f32()).collect()),
                    Err(_) => {
                        let (s, floats) = value.try_extract_tensor::<f32>().map_err(runtime_err)?;
                        (s, floats.to_vec())
                    }
                };
                check_output_batch(name, out_shape, shape[0])?;
                Ok(values)
            })
            .collect()
    }
}

/// Refuses an output `name` of shape `dims` whose first dimension is not the batch.
pub(crate) fn check_output_batch(name: &str, dims: &[i64], batch: usize) -> Result<()> {
    if dims.first().copied() != Some(batch as i64) {
        return Err(Error::Runtime(format!(
            "model output `{name}` has shape {dims:?} for a batch of {batch}"
        )));
    }
    Ok(())
}

/// The one output asked for, as `batch` rows: the values and the row length.
pub(crate) fn rows(mut outputs: Vec<Vec<f32>>, batch: usize) -> Result<(Vec<f32>, usize)> {
    let values = outputs.pop().expect("one output asked for");
    let d = values.len() / batch.max(1);
    if d * batch != values.len() {
        return Err(Error::Runtime(format!(
            "model output has {} values for a batch of {batch}",
            values.len()
        )));
    }
    Ok((values, d))
}

/// A zoo model run by Burn on a device, or on the CPU as its graph of reid's kernels.
pub(crate) enum BurnEngine {
    /// The Burn model.
    Model {
        model: Box<ReidModel>,
        device: Device,
        /// Return the classifier's logits instead of the embedding.
        logits: bool,
        /// From the extractor's preprocessing to the model's own input, when they differ
        /// (what an export does in its graph).
        conversion: Option<ChannelAffine>,
    },
    /// The embedding (conversion included) as a graph of reid's CPU kernels
    /// ([`ReidModel::embedding_graph`]). The graph holds its own folded copy of the weights,
    /// so the Burn model is let go rather than kept as a second copy.
    Graph {
        graph: Graph,
        /// Embedding width.
        dim: usize,
    },
}

impl BurnEngine {
    /// The engine for `model`: its kernel graph when it has one and embeddings are asked for.
    pub fn new(
        model: ReidModel,
        device: Device,
        logits: bool,
        conversion: Option<ChannelAffine>,
    ) -> Self {
        let graph = (!logits)
            .then(|| model.embedding_graph(conversion.as_ref()))
            .flatten();
        match graph {
            Some(graph) => Self::Graph {
                graph,
                dim: model.feature_dim(),
            },
            None => Self::Model {
                model: Box::new(model),
                device,
                logits,
                conversion,
            },
        }
    }

    pub fn run(&self, data: Vec<f32>, shape: [usize; 4]) -> Result<(Vec<f32>, usize)> {
        let (model, device, logits, conversion) = match self {
            Self::Graph { graph, dim } => {
                let (out, _) = graph.run(data, shape).map_err(runtime_err)?;
                return Ok((out, *dim));
            }
            Self::Model {
                model,
                device,
                logits,
                conversion,
            } => (model, device, *logits, conversion),
        };
        let mut batch = Tensor::<4>::from_data(TensorData::new(data, shape), device);
        if let Some(affine) = conversion {
            if !affine.keeps_order() {
                let source = affine.source.map(|c| c as i64);
                let channels = Tensor::<1, burn::tensor::Int>::from_data(
                    TensorData::new(source.to_vec(), [3]),
                    device,
                );
                batch = batch.select(1, channels);
            }
            let per_channel = |values: [f32; 3]| {
                Tensor::<4>::from_data(TensorData::new(values.to_vec(), [1, 3, 1, 1]), device)
            };
            batch = batch * per_channel(affine.mul) + per_channel(affine.add);
        }
        if logits {
            let out = tensor_to_vec(model.logits(batch).logits);
            return Ok((out, model.num_classes()));
        }
        let out = tensor_to_vec(model.features(batch));
        Ok((out, model.feature_dim()))
    }
}
