//! Runs a loop compiled for the widest vector instructions of the CPU it runs on (AVX-512 or
//! AVX2 on x86-64, chosen at run time), so plain Rust loops vectorize 16 or 8 lanes wide
//! instead of the 4 of the baseline SSE2 target.

/// Calls `f` inside a function compiled with this CPU's vector features. `f` and everything it
/// calls must be `#[inline(always)]` for those features to reach its loops.
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}
