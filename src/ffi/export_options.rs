//! `reid_export_options`: how `reid_export_onnx_ex` writes a model (`reid_export_options_default`).

use std::ffi::c_char;
use std::path::PathBuf;

use super::boundary::text;
use super::status::{Failure, Outcome};
use crate::export::ExportOptions;
use crate::preprocess::{ChannelOrder, Layout, Preprocessing};
use crate::quantize::{Method, QuantizeOptions};

/// `reid_export_options.flags`: L2-normalize the embedding inside the graph.
pub const REID_EXPORT_NORMALIZE: u32 = 1;
/// `reid_export_options.flags`: with `REID_PRECISION_FP16`, the graph's input and output are
/// float16 too (by default they stay float32).
pub const REID_EXPORT_FP16_IO: u32 = 2;

/// What the exported graph takes as input (`reid_export_options.input`).
#[repr(i32)]
#[derive(Debug, Clone, Copy)]
pub enum reid_graph_input {
    /// float32 NCHW, torchreid's preprocessing (RGB, /255, ImageNet mean and std).
    REID_GRAPH_INPUT_FLOAT = 0,
    /// Raw uint8 RGB pixels; the graph casts and normalizes them.
    REID_GRAPH_INPUT_UINT8_RGB = 1,
    /// Raw uint8 BGR pixels (OpenCV's order); the graph swaps, casts and normalizes them.
    REID_GRAPH_INPUT_UINT8_BGR = 2,
}

/// The axis order of a uint8 graph input (`reid_export_options.layout`).
#[repr(i32)]
#[derive(Debug, Clone, Copy)]
pub enum reid_layout {
    /// Batch, channel, height, width.
    REID_LAYOUT_NCHW = 0,
    /// Batch, height, width, channel (an image buffer's order).
    REID_LAYOUT_NHWC = 1,
}

/// The numeric precision of the export (`reid_export_options.precision`).
#[repr(i32)]
#[derive(Debug, Clone, Copy)]
pub enum reid_precision {
    /// float32.
    REID_PRECISION_F32 = 0,
    /// INT8 (static QDQ quantization, calibrated and checked on `calibration`).
    REID_PRECISION_INT8 = 1,
    /// float16 weights and computation (checked on `calibration`).
    REID_PRECISION_FP16 = 2,
}

/// How a model is exported. Start from `reid_export_options_default()`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct reid_export_options {
    /// Input height; 0 with `width` 0: the architecture's default.
    pub height: usize,
    /// Input width; 0 with `height` 0: the architecture's default.
    pub width: usize,
    /// `REID_EXPORT_*` flags, or-ed.
    pub flags: u32,
    /// A `reid_graph_input`.
    pub input: i32,
    /// A `reid_layout`, for a uint8 input.
    pub layout: i32,
    /// A `reid_precision`.
    pub precision: i32,
    /// For FP16 and INT8: a re-id dataset in Market-1501's layout (its training images
    /// calibrate INT8, its query / gallery split checks); NULL for float32.
    pub calibration: *const c_char,
    /// For INT8: "minmax", "percentile" or "percentile:P"; NULL for min-max.
    pub calibration_method: *const c_char,
    /// For INT8: at most this many calibration images.
    pub calibration_images: usize,
    /// For FP16 and INT8: the largest mAP loss accepted, in points; a larger one fails the
    /// export (nothing is written; the report is in the error message).
    pub max_map_drop: f64,
}

/// The default export (the library's defaults): the architecture's input size, float32 input
/// and weights, no in-graph normalization; for INT8, min-max calibration on up to 256 images
/// and at most 1 mAP point lost.
#[unsafe(no_mangle)]
pub extern "C" fn reid_export_options_default() -> reid_export_options {
    let quantize = QuantizeOptions::new("");
    reid_export_options {
        height: 0,
        width: 0,
        flags: 0,
        input: reid_graph_input::REID_GRAPH_INPUT_FLOAT as i32,
        layout: reid_layout::REID_LAYOUT_NCHW as i32,
        precision: reid_precision::REID_PRECISION_F32 as i32,
        calibration: std::ptr::null(),
        calibration_method: std::ptr::null(),
        calibration_images: quantize.calibration_images,
        max_map_drop: quantize.max_map_drop,
    }
}

/// The library's export options at `height` × `width` and, for INT8, its quantization
/// options, from a caller's `reid_export_options` (checked by the library's validation).
///
/// # Safety
/// The options' strings NULL or NUL-terminated.
pub(crate) unsafe fn export_options(
    o: &reid_export_options,
    height: usize,
    width: usize,
) -> Outcome<(ExportOptions, Option<QuantizeOptions>)> {
    if o.flags & !(REID_EXPORT_NORMALIZE | REID_EXPORT_FP16_IO) != 0 {
        return Err(Failure::invalid(format!(
            "unknown export flags {:#x}",
            o.flags
        )));
    }
    let layout = match o.layout {
        0 => Layout::Nchw,
        1 => Layout::Nhwc,
        other => return Err(Failure::invalid(format!("unknown layout {other}"))),
    };
    let preprocessing = match (o.input, layout) {
        (0, Layout::Nchw) => Preprocessing::torchreid(height, width),
        (0, Layout::Nhwc) => {
            return Err(Failure::invalid(
                "a float input is NCHW; REID_LAYOUT_NHWC is for uint8 inputs",
            ));
        }
        (1, _) => Preprocessing::uint8(height, width, ChannelOrder::Rgb, layout),
        (2, _) => Preprocessing::uint8(height, width, ChannelOrder::Bgr, layout),
        (other, _) => return Err(Failure::invalid(format!("unknown graph input {other}"))),
    };
    let export = ExportOptions {
        normalize: o.flags & REID_EXPORT_NORMALIZE != 0,
        ..ExportOptions::with_preprocessing(preprocessing)
    };
    let precision = match o.precision {
        0 => "f32",
        1 => "int8",
        2 => "fp16",
        other => return Err(Failure::invalid(format!("unknown precision {other}"))),
    };
    let dataset = if o.calibration.is_null() {
        None
    } else {
        // SAFETY: the caller's contract.
        Some(PathBuf::from(unsafe {
            text(o.calibration, "calibration")
        }?))
    };
    let fp16_io = o.flags & REID_EXPORT_FP16_IO != 0;
    let mut quantize = QuantizeOptions::for_precision(precision, fp16_io, dataset)?;
    if let Some(q) = &mut quantize {
        if !o.calibration_method.is_null() {
            // SAFETY: the caller's contract.
            q.method = Method::parse(unsafe { text(o.calibration_method, "calibration_method") }?)?;
        }
        q.calibration_images = o.calibration_images;
        q.max_map_drop = o.max_map_drop;
        q.validate()?;
    }
    Ok((export, quantize))
}
