//! The model zoo: torchreid's re-id architectures in Burn, with torchreid's parameter names.
//!
//! Build one by name with [`build`]; [`ReidModel::features`] is torchreid's eval-mode output
//! (the embedding) and [`ReidModel::logits`] its training-mode output (identity logits and the
//! embedding they were computed from).

pub mod attention_head;
pub mod complexity;
pub mod efficientnet;
pub mod embed;
pub mod graph;
pub mod inceptionv4;
pub mod kernels;
pub mod layers;
pub mod mobilefacenet;
pub mod mobilenetv2;
pub mod mobilenetv3;
pub mod osnet;
pub mod osnet_ain;
pub mod precision;
pub mod registry;
pub mod resnet;
pub mod seeding;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::error::{Error, Result};
use crate::preprocess::ChannelAffine;
use complexity::Macs;
use layers::Head;
pub use registry::{Arch, Family};

/// The feature extractor of one of the families.
// One value per model: the size difference between variants costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Backbone {
    /// OSNet / OSNet-IBN.
    OsNet(osnet::OsNet),
    /// OSNet-AIN.
    OsNetAin(osnet_ain::OsNetAin),
    /// ResNet-50.
    ResNet(resnet::ResNet),
    /// MobileNetV2.
    MobileNetV2(mobilenetv2::MobileNetV2),
    /// MobileNetV3 and EfficientNet (timm's blocks).
    EfficientNet(efficientnet::EfficientNet),
    /// Inception-V4.
    InceptionV4(inceptionv4::InceptionV4),
    /// MobileFaceNet.
    MobileFaceNet(mobilefacenet::MobileFaceNet),
}

impl Backbone {
    fn featuremaps(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Backbone::OsNet(m) => m.featuremaps(x),
            Backbone::OsNetAin(m) => m.featuremaps(x),
            Backbone::ResNet(m) => m.featuremaps(x),
            Backbone::MobileNetV2(m) => m.featuremaps(x),
            Backbone::EfficientNet(m) => m.featuremaps(x),
            Backbone::InceptionV4(m) => m.featuremaps(x),
            Backbone::MobileFaceNet(m) => m.featuremaps(x),
        }
    }

    fn out_channels(&self) -> usize {
        match self {
            Backbone::OsNet(m) => m.out_channels(),
            Backbone::OsNetAin(m) => m.out_channels(),
            Backbone::ResNet(m) => m.out_channels(),
            Backbone::MobileNetV2(m) => m.out_channels(),
            Backbone::EfficientNet(m) => m.out_channels(),
            Backbone::InceptionV4(m) => m.out_channels(),
            Backbone::MobileFaceNet(m) => m.out_channels(),
        }
    }

    fn macs(&self, m: &mut Macs) {
        match self {
            Backbone::OsNet(b) => b.macs(m),
            Backbone::OsNetAin(b) => b.macs(m),
            Backbone::ResNet(b) => b.macs(m),
            Backbone::MobileNetV2(b) => b.macs(m),
            Backbone::EfficientNet(b) => b.macs(m),
            Backbone::InceptionV4(b) => b.macs(m),
            Backbone::MobileFaceNet(b) => b.macs(m),
        }
    }
}

/// What a model's classifier is trained for; it decides how its logits are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Re-identification: the embedding is the product, the classifier only trains it.
    #[default]
    Reid,
    /// Single-label classification: softmax over the classes.
    Classification,
    /// Multi-label classification: one sigmoid per class.
    Multilabel,
}

impl Task {
    /// The name used in configs, checkpoints and ONNX metadata.
    pub fn name(self) -> &'static str {
        match self {
            Task::Reid => "reid",
            Task::Classification => "classification",
            Task::Multilabel => "multilabel",
        }
    }
}

impl std::str::FromStr for Task {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "reid" | "" => Ok(Task::Reid),
            "classification" => Ok(Task::Classification),
            "multilabel" => Ok(Task::Multilabel),
            other => Err(Error::InvalidInput(format!(
                "unknown task `{other}`; expected reid, classification or multilabel"
            ))),
        }
    }
}

