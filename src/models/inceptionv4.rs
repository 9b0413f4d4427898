//! Inception-V4 as torchreid 0.2.5 defines `inceptionv4` (Cadene's port): `features.0` …
//! `features.21`, convolutions as `BasicConv2d` (conv, BatchNorm with eps 1e-3, ReLU).

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
use burn::tensor::{Device, Tensor};

use super::complexity::Macs;
use super::layers::{ConvNorm, ConvSpec, Init};

/// `BasicConv2d(cin, cout, kernel, stride, padding)` with square kernel and padding.
fn basic(
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    d: &Device,
) -> ConvNorm {
    let spec = ConvSpec::new(cin, cout, kernel)
        .stride(stride)
        .padding(pad)
        .scheme(Init::PyTorchDefault);
    ConvNorm::batch_eps(spec, 1e-3, d)
}

/// A 1×1 `BasicConv2d`.
fn one(cin: usize, cout: usize, d: &Device) -> ConvNorm {
    basic(cin, cout, 1, 1, 0, d)
}

/// A `BasicConv2d` with an `h`×`w` kernel, stride 1, "same" padding.
fn rect(cin: usize, cout: usize, h: usize, w: usize, d: &Device) -> ConvNorm {
    ConvNorm::batch_eps(
        ConvSpec::new(cin, cout, 1)
            .kernel_hw(h, w)
            .scheme(Init::PyTorchDefault),
        1e-3,
        d,
    )
}

fn run(conv: &ConvNorm, x: Tensor<4>) -> Tensor<4> {
    conv.forward_relu(x)
}

fn chain(convs: &[ConvNorm], x: Tensor<4>) -> Tensor<4> {
    convs.iter().fold(x, |x, c| run(c, x))
}

/// 3×3 max pooling with stride 2, no padding.
pub fn max_pool(x: Tensor<4>) -> Tensor<4> {
    let pool = MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init();
    super::layers::max_pool(&pool, x)
}

/// 3×3 average pooling, stride 1, padding 1, padded cells not counted.
pub fn avg_pool(x: Tensor<4>) -> Tensor<4> {
    let pool = AvgPool2dConfig::new([3, 3])
        .with_strides([1, 1])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_count_include_pad(false)
        .init();
    super::layers::avg_pool(&pool, x)
}

/// `Mixed_3a`: max pooling beside a stride-2 convolution.
#[derive(Module, Debug)]
pub struct Mixed3a {
    /// The convolution branch.
    pub conv: ConvNorm,
}

/// `Mixed_4a`: two convolution towers.
#[derive(Module, Debug)]
pub struct Mixed4a {
    /// 1×1, 3×3.
    pub branch0: Vec<ConvNorm>,
    /// 1×1, 1×7, 7×1, 3×3.
    pub branch1: Vec<ConvNorm>,
}

/// `Mixed_5a`: a stride-2 convolution beside max pooling.
#[derive(Module, Debug)]
pub struct Mixed5a {
    /// The convolution branch.
    pub conv: ConvNorm,
}

/// `Inception_A`, `Inception_B`, `Inception_C`: parallel towers and an average-pooled 1×1.
#[derive(Module, Debug)]
pub struct InceptionAb {
    /// 1×1.
    pub branch0: ConvNorm,
    /// Tower 1.
    pub branch1: Vec<ConvNorm>,
    /// Tower 2.
    pub branch2: Vec<ConvNorm>,
    /// 1×1 after average pooling (torch: `branch3.1`).
    pub branch3: ConvNorm,
}

/// `Reduction_A` / `Reduction_B`: two convolution towers beside max pooling.
#[derive(Module, Debug)]
pub struct Reduction {
    /// Tower 0.
    pub branch0: Vec<ConvNorm>,
    /// Tower 1.
    pub branch1: Vec<ConvNorm>,
}

/// `Inception_C`: towers that split into 1×3 and 3×1 halves.
#[derive(Module, Debug)]
pub struct InceptionC {
    /// 1×1.
    pub branch0: ConvNorm,
    /// 1×1 before the split.
    pub branch1_0: ConvNorm,
    /// 1×3 half.
    pub branch1_1a: ConvNorm,
    /// 3×1 half.
    pub branch1_1b: ConvNorm,
    /// 1×1.
    pub branch2_0: ConvNorm,
    /// 3×1.
    pub branch2_1: ConvNorm,
    /// 1×3.
    pub branch2_2: ConvNorm,
    /// 1×3 half.
    pub branch2_3a: ConvNorm,
    /// 3×1 half.
    pub branch2_3b: ConvNorm,
    /// 1×1 after average pooling (torch: `branch3.1`).
    pub branch3: ConvNorm,
}

