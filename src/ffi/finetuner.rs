//! `reid_finetuner`: finetuning inside the host application. Single-owner: one thread at a
//! time (the progress callback runs on the thread that called `reid_finetuner_run`).

use std::ffi::{c_char, c_void};

use super::boundary::{guard, guard_value, input_slice, path, require_out, text, write_optional};
use super::extractor::reid_extractor;
use super::extractor_options::{options_or_default, reid_extractor_options};
use super::handle::{Handle, borrow, borrow_mut, free, into_raw};
use super::images::{reid_image, view};
use super::status::{Failure, Outcome, reid_status};
use crate::finetuner::{Finetuner, Split};
use crate::train::{Event, StepStats};

/// Where an added image goes (`reid_finetuner_add_*`).
#[repr(i32)]
#[derive(Debug, Clone, Copy)]
pub enum reid_split {
    /// Training images.
    REID_SPLIT_TRAIN = 0,
    /// Held-out queries for evaluation.
    REID_SPLIT_QUERY = 1,
    /// Held-out gallery for evaluation.
    REID_SPLIT_GALLERY = 2,
}

/// What the progress callback is told: after every step, and after every epoch (then
/// `step` = `steps` and `map` / `rank1` hold the evaluation, or NaN without one).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct reid_progress {
    /// Epoch, from 1.
    pub epoch: u32,
    /// Epochs in all.
    pub epochs: u32,
    /// Step in the epoch, from 1.
    pub step: u32,
    /// Steps per epoch.
    pub steps: u32,
    /// Loss of the step (or mean of the epoch).
    pub loss: f32,
    /// Classifier accuracy of the step (or mean of the epoch).
    pub accuracy: f32,
    /// Learning rate.
    pub learning_rate: f64,
    /// Held-out mAP after the epoch; NaN when not evaluated.
    pub map: f32,
    /// Held-out Rank-1 after the epoch; NaN when not evaluated.
    pub rank1: f32,
    /// 1 for an end-of-epoch report, 0 for a step.
    pub end_of_epoch: i32,
}

/// Called with `user_data` first; returns non-zero to cancel the run.
pub type reid_progress_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, progress: *const reid_progress) -> i32>;

/// A finetuning job.
#[repr(C)]
pub struct reid_finetuner {
    tag: u64,
    inner: Finetuner,
}

// SAFETY: repr(C), tag first.
unsafe impl Handle for reid_finetuner {
    const TAG: u64 = 0x5245_4944_4649_4e45; // "REIDFINE"
    const NAME: &'static str = "reid_finetuner";
}

fn split(value: i32) -> Outcome<Split> {
    match value {
        0 => Ok(Split::Train),
        1 => Ok(Split::Query),
        2 => Ok(Split::Gallery),
        _ => Err(Failure::invalid(format!("unknown split {value}"))),
    }
}

/// # Safety
/// `finetuner` NULL or a live handle used by this thread only.
unsafe fn job<'a>(finetuner: *mut reid_finetuner) -> Outcome<&'a mut Finetuner> {
    // SAFETY: forwarded contract.
    Ok(&mut unsafe { borrow_mut(finetuner, "finetuner") }?.inner)
}

/// Creates a finetuning job for `architecture` ("osnet_x0_25", …) starting from
/// `weights_path` (torchreid weights or a reid checkpoint; NULL for random initialization),
/// working in `work_dir` (created if needed; images and an interrupted run found there are
/// kept, so a job can continue after a restart). Defaults: 10 epochs, batch 32, the
/// architecture's input size, AMSGrad at 3e-4 with a cosine schedule. Free with
/// `reid_finetuner_free`.
///
/// Errors: `REID_INVALID_ARGUMENT`, `REID_UNKNOWN_ARCHITECTURE`, `REID_IO_ERROR` (weights
/// missing, work folder not writable).
///
/// # Safety
/// Strings NUL-terminated (`weights_path` may be NULL); `out_finetuner` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_finetuner_new(
    architecture: *const c_char,
    weights_path: *const c_char,
    work_dir: *const c_char,
    out_finetuner: *mut *mut reid_finetuner,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let (arch, work) = unsafe {
            (
                text(architecture, "architecture")?,
                path(work_dir, "work_dir")?,
            )
        };
        let weights = if weights_path.is_null() {
            None
        } else {
            // SAFETY: the caller's contract.
            Some(unsafe { path(weights_path, "weights_path") }?)
        };
        require_out(out_finetuner, "out_finetuner")?;
        let job = Finetuner::new(arch, weights.as_deref(), &work)?;
        let handle = into_raw(reid_finetuner {
            tag: reid_finetuner::TAG,
            inner: job,
        });
        // SAFETY: checked non-NULL.
        unsafe { out_finetuner.write(handle) };
        Ok(())
    })
}

