//! timm's EfficientNet-style networks: EfficientNet-B0 and, with the block tables of
//! [`super::mobilenetv3`], MobileNetV3. Parameter names are timm's (`conv_stem`, `bn1`,
//! `blocks.S.B.conv_pw`, …), so timm `state_dict`s load as they are.

use burn::module::Module;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::{hard_sigmoid, hard_swish, relu, sigmoid};
use burn::tensor::{Device, Tensor};

use super::complexity::Macs;
use super::layers::{ConvSpec, Init, batch_norm, conv_batch_norm, conv_forward};

/// A block's non-linearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// `nn.ReLU`.
    Relu,
    /// `nn.Hardswish`: `x · relu6(x + 3) / 6`.
    HardSwish,
    /// `nn.SiLU` (swish): `x · sigmoid(x)`.
    Silu,
}

impl Act {
    /// Applies the non-linearity.
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Act::Relu => relu(x),
            Act::HardSwish => hard_swish(x),
            Act::Silu => super::layers::silu(x),
        }
    }
}

/// The squeeze-and-excitation gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// `sigmoid` (EfficientNet).
    Sigmoid,
    /// `hard_sigmoid`: `relu6(x + 3) / 6` (MobileNetV3).
    HardSigmoid,
}

impl Gate {
    /// Applies the gate.
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Gate::Sigmoid => sigmoid(x),
            Gate::HardSigmoid => hard_sigmoid(x, 1.0 / 6.0, 0.5),
        }
    }
}

/// Squeeze-and-excitation: channel weights from the pooled map through a bottleneck.
#[derive(Module, Debug)]
pub struct SqueezeExcite {
    /// 1×1 reduction (with bias).
    pub conv_reduce: Conv2d,
    /// 1×1 expansion back to the input width (with bias).
    pub conv_expand: Conv2d,
    /// Non-linearity between the two.
    #[module(skip)]
    pub act: Act,
    /// The gate on the expanded weights.
    #[module(skip)]
    pub gate: Gate,
}

impl SqueezeExcite {
    fn new(channels: usize, reduced: usize, act: Act, gate: Gate, device: &Device) -> Self {
        Self {
            conv_reduce: ConvSpec::new(channels, reduced, 1).init(true, device),
            conv_expand: ConvSpec::new(reduced, channels, 1).init(true, device),
            act,
            gate,
        }
    }

    /// Reweights the channels of `x`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let s = x.clone().mean_dims(&[2, 3]);
        let s = self.act.apply(conv_forward(&self.conv_reduce, s));
        let s = self.gate.apply(conv_forward(&self.conv_expand, s));
        x * s
    }

    fn macs(&self, m: &mut Macs) {
        let hw = m.hw();
        m.set_hw((1, 1));
        m.conv(&self.conv_reduce);
        m.conv(&self.conv_expand);
        m.set_hw(hw);
    }
}

fn se_forward(se: &Option<SqueezeExcite>, x: Tensor<4>) -> Tensor<4> {
    match se {
        Some(se) => se.forward(x),
        None => x,
    }
}

/// Depthwise 3×3 (or k×k), optional SE, pointwise linear projection (timm's
/// `DepthwiseSeparableConv`).
#[derive(Module, Debug)]
pub struct DepthwiseSeparable {
    /// Depthwise convolution, carries the stride.
    pub conv_dw: Conv2d,
    /// Its normalization (followed by the activation).
    pub bn1: BatchNorm,
    /// Optional squeeze-and-excitation.
    pub se: Option<SqueezeExcite>,
    /// Pointwise projection.
    pub conv_pw: Conv2d,
    /// Its normalization (no activation).
    pub bn2: BatchNorm,
    /// The activation.
    #[module(skip)]
    pub act: Act,
    /// Whether the input is added back.
    pub has_skip: bool,
}

