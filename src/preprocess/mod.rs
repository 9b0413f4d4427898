//! How images become model input: size, channel order, scaling and normalization. One
//! definition, recorded in exported models and read back by the extractor.

mod input;
pub mod resample;

use std::collections::BTreeMap;

use crate::error::{Error, Result};
pub use input::{ChannelAffine, InputTensor, Layout, to_uint8};

/// The largest model input side (height or width) accepted anywhere: far above every model's
/// input, and small enough that a batch's buffer size cannot overflow.
pub const MAX_INPUT_SIDE: usize = 8192;

/// Refuses a model input size with a side of 0 or above [`MAX_INPUT_SIDE`].
pub fn check_input_size(height: usize, width: usize) -> Result<()> {
    if height == 0 || width == 0 || height > MAX_INPUT_SIDE || width > MAX_INPUT_SIDE {
        return Err(Error::InvalidInput(format!(
            "input size {height}x{width}: both sides must be between 1 and {MAX_INPUT_SIDE}"
        )));
    }
    Ok(())
}

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
    /// The input tensor's type and layout: float32 NCHW prepared as above (the default), or
    /// raw uint8 pixels the graph normalizes itself.
    pub input: InputTensor,
    /// Pixels cut from every side of the image (or box) before the resize, unless that leaves
    /// under 2 pixels (deep-object-reid's `center_crop`; 0: none).
    pub crop_margin: usize,
    /// Grey after the resize, three equal channels (deep-object-reid's `force_gray_scale`).
    pub grayscale: bool,
}

impl Preprocessing {
    /// The preprocessing called `name` at `height`×`width`: `torchreid` (RGB, ImageNet
    /// mean/std) or `openvino-bgr` (BGR, 0–255).
    pub fn named(name: &str, height: usize, width: usize) -> Result<Self> {
        match name {
            "torchreid" => Ok(Self::torchreid(height, width)),
            "openvino-bgr" => Ok(Self::openvino_bgr(height, width)),
            other => Err(Error::InvalidInput(format!(
                "unknown preprocessing `{other}`; expected torchreid or openvino-bgr"
            ))),
        }
    }

    /// torchreid's test transform at `height`×`width`: RGB, /255, ImageNet mean and std.
    pub fn torchreid(height: usize, width: usize) -> Self {
        Self {
            height,
            width,
            channel_order: ChannelOrder::Rgb,
            scale: 1.0 / 255.0,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            input: InputTensor::Float,
            crop_margin: 0,
            grayscale: false,
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
            input: InputTensor::Float,
            crop_margin: 0,
            grayscale: false,
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
        .into_iter()
        .chain(self.input.to_metadata())
        .chain((self.crop_margin > 0).then(|| ("crop_margin".into(), self.crop_margin.to_string())))
        .chain(self.grayscale.then(|| ("grayscale".into(), "1".into())))
        .collect()
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
            input: InputTensor::from_metadata(meta)?,
            crop_margin: match meta.get("crop_margin") {
                Some(v) => v.parse().map_err(|_| {
                    Error::InvalidInput("model metadata `crop_margin` is not a count".into())
                })?,
                None => 0,
            },
            grayscale: match meta.get("grayscale").map(String::as_str) {
                None | Some("0") => false,
                Some("1") => true,
                Some(other) => {
                    return Err(Error::InvalidInput(format!(
                        "model metadata `grayscale` is `{other}`, not 0 or 1"
                    )));
                }
            },
        })
    }
}

/// Changes to the preprocessing a model would otherwise get (from its metadata, or torchreid's
/// at the model's size): each field set replaces that part only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PreprocessingOverrides {
    /// Input `(height, width)`.
    pub size: Option<(usize, usize)>,
    /// Channel order.
    pub channel_order: Option<ChannelOrder>,
    /// Pixel scale, per-channel mean and per-channel standard deviation, together.
    pub normalization: Option<(f32, [f32; 3], [f32; 3])>,
}

impl PreprocessingOverrides {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// `base` with the overridden parts replaced.
    pub fn apply(&self, mut base: Preprocessing) -> Preprocessing {
        if let Some((h, w)) = self.size {
            base.height = h;
            base.width = w;
        }
        if let Some(order) = self.channel_order {
            base.channel_order = order;
        }
        if let Some((scale, mean, std)) = self.normalization {
            base.scale = scale;
            base.mean = mean;
            base.std = std;
        }
        base
    }

