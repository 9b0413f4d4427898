//! `reid_extractor_options`: how an extractor is built. Single-owner, not thread-safe; it is
//! only read by `reid_extractor_new` and may be freed right after.

use std::ffi::c_char;

use super::boundary::{guard, input_slice, path, require_out, text};
use super::handle::{Handle, borrow, borrow_mut, free, into_raw};
use super::status::{Failure, Outcome, reid_status};
use crate::extractor::{Engine, ExecutionProvider, ExtractorOptions};
use crate::preprocess::ChannelOrder;

/// Runtimes that execute a model (`reid_extractor_options_set_engine`).
#[repr(i32)]
#[derive(Debug, Clone, Copy)]
pub enum reid_engine {
    /// ONNX Runtime, loaded at run time (`.onnx` models). The default.
    REID_ENGINE_ONNXRUNTIME = 0,
    /// Burn, built in: `.onnx` models exported by reid, reid checkpoints and torchreid
    /// weights (with `reid_extractor_options_set_architecture`). Needs no native library.
    REID_ENGINE_BURN = 1,
    /// OpenVINO, loaded at run time (`.onnx` models; `reid_extractor_options_set_openvino`).
    REID_ENGINE_OPENVINO = 2,
}

/// Colour channel order of the model input (`reid_extractor_options_set_channel_order`).
#[repr(i32)]
#[derive(Debug, Clone, Copy)]
pub enum reid_channel_order {
    /// Red, green, blue (torchreid models).
    REID_CHANNEL_ORDER_RGB = 0,
    /// Blue, green, red (OpenVINO model-zoo re-id models).
    REID_CHANNEL_ORDER_BGR = 1,
}

/// Options for `reid_extractor_new`. Fields not set keep their defaults: ONNX Runtime, the
/// runtime library found automatically, the runtime's default thread count, one session,
/// batches of 32, the preprocessing recorded in the model (else torchreid's), L2-normalized
/// embeddings, the CPU device.
#[repr(C)]
pub struct reid_extractor_options {
    tag: u64,
    pub(crate) inner: ExtractorOptions,
}

/// The options a handle holds (copied), or the defaults for NULL.
///
/// # Safety
/// `options` NULL or a pointer the caller vouches for (checked as a handle).
pub(crate) unsafe fn options_or_default(
    options: *const reid_extractor_options,
) -> Outcome<ExtractorOptions> {
    if options.is_null() {
        return Ok(ExtractorOptions::default());
    }
    // SAFETY: forwarded contract.
    Ok(unsafe { borrow(options, "options") }?.inner.clone())
}

impl reid_extractor_options {
    /// The options as the library sees them.
    pub fn options(&self) -> &ExtractorOptions {
        &self.inner
    }
}

// SAFETY: repr(C), tag first.
unsafe impl Handle for reid_extractor_options {
    const TAG: u64 = 0x5245_4944_4f50_5453; // "REIDOPTS"
    const NAME: &'static str = "reid_extractor_options";
}

/// Creates options with every field at its default. Free with `reid_extractor_options_free`.
///
/// Errors: `REID_INVALID_ARGUMENT` (`out_options` NULL).
///
/// # Safety
/// `out_options` must be valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_options_new(
    out_options: *mut *mut reid_extractor_options,
) -> reid_status {
    guard(|| {
        require_out(out_options, "out_options")?;
        let options = into_raw(reid_extractor_options {
            tag: reid_extractor_options::TAG,
            inner: ExtractorOptions::default(),
        });
        // SAFETY: checked non-NULL above.
        unsafe { out_options.write(options) };
        Ok(())
    })
}

/// Frees options made by `reid_extractor_options_new`. NULL is a no-op.
///
/// # Safety
/// `options` must be NULL or a live options handle, not used again afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_options_free(options: *mut reid_extractor_options) {
    // SAFETY: the caller's contract.
    unsafe { free(options) };
}

/// Runs `change` on a copy of the options behind `options` and keeps the copy only when the
/// library's [`ExtractorOptions::validate`] accepts it, so a refused value changes nothing and
/// gets the same message as from Rust.
///
/// # Safety
/// `options` NULL or a handle, used by this thread only.
unsafe fn modify(
    options: *mut reid_extractor_options,
    change: impl FnOnce(&mut ExtractorOptions) -> Outcome,
) -> reid_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let options = unsafe { borrow_mut(options, "options") }?;
        let mut changed = options.inner.clone();
        change(&mut changed)?;
        changed.validate()?;
        options.inner = changed;
        Ok(())
    })
}

/// Chooses the runtime: a `reid_engine` value.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL, unknown value), `REID_INVALID_HANDLE`.
///
/// # Safety
/// `options` must be NULL or a live options handle used by this thread only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_options_set_engine(
    options: *mut reid_extractor_options,
    engine: i32,
) -> reid_status {
    // SAFETY: forwarded contract.
    unsafe {
        modify(options, |o| {
            o.engine = match engine {
                0 => Engine::OnnxRuntime,
                1 => Engine::Burn,
                2 => Engine::OpenVino,
                _ => return Err(Failure::invalid(format!("unknown engine {engine}"))),
            };
            Ok(())
        })
    }
}

