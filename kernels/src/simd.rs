//! Runs a loop compiled for the widest vector instructions of the CPU it runs on (AVX-512 or
//! AVX2 on x86-64, chosen at run time), so plain Rust loops vectorize 16 or 8 lanes wide
//! instead of the 4 of the baseline SSE2 target.

/// Calls `f` inside a function compiled with this CPU's vector features. `f` and everything it
/// calls must be `#[inline(always)]` for those features to reach its loops.
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// `Σ a[i] · b[i]` in sixteen partial sums (one AVX-512 register).
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let (a16, b16) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = a16
        .remainder()
        .iter()
        .zip(b16.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (ca, cb) in a16.zip(b16) {
        for l in 0..16 {
            lanes[l] += ca[l] * cb[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `Σ a[i]` in sixteen partial sums (one AVX-512 register).
#[inline(always)]
pub(crate) fn sum(a: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let a16 = a.chunks_exact(16);
    let tail: f32 = a16.remainder().iter().sum();
    for chunk in a16 {
        for l in 0..16 {
            lanes[l] += chunk[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// A 16-lane mask of the first `count` lanes (all sixteen from 16 on): a row's last, partial
/// vector.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn first_lanes(count: usize) -> u16 {
    if count >= 16 {
        u16::MAX
    } else {
        (1 << count) - 1
    }
}
