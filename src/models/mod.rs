//! The model zoo: torchreid's re-id architectures in Burn, with torchreid's parameter names.
//!
//! Build one by name with [`build`]; [`ReidModel::features`] is torchreid's eval-mode output
//! (the embedding) and [`ReidModel::logits`] its training-mode output (identity logits and the
//! embedding they were computed from).

pub mod complexity;
pub mod layers;
pub mod mobilenetv2;
pub mod osnet;
pub mod osnet_ain;
pub mod registry;
pub mod resnet;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::error::{Error, Result};
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
}

impl Backbone {
    fn featuremaps(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Backbone::OsNet(m) => m.featuremaps(x),
            Backbone::OsNetAin(m) => m.featuremaps(x),
            Backbone::ResNet(m) => m.featuremaps(x),
            Backbone::MobileNetV2(m) => m.featuremaps(x),
        }
    }

    fn out_channels(&self) -> usize {
        match self {
            Backbone::OsNet(m) => m.out_channels(),
            Backbone::OsNetAin(m) => m.out_channels(),
            Backbone::ResNet(m) => m.out_channels(),
            Backbone::MobileNetV2(m) => m.out_channels(),
        }
    }

    fn macs(&self, m: &mut Macs) {
        match self {
            Backbone::OsNet(b) => b.macs(m),
            Backbone::OsNetAin(b) => b.macs(m),
            Backbone::ResNet(b) => b.macs(m),
            Backbone::MobileNetV2(b) => b.macs(m),
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
    /// Which architecture this is.
    #[module(skip)]
    pub arch: Arch,
}

/// Builds the architecture called `name` (torchreid's name) with `num_classes` identities,
/// randomly initialized as torchreid initializes it.
pub fn build(name: &str, num_classes: usize, device: &Device) -> Result<ReidModel> {
    Ok(ReidModel::new(name.parse()?, num_classes, device))
}

impl ReidModel {
    /// Builds `arch` with `num_classes` identities on `device`.
    pub fn new(arch: Arch, num_classes: usize, device: &Device) -> Self {
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
            Family::MobileNetV2 => Backbone::MobileNetV2(mobilenetv2::MobileNetV2::new(
                if arch == Arch::Mobilenetv2X1_4 {
                    1.4
                } else {
                    1.0
                },
                device,
            )),
        };
        let head = Head::new(backbone.out_channels(), arch.fc_dim(), num_classes, device);
        Self {
            backbone,
            head,
            arch,
        }
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

    /// Identity logits and embeddings: torchreid's training-mode output.
    pub fn logits(&self, images: Tensor<4>) -> Logits {
        let features = self.features(images);
        Logits {
            logits: self.head.classifier.forward(features.clone()),
            features,
        }
    }

    /// The same network with a new, freshly initialized classifier for `num_classes`
    /// identities (finetuning on other identities keeps everything else).
    pub fn with_classifier(mut self, num_classes: usize, device: &Device) -> Self {
        self.head.classifier = layers::linear(self.feature_dim(), num_classes.max(1), device);
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

    /// Number of identity classes of the classifier.
    pub fn num_classes(&self) -> usize {
        self.head.num_classes()
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
        m.total()
    }

    /// Checks that `height`×`width` images can pass through the network.
    pub fn check_input_size(&self, height: usize, width: usize) -> Result<()> {
        let mut m = Macs::new(height, width);
        self.backbone.macs(&mut m);
        let (h, w) = m.hw();
        // The stride-32 families need at least 32 px, and every map must stay non-empty.
        if height < 32 || width < 32 || h == 0 || w == 0 {
            return Err(Error::InvalidInput(format!(
                "{height}x{width} is too small for {} (minimum 32x32)",
                self.arch
            )));
        }
        Ok(())
    }

    /// torchreid's `state_dict` key for a parameter path of this model (enum variants omitted).
    pub fn torch_key(&self, path: &str) -> String {
        if let Some(rest) = path.strip_prefix("head.") {
            return rest
                .replace("fc.linear.", "fc.0.")
                .replace("fc.bn.", "fc.1.");
        }
        let rest = path.strip_prefix("backbone.").unwrap_or(path);
        match self.arch.family() {
            Family::OsNet => osnet::torch_key(rest),
            Family::OsNetAin => osnet_ain::torch_key(rest),
            Family::ResNet => resnet::torch_key(rest),
            Family::MobileNetV2 => mobilenetv2::torch_key(rest),
        }
    }
}
