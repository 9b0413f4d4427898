//! Finetuning for host applications: collect labelled images (pixel buffers, encoded images
//! or folders) into a working folder, train from a starting model, evaluate on held-out
//! images, and hand the result on as a checkpoint, an ONNX file or an extractor.
//!
//! The working folder holds the images in the folder-per-identity layout
//! (`train/`, `query/`, `gallery/`, see [`crate::data::reid::folders`]) and the run (`run/`), so a
//! host can stop and start again later: the images stay and training resumes.

use std::path::{Path, PathBuf};

use crate::data::reid::folders::identity_folders;
use crate::error::{Error, Result};
use crate::eval::{Metric, RankMetrics};
use crate::extractor::{Extractor, ExtractorOptions};
use crate::models::{Arch, ReidModel};
use crate::preprocess::{ImageView, PixelFormat, decode};
use crate::train::evaluate::evaluate_dataset;
use crate::train::optim::OptimizerConfig;
use crate::train::schedule::Schedule;
use crate::train::{
    DataSection, EvalSection, Event, ModelSection, OptimizerSection, ScheduleSection, TrainConfig,
    TrainReport, train,
};

/// Where an added image goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Used for training.
    Train,
    /// Held out: evaluation queries.
    Query,
    /// Held out: the evaluation gallery.
    Gallery,
}

impl Split {
    fn folder(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Query => "query",
            Split::Gallery => "gallery",
        }
    }
}

/// A finetuning job (single owner; not shared between threads).
pub struct Finetuner {
    work: PathBuf,
    config: TrainConfig,
    added: usize,
    report: Option<TrainReport>,
}

fn encode_png(rgb: &[u8], width: usize, height: usize) -> Result<Vec<u8>> {
    use image::ImageEncoder;
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(
            rgb,
            width as u32,
            height as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| Error::InvalidInput(format!("cannot encode the image: {e}")))?;
    Ok(bytes)
}

