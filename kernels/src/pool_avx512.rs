//! The zoo's max pooling — 3×3, stride 2, padding 1, after the OSNet and ResNet stems — in
//! AVX-512 registers: per output row, the maximum down its input rows (contiguous, sixteen
//! columns a vector), then across each window of three columns at stride 2 (even and odd
//! columns separated by two-register permutes). The portable separable loop took a plane's
//! column windows one output at a time (4 % of a batch-1 osnet_x1_0 forward).

use std::arch::x86_64::{
    __m512, __m512i, _CMP_UNORD_Q, _mm512_cmp_ps_mask, _mm512_loadu_ps, _mm512_mask_loadu_ps,
    _mm512_mask_mov_ps, _mm512_mask_storeu_ps, _mm512_max_ps, _mm512_permutex2var_ps,
    _mm512_set1_ps, _mm512_setr_epi32, _mm512_storeu_ps,
};
use std::mem::MaybeUninit;

use crate::output::assume_written;
use crate::simd::first_lanes;

/// Values per register.
const LANES: usize = 16;

/// Whether this CPU runs [`max_3x3_s2_plane`].
pub(crate) fn available() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

/// Floats of scratch [`max_3x3_s2_plane`] needs for a plane `w` wide.
pub(crate) fn scratch_len(w: usize) -> usize {
    2 * w.div_ceil(2).div_ceil(LANES) * LANES + 2 * LANES + 2
}

/// The larger of `a` and `b`, NaN when either is (PyTorch's max pooling propagates NaN; the
/// instruction alone returns `b` when `a` is NaN).
#[target_feature(enable = "avx512f")]
#[inline]
fn nan_max(a: __m512, b: __m512) -> __m512 {
    _mm512_mask_mov_ps(
        _mm512_max_ps(a, b),
        _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a, a),
        a,
    )
}

/// Max pooling 3×3, stride 2, padding 1 of the `h × w` plane `input` into `out` (`⌊(h − 1) / 2⌋
/// + 1` rows of `⌊(w − 1) / 2⌋ + 1`), every value written and returned as floats; `scratch`
/// holds at least [`scratch_len`]`(w)` floats.
///
/// # Panics
/// When a size does not fit.
///
/// # Safety
/// The CPU has AVX-512F ([`available`]).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn max_3x3_s2_plane<'a>(
    input: &[f32],
    (h, w): (usize, usize),
    scratch: &mut [f32],
    out: &'a mut [MaybeUninit<f32>],
) -> &'a mut [f32] {
    let (oh, ow) = ((h.max(1) - 1) / 2 + 1, (w.max(1) - 1) / 2 + 1);
    assert!(h > 0 && w > 0 && input.len() == h * w && out.len() == oh * ow);
    assert!(scratch.len() >= scratch_len(w));
    let low = _mm512_set1_ps(f32::NEG_INFINITY);
    // `column[1 + x]` holds the maximum down the window's rows at input column `x`; column −1
    // (the padding) and everything past the row are −∞, so every load below is whole.
    scratch.fill(f32::NEG_INFINITY);
    let column = scratch.as_mut_ptr();
    let even: __m512i =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd: __m512i = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let output = out.as_mut_ptr().cast::<f32>();
    for oy in 0..oh {
        let (y0, y1) = ((2 * oy).saturating_sub(1), (2 * oy + 2).min(h));
        let mut x = 0;
        while x < w {
            let count = LANES.min(w - x);
            let mask = first_lanes(count);
            let mut m = low;
            for y in y0..y1 {
                // SAFETY: the lanes of `mask` lie inside row `y`.
                let v = unsafe { _mm512_mask_loadu_ps(low, mask, input.as_ptr().add(y * w + x)) };
                m = nan_max(m, v);
            }
            // SAFETY: `1 + x + 16 ≤ scratch_len(w)`; the lanes past the row store −∞.
            unsafe { _mm512_storeu_ps(column.add(1 + x), m) };
            x += count;
        }
        let mut ox = 0;
        while ox < ow {
            let count = LANES.min(ow - ox);
            // Output `ox + l` takes columns `2(ox + l) − 1 ..= 2(ox + l) + 1`, i.e. `column`
            // entries `2(ox + l)`, `+ 1` and `+ 2`.
            // SAFETY: `2·ox + 2 + 32 ≤ scratch_len(w)` (`ox` a multiple of 16 below `ow`).
            let (a, b, c, d) = unsafe {
                let at = column.add(2 * ox);
                (
                    _mm512_loadu_ps(at),
                    _mm512_loadu_ps(at.add(LANES)),
                    _mm512_loadu_ps(at.add(2)),
                    _mm512_loadu_ps(at.add(LANES + 2)),
                )
            };
            let left = _mm512_permutex2var_ps(a, even, b);
            let middle = _mm512_permutex2var_ps(a, odd, b);
            let right = _mm512_permutex2var_ps(c, even, d);
            let m = nan_max(nan_max(left, middle), right);
            let mask = first_lanes(count);
            // SAFETY: the lanes of `mask` lie inside output row `oy`.
            unsafe { _mm512_mask_storeu_ps(output.add(oy * ow + ox), mask, m) };
            ox += count;
        }
    }
    // SAFETY: every row's column blocks cover `0..ow`: every value was stored.
    unsafe { assume_written(out) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each window's maximum written out, NaN if it holds one.
    fn reference(input: &[f32], (h, w): (usize, usize)) -> Vec<f32> {
        let (oh, ow) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1);
        let mut out = Vec::new();
        for oy in 0..oh {
            for ox in 0..ow {
                let mut m = f32::NEG_INFINITY;
                for y in (2 * oy).saturating_sub(1)..(2 * oy + 2).min(h) {
                    for x in (2 * ox).saturating_sub(1)..(2 * ox + 2).min(w) {
                        let v = input[y * w + x];
                        if v > m || v.is_nan() {
                            m = if m.is_nan() { m } else { v };
                        }
                    }
                }
                out.push(m);
            }
        }
        out
    }

    #[test]
    fn every_size_matches_the_windows_written_out_nan_included() {
        if !available() {
            return;
        }
        for (h, w) in [
            (1, 1),
            (2, 3),
            (5, 16),
            (7, 31),
            (8, 32),
            (9, 33),
            (4, 64),
            (3, 70),
        ] {
            for nan_at in [None, Some(0), Some(h * w / 2), Some(h * w - 1)] {
                let mut input: Vec<f32> = (0..h * w)
                    .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 300.0)
                    .collect();
                if let Some(at) = nan_at {
                    input[at] = f32::NAN;
                }
                let (oh, ow) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1);
                let mut out = vec![MaybeUninit::new(0.5); oh * ow];
                let mut scratch = vec![0.0; scratch_len(w)];
                // SAFETY: checked above.
                let ours = unsafe { max_3x3_s2_plane(&input, (h, w), &mut scratch, &mut out) };
                let theirs = reference(&input, (h, w));
                for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                    assert!(
                        a == b || (a.is_nan() && b.is_nan()),
                        "{h}×{w}, NaN at {nan_at:?} [{i}]: {a} vs {b}"
                    );
                }
            }
        }
    }
}
