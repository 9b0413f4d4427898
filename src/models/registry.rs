//! The model zoo's names: every architecture torchreid calls by name, and how to build it.

use std::fmt;
use std::str::FromStr;

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
}

impl Arch {
    /// Every architecture, in the order of the model table.
    pub const ALL: [Arch; 13] = [
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
        }
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

    /// Dimension of the fc block after pooling, if the architecture has one.
    pub fn fc_dim(self) -> Option<usize> {
        match self.family() {
            Family::OsNet | Family::OsNetAin => Some(512),
            Family::ResNet if self == Arch::Resnet50Fc512 => Some(512),
            _ => None,
        }
    }

    /// The input size (height, width) the architecture is trained at for re-id.
    pub fn default_input(self) -> (usize, usize) {
        (256, 128)
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
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == name.trim())
            .ok_or_else(|| Error::UnknownArchitecture {
                name: name.to_string(),
                known: Arch::ALL.map(Arch::name).join(", "),
            })
    }
}
