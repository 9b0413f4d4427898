//! Burn's CPU backend draws every random initialization from one process-wide generator, and
//! `Device::seed` replaces it: a seeded model is reproducible only if no other thread draws in
//! between (two trainings started at once in one process — a host finetuning two models, or
//! the test suite — would otherwise interleave their draws). Every construction that draws
//! goes through [`exclusively`], and a seeded one through [`seeded`]. Burn creates parameters
//! lazily (drawn when first read), so a construction also [`draw`]s every parameter before it
//! lets go of the lock: otherwise the draws would happen at the first forward pass, outside it.

use std::cell::Cell;
use std::sync::Mutex;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

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

/// Builds a module and draws all its parameters while no other thread draws.
pub fn drawn<M: Module>(build: impl FnOnce() -> M) -> M {
    exclusively(|| {
        let module = build();
        draw(&module);
        module
    })
}

/// Initializes every parameter of `module` that is still lazy (draws its random values now).
/// Call it inside [`exclusively`].
pub fn draw<M: Module>(module: &M) {
    struct Draw;
    impl ModuleVisitor for Draw {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if !param.is_initialized() {
                let _ = param.val();
            }
        }
    }
    module.visit(&mut Draw);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{Arch, ReidModel, layers};

    /// Every float parameter's values, in visiting order.
    fn values<M: Module>(module: &M) -> Vec<f32> {
        struct Collect(Vec<f32>);
        impl ModuleVisitor for Collect {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let data = param.val().into_data();
                self.0.extend(data.iter::<f32>());
            }
        }
        let mut collect = Collect(Vec::new());
        module.visit(&mut collect);
        collect.0
    }

    /// Two threads build the same seeded model many times while another draws: every build
    /// gets the same weights, read after the seed's lock is let go (a model whose parameters
    /// were still lazy would draw them then, between the other thread's draws).
    #[test]
    fn seeded_builds_are_not_interleaved() {
        let device = crate::device::default_device();
        let build = |device: &Device| {
            let model = seeded(device, 7, || ReidModel::new(Arch::OsnetX0_25, 4, device));
            let classifier = seeded(device, 8, || model.clone().with_classifier(3, device));
            let attention = seeded(device, 9, || {
                model.clone().with_attention_head(3, 8, 2, device)
            });
            let mut v = values(&model);
            v.extend(values(&classifier.head.classifier));
            v.extend(values(&attention.attention));
            v
        };
        let reference = build(&device);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..8 {
                        assert!(build(&device) == reference);
                    }
                });
            }
            s.spawn(|| {
                for _ in 0..400 {
                    drawn(|| layers::linear(16, 16, &device));
                }
            });
        });
    }

    /// A skeleton draws nothing: the generator's next values are the seed's first ones.
    #[test]
    fn unloaded_models_draw_nothing() {
        let device = crate::device::default_device();
        let first = || values(&layers::linear(4, 4, &device));
        let reference = seeded(&device, 3, first);
        let after_skeleton = seeded(&device, 3, || {
            let _ = ReidModel::unloaded(Arch::OsnetX0_25, 4, &device);
            first()
        });
        assert_eq!(after_skeleton, reference);
    }
}