/// Pointwise expansion, depthwise convolution, optional SE, linear projection (timm's
/// `InvertedResidual`).
#[derive(Module, Debug)]
pub struct InvertedResidual {
    /// 1×1 expansion.
    pub conv_pw: Conv2d,
    /// Its normalization (+ activation).
    pub bn1: BatchNorm,
    /// Depthwise convolution, carries the stride.
    pub conv_dw: Conv2d,
    /// Its normalization (+ activation).
    pub bn2: BatchNorm,
    /// Optional squeeze-and-excitation.
    pub se: Option<SqueezeExcite>,
    /// 1×1 linear projection.
    pub conv_pwl: Conv2d,
    /// Its normalization (no activation).
    pub bn3: BatchNorm,
    /// The activation.
    #[module(skip)]
    pub act: Act,
    /// Whether the input is added back.
    pub has_skip: bool,
}

/// Convolution, normalization, activation (timm's `ConvBnAct`).
#[derive(Module, Debug)]
pub struct ConvBnAct {
    /// The convolution.
    pub conv: Conv2d,
    /// Its normalization.
    pub bn1: BatchNorm,
    /// The activation.
    #[module(skip)]
    pub act: Act,
}

/// One block of a stage.
// Blocks live in a Vec built once; boxing the larger variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Block {
    /// `ds` blocks.
    DepthwiseSeparable(DepthwiseSeparable),
    /// `ir` blocks.
    InvertedResidual(InvertedResidual),
    /// `cn` blocks.
    ConvBnAct(ConvBnAct),
}

impl Block {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Block::DepthwiseSeparable(b) => {
                let y = b
                    .act
                    .apply(conv_batch_norm(&b.conv_dw, &b.bn1, x.clone(), false));
                let y = se_forward(&b.se, y);
                let y = conv_batch_norm(&b.conv_pw, &b.bn2, y, false);
                if b.has_skip { y + x } else { y }
            }
            Block::InvertedResidual(b) => {
                let y = b
                    .act
                    .apply(conv_batch_norm(&b.conv_pw, &b.bn1, x.clone(), false));
                let y = b.act.apply(conv_batch_norm(&b.conv_dw, &b.bn2, y, false));
                let y = se_forward(&b.se, y);
                let y = conv_batch_norm(&b.conv_pwl, &b.bn3, y, false);
                if b.has_skip { y + x } else { y }
            }
            Block::ConvBnAct(b) => b.act.apply(conv_batch_norm(&b.conv, &b.bn1, x, false)),
        }
    }

    fn macs(&self, m: &mut Macs) {
        match self {
            Block::DepthwiseSeparable(b) => {
                m.conv(&b.conv_dw);
                if let Some(se) = &b.se {
                    se.macs(m);
                }
                m.conv(&b.conv_pw);
            }
            Block::InvertedResidual(b) => {
                m.conv(&b.conv_pw);
                m.conv(&b.conv_dw);
                if let Some(se) = &b.se {
                    se.macs(m);
                }
                m.conv(&b.conv_pwl);
            }
            Block::ConvBnAct(b) => m.conv(&b.conv),
        }
    }
}

/// The kind of a block in a stage table (timm's `ds` / `ir` / `cn` block strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Depthwise-separable.
    Ds,
    /// Inverted residual.
    Ir,
    /// Plain convolution.
    Cn,
}

/// One row of a stage table: `repeat` blocks of the same kind.
#[derive(Debug, Clone, Copy)]
pub struct BlockArgs {
    /// Block kind.
    pub kind: Kind,
    /// Blocks in the row.
    pub repeat: usize,
    /// Depthwise kernel size.
    pub kernel: usize,
    /// Stride of the row's first block.
    pub stride: usize,
    /// Expansion ratio of the inverted residual.
    pub expansion: f64,
    /// Output channels before the width multiplier.
    pub channels: usize,
    /// Squeeze-and-excitation ratio (0: none).
    pub se_ratio: f64,
    /// `true` for ReLU (timm's `_nre`), else the network's activation.
    pub relu: bool,
}

/// A row of a stage table, written as in timm's block strings.
// One argument per field of timm's block string keeps the tables readable side by side.
#[allow(clippy::too_many_arguments)]
pub const fn row(
    kind: Kind,
    repeat: usize,
    kernel: usize,
    stride: usize,
    expansion: f64,
    channels: usize,
    se_ratio: f64,
    relu: bool,
) -> BlockArgs {
    BlockArgs {
        kind,
        repeat,
        kernel,
        stride,
        expansion,
        channels,
        se_ratio,
        relu,
    }
}

