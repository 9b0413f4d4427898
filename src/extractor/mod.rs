//! The Extractor: images in, re-id embeddings out.
//!
//! It loads an ONNX re-id model (the SDK's exports, or any float32 NCHW model such as
//! torchreid's own exports) and runs it on ONNX Runtime or OpenVINO, or runs a zoo model with
//! Burn, which needs no native library. Inputs are image files, encoded bytes, pixel buffers, or a frame
//! with detection boxes; they are decoded and resized in parallel, batched, and each gives one
//! embedding, L2-normalized unless asked otherwise. An `Extractor` is `Send + Sync`: threads
//! may extract at once (ONNX Runtime sessions are pooled behind locks).

pub(crate) mod engine;
mod library;
pub mod openvino;
mod providers;
pub mod runtime;

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::calibration::Calibration;
use crate::data::video::sampling::{Pooling, pool};
use crate::error::{Error, Result};
use crate::models::{Arch, ReidModel, Task};
use crate::preprocess::{
    ChannelOrder, ImageView, InputTensor, PixelFormat, Preprocessing, PreprocessingOverrides, Rect,
    decode,
};
use engine::{BurnEngine, OrtPool};
pub use openvino::OpenVinoOptions;
use openvino::OpenVinoPool;
pub use providers::ExecutionProvider;

/// Which runtime executes the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// ONNX Runtime, loaded dynamically (ONNX models).
    #[default]
    OnnxRuntime,
    /// Burn on the CPU (`flex`) or a GPU device (zoo models only).
    Burn,
    /// OpenVINO, loaded dynamically (ONNX models; `ExtractorOptions::openvino`).
    OpenVino,
}

impl std::str::FromStr for Engine {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "onnxruntime" | "ort" => Ok(Engine::OnnxRuntime),
            "burn" => Ok(Engine::Burn),
            "openvino" | "ov" => Ok(Engine::OpenVino),
            other => Err(Error::InvalidInput(format!(
                "unknown engine `{other}`; expected onnxruntime, openvino or burn"
            ))),
        }
    }
}

/// Options of [`Extractor::new`].
#[derive(Debug, Clone)]
pub struct ExtractorOptions {
    /// The runtime.
    pub engine: Engine,
    /// Path of the ONNX Runtime library (otherwise found: `ORT_DYLIB_PATH`, the `onnxruntime`
    /// Python package, the system library path).
    pub ort_library: Option<PathBuf>,
    /// Threads per ONNX Runtime session, or OpenVINO's CPU threads (0: the runtime's default).
    pub threads: usize,
    /// ONNX Runtime sessions, or OpenVINO infer requests, in the pool (concurrent extractions).
    pub sessions: usize,
    /// How OpenVINO compiles the model (OpenVINO engine).
    pub openvino: OpenVinoOptions,
    /// ONNX Runtime execution providers to ask for before the CPU, in order (ONNX Runtime
    /// engine); those that cannot be used are reported (a log warning,
    /// [`Extractor::execution_provider`]) and the CPU runs instead.
    pub providers: Vec<ExecutionProvider>,
    /// Fail instead of falling back to the CPU when none of `providers` can be used.
    pub require_provider: bool,
    /// Images per forward pass.
    pub max_batch: usize,
    /// Preprocessing; otherwise from the model's metadata, else torchreid's at the model's size.
    pub preprocessing: Option<Preprocessing>,
    /// Parts of the preprocessing to change, applied after it is resolved.
    pub overrides: PreprocessingOverrides,
    /// L2-normalize the embeddings.
    pub normalize: bool,
    /// Architecture of a torchreid weight file (Burn engine).
    pub arch: Option<Arch>,
    /// Burn device name (`flex`, `wgpu:0`, `cuda:0`).
    pub device: String,
    /// Read the classifier's logits (classification models) instead of the embedding;
    /// [`Classifier`] sets this.
    pub logits: bool,
}

impl Default for ExtractorOptions {
    fn default() -> Self {
        Self {
            engine: Engine::OnnxRuntime,
            ort_library: None,
            threads: 0,
            sessions: 1,
            openvino: OpenVinoOptions::default(),
            providers: Vec::new(),
            require_provider: false,
            max_batch: 32,
            preprocessing: None,
            overrides: PreprocessingOverrides::default(),
            normalize: true,
            arch: None,
            device: "flex".into(),
            logits: false,
        }
    }
}

