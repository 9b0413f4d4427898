//! What a model's input tensor holds, and how one preprocessing's input becomes another's.
//!
//! reid's models are trained on torchreid's input (RGB, /255, ImageNet mean and std). An export
//! for another preprocessing — BGR 0–255 as OpenVINO's model zoo feeds, or raw uint8 pixels —
//! converts its input to that inside the graph (a channel gather and one multiply-add per
//! channel), and the Burn engine does the same before the model, so the metadata always says
//! what the input really is.

use super::{ChannelOrder, Preprocessing};
use crate::error::{Error, Result};

/// The element type and layout of a model's input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputTensor {
    /// float32 NCHW, prepared as the rest of the preprocessing says (torchreid's form).
    #[default]
    Float,
    /// uint8 pixels 0–255 in the channel order, in this layout; the graph casts and normalizes.
    Uint8(Layout),
}

/// The axis order of an image batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Batch, channel, height, width (PyTorch's).
    Nchw,
    /// Batch, height, width, channel (an image buffer's).
    Nhwc,
}

impl InputTensor {
    /// The metadata entries naming it: `input_type` and `input_layout` for uint8, none for
    /// float32 (absent means float32, so that the metadata and the fingerprints of float
    /// exports stay what they were).
    pub fn to_metadata(self) -> Vec<(String, String)> {
        match self {
            InputTensor::Float => Vec::new(),
            InputTensor::Uint8(layout) => vec![
                ("input_type".into(), "uint8".into()),
                (
                    "input_layout".into(),
                    match layout {
                        Layout::Nchw => "NCHW".into(),
                        Layout::Nhwc => "NHWC".into(),
                    },
                ),
            ],
        }
    }

    /// Reads it back from metadata (absent: float32, as every export before it).
    pub fn from_metadata(meta: &std::collections::BTreeMap<String, String>) -> Result<Self> {
        match meta.get("input_type").map(String::as_str) {
            None | Some("float32") => Ok(InputTensor::Float),
            Some("uint8") => match meta.get("input_layout").map(String::as_str) {
                None | Some("NCHW") => Ok(InputTensor::Uint8(Layout::Nchw)),
                Some("NHWC") => Ok(InputTensor::Uint8(Layout::Nhwc)),
                Some(other) => Err(Error::InvalidInput(format!(
                    "model metadata `input_layout` is `{other}`, not NCHW or NHWC"
                ))),
            },
            Some(other) => Err(Error::InvalidInput(format!(
                "model metadata `input_type` is `{other}`, not float32 or uint8"
            ))),
        }
    }
}

/// Prepared float32 NCHW pixels (`[n, 3, h, w]`, values 0–255) as a uint8 tensor in
/// `layout`, each value rounded to the nearest integer and clamped to 0–255.
pub fn to_uint8(prepared: &[f32], shape: [usize; 4], layout: Layout) -> Vec<u8> {
    let byte = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    match layout {
        Layout::Nchw => prepared.iter().map(|&v| byte(v)).collect(),
        Layout::Nhwc => {
            let [n, c, h, w] = shape;
            let plane = h * w;
            let mut out = vec![0u8; prepared.len()];
            for (image, dst) in prepared
                .chunks_exact(c * plane)
                .zip(out.chunks_exact_mut(c * plane))
            {
                for (channel, src) in image.chunks_exact(plane).enumerate() {
                    for (pixel, &v) in src.iter().enumerate() {
                        dst[pixel * c + channel] = byte(v);
                    }
                }
            }
            debug_assert_eq!(out.len(), n * c * plane);
            out
        }
    }
}

/// Output channel `c` is input channel `source[c]` times `mul[c]` plus `add[c]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelAffine {
    /// The input channel each output channel is read from.
    pub source: [usize; 3],
    /// Per-channel factor.
    pub mul: [f32; 3],
    /// Per-channel offset.
    pub add: [f32; 3],
}

impl ChannelAffine {
    /// Whether the channels are read in place (no gather needed).
    pub fn keeps_order(&self) -> bool {
        self.source == [0, 1, 2]
    }
}

/// For each channel of `order`, the RGB channel it holds.
fn rgb_channel(order: ChannelOrder) -> [usize; 3] {
    match order {
        ChannelOrder::Rgb => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    }
}

impl Preprocessing {
    /// The preprocessing of a graph input named as on the command line: `input` `float`
    /// (prepared as the named `preprocessing` says: `torchreid` or `openvino-bgr`) or
    /// `uint8-rgb` / `uint8-bgr` (raw pixels, `layout` `nchw` or `nhwc`).
    pub fn for_graph_input(
        preprocessing: &str,
        input: &str,
        layout: &str,
        height: usize,
        width: usize,
    ) -> Result<Self> {
        let layout = match layout {
            "nchw" => Layout::Nchw,
            "nhwc" => Layout::Nhwc,
            other => {
                return Err(Error::InvalidInput(format!(
                    "unknown layout `{other}`; expected nchw or nhwc"
                )));
            }
        };
        let order = match input {
            "float" if layout == Layout::Nchw => {
                return Self::named(preprocessing, height, width);
            }
            "float" => {
                return Err(Error::InvalidInput(
                    "a float input is NCHW; nhwc is for uint8 inputs".into(),
                ));
            }
            "uint8-rgb" => ChannelOrder::Rgb,
            "uint8-bgr" => ChannelOrder::Bgr,
            other => {
                return Err(Error::InvalidInput(format!(
                    "unknown input `{other}`; expected float, uint8-rgb or uint8-bgr"
                )));
            }
        };
        Ok(Self::uint8(height, width, order, layout))
    }