/// How the family's variants differ besides their stage tables.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Channel width multiplier.
    pub width: f64,
    /// Stem channels before the multiplier.
    pub stem: usize,
    /// The network's activation.
    pub act: Act,
    /// The squeeze-and-excitation gate.
    pub gate: Gate,
    /// MobileNetV3 sizes the SE bottleneck from the expanded width and rounds it to a multiple
    /// of 8 with a ReLU inside; EfficientNet from the block input, rounded to an integer,
    /// with the block's activation.
    pub mobilenet_se: bool,
    /// Channels of the 1×1 head convolution inside the feature extractor (EfficientNet), if
    /// any.
    pub head_channels: Option<usize>,
}

/// timm's `make_divisible`: nearest multiple of 8, never below 8 or more than 10 % down.
pub fn make_divisible(value: f64) -> usize {
    let divisor = 8.0;
    let rounded = ((value + divisor / 2.0) / divisor).floor() * divisor;
    let mut v = rounded.max(divisor);
    if v < 0.9 * value {
        v += divisor;
    }
    v as usize
}

/// An EfficientNet-style feature extractor.
#[derive(Module, Debug)]
pub struct EfficientNet {
    /// 3×3 stride-2 stem convolution.
    pub conv_stem: Conv2d,
    /// The stem's normalization (+ activation).
    pub bn1: BatchNorm,
    /// The stages.
    pub blocks: Vec<Vec<Block>>,
    /// EfficientNet's 1×1 head convolution (MobileNetV3 has it after pooling, in the head).
    pub conv_head: Option<Conv2d>,
    /// Its normalization (+ activation).
    pub bn2: Option<BatchNorm>,
    /// The network's activation.
    #[module(skip)]
    pub act: Act,
}

impl EfficientNet {
    /// Builds the network of `style` with the stage table `stages`.
    pub fn new(style: Style, stages: &[&[BlockArgs]], device: &Device) -> Self {
        let round = |c: usize| make_divisible(c as f64 * style.width);
        let mut cin = round(style.stem);
        let conv_stem = ConvSpec::new(3, cin, 3).stride(2).init(false, device);
        let bn1 = batch_norm(cin, device);
        let blocks = stages
            .iter()
            .map(|rows| {
                let mut stage = Vec::new();
                for args in rows.iter() {
                    for i in 0..args.repeat {
                        let stride = if i == 0 { args.stride } else { 1 };
                        let cout = round(args.channels);
                        stage.push(block(style, args, cin, cout, stride, device));
                        cin = cout;
                    }
                }
                stage
            })
            .collect();
        let (conv_head, bn2) = match style.head_channels {
            Some(c) => {
                let c = round(c);
                (
                    Some(ConvSpec::new(cin, c, 1).init(false, device)),
                    Some(batch_norm(c, device)),
                )
            }
            None => (None, None),
        };
        Self {
            conv_stem,
            bn1,
            blocks,
            conv_head,
            bn2,
            act: style.act,
        }
    }

    /// Feature maps before global pooling (timm's `forward_features`).
    pub fn featuremaps(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self
            .act
            .apply(conv_batch_norm(&self.conv_stem, &self.bn1, x, false));
        let x = self.blocks.iter().flatten().fold(x, |x, b| b.forward(x));
        match (&self.conv_head, &self.bn2) {
            (Some(conv), Some(bn)) => self.act.apply(conv_batch_norm(conv, bn, x, false)),
            _ => x,
        }
    }

    /// Channels of the feature maps.
    pub fn out_channels(&self) -> usize {
        let bn = self
            .bn2
            .as_ref()
            .or_else(|| match self.blocks.last()?.last()? {
                Block::DepthwiseSeparable(b) => Some(&b.bn2),
                Block::InvertedResidual(b) => Some(&b.bn3),
                Block::ConvBnAct(b) => Some(&b.bn1),
            });
        bn.map_or(0, |bn| bn.gamma.lazy_shape().dims::<1>()[0])
    }