/// How the OpenVINO engine compiles the model; each string NULL for its default: the `device`
/// ("CPU", the default; "GPU", "GPU.1", "NPU", "AUTO", …), the inference `precision` hint
/// ("f32", the default: exact; "bf16", "f16"), the performance `hint` ("latency",
/// "throughput"; NULL: the device's default) and OpenVINO's C library, `library_path`
/// (`libopenvino_c.so.N`; NULL: found from `REID_OPENVINO_LIBRARY`, the `openvino` Python
/// package or the system library path; one library serves the whole process). Threads and
/// concurrent extractions: `reid_extractor_options_set_threads` (CPU threads, infer requests).
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL options, an empty device, an unknown precision or
/// hint, text not UTF-8), `REID_INVALID_HANDLE`.
///
/// # Safety
/// As for `reid_extractor_options_set_engine`; each string NULL or NUL-terminated, borrowed
/// for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_options_set_openvino(
    options: *mut reid_extractor_options,
    device: *const c_char,
    precision: *const c_char,
    hint: *const c_char,
    library_path: *const c_char,
) -> reid_status {
    // SAFETY: forwarded contract.
    unsafe {
        modify(options, |o| {
            let mut openvino = crate::extractor::OpenVinoOptions::default();
            if !device.is_null() {
                openvino.device = text(device, "device")?.to_string();
            }
            if !precision.is_null() {
                openvino.precision = text(precision, "precision")?.to_string();
            }
            if !hint.is_null() {
                openvino.hint = Some(text(hint, "hint")?.to_string());
            }
            if !library_path.is_null() {
                openvino.library = Some(path(library_path, "library_path")?);
            }
            o.openvino = openvino;
            Ok(())
        })
    }
}

/// Asks ONNX Runtime for execution providers before the CPU: `providers` a comma-separated
/// list tried in order — "cuda", "cuda:N", "tensorrt", "tensorrt:N", "openvino",
/// "openvino:DEVICE" — (NULL or empty: the CPU only), `tensorrt_cache` a folder where TensorRT
/// keeps the engines it builds (NULL: none). Providers the loaded library lacks or that cannot
/// start are reported through the log callback and `reid_extractor_execution_provider`, and the
/// CPU runs instead; with `required`, `reid_extractor_new` fails (`REID_RUNTIME_ERROR`, each
/// provider's reason in the message) when none can be used. The CUDA and TensorRT providers
/// are in the `onnxruntime-gpu` wheel's library.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL options, an unknown provider or bad GPU index, an empty
/// cache folder, not UTF-8), `REID_INVALID_HANDLE`.
///
/// # Safety
/// As for `reid_extractor_options_set_engine`; the strings NULL or NUL-terminated, borrowed
/// for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_options_set_execution_providers(
    options: *mut reid_extractor_options,
    providers: *const c_char,
    tensorrt_cache: *const c_char,
    required: bool,
) -> reid_status {
    // SAFETY: forwarded contract.
    unsafe {
        modify(options, |o| {
            let list = if providers.is_null() {
                ""
            } else {
                text(providers, "providers")?
            };
            let cache = if tensorrt_cache.is_null() {
                None
            } else {
                Some(std::path::PathBuf::from(text(
                    tensorrt_cache,
                    "tensorrt_cache",
                )?))
            };
            o.providers = list
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| {
                    let mut provider: ExecutionProvider = p.parse()?;
                    if let ExecutionProvider::TensorRt { engine_cache, .. } = &mut provider {
                        *engine_cache = cache.clone();
                    }
                    Ok(provider)
                })
                .collect::<crate::error::Result<_>>()?;
            o.require_provider = required;
            Ok(())
        })
    }
}

/// Sets the path of the ONNX Runtime shared library (`libonnxruntime.so.1.xx`). Without it
/// the library is found from `ORT_DYLIB_PATH`, the `onnxruntime` Python package, or the
/// system library path. The first library loaded serves the whole process: a failed load is
/// not remembered (a later extractor may name a good library), but once one has loaded,
/// `reid_extractor_new` with options naming another file fails with `REID_RUNTIME_ERROR`.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL or empty path), `REID_INVALID_HANDLE`.
///
/// # Safety
/// `options` as for `reid_extractor_options_set_engine`; `library_path` a NUL-terminated
/// string, borrowed for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_options_set_ort_library(
    options: *mut reid_extractor_options,
    library_path: *const c_char,
) -> reid_status {
    // SAFETY: forwarded contract.
    unsafe {
        modify(options, |o| {
            o.ort_library = Some(path(library_path, "library_path")?);
            Ok(())
        })
    }
}