    /// A uint8-input preprocessing: raw 0–255 pixels in `order`, in `layout`.
    pub fn uint8(height: usize, width: usize, order: ChannelOrder, layout: Layout) -> Self {
        Self {
            height,
            width,
            channel_order: order,
            scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
            input: InputTensor::Uint8(layout),
            crop_margin: 0,
            grayscale: false,
        }
    }

    /// Refuses a uint8 input with a normalization of its own: the caller feeds raw pixels,
    /// the graph normalizes them.
    pub fn check_input(&self) -> Result<()> {
        let identity = self.scale == 1.0 && self.mean == [0.0; 3] && self.std == [1.0; 3];
        if matches!(self.input, InputTensor::Uint8(_)) && !identity {
            return Err(Error::InvalidInput(
                "a uint8 input takes raw 0-255 pixels: pixel scale 1, mean 0, std 1".into(),
            ));
        }
        Ok(())
    }

    /// How to turn this preprocessing's (float, NCHW) input into `target`'s, per channel;
    /// `None` when they are the same.
    pub fn conversion_to(&self, target: &Preprocessing) -> Option<ChannelAffine> {
        let same = self.channel_order == target.channel_order
            && self.scale == target.scale
            && self.mean == target.mean
            && self.std == target.std;
        if same {
            return None;
        }
        // Input channel j holds x = (p·s − m_j) / d_j of the pixel p of RGB channel
        // from[j]: p = (x·d_j + m_j) / s, and the target wants (p·s' − m'_c) / d'_c.
        let from = rgb_channel(self.channel_order);
        let to = rgb_channel(target.channel_order);
        let mut affine = ChannelAffine {
            source: [0; 3],
            mul: [0.0; 3],
            add: [0.0; 3],
        };
        for (c, rgb) in to.into_iter().enumerate() {
            let j = from
                .iter()
                .position(|&held| held == rgb)
                .expect("both orders hold the three channels");
            let ratio = target.scale as f64 / self.scale as f64;
            let (d, m) = (self.std[j] as f64, self.mean[j] as f64);
            let (d_t, m_t) = (target.std[c] as f64, target.mean[c] as f64);
            affine.source[c] = j;
            affine.mul[c] = (d * ratio / d_t) as f32;
            affine.add[c] = ((m * ratio - m_t) / d_t) as f32;
        }
        Some(affine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Preparing a pixel under one preprocessing and converting gives what the other
    /// preprocessing prepares from the same pixel.
    #[test]
    fn a_conversion_gives_the_targets_preparation() {
        let torchreid = Preprocessing::torchreid(8, 4);
        let pixel = [200u8, 17, 90];
        let prepared = |p: &Preprocessing| -> [f64; 3] {
            std::array::from_fn(|c| {
                let rgb = rgb_channel(p.channel_order)[c];
                (pixel[rgb] as f64 * p.scale as f64 - p.mean[c] as f64) / p.std[c] as f64
            })
        };
        for source in [
            Preprocessing::openvino_bgr(8, 4),
            Preprocessing::uint8(8, 4, ChannelOrder::Rgb, Layout::Nhwc),
            Preprocessing::uint8(8, 4, ChannelOrder::Bgr, Layout::Nchw),
        ] {
            let affine = source.conversion_to(&torchreid).unwrap();
            let x = prepared(&source);
            let want = prepared(&torchreid);
            for c in 0..3 {
                let got = x[affine.source[c]] * affine.mul[c] as f64 + affine.add[c] as f64;
                assert!((got - want[c]).abs() < 1e-5, "{source:?} channel {c}");
            }
        }
        assert_eq!(torchreid.conversion_to(&torchreid), None);
        let mut raw_rgb = Preprocessing::uint8(8, 4, ChannelOrder::Rgb, Layout::Nchw);
        assert!(raw_rgb.conversion_to(&torchreid).unwrap().keeps_order());
        raw_rgb.mean = [1.0; 3];
        assert!(raw_rgb.check_input().is_err());
    }

    #[test]
    fn uint8_tensors_are_rounded_clamped_and_laid_out() {
        // One 1×2 image: R = [0.4, 254.6], G = [-3, 300], B = [7.5, 8.49].
        let prepared = [0.4, 254.6, -3.0, 300.0, 7.5, 8.49];
        let shape = [1, 3, 1, 2];
        assert_eq!(
            to_uint8(&prepared, shape, Layout::Nchw),
            [0, 255, 0, 255, 8, 8]
        );
        assert_eq!(
            to_uint8(&prepared, shape, Layout::Nhwc),
            [0, 0, 8, 255, 255, 8]
        );
    }
}
