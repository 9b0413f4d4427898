//! One reusable buffer per thread for unfolded inputs, so a training step does not allocate
//! (and zero) megabytes per convolution call.

use std::cell::Cell;

thread_local! {
    static SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` on a buffer of `len` floats with unspecified contents. A thread that is already
/// inside `with_scratch` (rayon may run another task on it while it waits) gets a fresh buffer.
///
/// The buffer is taken out of the thread-local slot and put back after `f`, rather than `f`
/// run inside `LocalKey::with`: that function is not inlined, so a kernel running inside it was
/// compiled for the baseline SSE2 target, not the AVX-512 of the kernel calling it. Always
/// inlined for the same reason.
#[inline(always)]
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buffer = SCRATCH.with(Cell::take);
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    let result = f(&mut buffer[..len]);
    // A nested call may have put its own buffer back meanwhile: keep the larger one.
    SCRATCH.with(|slot| {
        let other = slot.take();
        slot.set(if other.len() > buffer.len() {
            other
        } else {
            buffer
        });
    });
    result
}