/// Training-mode output: identity logits and the embedding they were computed from
/// (torchreid's `(y, v)` for the triplet loss).
#[derive(Debug, Clone)]
pub struct Logits {
    /// `[N, num_classes]` classifier scores.
    pub logits: Tensor<2>,
    /// `[N, feature_dim]` embeddings.
    pub features: Tensor<2>,
}

/// A re-id model of the zoo: backbone, pooling, optional fc block, classifier.
#[derive(Module, Debug)]
pub struct ReidModel {
    /// Convolutional feature extractor.
    pub backbone: Backbone,
    /// Pooling, fc block and classifier.
    pub head: Head,
    /// Multi-label attention head; when present it gives the logits (from the feature maps)
    /// and the linear classifier is unused.
    pub attention: Option<attention_head::AttentionHead>,
    /// Which architecture this is.
    #[module(skip)]
    pub arch: Arch,
    /// What the classifier is for.
    #[module(skip)]
    pub task: Task,
    /// Names of the classifier's classes, when known (classification datasets).
    #[module(skip)]
    pub class_names: Vec<String>,
    /// The input size (height, width) the model was trained at, when known.
    #[module(skip)]
    pub trained_input: Option<(usize, usize)>,
    /// Classifiers trained on cosine scores (AM-softmax, AM-binary): their logits are the
    /// cosines times this scale, as in training, not the linear layer's output.
    #[module(skip)]
    pub cosine_scale: Option<f32>,
}

/// Builds the architecture called `name` (torchreid's name) with `num_classes` identities,
/// randomly initialized as torchreid initializes it.
pub fn build(name: &str, num_classes: usize, device: &Device) -> Result<ReidModel> {
    Ok(ReidModel::new(name.parse()?, num_classes, device))
}

impl ReidModel {
    /// Builds `arch` with `num_classes` identities on `device`, every parameter drawn now (under
    /// [`seeding::exclusively`], so a seeded build is reproducible).
    pub fn new(arch: Arch, num_classes: usize, device: &Device) -> Self {
        seeding::drawn(|| Self::build(arch, num_classes, device))
    }

    /// `arch` with `num_classes` identities whose parameters are not drawn yet: the skeleton
    /// that weights are loaded into, or whose shapes are read. Loading draws nothing; reading a
    /// parameter that was not loaded draws it then, outside any seed.
    pub fn unloaded(arch: Arch, num_classes: usize, device: &Device) -> Self {
        Self::build(arch, num_classes, device)
    }

    fn build(arch: Arch, num_classes: usize, device: &Device) -> Self {
        let backbone = match arch.family() {
            Family::OsNet => Backbone::OsNet(osnet::OsNet::new(
                arch.osnet_channels(),
                arch == Arch::OsnetIbnX1_0,
                device,
            )),
            Family::OsNetAin => {
                Backbone::OsNetAin(osnet_ain::OsNetAin::new(arch.osnet_channels(), device))
            }
            Family::ResNet => Backbone::ResNet(resnet::ResNet::resnet50(
                if arch == Arch::Resnet50Fc512 { 1 } else { 2 },
                device,
            )),
            Family::MobileNetV2 => {
                Backbone::MobileNetV2(mobilenetv2::MobileNetV2::new(arch.width(), device))
            }
            Family::MobileNetV3 => Backbone::EfficientNet(mobilenetv3::mobilenetv3(
                arch.is_large(),
                arch.width(),
                device,
            )),
            Family::EfficientNet => Backbone::EfficientNet(efficientnet::efficientnet_b0(device)),
            Family::InceptionV4 => Backbone::InceptionV4(inceptionv4::InceptionV4::new(device)),
            Family::MobileFaceNet => {
                Backbone::MobileFaceNet(mobilefacenet::MobileFaceNet::new(device))
            }
        };
        let head = Head::new(
            backbone.out_channels(),
            arch.neck(),
            num_classes,
            arch.init(),
            device,
        );
        Self {
            backbone,
            head,
            attention: None,
            arch,
            task: Task::Reid,
            class_names: Vec::new(),
            trained_input: None,
            cosine_scale: None,
        }
    }

    /// The input size to run the model at: what it was trained at, else its architecture's
    /// default.
    pub fn input_size(&self) -> (usize, usize) {
        self.trained_input
            .unwrap_or_else(|| self.arch.default_input())
    }