/// Sets the threads each ONNX Runtime session uses (0: the runtime's default) and the number
/// of sessions (at least 1), which is how many extractions can run at the same moment.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL, `sessions` 0), `REID_INVALID_HANDLE`.
///
/// # Safety
/// As for `reid_extractor_options_set_engine`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_options_set_threads(
    options: *mut reid_extractor_options,
    threads_per_session: usize,
    sessions: usize,
) -> reid_status {
    // SAFETY: forwarded contract.
    unsafe {
        modify(options, |o| {
            o.threads = threads_per_session;
            o.sessions = sessions;
            Ok(())
        })
    }
}

/// Sets the largest number of images run in one forward pass (at least 1; default 32).
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL, 0), `REID_INVALID_HANDLE`.
///
/// # Safety
/// As for `reid_extractor_options_set_engine`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_options_set_max_batch(
    options: *mut reid_extractor_options,
    max_batch: usize,
) -> reid_status {
    // SAFETY: forwarded contract.
    unsafe {
        modify(options, |o| {
            o.max_batch = max_batch;
            Ok(())
        })
    }
}

/// Overrides the model input size (height × width, both at least 1).
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL, a zero side), `REID_INVALID_HANDLE`.
///
/// # Safety
/// As for `reid_extractor_options_set_engine`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_options_set_input_size(
    options: *mut reid_extractor_options,
    height: usize,
    width: usize,
) -> reid_status {
    // SAFETY: forwarded contract.
    unsafe {
        modify(options, |o| {
            o.overrides.size = Some((height, width));
            Ok(())
        })
    }
}

/// Overrides the channel order the model expects: a `reid_channel_order` value.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL, unknown value), `REID_INVALID_HANDLE`.
///
/// # Safety
/// As for `reid_extractor_options_set_engine`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_options_set_channel_order(
    options: *mut reid_extractor_options,
    channel_order: i32,
) -> reid_status {
    // SAFETY: forwarded contract.
    unsafe {
        modify(options, |o| {
            o.overrides.channel_order = Some(match channel_order {
                0 => ChannelOrder::Rgb,
                1 => ChannelOrder::Bgr,
                _ => {
                    return Err(Failure::invalid(format!(
                        "unknown channel order {channel_order}"
                    )));
                }
            });
            Ok(())
        })
    }
}

/// Overrides pixel normalization: each 0–255 value is multiplied by `scale`, then
/// `(value - mean[c]) / std[c]` per channel, in the model's channel order. torchreid:
/// scale 1/255, mean {0.485, 0.456, 0.406}, std {0.229, 0.224, 0.225}.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL pointers, non-finite values, scale 0, std ≤ 0),
/// `REID_INVALID_HANDLE`.
///
/// # Safety
/// As for `reid_extractor_options_set_engine`; `mean` and `std` point to 3 floats each.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_options_set_normalization(
    options: *mut reid_extractor_options,
    scale: f32,
    mean: *const f32,
    std: *const f32,
) -> reid_status {
    // SAFETY: forwarded contract.
    unsafe {
        modify(options, |o| {
            let mean: [f32; 3] = input_slice(mean, 3, "mean")?.try_into().expect("3 values");
            let std: [f32; 3] = input_slice(std, 3, "std")?.try_into().expect("3 values");
            o.overrides.normalization = Some((scale, mean, std));
            Ok(())
        })
    }
}

/// Whether embeddings are L2-normalized (non-zero, the default) or returned raw (0).
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL), `REID_INVALID_HANDLE`.
///
/// # Safety
/// As for `reid_extractor_options_set_engine`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_options_set_normalize(
    options: *mut reid_extractor_options,
    normalize: i32,
) -> reid_status {
    // SAFETY: forwarded contract.
    unsafe {
        modify(options, |o| {
            o.normalize = normalize != 0;
            Ok(())
        })
    }
}

/// Sets the Burn device: "flex" (CPU, the default), "wgpu", "wgpu:N", "cuda:N" (when the
/// library was built with that backend).
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL, not UTF-8), `REID_DEVICE_ERROR` (unknown or not
/// built in), `REID_INVALID_HANDLE`.
///
/// # Safety
/// As for `reid_extractor_options_set_engine`; `device` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_options_set_device(
    options: *mut reid_extractor_options,
    device: *const c_char,
) -> reid_status {
    // SAFETY: forwarded contract.
    unsafe {
        modify(options, |o| {
            o.device = text(device, "device")?.to_string();
            Ok(())
        })
    }
}

/// Names the architecture of a torchreid weight file for the Burn engine ("osnet_x1_0", …;
/// not needed for `.onnx` files or reid checkpoints, which record it).
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL), `REID_UNKNOWN_ARCHITECTURE`, `REID_INVALID_HANDLE`.
///
/// # Safety
/// As for `reid_extractor_options_set_engine`; `architecture` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_extractor_options_set_architecture(
    options: *mut reid_extractor_options,
    architecture: *const c_char,
) -> reid_status {
    // SAFETY: forwarded contract.
    unsafe {
        modify(options, |o| {
            o.arch = Some(text(architecture, "architecture")?.parse()?);
            Ok(())
        })
    }
}