    /// Rejects sizes outside 1 ..= [`MAX_INPUT_SIDE`] and non-positive or non-finite
    /// normalization values.
    pub fn check(&self) -> Result<()> {
        if let Some((h, w)) = self.size {
            check_input_size(h, w)?;
        }
        if let Some((scale, mean, std)) = self.normalization {
            let finite = scale.is_finite() && mean.iter().chain(&std).all(|v| v.is_finite());
            if !finite || scale == 0.0 || std.iter().any(|&s| s <= 0.0) {
                return Err(Error::InvalidInput(
                    "normalization needs a finite non-zero scale, finite means and positive \
                     standard deviations"
                        .into(),
                ));
            }
        }
        Ok(())
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
            Preprocessing::uint8(64, 32, ChannelOrder::Bgr, Layout::Nhwc),
        ] {
            let meta: BTreeMap<String, String> = p.to_metadata().into_iter().collect();
            assert_eq!(Preprocessing::from_metadata(&meta).unwrap(), p);
        }
        assert!(Preprocessing::from_metadata(&BTreeMap::new()).is_err());
    }

    #[test]
    fn box_errors_read_as_a_c_developer_wrote_the_box() {
        let outside = Rect {
            x: 500.0,
            y: 10.0,
            width: 20.0,
            height: 30.0,
        };
        let message = outside.clip(64, 128).unwrap_err().to_string();
        assert!(
            message.contains("box (x 500, y 10, 20 × 30) lies outside the 64x128 frame"),
            "{message}"
        );
        let empty = Rect {
            width: 0.0,
            ..outside
        };
        let message = empty.clip(64, 128).unwrap_err().to_string();
        assert!(!message.contains("Rect"), "{message}");
    }
}

/// Layout of the pixels of an [`ImageView`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// 3 bytes per pixel: red, green, blue.
    Rgb8,
    /// 3 bytes per pixel: blue, green, red (OpenCV's default).
    Bgr8,
    /// 4 bytes per pixel: red, green, blue, alpha (ignored).
    Rgba8,
    /// 4 bytes per pixel: blue, green, red, alpha (ignored).
    Bgra8,
    /// 1 byte per pixel: luminance.
    Gray8,
}

impl PixelFormat {
    /// Bytes per pixel.
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Rgb8 | PixelFormat::Bgr8 => 3,
            PixelFormat::Rgba8 | PixelFormat::Bgra8 => 4,
            PixelFormat::Gray8 => 1,
        }
    }

    /// Red, green and blue of the pixel starting at `p`.
    fn rgb(self, p: &[u8]) -> [u8; 3] {
        match self {
            PixelFormat::Rgb8 | PixelFormat::Rgba8 => [p[0], p[1], p[2]],
            PixelFormat::Bgr8 | PixelFormat::Bgra8 => [p[2], p[1], p[0]],
            PixelFormat::Gray8 => [p[0]; 3],
        }
    }
}

/// A borrowed image in memory: `height` rows of `stride` bytes, each starting with `width`
/// pixels of `format`.
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    /// The pixel bytes.
    pub data: &'a [u8],
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Bytes from one row to the next (at least `width` × bytes per pixel).
    pub stride: usize,
    /// Pixel layout.
    pub format: PixelFormat,
}

impl<'a> ImageView<'a> {
    /// A tightly packed image (stride = width × bytes per pixel).
    pub fn packed(data: &'a [u8], width: usize, height: usize, format: PixelFormat) -> Self {
        Self {
            data,
            width,
            height,
            stride: width * format.bytes_per_pixel(),
            format,
        }
    }

    /// Checks that the buffer holds the described image.
    pub fn check(&self) -> Result<()> {
        let row = self.width.checked_mul(self.format.bytes_per_pixel());
        let needed = row.and_then(|row| {
            (self.stride >= row).then_some(())?;
            self.height
                .checked_sub(1)
                .map_or(Some(0), |h| h.checked_mul(self.stride)?.checked_add(row))
        });
        match needed {
            _ if self.width == 0 || self.height == 0 => Err(Error::InvalidInput(format!(
                "empty image ({}x{})",
                self.width, self.height
            ))),
            Some(n) if n <= self.data.len() => Ok(()),
            Some(n) => Err(Error::InvalidInput(format!(
                "a {}x{} {:?} image with stride {} needs {n} bytes, got {}",
                self.width,
                self.height,
                self.format,
                self.stride,
                self.data.len()
            ))),
            None => Err(Error::InvalidInput(format!(
                "stride {} is smaller than a row of {} {:?} pixels",
                self.stride, self.width, self.format
            ))),
        }
    }
}

/// A rectangle in pixels (a detection box): top-left corner and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

/// As a C or Python user wrote it: `(x, y, width × height)`.
impl std::fmt::Display for Rect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "(x {}, y {}, {} × {})",
            self.x, self.y, self.width, self.height
        )
    }
}

impl Rect {
    /// The integer pixel region of the box clipped to a `width`×`height` frame:
    /// (x0, y0, w, h), or an error if nothing of it lies inside the frame.
    pub fn clip(&self, width: usize, height: usize) -> Result<(usize, usize, usize, usize)> {
        let finite = [self.x, self.y, self.width, self.height]
            .iter()
            .all(|v| v.is_finite());
        if !finite || self.width <= 0.0 || self.height <= 0.0 {
            return Err(Error::InvalidInput(format!(
                "box {self} is empty or not finite"
            )));
        }
        let x0 = self.x.round().clamp(0.0, width as f32) as usize;
        let y0 = self.y.round().clamp(0.0, height as f32) as usize;
        let x1 = (self.x + self.width).round().clamp(0.0, width as f32) as usize;
        let y1 = (self.y + self.height).round().clamp(0.0, height as f32) as usize;
        if x1 <= x0 || y1 <= y0 {
            return Err(Error::InvalidInput(format!(
                "box {self} lies outside the {width}x{height} frame"
            )));
        }
        Ok((x0, y0, x1 - x0, y1 - y0))
    }
}

