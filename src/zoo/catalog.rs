//! The published pretrained models reid knows by name. The list is data (`catalog.json`, beside
//! this file), copied from the projects that publish the files: torchreid's model zoo and model
//! sources, torchvision's and Cadene's ImageNet weights, timm's pretrained configurations.

use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::models::Arch;

/// What a published model was trained for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZooTask {
    /// Re-identification on a person re-id dataset (classifier over its training identities).
    Reid,
    /// ImageNet classification: a backbone to start training from (`model.pretrained: true`).
    Imagenet,
}

/// One accuracy figure as its project publishes it (percent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accuracy {
    /// The evaluation set (`market1501`, `imagenet`, …).
    pub dataset: String,
    /// Re-id mean average precision.
    #[serde(default)]
    pub map: Option<f32>,
    /// Re-id Rank-1.
    #[serde(default)]
    pub rank1: Option<f32>,
    /// Classification top-1.
    #[serde(default)]
    pub top1: Option<f32>,
}

/// How a downloaded or placed file is recognised as the published one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected<'a> {
    /// The project publishes the file's SHA-256 (hex).
    Sha256(&'a str),
    /// The file name carries the first hex digits of its SHA-256 (torchvision's and Cadene's
    /// convention, which `torch.hub` checks).
    Sha256Prefix(&'a str),
    /// No checksum is published: the file must load as the entry's architecture.
    Loadable,
}

/// A pretrained model file that a project publishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZooModel {
    /// The registry's name (`osnet_x1_0_market1501`, `osnet_x1_0_imagenet`, …).
    pub name: String,
    /// The torchreid architecture the weights are for.
    pub arch: String,
    /// Other architectures whose backbone starts from this file (torchreid starts
    /// `resnet50_fc512` from ResNet-50's ImageNet weights).
    #[serde(default)]
    pub backbone_of: Vec<String>,
    /// What it was trained for.
    pub task: ZooTask,
    /// The file's name in the cache folder (the published name where the project gives one).
    pub file: String,
    /// Where the project publishes it.
    pub url: String,
    /// The file's SHA-256 (hex), when the project publishes it.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The first hex digits of the SHA-256, when the published file name carries them.
    #[serde(default)]
    pub sha256_prefix: Option<String>,
    /// The training set.
    pub trained_on: String,
    /// Input height and width it was trained at.
    pub input: [usize; 2],
    /// The classifier's number of classes, when known.
    #[serde(default)]
    pub num_classes: Option<usize>,
    /// Published accuracy.
    #[serde(default)]
    pub accuracy: Vec<Accuracy>,
    /// The publishing project (`torchreid`, `torchvision`, `timm`, …).
    pub source: String,
}

impl ZooModel {
    /// The architecture, parsed.
    pub fn architecture(&self) -> Result<Arch> {
        Arch::from_str(&self.arch)
    }

    /// How the file is recognised.
    pub fn expected(&self) -> Expected<'_> {
        match (&self.sha256, &self.sha256_prefix) {
            (Some(full), _) => Expected::Sha256(full),
            (None, Some(prefix)) => Expected::Sha256Prefix(prefix),
            (None, None) => Expected::Loadable,
        }
    }

    /// The published accuracy as one line (`market1501 mAP 84.9 R1 94.2`).
    pub fn accuracy_summary(&self) -> String {
        self.accuracy
            .iter()
            .map(|a| {
                let mut s = a.dataset.clone();
                if let Some(m) = a.map {
                    s.push_str(&format!(" mAP {m:.1}"));
                }
                if let Some(r) = a.rank1 {
                    s.push_str(&format!(" R1 {r:.1}"));
                }
                if let Some(t) = a.top1 {
                    s.push_str(&format!(" top-1 {t:.1}"));
                }
                s
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every model of the catalog, in its file's order.
pub fn catalog() -> &'static [ZooModel] {
    static CATALOG: OnceLock<Vec<ZooModel>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        // The file is part of the crate and checked by the tests: a parse error is a build defect.
        serde_json::from_str(include_str!("catalog.json")).expect("src/zoo/catalog.json parses")
    })
}

/// The catalog's model called `name`.
pub fn find(name: &str) -> Result<&'static ZooModel> {
    let name = name.trim();
    catalog().iter().find(|m| m.name == name).ok_or_else(|| {
        let close: Vec<&str> = catalog()
            .iter()
            .filter(|m| m.name.starts_with(name) || name.starts_with(&m.arch))
            .map(|m| m.name.as_str())
            .collect();
        let hint = if close.is_empty() {
            "`reid zoo` lists them".to_string()
        } else {
            format!("did you mean {}?", close.join(", "))
        };
        Error::NotFound(format!("no pretrained model `{name}` in the zoo; {hint}"))
    })
}

/// The ImageNet weights published for `arch`'s backbone, when there are some.
pub fn imagenet(arch: Arch) -> Option<&'static ZooModel> {
    catalog().iter().find(|m| {
        m.task == ZooTask::Imagenet
            && (m.arch == arch.name() || m.backbone_of.iter().any(|b| b == arch.name()))
    })
}
