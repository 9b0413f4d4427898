//! The model zoo's names: every architecture torchreid calls by name, and how to build it.

use std::fmt;
use std::str::FromStr;

use super::layers::{Init, Neck};
use crate::error::Error;

/// An architecture of the model zoo, named as in torchreid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// OSNet, width 1.0.
    OsnetX1_0,
    /// OSNet, width 0.75.
    OsnetX0_75,
    /// OSNet, width 0.5.
    OsnetX0_5,
    /// OSNet, width 0.25.
    OsnetX0_25,
    /// OSNet with instance norm in the stem and stage 2.
    OsnetIbnX1_0,
    /// OSNet-AIN, width 1.0.
    OsnetAinX1_0,
    /// OSNet-AIN, width 0.75.
    OsnetAinX0_75,
    /// OSNet-AIN, width 0.5.
    OsnetAinX0_5,
    /// OSNet-AIN, width 0.25.
    OsnetAinX0_25,
    /// ResNet-50.
    Resnet50,
    /// ResNet-50, last stride 1, 512-d fc.
    Resnet50Fc512,
    /// MobileNetV2, width 1.0.
    Mobilenetv2X1_0,
    /// MobileNetV2, width 1.4.
    Mobilenetv2X1_4,
    /// MobileNetV3-Small (timm's `mobilenetv3_small_100`).
    Mobilenetv3Small,
    /// MobileNetV3-Small, width 0.75.
    Mobilenetv3Small075,
    /// MobileNetV3-Small, width 1.25.
    Mobilenetv3Small125,
    /// MobileNetV3-Small, width 1.5.
    Mobilenetv3Small150,
    /// MobileNetV3-Large (timm's `mobilenetv3_large_100`).
    Mobilenetv3Large,
    /// MobileNetV3-Large, width 0.75.
    Mobilenetv3Large075,
    /// MobileNetV3-Large, width 1.25.
    Mobilenetv3Large125,
    /// MobileNetV3-Large, width 1.5.
    Mobilenetv3Large150,
    /// EfficientNet-B0 (timm's `efficientnet_b0`).
    EfficientnetB0,
    /// Inception-V4 (torchreid's `inceptionv4`).
    Inceptionv4,
    /// MobileFaceNet, 128-d face embeddings.
    Mobilefacenet,
}

/// The model family an architecture belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// [`crate::models::osnet`].
    OsNet,
    /// [`crate::models::osnet_ain`].
    OsNetAin,
    /// [`crate::models::resnet`].
    ResNet,
    /// [`crate::models::mobilenetv2`].
    MobileNetV2,
    /// [`crate::models::mobilenetv3`].
    MobileNetV3,
    /// [`crate::models::efficientnet`].
    EfficientNet,
    /// [`crate::models::inceptionv4`].
    InceptionV4,
    /// [`crate::models::mobilefacenet`].
    MobileFaceNet,
}

impl Arch {
    /// Every architecture, in the order of the model table.
    pub const ALL: [Arch; 24] = [
        Arch::OsnetX1_0,
        Arch::OsnetX0_75,
        Arch::OsnetX0_5,
        Arch::OsnetX0_25,
        Arch::OsnetIbnX1_0,
        Arch::OsnetAinX1_0,
        Arch::OsnetAinX0_75,
        Arch::OsnetAinX0_5,
        Arch::OsnetAinX0_25,
        Arch::Resnet50,
        Arch::Resnet50Fc512,
        Arch::Mobilenetv2X1_0,
        Arch::Mobilenetv2X1_4,
        Arch::Mobilenetv3Small,
        Arch::Mobilenetv3Small075,
        Arch::Mobilenetv3Small125,
        Arch::Mobilenetv3Small150,
        Arch::Mobilenetv3Large,
        Arch::Mobilenetv3Large075,
        Arch::Mobilenetv3Large125,
        Arch::Mobilenetv3Large150,
        Arch::EfficientnetB0,
        Arch::Inceptionv4,
        Arch::Mobilefacenet,
    ];

