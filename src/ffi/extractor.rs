//! `reid_extractor`: images in, embeddings out. Internally synchronized: any number of
//! threads may extract with one extractor at once.

use std::ffi::c_char;

use super::boundary::{
    guard, guard_value, input_slice, output_slice, path, require_out, write_optional, write_text,
};
use super::extractor_options::{options_or_default, reid_extractor_options};
use super::handle::{Handle, borrow, free, into_raw};
use super::images::{encoded_inputs, image_inputs, path_inputs, reid_box, reid_image, view};
use super::status::{Failure, Outcome, reid_status};
use crate::calibration::Calibration;
use crate::data::video::sampling::Pooling;
use crate::extractor::Extractor;
use crate::preprocess::Rect;

/// A loaded re-id model that turns images into embeddings.
#[repr(C)]
pub struct reid_extractor {
    tag: u64,
    inner: Extractor,
}

impl reid_extractor {
    /// A handle owning `extractor`, for the caller to free with `reid_extractor_free`.
    pub(crate) fn into_handle(extractor: Extractor) -> *mut reid_extractor {
        into_raw(reid_extractor {
            tag: Self::TAG,
            inner: extractor,
        })
    }

    /// The extractor behind a caller's handle.
    ///
    /// # Safety
    /// `handle` NULL or a live extractor handle.
    pub(crate) unsafe fn live<'a>(handle: *const reid_extractor) -> Outcome<&'a Extractor> {
        // SAFETY: forwarded contract.
        Ok(&unsafe { borrow(handle, "extractor") }?.inner)
    }
}

// SAFETY: repr(C), tag first.
unsafe impl Handle for reid_extractor {
    const TAG: u64 = 0x5245_4944_4558_5452; // "REIDEXTR"
    const NAME: &'static str = "reid_extractor";
}

/// Loads a model and creates an extractor. `model_path`: an `.onnx` file (ONNX Runtime or
/// Burn engine) or, for the Burn engine, a reid checkpoint or torchreid weights. `options`
/// may be NULL for the defaults; it is only read during the call. On success `*out_extractor`
/// receives a handle to free with `reid_extractor_free`; on failure it is not written.
///
/// Errors: `REID_INVALID_ARGUMENT`, `REID_INVALID_HANDLE` (options), `REID_IO_ERROR` (cannot
/// read the file), `REID_MODEL_ERROR` (corrupt or unsuitable model), `REID_RUNTIME_ERROR`
/// (ONNX Runtime not found or failing; the message lists where it looked),
/// `REID_UNKNOWN_ARCHITECTURE`, `REID_DEVICE_ERROR`. Thread-safe.
///
/// # Safety
/// `model_path` a NUL-terminated string; `options` NULL or a live options handle not being
/// modified during the call; `out_extractor` valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_new(
    model_path: *const c_char,
    options: *const reid_extractor_options,
    out_extractor: *mut *mut reid_extractor,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let model = unsafe { path(model_path, "model_path") }?;
        // SAFETY: the caller's contract.
        let options = unsafe { options_or_default(options) }?;
        require_out(out_extractor, "out_extractor")?;
        let handle = reid_extractor::into_handle(Extractor::new(&model, &options)?);
        // SAFETY: checked non-NULL above.
        unsafe { out_extractor.write(handle) };
        Ok(())
    })
}

/// Frees an extractor. NULL is a no-op. No other thread may be using it.
///
/// # Safety
/// `extractor` NULL or a live extractor handle, not used again afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_free(extractor: *mut reid_extractor) {
    // SAFETY: the caller's contract.
    unsafe { free(extractor) };
}