    /// The same network with a freshly initialized attention head for `classes` classes
    /// (decoder width `dim`, `heads` attention heads) giving its logits.
    pub fn with_attention_head(
        mut self,
        classes: usize,
        dim: usize,
        heads: usize,
        device: &Device,
    ) -> Self {
        let head = seeding::drawn(|| self.attention_head(classes, dim, heads, device));
        self.attention = Some(head);
        self
    }

    /// An attention head for this backbone, its parameters not drawn yet.
    fn attention_head(
        &self,
        classes: usize,
        dim: usize,
        heads: usize,
        device: &Device,
    ) -> attention_head::AttentionHead {
        let channels = self.backbone.out_channels();
        attention_head::AttentionHead::new(channels, classes.max(1), dim, heads, device)
    }

    /// `attention:DIM:HEADS` for a model with the attention head (how checkpoints and ONNX
    /// metadata record it).
    pub fn head_spec(&self) -> Option<String> {
        self.attention
            .as_ref()
            .map(|a| format!("attention:{}:{}", a.dim(), a.heads))
    }

    /// Rebuilds the head a [`ReidModel::head_spec`] describes, its parameters not drawn (weights
    /// are loaded into it, as into [`ReidModel::unloaded`]).
    pub fn with_head_spec(self, spec: &str, classes: usize, device: &Device) -> Result<Self> {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.as_slice() {
            ["attention", dim, heads] => {
                let parse = |v: &str| {
                    v.parse::<usize>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| Error::ModelFormat(format!("bad head `{spec}`")))
                };
                let (dim, heads) = (parse(dim)?, parse(heads)?);
                if dim % heads != 0 {
                    return Err(Error::ModelFormat(format!("bad head `{spec}`")));
                }
                let mut model = self;
                model.attention = Some(model.attention_head(classes, dim, heads, device));
                Ok(model)
            }
            _ => Err(Error::ModelFormat(format!("unknown head `{spec}`"))),
        }
    }

    /// The same model marked for `task`, with its classes' names (empty: unknown).
    pub fn with_task(mut self, task: Task, class_names: Vec<String>) -> Self {
        self.task = task;
        self.class_names = class_names;
        self
    }

    /// Feature maps before global pooling, `[N, C, H/16 or H/32, …]`.
    pub fn featuremaps(&self, images: Tensor<4>) -> Tensor<4> {
        self.backbone.featuremaps(images)
    }

    /// Embeddings `[N, feature_dim]` for `[N, 3, H, W]` images: torchreid's eval-mode output.
    /// Call on a model in eval mode (`model.valid()` or a model on a non-autodiff device).
    pub fn features(&self, images: Tensor<4>) -> Tensor<2> {
        self.head.features(self.featuremaps(images))
    }

    /// The eval-mode embedding ([`features`](Self::features)) as a graph of reid's CPU
    /// kernels, `input` applied to the images first when given: the weights read once, every
    /// BatchNorm folded in. `None` unless the model lives on the CPU with reid's kernels chosen
    /// and every layer is one the graph covers (OSNet without instance normalization and
    /// ResNet so far); the others run through Burn.
    pub fn embedding_graph(&self, input: Option<&ChannelAffine>) -> Option<graph::Graph> {
        if !kernels::reid_kernels_for(&self.head.classifier.weight.val()) {
            return None;
        }
        let (mut g, x) = graph::GraphBuilder::new();
        let x = match input {
            Some(a) => g.channel_affine(x, a.source.to_vec(), a.mul.to_vec(), a.add.to_vec()),
            None => x,
        };
        let maps = match &self.backbone {
            Backbone::OsNet(m) => m.graph(&mut g, x)?,
            Backbone::ResNet(m) => m.graph(&mut g, x)?,
            _ => return None,
        };
        let embedding = self.head.graph(&mut g, maps)?;
        Some(g.finish(embedding))
    }

    /// Identity logits and embeddings: torchreid's training-mode output.
    pub fn logits(&self, images: Tensor<4>) -> Logits {
        let maps = self.featuremaps(images);
        let features = self.head.features(maps.clone());
        let logits = match &self.attention {
            Some(attention) => attention.forward(maps),
            None => self.scores(features.clone()),
        };
        Logits { logits, features }
    }

    /// The classifier's scores of embeddings: linear, or scaled cosines for a model trained
    /// with a cosine classifier (the attention head scores feature maps instead).
    pub fn scores(&self, features: Tensor<2>) -> Tensor<2> {
        match self.cosine_scale {
            Some(scale) => self.cosine_logits(features) * scale,
            None => self.head.classifier.forward(features),
        }
    }

    /// The same network with a new, freshly initialized classifier for `num_classes`
    /// identities (finetuning on other identities keeps everything else).
    pub fn with_classifier(mut self, num_classes: usize, device: &Device) -> Self {
        let features = self.feature_dim();
        let init = self.arch.init();
        self.head.classifier =
            seeding::drawn(|| init.classifier(features, num_classes.max(1), device));
        self
    }

    /// Cosine similarities `[N, num_classes]` between embeddings and the classifier's class
    /// weights (both L2-normalized, bias unused): the logits of AM-softmax training.
    pub fn cosine_logits(&self, features: Tensor<2>) -> Tensor<2> {
        layers::cosine_scores(features, self.head.classifier.weight.val())
    }

    /// Embedding dimension.
    pub fn feature_dim(&self) -> usize {
        self.head.feature_dim()
    }

    /// Number of classes of the classifier (or of the attention head).
    pub fn num_classes(&self) -> usize {
        match &self.attention {
            Some(a) => a.num_classes(),
            None => self.head.num_classes(),
        }
    }

    /// Parameters excluding the classifier (what torchreid's model table reports).
    pub fn num_backbone_params(&self) -> usize {
        self.num_params() - self.head.classifier.num_params()
    }

    /// Multiply-accumulates of one forward pass at `height`×`width`, classifier excluded.
    pub fn macs(&self, height: usize, width: usize) -> u64 {
        let mut m = Macs::new(height, width);
        self.backbone.macs(&mut m);
        if let Some(fc) = &self.head.fc {
            m.linear(&fc.linear);
        }
        if let Some(conv) = &self.head.conv_head {
            m.set_hw((1, 1));
            m.conv(conv);
        }
        m.total()
    }

    /// Checks that `height`×`width` images can pass through the network.
    pub fn check_input_size(&self, height: usize, width: usize) -> Result<()> {
        crate::preprocess::check_input_size(height, width)?;
        let mut m = Macs::new(height, width);
        self.backbone.macs(&mut m);
        let (h, w) = m.hw();
        let (min_h, min_w) = self.arch.min_input();
        // The stride-32 families need at least 32 px, and every map must stay non-empty.
        if height < min_h || width < min_w || h == 0 || w == 0 {
            return Err(Error::InvalidInput(format!(
                "{height}x{width} is too small for {} (minimum {min_h}x{min_w})",
                self.arch
            )));
        }
        Ok(())
    }

    /// torchreid's `state_dict` key for a parameter path of this model (enum variants omitted).
    pub fn torch_key(&self, path: &str) -> String {
        if path.starts_with("attention.") {
            return path.to_string();
        }
        if let Some(rest) = path.strip_prefix("head.") {
            return match self.arch.family() {
                // MobileFaceNet's embedding layers are top-level `linear` and `bn`.
                Family::MobileFaceNet => rest
                    .replace("fc.linear.", "linear.")
                    .replace("fc.bn.", "bn."),
                _ => rest
                    .replace("fc.linear.", "fc.0.")
                    .replace("fc.bn.", "fc.1."),
            };
        }
        let rest = path.strip_prefix("backbone.").unwrap_or(path);
        match self.arch.family() {
            Family::OsNet => osnet::torch_key(rest),
            Family::OsNetAin => osnet_ain::torch_key(rest),
            Family::ResNet => resnet::torch_key(rest),
            Family::MobileNetV2 => mobilenetv2::torch_key(rest),
            Family::MobileNetV3 | Family::EfficientNet => rest.to_string(),
            Family::InceptionV4 => inceptionv4::torch_key(rest),
            Family::MobileFaceNet => mobilefacenet::torch_key(rest),
        }
    }
}