/// Frees a job (its working folder stays). NULL is a no-op.
///
/// # Safety
/// `finetuner` NULL or a live handle, not used again afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_finetuner_free(finetuner: *mut reid_finetuner) {
    // SAFETY: the caller's contract.
    unsafe { free(finetuner) };
}

/// Sets the number of epochs (at least 1; the cosine schedule follows it).
///
/// Errors: `REID_INVALID_ARGUMENT`, `REID_INVALID_HANDLE`.
///
/// # Safety
/// `finetuner` NULL or a live handle used by this thread only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_finetuner_set_epochs(
    finetuner: *mut reid_finetuner,
    epochs: usize,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let job = unsafe { job(finetuner) }?;
        Ok(job.set_epochs(epochs)?)
    })
}

/// Sets the batch size, learning rate and input size (height × width) of training; 0 keeps
/// a value as it is.
///
/// Errors: `REID_INVALID_ARGUMENT` (negative or non-finite rate, one side 0), `REID_INVALID_HANDLE`.
///
/// # Safety
/// `finetuner` NULL or a live handle used by this thread only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_finetuner_set_training(
    finetuner: *mut reid_finetuner,
    batch_size: usize,
    learning_rate: f64,
    height: usize,
    width: usize,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let job = unsafe { job(finetuner) }?;
        Ok(job.set_training(batch_size, learning_rate, height, width)?)
    })
}

/// Adds an image in memory with its identity and camera to `split` (a `reid_split`). The
/// pixels are copied into the working folder.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL, bad split or pixel format, negative camera),
/// `REID_BAD_IMAGE` (empty image), `REID_INVALID_HANDLE`, `REID_IO_ERROR`.
///
/// # Safety
/// `finetuner` as above; `image` points to a `reid_image` whose data hold what it describes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_finetuner_add_image(
    finetuner: *mut reid_finetuner,
    image: *const reid_image,
    identity: u64,
    camera: i32,
    split: i32,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let (job, image) = unsafe { (job(finetuner)?, input_slice(image, 1, "image")?) };
        // SAFETY: the caller's contract.
        let view = unsafe { view(&image[0], "image") }?;
        let split = self::split(split)?;
        if view.width == 0 || view.height == 0 {
            return Err(Failure::new(
                reid_status::REID_BAD_IMAGE,
                "the image is empty",
            ));
        }
        Ok(job.add_image(&view, identity, camera, split)?)
    })
}

/// Adds an encoded image (JPEG, PNG, BMP, WebP; `size` bytes) with its identity and camera.
///
/// Errors: as `reid_finetuner_add_image`; an image that does not decode is `REID_BAD_IMAGE`
/// and adds nothing.
///
/// # Safety
/// `finetuner` as above; `data` points to `size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_finetuner_add_encoded(
    finetuner: *mut reid_finetuner,
    data: *const u8,
    size: usize,
    identity: u64,
    camera: i32,
    split: i32,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let (job, bytes) = unsafe { (job(finetuner)?, input_slice(data, size, "data")?) };
        Ok(job.add_encoded(bytes, identity, camera, self::split(split)?)?)
    })
}

/// Adds every image of a folder-per-identity dataset (`ROOT/{train,query,gallery}/<identity>/
/// [<camera>_]<name>.jpg`, or `ROOT/<identity>/…` for training only); `*out_added`
/// (optional) receives how many.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL, no images, an undecodable image named),
/// `REID_INVALID_HANDLE`, `REID_IO_ERROR`.
///
/// # Safety
/// `finetuner` as above; `root` NUL-terminated; `out_added` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_finetuner_add_folder(
    finetuner: *mut reid_finetuner,
    root: *const c_char,
    out_added: *mut usize,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let (job, root) = unsafe { (job(finetuner)?, path(root, "root")?) };
        let added = job.add_folder(&root)?;
        // SAFETY: the caller's contract.
        unsafe { write_optional(out_added, added) };
        Ok(())
    })
}

/// Images added so far (with those found in the working folder); 0 for NULL or an invalid
/// handle.
///
/// # Safety
/// `finetuner` NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_finetuner_len(finetuner: *const reid_finetuner) -> usize {
    // SAFETY: the caller's contract.
    guard_value(0, || {
        Ok(unsafe { borrow(finetuner, "finetuner") }?.inner.len())
    })
}

fn step_report(
    epoch: usize,
    epochs: usize,
    step: usize,
    steps: usize,
    lr: f64,
    s: &StepStats,
) -> reid_progress {
    reid_progress {
        epoch: epoch as u32,
        epochs: epochs as u32,
        step: step as u32,
        steps: steps as u32,
        loss: s.loss,
        accuracy: s.accuracy,
        learning_rate: lr,
        map: f32::NAN,
        rank1: f32::NAN,
        end_of_epoch: 0,
    }
}