/// Copies the model's fingerprint (64 hexadecimal digits: a SHA-256 of its weights, its
/// preprocessing and its output) into `buf` as a NUL-terminated string, for
/// `reid_gallery_bind_model`. `*out_len` (optional) receives its length without the NUL, also
/// when the buffer is too small. The same model as a checkpoint or as reid's ONNX export of it
/// has the same fingerprint. Thread-safe.
///
/// Errors: `REID_INVALID_ARGUMENT` (`buf` NULL with `cap` > 0), `REID_INVALID_HANDLE`,
/// `REID_BUFFER_TOO_SMALL` (nothing written to `buf`).
///
/// # Safety
/// `extractor` NULL or live; `buf` valid for writing `cap` bytes; `out_len` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_fingerprint(
    extractor: *const reid_extractor,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let extractor = unsafe { borrow(extractor, "extractor") }?;
        // SAFETY: the caller's contract.
        unsafe {
            write_text(
                extractor.inner.fingerprint(),
                buf,
                cap,
                out_len,
                "the fingerprint",
            )
        }
    })
}

/// Copies where the model runs into `buf` as a NUL-terminated string: ONNX Runtime's
/// execution provider in use (`CPUExecutionProvider` when none of those asked for with
/// `reid_extractor_options_set_execution_providers` could be used), `openvino:DEVICE`, or
/// `burn`. `*out_len` (optional) receives its length without the NUL. Thread-safe.
///
/// Errors: as `reid_extractor_fingerprint`.
///
/// # Safety
/// As for `reid_extractor_fingerprint`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_execution_provider(
    extractor: *const reid_extractor,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let extractor = unsafe { borrow(extractor, "extractor") }?;
        let provider = extractor.inner.execution_provider();
        // SAFETY: the caller's contract.
        unsafe { write_text(&provider, buf, cap, out_len, "the execution provider") }
    })
}

/// The score threshold calibrated for the model (`reid calibrate` writes it into the ONNX
/// file's metadata): `*out_threshold` the least cosine similarity accepted, `*out_far` and
/// `*out_tar` (each optional) the false- and true-accept rates it had on its calibration pairs.
/// `reid_gallery_adopt_calibration` hands it to a gallery. Thread-safe.
///
/// Errors: `REID_INVALID_ARGUMENT` (`out_threshold` NULL), `REID_INVALID_HANDLE`,
/// `REID_NOT_FOUND` (the model carries none).
///
/// # Safety
/// `extractor` NULL or live; `out_threshold` writable; `out_far`, `out_tar` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_calibration(
    extractor: *const reid_extractor,
    out_threshold: *mut f32,
    out_far: *mut f64,
    out_tar: *mut f64,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let extractor = unsafe { reid_extractor::live(extractor) }?;
        require_out(out_threshold, "out_threshold")?;
        let c = calibration_of(extractor)?;
        // SAFETY: checked non-NULL; the others are the caller's contract.
        unsafe {
            out_threshold.write(c.threshold);
            write_optional(out_far, c.far);
            write_optional(out_tar, c.tar);
        }
        Ok(())
    })
}

/// The model's calibrated threshold, or `REID_NOT_FOUND`.
pub(crate) fn calibration_of(extractor: &Extractor) -> Outcome<&Calibration> {
    extractor.calibration().ok_or_else(|| {
        Failure::new(
            reid_status::REID_NOT_FOUND,
            "the model carries no calibrated threshold (reid calibrate)",
        )
    })
}

/// The embedding dimension (floats per image); 0 for NULL or an invalid handle.
/// Thread-safe.
///
/// # Safety
/// `extractor` NULL or a live extractor handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_dim(extractor: *const reid_extractor) -> usize {
    // SAFETY: the caller's contract.
    guard_value(0, || {
        Ok(unsafe { borrow(extractor, "extractor") }?.inner.dim())
    })
}

/// The model input size the extractor resizes every image to.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL), `REID_INVALID_HANDLE`. Thread-safe.
///
/// # Safety
/// `extractor` NULL or a live extractor handle; the outputs valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_input_size(
    extractor: *const reid_extractor,
    out_height: *mut usize,
    out_width: *mut usize,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let extractor = unsafe { borrow(extractor, "extractor") }?;
        require_out(out_height, "out_height")?;
        require_out(out_width, "out_width")?;
        let p = extractor.inner.preprocessing();
        // SAFETY: checked non-NULL above.
        unsafe {
            out_height.write(p.height);
            out_width.write(p.width);
        }
        Ok(())
    })
}

