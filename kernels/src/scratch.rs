//! One reusable buffer per thread for unfolded inputs, so a training step does not allocate
//! (and zero) megabytes per convolution call.

use std::cell::RefCell;

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on a buffer of `len` floats with unspecified contents. A thread that is already
/// inside `with_scratch` (rayon may run another task on it while it waits) gets a fresh buffer.
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => {
            if buffer.len() < len {
                buffer.resize(len, 0.0);
            }
            f(&mut buffer[..len])
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}