/// One entry of `features`.
// Stages live in a Vec built once; boxing the larger variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Stage {
    /// A stem `BasicConv2d`.
    Conv(ConvNorm),
    /// `Mixed_3a`.
    Mixed3a(Mixed3a),
    /// `Mixed_4a`.
    Mixed4a(Mixed4a),
    /// `Mixed_5a`.
    Mixed5a(Mixed5a),
    /// `Inception_A` or `Inception_B`.
    Inception(InceptionAb),
    /// `Reduction_A` (single-conv tower 0) or `Reduction_B`.
    Reduction(Reduction),
    /// `Inception_C`.
    InceptionC(InceptionC),
}

fn cat(parts: Vec<Tensor<4>>) -> Tensor<4> {
    Tensor::cat(parts, 1)
}

impl Stage {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Stage::Conv(c) => run(c, x),
            Stage::Mixed3a(m) => cat(vec![max_pool(x.clone()), run(&m.conv, x)]),
            Stage::Mixed4a(m) => cat(vec![chain(&m.branch0, x.clone()), chain(&m.branch1, x)]),
            Stage::Mixed5a(m) => cat(vec![run(&m.conv, x.clone()), max_pool(x)]),
            Stage::Inception(b) => cat(vec![
                run(&b.branch0, x.clone()),
                chain(&b.branch1, x.clone()),
                chain(&b.branch2, x.clone()),
                run(&b.branch3, avg_pool(x)),
            ]),
            Stage::Reduction(r) => cat(vec![
                chain(&r.branch0, x.clone()),
                chain(&r.branch1, x.clone()),
                max_pool(x),
            ]),
            Stage::InceptionC(c) => {
                let x1 = run(&c.branch1_0, x.clone());
                let x2 = run(&c.branch2_0, x.clone());
                let x2 = run(&c.branch2_2, run(&c.branch2_1, x2));
                cat(vec![
                    run(&c.branch0, x.clone()),
                    run(&c.branch1_1a, x1.clone()),
                    run(&c.branch1_1b, x1),
                    run(&c.branch2_3a, x2.clone()),
                    run(&c.branch2_3b, x2),
                    run(&c.branch3, avg_pool(x)),
                ])
            }
        }
    }

    fn macs(&self, m: &mut Macs) {
        let tower = |m: &mut Macs, convs: &[&ConvNorm]| {
            let start = m.hw();
            for c in convs {
                m.conv(&c.conv);
            }
            let end = m.hw();
            m.set_hw(start);
            end
        };
        let end = match self {
            Stage::Conv(c) => tower(m, &[c]),
            Stage::Mixed3a(x) => tower(m, &[&x.conv]),
            Stage::Mixed5a(x) => tower(m, &[&x.conv]),
            Stage::Mixed4a(x) => {
                tower(m, &x.branch0.iter().collect::<Vec<_>>());
                tower(m, &x.branch1.iter().collect::<Vec<_>>())
            }
            Stage::Inception(b) => {
                tower(m, &[&b.branch0]);
                tower(m, &b.branch1.iter().collect::<Vec<_>>());
                tower(m, &b.branch2.iter().collect::<Vec<_>>());
                tower(m, &[&b.branch3])
            }
            Stage::Reduction(r) => {
                tower(m, &r.branch0.iter().collect::<Vec<_>>());
                tower(m, &r.branch1.iter().collect::<Vec<_>>())
            }
            Stage::InceptionC(c) => {
                for conv in [&c.branch0, &c.branch1_0, &c.branch1_1a, &c.branch1_1b] {
                    tower(m, &[conv]);
                }
                tower(m, &[&c.branch2_0, &c.branch2_1, &c.branch2_2]);
                for conv in [&c.branch2_3a, &c.branch2_3b, &c.branch3] {
                    tower(m, &[conv]);
                }
                m.hw()
            }
        };
        m.set_hw(end);
    }
}

/// The Inception-V4 feature extractor (1536 channels).
#[derive(Module, Debug)]
pub struct InceptionV4 {
    /// torchreid's `features` sequence.
    pub features: Vec<Stage>,
}

