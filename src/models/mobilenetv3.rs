//! MobileNetV3 small and large as timm builds them (`mobilenetv3_small_100`,
//! `mobilenetv3_large_100` and their width multipliers), on the blocks of
//! [`super::efficientnet`]. After global pooling comes timm's `conv_head` (a 1×1 convolution
//! with bias, then hard-swish): it lives in the model's head ([`super::layers::ConvHead`]).

use burn::tensor::Device;

use super::efficientnet::Kind::{Cn, Ds, Ir};
use super::efficientnet::{Act, BlockArgs, EfficientNet, Gate, Style, row};

/// MobileNetV3-Large's stage table (timm's `_gen_mobilenet_v3`, `large`).
pub const LARGE: [&[BlockArgs]; 7] = [
    &[row(Ds, 1, 3, 1, 1.0, 16, 0.0, true)],
    &[
        row(Ir, 1, 3, 2, 4.0, 24, 0.0, true),
        row(Ir, 1, 3, 1, 3.0, 24, 0.0, true),
    ],
    &[row(Ir, 3, 5, 2, 3.0, 40, 0.25, true)],
    &[
        row(Ir, 1, 3, 2, 6.0, 80, 0.0, false),
        row(Ir, 1, 3, 1, 2.5, 80, 0.0, false),
        row(Ir, 2, 3, 1, 2.3, 80, 0.0, false),
    ],
    &[row(Ir, 2, 3, 1, 6.0, 112, 0.25, false)],
    &[row(Ir, 3, 5, 2, 6.0, 160, 0.25, false)],
    &[row(Cn, 1, 1, 1, 1.0, 960, 0.0, false)],
];

/// MobileNetV3-Small's stage table (timm's `_gen_mobilenet_v3`, `small`).
pub const SMALL: [&[BlockArgs]; 6] = [
    &[row(Ds, 1, 3, 2, 1.0, 16, 0.25, true)],
    &[
        row(Ir, 1, 3, 2, 4.5, 24, 0.0, true),
        row(Ir, 1, 3, 1, 3.67, 24, 0.0, true),
    ],
    &[
        row(Ir, 1, 5, 2, 4.0, 40, 0.25, false),
        row(Ir, 2, 5, 1, 6.0, 40, 0.25, false),
    ],
    &[row(Ir, 2, 5, 1, 3.0, 48, 0.25, false)],
    &[row(Ir, 3, 5, 2, 6.0, 96, 0.25, false)],
    &[row(Cn, 1, 1, 1, 1.0, 576, 0.0, false)],
];

/// Width of the pre-logits layer after pooling (not scaled by the width multiplier).
pub fn head_hidden(large: bool) -> usize {
    if large { 1280 } else { 1024 }
}

/// MobileNetV3 (`large` or small) with channel multiplier `width`.
pub fn mobilenetv3(large: bool, width: f64, device: &Device) -> EfficientNet {
    let style = Style {
        width,
        stem: 16,
        act: Act::HardSwish,
        gate: Gate::HardSigmoid,
        mobilenet_se: true,
        head_channels: None,
    };
    if large {
        EfficientNet::new(style, &LARGE, device)
    } else {
        EfficientNet::new(style, &SMALL, device)
    }
}
