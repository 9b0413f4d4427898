//! The Classifier: images in, the top classes with their probabilities out. It runs
//! classification models (the SDK's exports with a `logits` output, or its checkpoints on
//! the Burn engine) through the [`Extractor`] machinery and reads the logits as the model's
//! task says: softmax for single-label models, one sigmoid per class for multi-label ones.

use std::path::Path;

use crate::error::{Error, Result};
use crate::extractor::{Extractor, ExtractorOptions};
use crate::models::Task;
use crate::preprocess::{ImageView, Rect};

/// One class of a prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Class index.
    pub class: usize,
    /// Probability (softmax for single-label models, sigmoid for multi-label ones).
    pub score: f32,
}

/// Classifies images with one model.
pub struct Classifier {
    extractor: Extractor,
    task: Task,
    class_names: Vec<String>,
}

impl Classifier {
    /// Loads a classification model (an `.onnx` export with a `logits` output, or a checkpoint
    /// for the Burn engine).
    pub fn new(model: impl AsRef<Path>, options: &ExtractorOptions) -> Result<Self> {
        let path = model.as_ref();
        let options = ExtractorOptions {
            logits: true,
            normalize: false,
            ..options.clone()
        };
        // A model that declares itself re-id is refused by the extractor; one that says
        // nothing (a foreign ONNX file with a `logits` output) is taken as single-label.
        let extractor = Extractor::new(path, &options).map_err(|e| match e {
            Error::ModelFormat(reason) if reason.contains("no output") => Error::ModelFormat(
                format!("{}: not a classification model ({reason})", path.display()),
            ),
            other => other,
        })?;
        let task = extractor.task().unwrap_or(Task::Classification);
        let class_names = extractor.class_names().to_vec();
        if !class_names.is_empty() && class_names.len() != extractor.dim() {
            return Err(Error::ModelFormat(format!(
                "{}: {} class names for {} classes",
                path.display(),
                class_names.len(),
                extractor.dim()
            )));
        }
        Ok(Self {
            extractor,
            task,
            class_names,
        })
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.extractor.dim()
    }

    /// Single-label or multi-label.
    pub fn task(&self) -> Task {
        self.task
    }

    /// The classes' names (empty when the model does not carry them).
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The input preprocessing.
    pub fn preprocessing(&self) -> &crate::preprocess::Preprocessing {
        self.extractor.preprocessing()
    }

    /// Class probabilities `[N × num_classes]` from raw logits.
    fn probabilities(&self, mut logits: Vec<f32>) -> Vec<f32> {
        let c = self.num_classes();
        match self.task {
            Task::Multilabel => logits
                .iter_mut()
                .for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
            _ => {
                for row in logits.chunks_mut(c) {
                    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    row.iter_mut().for_each(|v| *v = (*v - max).exp());
                    let sum: f32 = row.iter().sum();
                    row.iter_mut().for_each(|v| *v /= sum);
                }
            }
        }
        logits
    }

    /// Checks a number of classes asked for: at least 1 (more than the model has gives all).
    pub fn check_top_k(k: usize) -> Result<()> {
        if k == 0 {
            return Err(Error::InvalidInput("k must be at least 1".into()));
        }
        Ok(())
    }

    /// The `k` most probable classes of each image, best first (ties: lower index first).
    fn top_k(&self, logits: Vec<f32>, k: usize) -> Vec<Vec<Prediction>> {
        let c = self.num_classes();
        self.probabilities(logits)
            .chunks(c)
            .map(|row| {
                let mut order: Vec<usize> = (0..c).collect();
                order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
                order
                    .into_iter()
                    .take(k.min(c))
                    .map(|class| Prediction {
                        class,
                        score: row[class],
                    })
                    .collect()
            })
            .collect()
    }

    /// Class probabilities `[N × num_classes]` of encoded images.
    pub fn probabilities_encoded(&self, images: &[&[u8]]) -> Result<Vec<f32>> {
        Ok(self.probabilities(self.extractor.extract_encoded(images)?))
    }

    /// The top `k` classes of each encoded image (JPEG, PNG, BMP, WebP).
    pub fn classify_encoded(&self, images: &[&[u8]], k: usize) -> Result<Vec<Vec<Prediction>>> {
        Self::check_top_k(k)?;
        Ok(self.top_k(self.extractor.extract_encoded(images)?, k))
    }

    /// The top `k` classes of each image file.
    pub fn classify_files<P: AsRef<Path> + Sync>(
        &self,
        paths: &[P],
        k: usize,
    ) -> Result<Vec<Vec<Prediction>>> {
        Self::check_top_k(k)?;
        Ok(self.top_k(self.extractor.extract_files(paths)?, k))
    }

    /// The top `k` classes of each image in memory.
    pub fn classify_images(&self, images: &[ImageView], k: usize) -> Result<Vec<Vec<Prediction>>> {
        Self::check_top_k(k)?;
        Ok(self.top_k(self.extractor.extract_images(images)?, k))
    }

    /// The top `k` classes of each box of a frame.
    pub fn classify_boxes(
        &self,
        frame: &ImageView,
        boxes: &[Rect],
        k: usize,
    ) -> Result<Vec<Vec<Prediction>>> {
        Self::check_top_k(k)?;
        Ok(self.top_k(self.extractor.extract_boxes(frame, boxes)?, k))
    }
}