impl InceptionV4 {
    /// Builds the network.
    pub fn new(d: &Device) -> Self {
        let inception_a = || {
            Stage::Inception(InceptionAb {
                branch0: one(384, 96, d),
                branch1: vec![one(384, 64, d), basic(64, 96, 3, 1, 1, d)],
                branch2: vec![
                    one(384, 64, d),
                    basic(64, 96, 3, 1, 1, d),
                    basic(96, 96, 3, 1, 1, d),
                ],
                branch3: one(384, 96, d),
            })
        };
        let inception_b = || {
            Stage::Inception(InceptionAb {
                branch0: one(1024, 384, d),
                branch1: vec![
                    one(1024, 192, d),
                    rect(192, 224, 1, 7, d),
                    rect(224, 256, 7, 1, d),
                ],
                branch2: vec![
                    one(1024, 192, d),
                    rect(192, 192, 7, 1, d),
                    rect(192, 224, 1, 7, d),
                    rect(224, 224, 7, 1, d),
                    rect(224, 256, 1, 7, d),
                ],
                branch3: one(1024, 128, d),
            })
        };
        let inception_c = || {
            Stage::InceptionC(InceptionC {
                branch0: one(1536, 256, d),
                branch1_0: one(1536, 384, d),
                branch1_1a: rect(384, 256, 1, 3, d),
                branch1_1b: rect(384, 256, 3, 1, d),
                branch2_0: one(1536, 384, d),
                branch2_1: rect(384, 448, 3, 1, d),
                branch2_2: rect(448, 512, 1, 3, d),
                branch2_3a: rect(512, 256, 1, 3, d),
                branch2_3b: rect(512, 256, 3, 1, d),
                branch3: one(1536, 256, d),
            })
        };
        let mut features = vec![
            Stage::Conv(basic(3, 32, 3, 2, 0, d)),
            Stage::Conv(basic(32, 32, 3, 1, 0, d)),
            Stage::Conv(basic(32, 64, 3, 1, 1, d)),
            Stage::Mixed3a(Mixed3a {
                conv: basic(64, 96, 3, 2, 0, d),
            }),
            Stage::Mixed4a(Mixed4a {
                branch0: vec![one(160, 64, d), basic(64, 96, 3, 1, 0, d)],
                branch1: vec![
                    one(160, 64, d),
                    rect(64, 64, 1, 7, d),
                    rect(64, 64, 7, 1, d),
                    basic(64, 96, 3, 1, 0, d),
                ],
            }),
            Stage::Mixed5a(Mixed5a {
                conv: basic(192, 192, 3, 2, 0, d),
            }),
        ];
        features.extend((0..4).map(|_| inception_a()));
        features.push(Stage::Reduction(Reduction {
            branch0: vec![basic(384, 384, 3, 2, 0, d)],
            branch1: vec![
                one(384, 192, d),
                basic(192, 224, 3, 1, 1, d),
                basic(224, 256, 3, 2, 0, d),
            ],
        }));
        features.extend((0..7).map(|_| inception_b()));
        features.push(Stage::Reduction(Reduction {
            branch0: vec![one(1024, 192, d), basic(192, 192, 3, 2, 0, d)],
            branch1: vec![
                one(1024, 256, d),
                rect(256, 256, 1, 7, d),
                rect(256, 320, 7, 1, d),
                basic(320, 320, 3, 2, 0, d),
            ],
        }));
        features.extend((0..3).map(|_| inception_c()));
        Self { features }
    }

    /// Feature maps before global pooling.
    pub fn featuremaps(&self, x: Tensor<4>) -> Tensor<4> {
        self.features.iter().fold(x, |x, s| s.forward(x))
    }

    /// Channels of the feature maps.
    pub fn out_channels(&self) -> usize {
        1536
    }

    pub(crate) fn macs(&self, m: &mut Macs) {
        for s in &self.features {
            s.macs(m);
        }
    }
}

/// Maps a parameter path of [`InceptionV4`] to torchreid's `state_dict` key: the 1×1 after
/// average pooling is the second entry of torch's `branch3` sequence, and single-conv towers
/// of `Reduction_A` are not sequences.
pub(crate) fn torch_key(path: &str) -> String {
    let key = path.replace(".branch3.conv.", ".branch3.1.conv.");
    let key = key.replace(".branch3.bn.", ".branch3.1.bn.");
    // `features.10` is Reduction_A, whose branch0 is a plain BasicConv2d.
    key.replace("features.10.branch0.0.", "features.10.branch0.")
}
