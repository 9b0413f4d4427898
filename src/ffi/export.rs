//! Model export to ONNX from C.

use std::ffi::c_char;

use super::boundary::{guard, path, text};
use super::status::{Failure, reid_status};
use crate::export::{ExportOptions, export_onnx_file};

/// `reid_export_onnx` flag: L2-normalize the embedding inside the graph.
pub const REID_EXPORT_NORMALIZE: u32 = 1;

/// Exports a model to ONNX (input `images` [N, 3, H, W], output `output` [N, dim], dynamic
/// batch, opset 17, preprocessing recorded in the metadata) for ONNX Runtime and OpenVINO.
/// `architecture` names the zoo model ("osnet_x1_0", …); it may be NULL for a reid
/// checkpoint, which records it. `weights_path`: torchreid weights (`.pth`, `.pth.tar`,
/// `.safetensors`) or a reid checkpoint. `height` and `width` 0 mean the architecture's
/// default input. `flags`: `REID_EXPORT_*`, or-ed (0 for none). The model takes torchreid's
/// preprocessing (RGB, ImageNet mean and std), which extractors read from the metadata. The
/// file is written atomically.
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
        if flags & !REID_EXPORT_NORMALIZE != 0 {
            return Err(Failure::invalid(format!("unknown export flags {flags:#x}")));
        }
        if (height == 0) != (width == 0) {
            return Err(Failure::invalid(
                "give both height and width, or neither (0, 0) for the default",
            ));
        }
        let device = crate::device::default_device();
        let model = crate::weights::load_any(arch, &weights, &device)?;
        let (h, w) = if height == 0 {
            model.input_size()
        } else {
            (height, width)
        };
        model.check_input_size(h, w)?;
        let options = ExportOptions {
            normalize: flags & REID_EXPORT_NORMALIZE != 0,
            ..ExportOptions::new(h, w)
        };
        export_onnx_file(&model, &options, &output)?;
        Ok(())
    })
}
