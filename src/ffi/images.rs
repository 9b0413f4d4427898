//! The C input types every image-taking call shares (`reid_image`, `reid_box`,
//! `reid_pixel_format`) and their checked unpacking into the library's views.

use std::ffi::c_char;

use super::boundary::{input_slice, path};
use super::status::{Failure, Outcome};
use crate::preprocess::{ImageView, PixelFormat};

/// Pixel layouts of a `reid_image`.
#[repr(i32)]
#[derive(Debug, Clone, Copy)]
pub enum reid_pixel_format {
    /// 3 bytes per pixel: red, green, blue.
    REID_PIXEL_FORMAT_RGB8 = 0,
    /// 3 bytes per pixel: blue, green, red (OpenCV's `CV_8UC3`).
    REID_PIXEL_FORMAT_BGR8 = 1,
    /// 4 bytes per pixel: red, green, blue, alpha (alpha ignored).
    REID_PIXEL_FORMAT_RGBA8 = 2,
    /// 4 bytes per pixel: blue, green, red, alpha (alpha ignored).
    REID_PIXEL_FORMAT_BGRA8 = 3,
    /// 1 byte per pixel: luminance.
    REID_PIXEL_FORMAT_GRAY8 = 4,
}

/// A borrowed image in memory: `height` rows of `stride` bytes, each starting with `width`
/// pixels of `format`. The data must hold `stride * (height - 1) + width * bytes_per_pixel`
/// bytes and is only read during the call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct reid_image {
    /// First byte of the first row.
    pub data: *const u8,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Bytes from the start of one row to the next; 0 means tightly packed.
    pub stride: usize,
    /// A `reid_pixel_format` value.
    pub format: i32,
}

/// An axis-aligned box in pixel coordinates of a frame (top-left corner and size). Boxes
/// reaching outside the frame are clipped to it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct reid_box {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

/// The caller's `count` encoded images: image `i` is `sizes[i]` bytes at `images[i]`.
///
/// # Safety
/// `images` and `sizes` point to `count` items, each image to its `sizes[i]` bytes.
pub(crate) unsafe fn encoded_inputs<'a>(
    images: *const *const u8,
    sizes: *const usize,
    count: usize,
) -> Outcome<Vec<&'a [u8]>> {
    // SAFETY: the caller's contract.
    unsafe {
        let pointers = input_slice(images, count, "images")?;
        let sizes = input_slice(sizes, count, "sizes")?;
        pointers
            .iter()
            .zip(sizes)
            .enumerate()
            .map(|(i, (&p, &n))| input_slice(p, n, &format!("images[{i}]")))
            .collect()
    }
}

/// The caller's `count` file paths.
///
/// # Safety
/// `paths` points to `count` NUL-terminated strings.
pub(crate) unsafe fn path_inputs(
    paths: *const *const c_char,
    count: usize,
) -> Outcome<Vec<std::path::PathBuf>> {
    // SAFETY: the caller's contract.
    unsafe {
        input_slice(paths, count, "paths")?
            .iter()
            .enumerate()
            .map(|(i, &p)| path(p, &format!("paths[{i}]")))
            .collect()
    }
}

/// Views of the caller's `count` `reid_image`s.
///
/// # Safety
/// `images` points to `count` `reid_image`s whose data hold the bytes they describe.
pub(crate) unsafe fn image_inputs<'a>(
    images: *const reid_image,
    count: usize,
) -> Outcome<Vec<ImageView<'a>>> {
    // SAFETY: the caller's contract.
    unsafe {
        input_slice(images, count, "images")?
            .iter()
            .enumerate()
            .map(|(i, image)| view(image, &format!("images[{i}]")))
            .collect()
    }
}

fn pixel_format(value: i32) -> Option<PixelFormat> {
    Some(match value {
        0 => PixelFormat::Rgb8,
        1 => PixelFormat::Bgr8,
        2 => PixelFormat::Rgba8,
        3 => PixelFormat::Bgra8,
        4 => PixelFormat::Gray8,
        _ => return None,
    })
}

/// Views a caller's `reid_image`, reading exactly the bytes its description covers.
///
/// # Safety
/// `image.data` must hold the bytes the description implies.
pub(crate) unsafe fn view<'a>(image: &reid_image, what: &str) -> Outcome<ImageView<'a>> {
    let format = pixel_format(image.format).ok_or_else(|| {
        Failure::invalid(format!("{what}: unknown pixel format {}", image.format))
    })?;
    let row = image.width.checked_mul(format.bytes_per_pixel());
    let stride = if image.stride == 0 {
        row.unwrap_or(0)
    } else {
        image.stride
    };
    let len = match (row, image.height) {
        (_, 0) | (Some(0), _) => 0,
        (Some(row), h) if stride >= row => (h - 1)
            .checked_mul(stride)
            .and_then(|n| n.checked_add(row))
            .ok_or_else(|| Failure::invalid(format!("{what}: size overflows")))?,
        (Some(row), _) => {
            return Err(Failure::invalid(format!(
                "{what}: stride {stride} is shorter than a row ({row} bytes)"
            )));
        }
        (None, _) => return Err(Failure::invalid(format!("{what}: size overflows"))),
    };
    // SAFETY: the caller's contract.
    let data = unsafe { input_slice(image.data, len, &format!("{what}.data")) }?;
    Ok(ImageView {
        data,
        width: image.width,
        height: image.height,
        stride,
        format,
    })
}