impl Preprocessing {
    /// Number of floats of one prepared image (3 × height × width).
    pub fn input_len(&self) -> usize {
        3 * self.height * self.width
    }

    /// Crops `region` (x0, y0, w, h) of `image`, resizes it as Pillow does, and writes the
    /// normalized CHW floats into `out` (`input_len()` values).
    pub fn prepare_region(
        &self,
        image: &ImageView,
        region: (usize, usize, usize, usize),
        out: &mut [f32],
    ) {
        let (x0, y0, w, h) = inside_margin(region, self.crop_margin);
        let bpp = image.format.bytes_per_pixel();
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in y0..y0 + h {
            let row = &image.data[y * image.stride..];
            for x in x0..x0 + w {
                rgb.extend_from_slice(&image.format.rgb(&row[x * bpp..]));
            }
        }
        let mut resized =
            crate::preprocess::resample::resize_rgb(&rgb, w, h, self.width, self.height);
        if self.grayscale {
            resized = crate::preprocess::grey_rgb(&resized);
        }
        self.normalize_into(&resized, out);
    }

    /// Writes `height × width` interleaved RGB values (0–255) as the normalized CHW tensor:
    /// scaled, mean subtracted, divided by the standard deviation, in the model's channel order.
    pub fn normalize_into<T: Copy + Into<f32>>(&self, interleaved: &[T], out: &mut [f32]) {
        let plane = self.width * self.height;
        let order = match self.channel_order {
            ChannelOrder::Rgb => [0, 1, 2],
            ChannelOrder::Bgr => [2, 1, 0],
        };
        for (c, &src) in order.iter().enumerate() {
            let (mean, std) = (self.mean[c], self.std[c]);
            let dst = &mut out[c * plane..(c + 1) * plane];
            for (i, d) in dst.iter_mut().enumerate() {
                *d = (interleaved[i * 3 + src].into() * self.scale - mean) / std;
            }
        }
    }

    /// Prepares a whole image.
    pub fn prepare(&self, image: &ImageView, out: &mut [f32]) -> Result<()> {
        image.check()?;
        self.prepare_region(image, (0, 0, image.width, image.height), out);
        Ok(())
    }
}

/// `region` (x0, y0, w, h) without `margin` pixels on every side, or the whole region when
/// that would leave under 2 pixels (deep-object-reid's `CenterCrop`).
pub fn inside_margin(
    region: (usize, usize, usize, usize),
    margin: usize,
) -> (usize, usize, usize, usize) {
    let (x0, y0, w, h) = region;
    if margin > 0 && w >= 2 * margin + 2 && h >= 2 * margin + 2 {
        (x0 + margin, y0 + margin, w - 2 * margin, h - 2 * margin)
    } else {
        region
    }
}

/// Pillow's `convert("L")` of one RGB pixel (ITU-R 601-2 in 16-bit fixed point).
pub fn luma(p: &[u8]) -> u8 {
    ((p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000) >> 16) as u8
}

/// `convert("L").convert("RGB")`: the grey image, three equal channels.
pub fn grey_rgb(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks(3).flat_map(|p| [luma(p); 3]).collect()
}

/// Encodes `image` as PNG and writes it to `path` atomically.
pub fn write_png(image: &image::RgbImage, path: &std::path::Path) -> Result<()> {
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))?;
    crate::formats::npy::write_atomically(path, &png)
}

/// Decodes JPEG, PNG, BMP or WebP bytes into packed RGB.
pub fn decode(bytes: &[u8]) -> Result<(Vec<u8>, usize, usize)> {
    // The JPEG decoder fills a truncated scan with grey instead of failing, as Pillow would;
    // a complete JPEG ends with the EOI marker (0xFFD9, never produced inside coded data).
    if bytes.starts_with(&[0xFF, 0xD8]) && !bytes.windows(2).any(|w| w == [0xFF, 0xD9]) {
        return Err(Error::InvalidInput(
            "truncated JPEG (no end-of-image marker)".into(),
        ));
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::InvalidInput(format!("cannot read image: {e}")))?;
    let mut limits = image::Limits::default();
    // A re-id crop is small; refuse absurd sizes before allocating.
    limits.max_image_width = Some(16384);
    limits.max_image_height = Some(16384);
    limits.max_alloc = Some(1 << 30);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| Error::InvalidInput(format!("cannot decode image: {e}")))?
        .into_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    Ok((img.into_raw(), w, h))
}
