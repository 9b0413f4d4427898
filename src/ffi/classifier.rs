//! `reid_classifier`: images in, the top-k classes with their probabilities out, for
//! classification models (the SDK's exports of classifiers, which carry a `logits` output,
//! their task and class names). Internally synchronized like `reid_extractor`.

use std::ffi::c_char;

use super::boundary::{guard, guard_value, output_slice, path, write_optional, write_text};
use super::extractor_options::{options_or_default, reid_extractor_options};
use super::handle::{Handle, borrow, free, into_raw};
use super::images::{encoded_inputs, image_inputs, path_inputs, reid_image};
use super::status::{Failure, Outcome, reid_status};
use crate::classifier::{Classifier, Prediction};

/// One predicted class: its index and probability (softmax for single-label models, sigmoid
/// for multi-label ones).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct reid_prediction {
    /// Class index (0-based).
    pub class_index: i32,
    /// Probability in [0, 1].
    pub score: f32,
}

/// A loaded classification model.
#[repr(C)]
pub struct reid_classifier {
    tag: u64,
    inner: Classifier,
}

// SAFETY: repr(C), tag first.
unsafe impl Handle for reid_classifier {
    const TAG: u64 = 0x5245_4944_434c_5346; // "REIDCLSF"
    const NAME: &'static str = "reid_classifier";
}

/// Loads a classification model. `model_path`: an `.onnx` export of a classifier (ONNX Runtime
/// or Burn engine) or, for the Burn engine, a reid checkpoint of one. `options` (NULL for the
/// defaults) are the extractor's; normalization does not apply. On success
/// `*out_classifier` receives a handle to free with `reid_classifier_free`.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL, or a re-id model), `REID_INVALID_HANDLE`,
/// `REID_IO_ERROR`, `REID_MODEL_ERROR` (corrupt, or no `logits` output), `REID_RUNTIME_ERROR`,
/// `REID_UNKNOWN_ARCHITECTURE`, `REID_DEVICE_ERROR`. Thread-safe.
///
/// # Safety
/// `model_path` a NUL-terminated string; `options` NULL or a live options handle;
/// `out_classifier` valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_classifier_new(
    model_path: *const c_char,
    options: *const reid_extractor_options,
    out_classifier: *mut *mut reid_classifier,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let model = unsafe { path(model_path, "model_path") }?;
        // SAFETY: the caller's contract.
        let options = unsafe { options_or_default(options) }?;
        super::boundary::require_out(out_classifier, "out_classifier")?;
        let handle = into_raw(reid_classifier {
            tag: reid_classifier::TAG,
            inner: Classifier::new(&model, &options)?,
        });
        // SAFETY: checked non-NULL above.
        unsafe { out_classifier.write(handle) };
        Ok(())
    })
}

/// Frees a classifier. NULL is a no-op. No other thread may be using it.
///
/// # Safety
/// `classifier` NULL or a live classifier handle, not used again afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_classifier_free(classifier: *mut reid_classifier) {
    // SAFETY: the caller's contract.
    unsafe { free(classifier) };
}

/// The number of classes; 0 for NULL or an invalid handle. Thread-safe.
///
/// # Safety
/// `classifier` NULL or a live classifier handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_classifier_num_classes(classifier: *const reid_classifier) -> usize {
    // SAFETY: the caller's contract.
    guard_value(0, || {
        Ok(unsafe { borrow(classifier, "classifier") }?
            .inner
            .num_classes())
    })
}

/// Whether the model is multi-label (1: independent sigmoid scores) or single-label (0:
/// softmax); -1 for NULL or an invalid handle. Thread-safe.
///
/// # Safety
/// `classifier` NULL or a live classifier handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_classifier_is_multilabel(classifier: *const reid_classifier) -> i32 {
    // SAFETY: the caller's contract.
    guard_value(-1, || {
        let c = unsafe { borrow(classifier, "classifier") }?;
        Ok(i32::from(c.inner.task() == crate::models::Task::Multilabel))
    })
}

/// Copies the name of class `index` into `buf` as a NUL-terminated string. `*out_len`
/// (optional) receives the name's length without the NUL, also when the buffer is too small.
/// A model that names no classes gives empty names.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL, `index` out of range, `buf` NULL with `cap` > 0),
/// `REID_INVALID_HANDLE`, `REID_BUFFER_TOO_SMALL` (nothing written to `buf`). Thread-safe.
///
/// # Safety
/// `classifier` NULL or a live classifier handle; `buf` valid for writing `cap` bytes;
/// `out_len` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_classifier_class_name(
    classifier: *const reid_classifier,
    index: usize,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let c = unsafe { borrow(classifier, "classifier") }?;
        if index >= c.inner.num_classes() {
            return Err(Failure::invalid(format!(
                "class {index} is not below the {} classes",
                c.inner.num_classes()
            )));
        }
        let name = c.inner.class_names().get(index).map_or("", String::as_str);
        // SAFETY: the caller's contract.
        unsafe { write_text(&name.replace('\0', " "), buf, cap, out_len, "the name") }
    })
}