    pub(crate) fn macs(&self, m: &mut Macs) {
        m.conv(&self.conv_stem);
        for b in self.blocks.iter().flatten() {
            b.macs(m);
        }
        if let Some(conv) = &self.conv_head {
            m.conv(conv);
        }
    }
}

fn block(
    style: Style,
    args: &BlockArgs,
    cin: usize,
    cout: usize,
    stride: usize,
    device: &Device,
) -> Block {
    let act = if args.relu { Act::Relu } else { style.act };
    let dw = |c: usize| {
        ConvSpec::new(c, c, args.kernel)
            .stride(stride)
            .groups(c)
            .scheme(Init::Timm)
            .init(false, device)
    };
    let pw = |a: usize, b: usize| ConvSpec::new(a, b, 1).init(false, device);
    let mid = match args.kind {
        Kind::Ir => make_divisible(cin as f64 * args.expansion),
        _ => cin,
    };
    let se = (args.se_ratio > 0.0).then(|| {
        let (reduced, se_act) = if style.mobilenet_se {
            (make_divisible(mid as f64 * args.se_ratio), Act::Relu)
        } else {
            // timm divides the ratio by the expansion to size the bottleneck from the input.
            let ratio = if args.expansion > 1.0 {
                args.se_ratio / args.expansion
            } else {
                args.se_ratio
            };
            ((mid as f64 * ratio).round() as usize, act)
        };
        SqueezeExcite::new(mid, reduced, se_act, style.gate, device)
    });
    let has_skip = stride == 1 && cin == cout;
    match args.kind {
        Kind::Ds => Block::DepthwiseSeparable(DepthwiseSeparable {
            conv_dw: dw(cin),
            bn1: batch_norm(cin, device),
            se,
            conv_pw: pw(cin, cout),
            bn2: batch_norm(cout, device),
            act,
            has_skip,
        }),
        Kind::Ir => Block::InvertedResidual(InvertedResidual {
            conv_pw: pw(cin, mid),
            bn1: batch_norm(mid, device),
            conv_dw: dw(mid),
            bn2: batch_norm(mid, device),
            se,
            conv_pwl: pw(mid, cout),
            bn3: batch_norm(cout, device),
            act,
            has_skip,
        }),
        Kind::Cn => Block::ConvBnAct(ConvBnAct {
            conv: ConvSpec::new(cin, cout, args.kernel)
                .stride(stride)
                .init(false, device),
            bn1: batch_norm(cout, device),
            act,
        }),
    }
}

use Kind::{Ds, Ir};

/// EfficientNet-B0's stage table.
pub const EFFICIENTNET_B0: [&[BlockArgs]; 7] = [
    &[row(Ds, 1, 3, 1, 1.0, 16, 0.25, false)],
    &[row(Ir, 2, 3, 2, 6.0, 24, 0.25, false)],
    &[row(Ir, 2, 5, 2, 6.0, 40, 0.25, false)],
    &[row(Ir, 3, 3, 2, 6.0, 80, 0.25, false)],
    &[row(Ir, 3, 5, 1, 6.0, 112, 0.25, false)],
    &[row(Ir, 4, 5, 2, 6.0, 192, 0.25, false)],
    &[row(Ir, 1, 3, 1, 6.0, 320, 0.25, false)],
];

/// EfficientNet-B0 (timm's `efficientnet_b0`).
pub fn efficientnet_b0(device: &Device) -> EfficientNet {
    let style = Style {
        width: 1.0,
        stem: 32,
        act: Act::Silu,
        gate: Gate::Sigmoid,
        mobilenet_se: false,
        head_channels: Some(1280),
    };
    EfficientNet::new(style, &EFFICIENTNET_B0, device)
}

#[cfg(test)]
mod tests {
    use super::make_divisible;

    #[test]
    fn channel_rounding_follows_timm() {
        // Values from timm's mobilenetv3_small_075 / large_125 (see the parity fixtures).
        assert_eq!(make_divisible(18.0), 24);
        assert_eq!(make_divisible(12.0), 16);
        assert_eq!(make_divisible(88.08), 88);
        assert_eq!(make_divisible(4.0), 8);
        assert_eq!(make_divisible(260.0), 264);
    }
}