    /// Other names accepted for an architecture (timm's names of the 1.0-width MobileNetV3s).
    const ALIASES: [(&'static str, Arch); 2] = [
        ("mobilenetv3_small_100", Arch::Mobilenetv3Small),
        ("mobilenetv3_large_100", Arch::Mobilenetv3Large),
    ];

    /// torchreid's name for the architecture.
    pub fn name(self) -> &'static str {
        match self {
            Arch::OsnetX1_0 => "osnet_x1_0",
            Arch::OsnetX0_75 => "osnet_x0_75",
            Arch::OsnetX0_5 => "osnet_x0_5",
            Arch::OsnetX0_25 => "osnet_x0_25",
            Arch::OsnetIbnX1_0 => "osnet_ibn_x1_0",
            Arch::OsnetAinX1_0 => "osnet_ain_x1_0",
            Arch::OsnetAinX0_75 => "osnet_ain_x0_75",
            Arch::OsnetAinX0_5 => "osnet_ain_x0_5",
            Arch::OsnetAinX0_25 => "osnet_ain_x0_25",
            Arch::Resnet50 => "resnet50",
            Arch::Resnet50Fc512 => "resnet50_fc512",
            Arch::Mobilenetv2X1_0 => "mobilenetv2_x1_0",
            Arch::Mobilenetv2X1_4 => "mobilenetv2_x1_4",
            Arch::Mobilenetv3Small => "mobilenetv3_small",
            Arch::Mobilenetv3Small075 => "mobilenetv3_small_075",
            Arch::Mobilenetv3Small125 => "mobilenetv3_small_125",
            Arch::Mobilenetv3Small150 => "mobilenetv3_small_150",
            Arch::Mobilenetv3Large => "mobilenetv3_large",
            Arch::Mobilenetv3Large075 => "mobilenetv3_large_075",
            Arch::Mobilenetv3Large125 => "mobilenetv3_large_125",
            Arch::Mobilenetv3Large150 => "mobilenetv3_large_150",
            Arch::EfficientnetB0 => "efficientnet_b0",
            Arch::Inceptionv4 => "inceptionv4",
            Arch::Mobilefacenet => "mobilefacenet",
        }
    }

    /// The family the architecture belongs to.
    pub fn family(self) -> Family {
        match self {
            Arch::OsnetX1_0
            | Arch::OsnetX0_75
            | Arch::OsnetX0_5
            | Arch::OsnetX0_25
            | Arch::OsnetIbnX1_0 => Family::OsNet,
            Arch::OsnetAinX1_0 | Arch::OsnetAinX0_75 | Arch::OsnetAinX0_5 | Arch::OsnetAinX0_25 => {
                Family::OsNetAin
            }
            Arch::Resnet50 | Arch::Resnet50Fc512 => Family::ResNet,
            Arch::Mobilenetv2X1_0 | Arch::Mobilenetv2X1_4 => Family::MobileNetV2,
            Arch::Mobilenetv3Small
            | Arch::Mobilenetv3Small075
            | Arch::Mobilenetv3Small125
            | Arch::Mobilenetv3Small150
            | Arch::Mobilenetv3Large
            | Arch::Mobilenetv3Large075
            | Arch::Mobilenetv3Large125
            | Arch::Mobilenetv3Large150 => Family::MobileNetV3,
            Arch::EfficientnetB0 => Family::EfficientNet,
            Arch::Inceptionv4 => Family::InceptionV4,
            Arch::Mobilefacenet => Family::MobileFaceNet,
        }
    }

    /// How the reference implementation of its family draws a fresh model.
    pub fn init(self) -> Init {
        match self.family() {
            Family::EfficientNet | Family::MobileNetV3 => Init::Timm,
            Family::InceptionV4 => Init::PyTorchDefault,
            _ => Init::Torchreid,
        }
    }