/// Shared body of the extract calls: checks the output buffer for `count` embeddings before
/// any work, runs `extract`, copies its result.
///
/// # Safety
/// `extractor` NULL or live; `out` valid for `out_cap` floats; `out_len` NULL or writable.
unsafe fn extract_into(
    extractor: *const reid_extractor,
    count: usize,
    out: *mut f32,
    out_cap: usize,
    out_len: *mut usize,
    extract: impl FnOnce(&Extractor) -> Outcome<Vec<f32>>,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let extractor = &unsafe { borrow(extractor, "extractor") }?.inner;
        let needed = count
            .checked_mul(extractor.dim())
            .ok_or_else(|| Failure::invalid(format!("{count} images is too many")))?;
        if out_cap < needed {
            // SAFETY: the caller's contract.
            unsafe { write_optional(out_len, needed) };
            return Err(Failure::new(
                reid_status::REID_BUFFER_TOO_SMALL,
                format!(
                    "{count} embeddings of {} floats need {needed} floats, the buffer holds {out_cap}",
                    extractor.dim()
                ),
            ));
        }
        // SAFETY: the caller's contract.
        let out = unsafe { output_slice(out, needed, "out_embeddings") }?;
        if count == 0 {
            // SAFETY: the caller's contract.
            unsafe { write_optional(out_len, 0) };
            return Ok(());
        }
        let values = extract(extractor)?;
        out.copy_from_slice(&values);
        // SAFETY: the caller's contract.
        unsafe { write_optional(out_len, needed) };
        Ok(())
    })
}

/// Embeds `count` encoded images (JPEG, PNG, BMP or WebP bytes): image `i` is `sizes[i]`
/// bytes at `images[i]`. Writes `count × dim` floats to `out_embeddings` (row `i` for image
/// `i`) and `count × dim` to `*out_len` (optional). The inputs are only read during the call.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL arrays or image pointers), `REID_INVALID_HANDLE`,
/// `REID_BUFFER_TOO_SMALL` (`out_cap` < `count × dim`; `*out_len` gets the size needed),
/// `REID_BAD_IMAGE` (an image does not decode or is truncated; its index is in the message),
/// `REID_RUNTIME_ERROR`. Nothing is written on failure (but `*out_len` as said). Thread-safe.
///
/// # Safety
/// `images` and `sizes` point to `count` items, each image to its `sizes[i]` bytes;
/// `out_embeddings` to `out_cap` writable floats; `out_len` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_extract_encoded(
    extractor: *const reid_extractor,
    images: *const *const u8,
    sizes: *const usize,
    count: usize,
    out_embeddings: *mut f32,
    out_cap: usize,
    out_len: *mut usize,
) -> reid_status {
    // SAFETY: the caller's contract.
    unsafe {
        extract_into(extractor, count, out_embeddings, out_cap, out_len, |ex| {
            Ok(ex.extract_encoded(&encoded_inputs(images, sizes, count)?)?)
        })
    }
}

/// Embeds `count` image files (JPEG, PNG, BMP or WebP), as `reid_extractor_extract_encoded`.
///
/// Errors: as `reid_extractor_extract_encoded`; a file that cannot be read is also
/// `REID_BAD_IMAGE`, with its index and path in the message.
///
/// # Safety
/// `paths` points to `count` NUL-terminated strings; outputs as for
/// `reid_extractor_extract_encoded`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_extract_files(
    extractor: *const reid_extractor,
    paths: *const *const c_char,
    count: usize,
    out_embeddings: *mut f32,
    out_cap: usize,
    out_len: *mut usize,
) -> reid_status {
    // SAFETY: the caller's contract.
    unsafe {
        extract_into(extractor, count, out_embeddings, out_cap, out_len, |ex| {
            Ok(ex.extract_files(&path_inputs(paths, count)?)?)
        })
    }
}

