//! MobileNetV2 as torchreid 0.2.5 defines `mobilenetv2_x1_0` and `mobilenetv2_x1_4`.

use burn::module::Module;
use burn::tensor::activation::relu6;
use burn::tensor::{Device, Tensor};

use super::complexity::Macs;
use super::layers::{ConvNorm, ConvSpec};

/// Inverted residual: 1×1 expansion, depthwise 3×3, 1×1 linear projection.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    /// Expansion (`ConvBlock`, ReLU6).
    pub conv1: ConvNorm,
    /// Depthwise convolution (`ConvBlock`, ReLU6), carries the stride.
    pub dwconv2: ConvNorm,
    /// Linear projection (`Sequential(Conv2d, BatchNorm2d)`).
    pub conv3: ConvNorm,
    /// Whether the input is added back (stride 1 and same width).
    pub use_residual: bool,
}

impl InvertedResidual {
    fn new(cin: usize, cout: usize, expansion: usize, stride: usize, device: &Device) -> Self {
        let mid = cin * expansion;
        Self {
            conv1: ConvNorm::batch(ConvSpec::new(cin, mid, 1), device),
            dwconv2: ConvNorm::batch(
                ConvSpec::new(mid, mid, 3).stride(stride).groups(mid),
                device,
            ),
            conv3: ConvNorm::batch(ConvSpec::new(mid, cout, 1), device),
            use_residual: stride == 1 && cin == cout,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let m = relu6(self.conv1.forward(x.clone()));
        let m = relu6(self.dwconv2.forward(m));
        let m = self.conv3.forward(m);
        if self.use_residual { x + m } else { m }
    }
}

/// The MobileNetV2 backbone.
#[derive(Module, Debug)]
pub struct MobileNetV2 {
    /// 3×3 stem, stride 2.
    pub conv1: ConvNorm,
    /// The seven bottleneck stages `conv2` … `conv8`.
    pub stages: Vec<Vec<InvertedResidual>>,
    /// Final 1×1 convolution to the feature width.
    pub conv9: ConvNorm,
}

impl MobileNetV2 {
    /// A MobileNetV2 with width multiplier `width` (1.0 or 1.4 in torchreid).
    pub fn new(width: f64, device: &Device) -> Self {
        let scale = |c: usize| (c as f64 * width) as usize;
        let mut cin = scale(32);
        let conv1 = ConvNorm::batch(ConvSpec::new(3, cin, 3).stride(2).padding(1), device);
        // (expansion t, channels c, repeats n, stride s) per stage, as in the paper.
        let settings = [
            (1, 16, 1, 1),
            (6, 24, 2, 2),
            (6, 32, 3, 2),
            (6, 64, 4, 2),
            (6, 96, 3, 1),
            (6, 160, 3, 2),
            (6, 320, 1, 1),
        ];
        let stages = settings
            .iter()
            .map(|&(t, c, n, s)| {
                let cout = scale(c);
                (0..n)
                    .map(|i| {
                        let block =
                            InvertedResidual::new(cin, cout, t, if i == 0 { s } else { 1 }, device);
                        cin = cout;
                        block
                    })
                    .collect()
            })
            .collect();
        let feature_dim = if width > 1.0 { scale(1280) } else { 1280 };
        Self {
            conv1,
            stages,
            conv9: ConvNorm::batch(ConvSpec::new(cin, feature_dim, 1), device),
        }
    }

    /// Feature maps before global pooling.
    pub fn featuremaps(&self, x: Tensor<4>) -> Tensor<4> {
        let x = relu6(self.conv1.forward(x));
        let x = self.stages.iter().flatten().fold(x, |x, b| b.forward(x));
        relu6(self.conv9.forward(x))
    }

    /// Channels of the feature maps.
    pub fn out_channels(&self) -> usize {
        self.conv9.conv.weight.lazy_shape().dims::<4>()[0]
    }

    pub(crate) fn macs(&self, m: &mut Macs) {
        m.conv(&self.conv1.conv);
        for block in self.stages.iter().flatten() {
            m.conv(&block.conv1.conv);
            m.conv(&block.dwconv2.conv);
            m.conv(&block.conv3.conv);
        }
        m.conv(&self.conv9.conv);
    }
}

/// Maps a parameter path of [`MobileNetV2`] to torchreid's `state_dict` key.
pub(crate) fn torch_key(path: &str) -> String {
    let key = match path.strip_prefix("stages.") {
        // `stages.I.J.` is torchreid's `conv{I+2}.J.`
        Some(rest) => {
            let (stage, rest) = rest.split_once('.').unwrap_or((rest, ""));
            let stage: usize = stage.parse().unwrap_or(0);
            format!("conv{}.{rest}", stage + 2)
        }
        None => path.to_string(),
    };
    key.replace(".conv3.conv.", ".conv3.0.")
        .replace(".conv3.bn.", ".conv3.1.")
}