impl Finetuner {
    /// A job that starts from `weights` (torchreid's or a reid checkpoint; `None`: random
    /// initialization) of architecture `arch`, working in `work_dir` (created if needed;
    /// images already there from an earlier job are kept). Defaults: 10 epochs, batch 32,
    /// 256×128, AMSGrad at 3e-4 with a cosine schedule, random flips and crops.
    pub fn new(arch: &str, weights: Option<&Path>, work_dir: &Path) -> Result<Self> {
        let parsed: Arch = arch.parse()?;
        let (height, width) = parsed.default_input();
        for split in [Split::Train, Split::Query, Split::Gallery] {
            let dir = work_dir.join(split.folder());
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        if let Some(w) = weights
            && !w.is_file()
        {
            return Err(Error::io(
                w,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            ));
        }
        let config = TrainConfig {
            model: ModelSection {
                arch: arch.to_string(),
                weights: weights.map(Path::to_path_buf),
                ..Default::default()
            },
            data: DataSection {
                root: work_dir.to_path_buf(),
                sources: vec!["folders".into()],
                targets: vec![],
                height,
                width,
                transforms: vec!["random_flip".into(), "random_crop".into()],
                ..Default::default()
            },
            optimizer: OptimizerSection {
                algorithm: OptimizerConfig {
                    name: "amsgrad".into(),
                    ..Default::default()
                },
                ..Default::default()
            },
            schedule: ScheduleSection {
                policy: Schedule::Cosine { max_epoch: 10 },
                max_epoch: 10,
                ..Default::default()
            },
            eval: EvalSection {
                eval_freq: 0,
                ..Default::default()
            },
            save_dir: work_dir.join("run"),
            ..Default::default()
        };
        let added = walk_count(work_dir)?;
        Ok(Self {
            work: work_dir.to_path_buf(),
            config,
            added,
            report: None,
        })
    }

    /// The training settings (epochs, batch size, learning rate, input size, …) to adjust
    /// before [`Finetuner::run`].
    pub fn config_mut(&mut self) -> &mut TrainConfig {
        &mut self.config
    }

    /// Sets the number of epochs (at least 1; a cosine schedule spans them).
    pub fn set_epochs(&mut self, epochs: usize) -> Result<()> {
        if epochs == 0 {
            return Err(Error::InvalidInput("epochs must be at least 1".into()));
        }
        self.config.schedule.max_epoch = epochs;
        if let Schedule::Cosine { max_epoch } = &mut self.config.schedule.policy {
            *max_epoch = epochs;
        }
        Ok(())
    }

    /// Sets the batch size, learning rate and input size (height × width) of training; 0
    /// keeps a value as it is. The rate must be finite and not negative, the size within
    /// [`crate::preprocess::MAX_INPUT_SIDE`] and given with both sides or neither.
    pub fn set_training(
        &mut self,
        batch_size: usize,
        learning_rate: f64,
        height: usize,
        width: usize,
    ) -> Result<()> {
        if !(learning_rate.is_finite() && learning_rate >= 0.0) {
            return Err(Error::InvalidInput(
                "learning_rate must be finite and positive (or 0)".into(),
            ));
        }
        if (height == 0) != (width == 0) {
            return Err(Error::InvalidInput(
                "give both height and width, or neither".into(),
            ));
        }
        if height > 0 {
            crate::preprocess::check_input_size(height, width)?;
        }
        if batch_size > 0 {
            self.config.sampler.batch_size = batch_size;
        }
        if learning_rate > 0.0 {
            self.config.schedule.lr = learning_rate;
        }
        if height > 0 {
            self.config.data.height = height;
            self.config.data.width = width;
        }
        Ok(())
    }

    /// The training settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Images added so far (including those found in the working folder).
    pub fn len(&self) -> usize {
        self.added
    }

    /// Whether no image was added.
    pub fn is_empty(&self) -> bool {
        self.added == 0
    }

    fn store(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
        identity: u64,
        camera: i32,
        split: Split,
    ) -> Result<()> {
        crate::gallery::check_camera(camera)?;
        let png = encode_png(rgb, width, height)?;
        let dir = self.work.join(split.folder()).join(identity.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join(format!("{camera}_{:08}.png", self.added));
        crate::formats::npy::write_atomically(&path, &png)?;
        self.added += 1;
        Ok(())
    }

    /// Adds an image in memory (any size; it is resized for training).
    pub fn add_image(
        &mut self,
        image: &ImageView,
        identity: u64,
        camera: i32,
        split: Split,
    ) -> Result<()> {
        image.check()?;
        let mut rgb = Vec::with_capacity(image.width * image.height * 3);
        let bpp = image.format.bytes_per_pixel();
        for y in 0..image.height {
            let row = &image.data[y * image.stride..][..image.width * bpp];
            for p in row.chunks(bpp) {
                rgb.extend_from_slice(&match image.format {
                    PixelFormat::Rgb8 | PixelFormat::Rgba8 => [p[0], p[1], p[2]],
                    PixelFormat::Bgr8 | PixelFormat::Bgra8 => [p[2], p[1], p[0]],
                    PixelFormat::Gray8 => [p[0]; 3],
                });
            }
        }
        self.store(&rgb, image.width, image.height, identity, camera, split)
    }

    /// Adds an encoded image (JPEG, PNG, BMP, WebP); a corrupt one is an error and adds
    /// nothing.
    pub fn add_encoded(
        &mut self,
        bytes: &[u8],
        identity: u64,
        camera: i32,
        split: Split,
    ) -> Result<()> {
        let (rgb, w, h) = decode(bytes).map_err(|e| Error::BadInput {
            index: 0,
            reason: e.to_string(),
        })?;
        self.store(&rgb, w, h, identity, camera, split)
    }

    /// Adds every image of a folder-per-identity dataset (`ROOT/{train,query,gallery}/…` or
    /// `ROOT/<identity>/…`, see [`crate::data::reid::folders`]); identities are renumbered in the
    /// folders' sorted order. Returns how many were added.
    pub fn add_folder(&mut self, root: &Path) -> Result<usize> {
        let dataset = identity_folders(root)?;
        let mut n = 0;
        for (samples, split) in [
            (&dataset.train, Split::Train),
            (&dataset.query, Split::Query),
            (&dataset.gallery, Split::Gallery),
        ] {
            for s in samples {
                let bytes = std::fs::read(&s.path).map_err(|e| Error::io(&s.path, e))?;
                let (rgb, w, h) = decode(&bytes)
                    .map_err(|e| Error::InvalidInput(format!("{}: {e}", s.path.display())))?;
                self.store(&rgb, w, h, s.pid as u64, s.camera, split)?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn held_out(&self) -> Result<Option<crate::data::ReidDataset>> {
        let data = identity_folders(&self.work)?;
        Ok((!data.query.is_empty() && !data.gallery.is_empty()).then_some(data))
    }

    /// Trains (or resumes an interrupted run) with the added images; evaluates on the
    /// held-out query and gallery images after the last epoch when there are some.
    pub fn run(&mut self, progress: &mut dyn FnMut(&Event) -> bool) -> Result<TrainReport> {
        let mut config = self.config.clone();
        if self.held_out()?.is_some() {
            config.data.targets = vec!["folders".into()];
        }
        let report = train(&config, progress)?;
        self.report = Some(report.clone());
        Ok(report)
    }

    /// The model now: the trained one after [`Finetuner::run`], else the starting one.
    pub fn model(&self) -> Result<ReidModel> {
        let device = crate::device::parse_device(&self.config.device)?;
        let arch: Arch = self.config.model.arch.parse()?;
        match (&self.report, &self.config.model.weights) {
            (Some(r), _) => crate::weights::load_checkpoint(&r.model, &device),
            (None, Some(w)) => crate::weights::load_any(Some(arch), w, &device),
            (None, None) => Ok(ReidModel::new(arch, 1, &device)),
        }
    }

    /// Rank metrics of the current model on the held-out images (an error without any).
    pub fn evaluate(&self) -> Result<RankMetrics> {
        let data = self.held_out()?.ok_or_else(|| {
            Error::InvalidInput("no held-out images: add query and gallery images".into())
        })?;
        let device = crate::device::parse_device(&self.config.device)?;
        let pre = self.config.data.test_preprocessing();
        let metric: Metric = self.config.eval.dist_metric.parse()?;
        evaluate_dataset(&self.model()?, &data, &pre, metric, 64, &device)
    }

    /// Saves the current model as a reid checkpoint (atomically).
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        crate::weights::save_checkpoint(&self.model()?, path)
    }

    /// Exports the current model to ONNX (atomically), with the finetuning input size.
    pub fn export_onnx(&self, path: &Path) -> Result<()> {
        let options =
            crate::export::ExportOptions::new(self.config.data.height, self.config.data.width);
        crate::export::export_onnx_file(&self.model()?, &options, path)
    }

    /// An extractor for the current model: exported to `run/model.onnx` and loaded with
    /// `options` (ONNX Runtime by default, or Burn).
    pub fn extractor(&self, options: &ExtractorOptions) -> Result<Extractor> {
        let dir = self.work.join("run");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join("model.onnx");
        self.export_onnx(&path)?;
        Extractor::new(&path, options)
    }
}

/// Images already in a working folder.
fn walk_count(work: &Path) -> Result<usize> {
    let mut n = 0;
    for split in ["train", "query", "gallery"] {
        let dir = work.join(split);
        if !dir.is_dir() {
            continue;
        }
        for identity in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let identity = identity.map_err(|e| Error::io(&dir, e))?.path();
            if identity.is_dir() {
                n += crate::data::files::image_files(&identity)?.len();
            }
        }
    }
    Ok(n)
}