    /// Width multiplier of the MobileNet variants (1.0 for the others).
    pub(crate) fn width(self) -> f64 {
        match self {
            Arch::Mobilenetv2X1_4 => 1.4,
            Arch::Mobilenetv3Small075 | Arch::Mobilenetv3Large075 => 0.75,
            Arch::Mobilenetv3Small125 | Arch::Mobilenetv3Large125 => 1.25,
            Arch::Mobilenetv3Small150 | Arch::Mobilenetv3Large150 => 1.5,
            _ => 1.0,
        }
    }

    /// Whether a MobileNetV3 is the large one.
    pub(crate) fn is_large(self) -> bool {
        matches!(
            self,
            Arch::Mobilenetv3Large
                | Arch::Mobilenetv3Large075
                | Arch::Mobilenetv3Large125
                | Arch::Mobilenetv3Large150
        )
    }

    /// Stage widths (stem, stage 2, 3, 4) of the OSNet families.
    pub(crate) fn osnet_channels(self) -> [usize; 4] {
        match self {
            Arch::OsnetX0_75 | Arch::OsnetAinX0_75 => [48, 192, 288, 384],
            Arch::OsnetX0_5 | Arch::OsnetAinX0_5 => [32, 128, 192, 256],
            Arch::OsnetX0_25 | Arch::OsnetAinX0_25 => [16, 64, 96, 128],
            _ => [64, 256, 384, 512],
        }
    }

    /// What comes between global pooling and the classifier.
    pub fn neck(self) -> Neck {
        match self.family() {
            Family::OsNet | Family::OsNetAin => Neck::Fc(512),
            Family::ResNet if self == Arch::Resnet50Fc512 => Neck::Fc(512),
            Family::MobileNetV3 => Neck::ConvHead(super::mobilenetv3::head_hidden(self.is_large())),
            Family::MobileFaceNet => Neck::LinearEmbedding(128),
            _ => Neck::None,
        }
    }

    /// The input size (height, width) the architecture is usually trained at: 256×128 for the
    /// re-id models, ImageNet's sizes for the classifiers, 112×112 faces for MobileFaceNet.
    pub fn default_input(self) -> (usize, usize) {
        match self.family() {
            Family::MobileNetV3 | Family::EfficientNet => (224, 224),
            Family::InceptionV4 => (299, 299),
            Family::MobileFaceNet => (112, 112),
            _ => (256, 128),
        }
    }

    /// The smallest input (height, width) the architecture accepts.
    pub fn min_input(self) -> (usize, usize) {
        match self.family() {
            // The global depthwise 7×7 convolution needs a 7×7 map after four halvings.
            Family::MobileFaceNet => (112, 112),
            Family::InceptionV4 => (75, 75),
            _ => (32, 32),
        }
    }

    /// One line on what the architecture is.
    pub fn description(self) -> &'static str {
        match self.family() {
            Family::OsNet if self == Arch::OsnetIbnX1_0 => "OSNet + instance norm (IBN)",
            Family::OsNet => "Omni-Scale Network",
            Family::OsNetAin => "OSNet with searched instance norm (AIN)",
            Family::ResNet if self == Arch::Resnet50Fc512 => "ResNet-50, stride 1, 512-d fc",
            Family::ResNet => "ResNet-50",
            Family::MobileNetV2 => "MobileNetV2",
            Family::MobileNetV3 if self.is_large() => "MobileNetV3-Large (timm)",
            Family::MobileNetV3 => "MobileNetV3-Small (timm)",
            Family::EfficientNet => "EfficientNet-B0 (timm)",
            Family::InceptionV4 => "Inception-V4",
            Family::MobileFaceNet => "MobileFaceNet (face embeddings)",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        let name = name.trim();
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .or_else(|| {
                Arch::ALIASES
                    .iter()
                    .find(|(alias, _)| *alias == name)
                    .map(|&(_, a)| a)
            })
            .ok_or_else(|| Error::UnknownArchitecture {
                name: name.to_string(),
                known: Arch::ALL.map(Arch::name).join(", "),
            })
    }
}
