//! Model export to ONNX from C.

use std::ffi::c_char;

use super::boundary::{guard, path, text};
use super::export_options::{export_options, reid_export_options, reid_export_options_default};
use super::status::{Failure, Outcome, reid_status};
use crate::export::{export_onnx, export_onnx_file};

pub use super::export_options::REID_EXPORT_NORMALIZE;

/// Exports a model to ONNX (input `images` [N, 3, H, W], output `output` [N, dim], dynamic
/// batch, opset 17, preprocessing recorded in the metadata) for ONNX Runtime and OpenVINO.
/// `architecture` names the zoo model ("osnet_x1_0", …); it may be NULL for a reid
/// checkpoint, which records it. `weights_path`: torchreid weights (`.pth`, `.pth.tar`,
/// `.safetensors`) or a reid checkpoint. `height` and `width` 0 mean the architecture's
/// default input. `flags`: `REID_EXPORT_*`, or-ed (0 for none). The model takes torchreid's
/// preprocessing (RGB, ImageNet mean and std), which extractors read from the metadata. The
/// file is written atomically. `reid_export_onnx_ex` takes more options.
///
/// Errors: `REID_INVALID_ARGUMENT`, `REID_UNKNOWN_ARCHITECTURE`, `REID_IO_ERROR`,
/// `REID_MODEL_ERROR` (unreadable weights, or weights of another architecture). Thread-safe.
///
/// # Safety
/// `architecture` NULL or a NUL-terminated string; the paths NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_export_onnx(
    architecture: *const c_char,
    weights_path: *const c_char,
    output_path: *const c_char,
    height: usize,
    width: usize,
    flags: u32,
) -> reid_status {
    let options = reid_export_options {
        height,
        width,
        flags,
        ..reid_export_options_default()
    };
    // SAFETY: the caller's contract; `options` is a valid struct.
    unsafe { reid_export_onnx_ex(architecture, weights_path, output_path, &options) }
}

/// Exports a model to ONNX as `reid_export_onnx` does, with `options` (NULL: the defaults):
/// the input size, in-graph normalization, what the graph takes (float32, or raw uint8 RGB / BGR
/// pixels in NCHW or NHWC that the graph normalizes itself; the metadata says which), and the
/// precision. An FP16 export computes in float16 (its input and output float32 unless
/// `REID_EXPORT_FP16_IO`); an INT8 export is quantized statically (QDQ form) with ranges
/// calibrated on the `calibration` dataset's training images. Either is then checked on the
/// dataset's query / gallery split against the float model: one that loses more than
/// `max_map_drop` mAP points fails with `REID_INVALID_ARGUMENT`, its report (JSON) in the
/// message, and nothing is written. It needs ONNX Runtime (found as extractors find it).
///
/// Errors: as `reid_export_onnx`, plus `REID_INVALID_ARGUMENT` (unknown options, an FP16 or
/// INT8 export without `calibration` or that loses too much, a float one with it),
/// `REID_DATA_FILE_ERROR` / `REID_IO_ERROR` (an unreadable dataset), `REID_RUNTIME_ERROR`
/// (ONNX Runtime). Thread-safe.
///
/// # Safety
/// `architecture` NULL or a NUL-terminated string; the paths NUL-terminated strings;
/// `options` NULL or valid, its strings NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_export_onnx_ex(
    architecture: *const c_char,
    weights_path: *const c_char,
    output_path: *const c_char,
    options: *const reid_export_options,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let (weights, output) = unsafe {
            (
                path(weights_path, "weights_path")?,
                path(output_path, "output_path")?,
            )
        };
        let arch = if architecture.is_null() {
            None
        } else {
            // SAFETY: the caller's contract.
            Some(unsafe { text(architecture, "architecture") }?.parse()?)
        };
        let options = if options.is_null() {
            reid_export_options_default()
        } else {
            // SAFETY: non-NULL; the caller's contract.
            unsafe { options.read() }
        };
        if (options.height == 0) != (options.width == 0) {
            return Err(Failure::invalid(
                "give both height and width, or neither (0, 0) for the default",
            ));
        }
        let device = crate::device::default_device();
        let model = crate::weights::load_any(arch, &weights, &device)?;
        let (h, w) = if options.height == 0 {
            model.input_size()
        } else {
            (options.height, options.width)
        };
        model.check_input_size(h, w)?;
        // SAFETY: the caller's contract.
        let (export, quantize) = unsafe { export_options(&options, h, w) }?;
        write(&model, &export, quantize.as_ref(), &output)
    })
}

fn write(
    model: &crate::models::ReidModel,
    export: &crate::export::ExportOptions,
    quantize: Option<&crate::quantize::QuantizeOptions>,
    output: &std::path::Path,
) -> Outcome {
    match quantize {
        None => Ok(export_onnx_file(model, export, output)?),
        Some(q) => {
            let float = export_onnx(model, export)?;
            let (bytes, _) = crate::quantize::quantize_export(&float, q)?;
            Ok(crate::formats::npy::write_atomically(output, &bytes)?)
        }
    }
}