impl ExtractorOptions {
    /// The options for a model of the OpenVINO Open Model Zoo's re-identification family
    /// (`person-reidentification-retail-0277` and the like): BGR pixels 0–255, no mean or
    /// standard deviation, at the model's own input size; a model fixed at batch 1 runs one
    /// image at a time. What a user migrating from OMZ's demos fed it.
    pub fn open_model_zoo() -> Self {
        Self {
            overrides: PreprocessingOverrides {
                channel_order: Some(ChannelOrder::Bgr),
                normalization: Some((1.0, [0.0; 3], [1.0; 3])),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Checks every option: at least one session and one image per batch, a sane input size
    /// override and normalization, a device this build knows. [`Extractor::new`], the C ABI's
    /// setters, the CLI and the Python binding all go through this one check.
    pub fn validate(&self) -> Result<()> {
        if self.sessions == 0 {
            return Err(Error::InvalidInput("sessions must be at least 1".into()));
        }
        if self.max_batch == 0 {
            return Err(Error::InvalidInput("max_batch must be at least 1".into()));
        }
        self.overrides.check()?;
        if let Some(preprocessing) = &self.preprocessing {
            preprocessing.check_input()?;
        }
        crate::device::parse_device(&self.device)?;
        for provider in &self.providers {
            provider.validate()?;
        }
        if !self.providers.is_empty() && self.engine != Engine::OnnxRuntime {
            return Err(Error::InvalidInput(
                "execution providers are ONNX Runtime's; this extractor uses another engine".into(),
            ));
        }
        self.openvino.validate()
    }
}

enum Backend {
    Ort(OrtPool),
    OpenVino(OpenVinoPool),
    // Boxed: the model's module tree is large and an extractor holds one backend.
    Burn(Box<BurnEngine>),
}

impl Backend {
    /// Runs `[n, 3, h, w]` prepared floats; returns `[n, d]` floats and `d`.
    fn run(&self, data: Vec<f32>, shape: [usize; 4]) -> Result<(Vec<f32>, usize)> {
        match self {
            Backend::Ort(pool) => pool.run(data, shape),
            Backend::OpenVino(pool) => pool.run(data, shape),
            Backend::Burn(engine) => engine.run(data, shape),
        }
    }
}

/// Turns images into embeddings with one model.
pub struct Extractor {
    backend: Backend,
    preprocessing: Preprocessing,
    dim: usize,
    normalize: bool,
    max_batch: usize,
    /// The batch the model's input is fixed at, if it is.
    fixed_batch: Option<usize>,
    /// What the model says its classifier is for (`None`: an ONNX file that does not say).
    task: Option<Task>,
    /// The classes' names the model carries (empty when none).
    class_names: Vec<String>,
    /// What produces these outputs: weights, preprocessing, output ([`Extractor::fingerprint`]).
    fingerprint: String,
    /// The threshold calibrated for the model (`reid calibrate`), from its metadata.
    calibration: Option<Calibration>,
}

/// The weights' fingerprint of an ONNX file: recorded by reid's export, else the hash of its
/// initializers (or, when those cannot be read as tensors, of the whole file).
fn onnx_weights_fingerprint(
    meta: &std::collections::BTreeMap<String, String>,
    bytes: &[u8],
) -> String {
    use crate::weights::fingerprint;
    if let Some(recorded) = meta.get(crate::export::WEIGHTS_FINGERPRINT) {
        return recorded.clone();
    }
    match crate::export::read_initializers(bytes) {
        Ok(dict) => fingerprint::of_state_dict(&dict),
        Err(_) => fingerprint::of_bytes(bytes),
    }
}

/// Refuses to read logits from a model that declares itself a re-id model.
fn check_logits_task(options: &ExtractorOptions, task: Option<Task>, path: &Path) -> Result<()> {
    if options.logits && task == Some(Task::Reid) {
        return Err(Error::InvalidInput(format!(
            "{} is a re-id model, not a classifier: use an Extractor",
            path.display()
        )));
    }
    Ok(())
}

/// Refuses a preprocessing whose input tensor (float32, or uint8 in a layout) is not the one
/// the graph takes.
fn check_input_tensor(
    path: &Path,
    graph: InputTensor,
    preprocessing: &Preprocessing,
) -> Result<()> {
    if graph != preprocessing.input {
        return Err(Error::ModelFormat(format!(
            "{}: the graph takes {graph:?} input, the preprocessing says {:?} (its metadata \
             or the options must describe the input the graph takes)",
            path.display(),
            preprocessing.input
        )));
    }
    Ok(())
}

fn is_onnx(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

impl Extractor {
    /// Loads `model` (an `.onnx` file, or for the Burn engine also a checkpoint).
    pub fn new(model: impl AsRef<Path>, options: &ExtractorOptions) -> Result<Self> {
        let path = model.as_ref();
        options.validate()?;
        if !is_onnx(path) {
            if options.engine != Engine::Burn {
                return Err(Error::InvalidInput(format!(
                    "{} is not an .onnx file: export it (`reid export`) or use the Burn engine",
                    path.display()
                )));
            }
            let device = crate::device::parse_device(&options.device)?;
            let model = crate::weights::load_any(options.arch, path, &device)?;
            check_logits_task(options, Some(model.task), path)?;
            let (h, w) = model.input_size();
            let preprocessing = options.overrides.apply(
                options
                    .preprocessing
                    .clone()
                    .unwrap_or_else(|| Preprocessing::torchreid(h, w)),
            );
            let weights = crate::weights::fingerprint::of_model(&model);
            return Self::with_burn(model, device, preprocessing, weights, options);
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let meta = crate::export::read_metadata(&bytes).map_err(|e| match e {
            Error::ModelFormat(reason) => {
                Error::ModelFormat(format!("{}: {reason}", path.display()))
            }
            other => other,
        })?;
        let from_meta = Preprocessing::from_metadata(&meta).ok();
        let weights = onnx_weights_fingerprint(&meta, &bytes);
        let task = meta.get("task").map(|t| t.parse()).transpose()?;
        check_logits_task(options, task, path)?;
        let calibration: Option<Calibration> = meta
            .get(crate::export::CALIBRATION)
            .map(|json| serde_json::from_str(json))
            .transpose()
            .map_err(|e| Error::ModelFormat(format!("{}: calibration: {e}", path.display())))?;
        let class_names: Vec<String> = match meta.get("class_names") {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| Error::ModelFormat(format!("{}: class names: {e}", path.display())))?,
            None => Vec::new(),
        };
        match options.engine {
            Engine::OnnxRuntime | Engine::OpenVino => {
                let output = options.logits.then_some(crate::export::LOGITS_NAME);
                let (model_hw, tensor, dim, fixed_batch, backend) =
                    if options.engine == Engine::OpenVino {
                        let (pool, dim) = OpenVinoPool::new(
                            &bytes,
                            &options.openvino,
                            options.threads,
                            options.sessions,
                            output,
                        )?;
                        let fixed = pool.fixed_batch;
                        (
                            pool.input_hw,
                            pool.tensor,
                            dim,
                            fixed,
                            Backend::OpenVino(pool),
                        )
                    } else {
                        let (pool, dim) = OrtPool::with_providers(
                            &bytes,
                            options.ort_library.as_deref(),
                            options.threads,
                            options.sessions,
                            output,
                            &options.providers,
                            options.require_provider,
                        )?;
                        let fixed = pool.fixed_batch;
                        (pool.input_hw, pool.tensor, dim, fixed, Backend::Ort(pool))
                    };
                let input_hw = model_hw.or(options.overrides.size);
                let preprocessing = match (&options.preprocessing, from_meta, input_hw) {
                    (Some(p), _, _) => p.clone(),
                    (None, Some(p), _) => p,
                    (None, None, Some((h, w))) => Preprocessing::torchreid(h, w),
                    (None, None, None) => {
                        return Err(Error::InvalidInput(format!(
                            "{} has a dynamic input size and no reid metadata: give the \
                             preprocessing (input size) explicitly",
                            path.display()
                        )));
                    }
                };
                let preprocessing = options.overrides.apply(preprocessing);
                preprocessing.check_input()?;
                check_input_tensor(path, tensor, &preprocessing)?;
                let dim = match dim {
                    Some(d) => d,
                    // A dynamic output size: find it by running one image.
                    None => {
                        let n = fixed_batch.unwrap_or(1);
                        let shape = [n, 3, preprocessing.height, preprocessing.width];
                        backend
                            .run(vec![0.0; n * preprocessing.input_len()], shape)?
                            .1
                    }
                };
                let fingerprint = crate::weights::fingerprint::of_pipeline(
                    &weights,
                    &preprocessing,
                    crate::weights::fingerprint::output_name(options.logits),
                );
                Ok(Self {
                    backend,
                    preprocessing,
                    dim,
                    normalize: options.normalize,
                    max_batch: options.max_batch,
                    fixed_batch,
                    task,
                    class_names,
                    fingerprint,
                    calibration,
                })
            }
            Engine::Burn => {
                if let Some(precision) = meta.get(crate::export::PRECISION) {
                    return Err(Error::InvalidInput(format!(
                        "{} is a {precision} export: the Burn engine runs float ones; use ONNX \
                         Runtime",
                        path.display()
                    )));
                }
                let arch: Arch = meta
                    .get("architecture")
                    .ok_or_else(|| {
                        Error::InvalidInput(format!(
                            "{} names no architecture (not exported by reid): the Burn engine \
                             runs zoo models only; use ONNX Runtime",
                            path.display()
                        ))
                    })?
                    .parse()?;
                let device = crate::device::parse_device(&options.device)?;
                let dict = crate::export::read_initializers(&bytes)?;
                let classes = dict
                    .tensors
                    .get("classifier.weight")
                    .map_or(1, |t| t.shape[0]);
                let model = match meta.get("head") {
                    Some(spec) => {
                        let classes = meta
                            .get("num_classes")
                            .and_then(|c| c.parse().ok())
                            .unwrap_or(1);
                        ReidModel::unloaded(arch, 1, &device)
                            .with_head_spec(spec, classes, &device)?
                    }
                    None => ReidModel::unloaded(arch, classes, &device),
                };
                let (mut model, _) = crate::weights::load_state_dict(model, &dict)?;
                model.cosine_scale = meta.get("cosine_scale").and_then(|v| v.parse().ok());
                let (h, w) = arch.default_input();
                let preprocessing = options.overrides.apply(
                    options
                        .preprocessing
                        .clone()
                        .or(from_meta)
                        .unwrap_or_else(|| Preprocessing::torchreid(h, w)),
                );
                let mut extractor =
                    Self::with_burn(model, device, preprocessing, weights, options)?;
                // The file's metadata, not the rebuilt model's defaults, says what it is for.
                extractor.task = task;
                extractor.class_names = class_names;
                extractor.calibration = calibration;
                // An embedding the graph L2-normalizes is normalized here too, so that both
                // engines give the same output for the same file.
                let normalized_in_graph = meta.get("normalized").is_some_and(|v| v == "true");
                extractor.normalize |= normalized_in_graph && !options.logits;
                Ok(extractor)
            }
        }
    }

    fn with_burn(
        model: ReidModel,
        device: crate::device::Device,
        preprocessing: Preprocessing,
        weights: String,
        options: &ExtractorOptions,
    ) -> Result<Self> {
        model.check_input_size(preprocessing.height, preprocessing.width)?;
        preprocessing.check_input()?;
        let dim = if options.logits {
            model.num_classes()
        } else {
            model.feature_dim()
        };
        let (task, class_names) = (Some(model.task), model.class_names.clone());
        let fingerprint = crate::weights::fingerprint::of_pipeline(
            &weights,
            &preprocessing,
            crate::weights::fingerprint::output_name(options.logits),
        );
        Ok(Self {
            task,
            class_names,
            fingerprint,
            calibration: None,
            dim,
            fixed_batch: None,
            backend: Backend::Burn(Box::new(BurnEngine::new(
                model,
                device,
                options.logits,
                preprocessing.conversion_to(&Preprocessing::torchreid(
                    preprocessing.height,
                    preprocessing.width,
                )),
            ))),
            preprocessing,
            normalize: options.normalize,
            max_batch: options.max_batch,
        })
    }

    /// Where the model runs: ONNX Runtime's execution provider in use
    /// (`CPUExecutionProvider` when none of the options' providers could be used),
    /// `openvino:DEVICE`, or `burn`.
    pub fn execution_provider(&self) -> String {
        match &self.backend {
            Backend::Ort(pool) => pool
                .providers
                .first()
                .copied()
                .unwrap_or("CPUExecutionProvider")
                .to_string(),
            Backend::OpenVino(pool) => format!("openvino:{}", pool.device),
            Backend::Burn(_) => "burn".into(),
        }
    }

    /// The model's fingerprint: a SHA-256 (hex) of its weights, the preprocessing its inputs
    /// get and what it outputs. Two extractors with the same fingerprint give the same
    /// embeddings; a gallery records it ([`crate::gallery::Gallery::bind_model`]) to refuse
    /// another model's. The same model as a checkpoint or as reid's ONNX export of it has the
    /// same fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The score threshold calibrated for this model (`reid calibrate` writes it into an ONNX
    /// file's metadata), if it has one; [`crate::Gallery::adopt_calibration`] gives it to a
    /// gallery.
    pub fn calibration(&self) -> Option<&Calibration> {
        self.calibration.as_ref()
    }

    /// What the model says its classifier is for (`None`: an ONNX file that does not say).
    pub fn task(&self) -> Option<Task> {
        self.task
    }

    /// The classes' names the model carries (empty when none).
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Embedding dimension (or number of classes, when reading logits).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The preprocessing applied to every image.
    pub fn preprocessing(&self) -> &Preprocessing {
        &self.preprocessing
    }

    /// Runs `n` prepared images (`n × 3 × H × W` floats) and returns `n × dim` floats.
    pub fn extract_prepared(&self, data: &[f32], n: usize) -> Result<Vec<f32>> {
        let per = self.preprocessing.input_len();
        if data.len() != n * per {
            return Err(Error::InvalidInput(format!(
                "{} floats for {n} images of {per}",
                data.len()
            )));
        }
        let mut out = Vec::with_capacity(n * self.dim);
        let step = self.fixed_batch.unwrap_or(self.max_batch);
        for chunk in data.chunks(step * per) {
            let b = chunk.len() / per;
            // A model of a fixed batch (Open Model Zoo's take one image) runs full batches:
            // the last one padded with zeros, its padding's outputs dropped.
            let run = self.fixed_batch.unwrap_or(b);
            let mut input = chunk.to_vec();
            input.resize(run * per, 0.0);
            let shape = [run, 3, self.preprocessing.height, self.preprocessing.width];
            let (mut values, d) = self.backend.run(input, shape)?;
            values.truncate(b * d);
            if d != self.dim {
                return Err(Error::Runtime(format!(
                    "model gave {d}-d embeddings, expected {}",
                    self.dim
                )));
            }
            out.extend(values);
        }
        if self.normalize {
            crate::distance::normalize_rows(&mut out, self.dim);
        }
        Ok(out)
    }

    /// Prepares `n` inputs in parallel (`prepare(i, out)` fills input `i`), batch by batch,
    /// and embeds them. The first failing input is reported by its index.
    fn extract_with<F>(&self, n: usize, prepare: F) -> Result<Vec<f32>>
    where
        F: Fn(usize, &mut [f32]) -> Result<()> + Sync,
    {
        let per = self.preprocessing.input_len();
        let mut out = Vec::with_capacity(n * self.dim);
        for start in (0..n).step_by(self.max_batch) {
            let b = (n - start).min(self.max_batch);
            let mut batch = vec![0f32; b * per];
            batch
                .par_chunks_mut(per)
                .enumerate()
                .try_for_each(|(i, slot)| {
                    prepare(start + i, slot).map_err(|e| Error::BadInput {
                        index: start + i,
                        reason: e.to_string(),
                    })
                })?;
            out.extend(self.extract_prepared(&batch, b)?);
        }
        Ok(out)
    }

    /// Embeds encoded images (JPEG, PNG, BMP, WebP).
    pub fn extract_encoded(&self, images: &[&[u8]]) -> Result<Vec<f32>> {
        self.extract_with(images.len(), |i, out| {
            let (rgb, w, h) = decode(images[i])?;
            self.preprocessing
                .prepare(&ImageView::packed(&rgb, w, h, PixelFormat::Rgb8), out)
        })
    }

    /// Embeds image files, in order.
    pub fn extract_files<P: AsRef<Path> + Sync>(&self, paths: &[P]) -> Result<Vec<f32>> {
        self.extract_with(paths.len(), |i, out| {
            let path = paths[i].as_ref();
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            let (rgb, w, h) = decode(&bytes)
                .map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))?;
            self.preprocessing
                .prepare(&ImageView::packed(&rgb, w, h, PixelFormat::Rgb8), out)
        })
    }

    /// Embeds images already in memory.
    pub fn extract_images(&self, images: &[ImageView]) -> Result<Vec<f32>> {
        self.extract_with(images.len(), |i, out| {
            self.preprocessing.prepare(&images[i], out)
        })
    }

    /// One embedding for a tracklet — a tracked person's crops over several frames, a
    /// tracker's natural unit: the images' embeddings pooled (torchreid's video `avg` or
    /// `max`), then L2-normalized when the extractor normalizes.
    pub fn extract_tracklet(&self, images: &[ImageView], pooling: Pooling) -> Result<Vec<f32>> {
        if images.is_empty() {
            return Err(Error::InvalidInput(
                "a tracklet needs at least one image".into(),
            ));
        }
        let frames = self.extract_images(images)?;
        let mut pooled = pool(&frames, self.dim(), &[images.len()], pooling);
        if self.normalize {
            crate::distance::normalize_rows(&mut pooled, self.dim());
        }
        Ok(pooled)
    }

    /// Embeds the crops of `boxes` in `frame` (boxes are clipped to the frame; a box with
    /// nothing inside it is an error naming it).
    pub fn extract_boxes(&self, frame: &ImageView, boxes: &[Rect]) -> Result<Vec<f32>> {
        frame.check()?;
        self.extract_with(boxes.len(), |i, out| {
            let region = boxes[i].clip(frame.width, frame.height)?;
            self.preprocessing.prepare_region(frame, region, out);
            Ok(())
        })
    }
}
