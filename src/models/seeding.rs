//! Burn's CPU backend draws every random initialization from one process-wide generator, and
//! `Device::seed` replaces it: a seeded model is reproducible only if no other thread draws in
//! between (two trainings started at once in one process — a host finetuning two models, or
//! the test suite — would otherwise interleave their draws). Every construction that draws
//! goes through [`exclusively`], and a seeded one through [`seeded`].

use std::cell::Cell;
use std::sync::Mutex;

use crate::device::Device;

static DRAWS: Mutex<()> = Mutex::new(());

thread_local! {
    /// Whether this thread holds `DRAWS` (constructions nest).
    static HELD: Cell<bool> = const { Cell::new(false) };
}

/// Runs `build` while no other thread draws from the backend's generator.
pub fn exclusively<T>(build: impl FnOnce() -> T) -> T {
    if HELD.get() {
        return build();
    }
    let _lock = DRAWS.lock().unwrap_or_else(|p| p.into_inner());
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            HELD.set(false);
        }
    }
    HELD.set(true);
    let _release = Release;
    build()
}

/// Seeds the backend's generator and runs `build` before any other thread can draw.
pub fn seeded<T>(device: &Device, seed: u64, build: impl FnOnce() -> T) -> T {
    exclusively(|| {
        device.seed(seed);
        build()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two threads build the same seeded model many times while others draw: every build
    /// gets the same weights.
    #[test]
    fn seeded_builds_are_not_interleaved() {
        let device = crate::device::default_device();
        let weights = |device: &Device| {
            seeded(device, 7, || {
                let a = crate::models::layers::linear(16, 16, device);
                let b = crate::models::layers::linear(16, 16, device);
                let mut v = a.weight.val().into_data().try_to_vec::<f32>().unwrap();
                v.extend(b.weight.val().into_data().try_to_vec::<f32>().unwrap());
                v
            })
        };
        let reference = weights(&device);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..50 {
                        assert_eq!(weights(&device), reference);
                    }
                });
            }
            s.spawn(|| {
                for _ in 0..200 {
                    exclusively(|| crate::models::layers::linear(16, 16, &device));
                }
            });
        });
    }
}
