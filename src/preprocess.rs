//! How images become model input: size, channel order, scaling and normalization. One
//! definition, recorded in exported models and read back by the extractor.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Order of the colour channels the model expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    /// Red, green, blue (torchreid).
    Rgb,
    /// Blue, green, red (OpenVINO's model-zoo re-id models).
    Bgr,
}

/// Test-time preprocessing: resize to `height`×`width` (bilinear), scale pixel values by
/// `scale`, then subtract `mean` and divide by `std` per channel (in the model's order).
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessing {
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Channel order.
    pub channel_order: ChannelOrder,
    /// Factor applied to 0–255 pixel values before normalization.
    pub scale: f32,
    /// Per-channel mean, after scaling.
    pub mean: [f32; 3],
    /// Per-channel standard deviation, after scaling.
    pub std: [f32; 3],
}

impl Preprocessing {
    /// torchreid's test transform at `height`×`width`: RGB, /255, ImageNet mean and std.
    pub fn torchreid(height: usize, width: usize) -> Self {
        Self {
            height,
            width,
            channel_order: ChannelOrder::Rgb,
            scale: 1.0 / 255.0,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }

    /// OpenVINO model-zoo convention: BGR, 0–255, no normalization.
    pub fn openvino_bgr(height: usize, width: usize) -> Self {
        Self {
            height,
            width,
            channel_order: ChannelOrder::Bgr,
            scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
        }
    }

    /// The `metadata_props` entries that describe this preprocessing.
    pub fn to_metadata(&self) -> Vec<(String, String)> {
        let list = |v: &[f32; 3]| v.map(|x| x.to_string()).join(",");
        vec![
            ("input_height".into(), self.height.to_string()),
            ("input_width".into(), self.width.to_string()),
            (
                "channel_order".into(),
                match self.channel_order {
                    ChannelOrder::Rgb => "RGB".into(),
                    ChannelOrder::Bgr => "BGR".into(),
                },
            ),
            ("pixel_scale".into(), self.scale.to_string()),
            ("mean".into(), list(&self.mean)),
            ("std".into(), list(&self.std)),
        ]
    }

    /// Reads the preprocessing back from metadata written by [`Preprocessing::to_metadata`].
    pub fn from_metadata(meta: &BTreeMap<String, String>) -> Result<Self> {
        let get = |key: &str| {
            meta.get(key)
                .ok_or_else(|| Error::InvalidInput(format!("model metadata has no `{key}`")))
        };
        let number = |key: &str| -> Result<f32> {
            get(key)?
                .parse()
                .map_err(|_| Error::InvalidInput(format!("model metadata `{key}` is not a number")))
        };
        let triple = |key: &str| -> Result<[f32; 3]> {
            let values: Vec<f32> = get(key)?
                .split(',')
                .map(|v| v.trim().parse())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| {
                    Error::InvalidInput(format!("model metadata `{key}` is not 3 numbers"))
                })?;
            values.try_into().map_err(|_| {
                Error::InvalidInput(format!("model metadata `{key}` is not 3 numbers"))
            })
        };
        Ok(Self {
            height: number("input_height")? as usize,
            width: number("input_width")? as usize,
            channel_order: match get("channel_order")?.as_str() {
                "RGB" => ChannelOrder::Rgb,
                "BGR" => ChannelOrder::Bgr,
                other => {
                    return Err(Error::InvalidInput(format!(
                        "unknown channel order `{other}`"
                    )));
                }
            },
            scale: number("pixel_scale")?,
            mean: triple("mean")?,
            std: triple("std")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips() {
        for p in [
            Preprocessing::torchreid(256, 128),
            Preprocessing::openvino_bgr(384, 128),
        ] {
            let meta: BTreeMap<String, String> = p.to_metadata().into_iter().collect();
            assert_eq!(Preprocessing::from_metadata(&meta).unwrap(), p);
        }
        assert!(Preprocessing::from_metadata(&BTreeMap::new()).is_err());
    }
}