/// Trains on the added images (resuming an interrupted run in the working folder), calling
/// `callback` (may be NULL) after every step and epoch; a non-zero return cancels, and the
/// epochs completed so far stay checkpointed. Held-out images, if any, are evaluated after
/// the last epoch. The trained model then serves `reid_finetuner_save`, `_export_onnx`,
/// `_evaluate` and `_new_extractor`.
///
/// Errors: `REID_CANCELLED`, `REID_INVALID_ARGUMENT` (too few images or identities for a
/// batch, diverging loss), `REID_MODEL_ERROR` (starting weights unusable), `REID_IO_ERROR`,
/// `REID_INVALID_HANDLE`.
///
/// # Safety
/// `finetuner` as above; `callback` NULL or a function that may be called with `user_data`
/// during this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_finetuner_run(
    finetuner: *mut reid_finetuner,
    callback: reid_progress_callback,
    user_data: *mut c_void,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let job = unsafe { job(finetuner) }?;
        let epochs = job.config().schedule.max_epoch;
        let mut progress = |event: &Event| -> bool {
            let Some(callback) = callback else {
                return true;
            };
            let report = match event {
                Event::Step {
                    epoch,
                    step,
                    steps,
                    lr,
                    stats,
                } => step_report(*epoch, epochs, *step, *steps, *lr, stats),
                Event::Epoch(log) => reid_progress {
                    end_of_epoch: 1,
                    map: log.eval.first().map_or(f32::NAN, |e| e.map as f32),
                    rank1: log.eval.first().map_or(f32::NAN, |e| e.rank1 as f32),
                    ..step_report(
                        log.epoch,
                        epochs,
                        log.steps,
                        log.steps,
                        log.lr,
                        &StepStats {
                            loss: log.loss as f32,
                            accuracy: log.accuracy as f32,
                        },
                    )
                },
                Event::Resumed { .. }
                | Event::LrFinder { .. }
                | Event::LrTrial { .. }
                | Event::LrFound { .. } => {
                    return true;
                }
            };
            // SAFETY: the caller's contract on `callback` and `user_data`.
            unsafe { callback(user_data, &report) == 0 }
        };
        job.run(&mut progress)?;
        Ok(())
    })
}

/// mAP and Rank-1 of the current model (trained, else the starting one) on the held-out
/// query and gallery images.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL outputs, no held-out images), `REID_INVALID_HANDLE`.
///
/// # Safety
/// `finetuner` as above; outputs writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_finetuner_evaluate(
    finetuner: *mut reid_finetuner,
    out_map: *mut f32,
    out_rank1: *mut f32,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let job = unsafe { job(finetuner) }?;
        require_out(out_map, "out_map")?;
        require_out(out_rank1, "out_rank1")?;
        let m = job.evaluate()?;
        // SAFETY: checked non-NULL.
        unsafe {
            out_map.write(m.map as f32);
            out_rank1.write(m.rank(1) as f32);
        }
        Ok(())
    })
}

/// Saves the current model as a reid checkpoint (atomically), loadable by
/// `reid_extractor_new` with the Burn engine, `reid_export_onnx` and `reid_finetuner_new`.
///
/// Errors: `REID_INVALID_ARGUMENT`, `REID_INVALID_HANDLE`, `REID_IO_ERROR`, `REID_MODEL_ERROR`.
///
/// # Safety
/// `finetuner` as above; `checkpoint_path` NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_finetuner_save(
    finetuner: *mut reid_finetuner,
    checkpoint_path: *const c_char,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let (job, path) = unsafe { (job(finetuner)?, path(checkpoint_path, "checkpoint_path")?) };
        Ok(job.save_checkpoint(&path)?)
    })
}

/// Exports the current model to ONNX (atomically) at the finetuning input size.
///
/// Errors: as `reid_finetuner_save`.
///
/// # Safety
/// `finetuner` as above; `onnx_path` NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_finetuner_export_onnx(
    finetuner: *mut reid_finetuner,
    onnx_path: *const c_char,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let (job, path) = unsafe { (job(finetuner)?, path(onnx_path, "onnx_path")?) };
        Ok(job.export_onnx(&path)?)
    })
}

/// An extractor for the current model (exported to `WORK_DIR/run/model.onnx` and loaded with
/// `options`, NULL for the defaults). It is independent of the job: free it with
/// `reid_extractor_free`, before or after the job.
///
/// Errors: as `reid_extractor_new`, plus `REID_INVALID_HANDLE`.
///
/// # Safety
/// `finetuner` as above; `options` NULL or a live options handle; `out_extractor` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_finetuner_new_extractor(
    finetuner: *mut reid_finetuner,
    options: *const reid_extractor_options,
    out_extractor: *mut *mut reid_extractor,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let job = unsafe { job(finetuner) }?;
        // SAFETY: the caller's contract.
        let options = unsafe { options_or_default(options) }?;
        require_out(out_extractor, "out_extractor")?;
        let extractor = job.extractor(&options)?;
        // SAFETY: checked non-NULL.
        unsafe { out_extractor.write(reid_extractor::into_handle(extractor)) };
        Ok(())
    })
}