/// Shared body of the classify calls: checks the output buffer for `count × min(k, classes)`
/// predictions before any work, runs `classify`, copies its result.
///
/// # Safety
/// `classifier` NULL or live; `out` valid for `out_cap` predictions; `out_len` NULL or
/// writable.
unsafe fn classify_into(
    classifier: *const reid_classifier,
    count: usize,
    k: usize,
    out: *mut reid_prediction,
    out_cap: usize,
    out_len: *mut usize,
    classify: impl FnOnce(&Classifier, usize) -> Outcome<Vec<Vec<Prediction>>>,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let classifier = &unsafe { borrow(classifier, "classifier") }?.inner;
        Classifier::check_top_k(k)?;
        let per = k.min(classifier.num_classes());
        let needed = count
            .checked_mul(per)
            .ok_or_else(|| Failure::invalid(format!("{count} images is too many")))?;
        if out_cap < needed {
            // SAFETY: the caller's contract.
            unsafe { write_optional(out_len, needed) };
            return Err(Failure::new(
                reid_status::REID_BUFFER_TOO_SMALL,
                format!(
                    "{count} images × {per} predictions need {needed}, the buffer holds {out_cap}"
                ),
            ));
        }
        // SAFETY: the caller's contract.
        let out = unsafe { output_slice(out, needed, "out_predictions") }?;
        if count > 0 {
            let predictions = classify(classifier, per)?;
            for (slot, p) in out.iter_mut().zip(predictions.iter().flatten()) {
                *slot = reid_prediction {
                    class_index: p.class as i32,
                    score: p.score,
                };
            }
        }
        // SAFETY: the caller's contract.
        unsafe { write_optional(out_len, needed) };
        Ok(())
    })
}

/// Classifies `count` encoded images (JPEG, PNG, BMP or WebP; image `i` is `sizes[i]` bytes at
/// `images[i]`). Writes the `min(k, classes)` most probable classes of each image, best
/// first, to `out_predictions` (image `i`'s at `i × min(k, classes)`), and their number to
/// `*out_len` (optional).
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL arrays, `k` 0), `REID_INVALID_HANDLE`,
/// `REID_BUFFER_TOO_SMALL` (`*out_len` gets the size needed), `REID_BAD_IMAGE` (index in the
/// message), `REID_RUNTIME_ERROR`. Nothing is written on failure. Thread-safe.
///
/// # Safety
/// `images` and `sizes` point to `count` items, each image to its bytes; `out_predictions` to
/// `out_cap` writable predictions; `out_len` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_classifier_classify_encoded(
    classifier: *const reid_classifier,
    images: *const *const u8,
    sizes: *const usize,
    count: usize,
    k: usize,
    out_predictions: *mut reid_prediction,
    out_cap: usize,
    out_len: *mut usize,
) -> reid_status {
    // SAFETY: the caller's contract.
    unsafe {
        classify_into(
            classifier,
            count,
            k,
            out_predictions,
            out_cap,
            out_len,
            |c, k| Ok(c.classify_encoded(&encoded_inputs(images, sizes, count)?, k)?),
        )
    }
}

/// Classifies `count` image files, as `reid_classifier_classify_encoded`.
///
/// # Safety
/// `paths` points to `count` NUL-terminated strings; outputs as for
/// `reid_classifier_classify_encoded`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_classifier_classify_files(
    classifier: *const reid_classifier,
    paths: *const *const c_char,
    count: usize,
    k: usize,
    out_predictions: *mut reid_prediction,
    out_cap: usize,
    out_len: *mut usize,
) -> reid_status {
    // SAFETY: the caller's contract.
    unsafe {
        classify_into(
            classifier,
            count,
            k,
            out_predictions,
            out_cap,
            out_len,
            |c, k| Ok(c.classify_files(&path_inputs(paths, count)?, k)?),
        )
    }
}

/// Classifies `count` images in memory (`reid_image` pixel buffers), as
/// `reid_classifier_classify_encoded`.
///
/// # Safety
/// `images` points to `count` `reid_image`s whose data hold the bytes they describe; outputs
/// as for `reid_classifier_classify_encoded`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_classifier_classify_images(
    classifier: *const reid_classifier,
    images: *const reid_image,
    count: usize,
    k: usize,
    out_predictions: *mut reid_prediction,
    out_cap: usize,
    out_len: *mut usize,
) -> reid_status {
    // SAFETY: the caller's contract.
    unsafe {
        classify_into(
            classifier,
            count,
            k,
            out_predictions,
            out_cap,
            out_len,
            |c, k| Ok(c.classify_images(&image_inputs(images, count)?, k)?),
        )
    }
}