/// Embeds `count` images in memory (`reid_image` pixel buffers of any size; each is resized
/// to the model input). Outputs as `reid_extractor_extract_encoded`.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL, unknown pixel format, stride shorter than a row),
/// `REID_INVALID_HANDLE`, `REID_BUFFER_TOO_SMALL`, `REID_BAD_IMAGE` (an empty image; its index
/// is in the message), `REID_RUNTIME_ERROR`. Thread-safe.
///
/// # Safety
/// `images` points to `count` `reid_image`s whose data hold the bytes they describe;
/// outputs as for `reid_extractor_extract_encoded`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_extract_images(
    extractor: *const reid_extractor,
    images: *const reid_image,
    count: usize,
    out_embeddings: *mut f32,
    out_cap: usize,
    out_len: *mut usize,
) -> reid_status {
    // SAFETY: the caller's contract.
    unsafe {
        extract_into(extractor, count, out_embeddings, out_cap, out_len, |ex| {
            Ok(ex.extract_images(&image_inputs(images, count)?)?)
        })
    }
}

/// How `reid_extractor_extract_tracklet` combines a tracklet's embeddings.
#[repr(i32)]
#[derive(Debug, Clone, Copy)]
pub enum reid_pooling {
    /// The mean of the images' embeddings (torchreid's video default).
    REID_POOLING_AVG = 0,
    /// The element-wise maximum.
    REID_POOLING_MAX = 1,
}

/// One embedding for a tracklet: `count` images of one tracked object (crops from
/// consecutive frames, any sizes), embedded, pooled by `pooling` (a `reid_pooling` value) and
/// L2-normalized unless the extractor was made not to. Writes `dim` floats to
/// `out_embedding` and `dim` to `*out_len` (optional).
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL, no image, unknown pooling, as
/// `reid_extractor_extract_images` for the images), `REID_INVALID_HANDLE`,
/// `REID_BUFFER_TOO_SMALL` (`out_cap` < `dim`), `REID_BAD_IMAGE`, `REID_RUNTIME_ERROR`.
/// Thread-safe.
///
/// # Safety
/// `images` points to `count` `reid_image`s whose data hold the bytes they describe;
/// `out_embedding` to `out_cap` writable floats; `out_len` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_extract_tracklet(
    extractor: *const reid_extractor,
    images: *const reid_image,
    count: usize,
    pooling: i32,
    out_embedding: *mut f32,
    out_cap: usize,
    out_len: *mut usize,
) -> reid_status {
    // SAFETY: the caller's contract.
    unsafe {
        extract_into(extractor, 1, out_embedding, out_cap, out_len, |ex| {
            let pooling = match pooling {
                0 => Pooling::Avg,
                1 => Pooling::Max,
                other => return Err(Failure::invalid(format!("unknown pooling {other}"))),
            };
            if count == 0 {
                return Err(Failure::invalid(
                    "a tracklet needs at least one image".to_string(),
                ));
            }
            Ok(ex.extract_tracklet(&image_inputs(images, count)?, pooling)?)
        })
    }
}

/// Embeds the crops of `count` boxes of one frame (a detector's output on a video frame):
/// row `i` of the output is box `i`. Boxes are clipped to the frame. Outputs as
/// `reid_extractor_extract_encoded`.
///
/// Errors: as `reid_extractor_extract_images`; a box with nothing inside the frame is
/// `REID_BAD_IMAGE` naming its index. Thread-safe.
///
/// # Safety
/// `frame` points to one `reid_image` whose data hold the bytes it describes; `boxes` to
/// `count` boxes; outputs as for `reid_extractor_extract_encoded`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_extract_boxes(
    extractor: *const reid_extractor,
    frame: *const reid_image,
    boxes: *const reid_box,
    count: usize,
    out_embeddings: *mut f32,
    out_cap: usize,
    out_len: *mut usize,
) -> reid_status {
    // SAFETY: the caller's contract.
    unsafe {
        extract_into(extractor, count, out_embeddings, out_cap, out_len, |ex| {
            let frame = input_slice(frame, 1, "frame")?;
            let frame = view(&frame[0], "frame")?;
            let rects = input_slice(boxes, count, "boxes")?
                .iter()
                .map(|b| Rect {
                    x: b.x,
                    y: b.y,
                    width: b.width,
                    height: b.height,
                })
                .collect::<Vec<_>>();
            Ok(ex.extract_boxes(&frame, &rects)?)
        })
    }
}
