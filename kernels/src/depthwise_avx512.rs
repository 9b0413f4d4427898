//! The depthwise `K×K` stride-1 plane (OSNet's 3×3, EfficientNet's 3×3 and 5×5, and the input
//! gradient of both) in AVX-512 registers, with the bias and ReLU applied before the store.
//!
//! The same loop written on arrays of `f32` (`depthwise::taps_sum`) compiled to permutes,
//! pairs of scalar loads and stack spills for its `[[f32; 16]; 4]` sums: 5–7 GMAC/s on one
//! core whose multiply-add peak is ~50. Here each output row's sixteen columns are one
//! register, each tap one broadcast weight times one masked load of the input plane itself (the
//! padding is masked off, never stored), so the loop is the multiply-adds and the loads alone.
//! x86-64 only; other CPUs keep the portable loop.

use std::mem::MaybeUninit;

use crate::output::assume_written;
use crate::simd::first_lanes;

use std::arch::x86_64::{
    __m512, __mmask16, _mm512_add_ps, _mm512_fmadd_ps, _mm512_mask_storeu_ps,
    _mm512_maskz_loadu_ps, _mm512_max_ps, _mm512_set1_ps, _mm512_setzero_ps,
};

/// Output columns per register.
const LANES: usize = 16;

/// Output rows summed together: each input row loaded once serves up to `K` of them, and their
/// sums are independent chains of multiply-adds.
const ROWS: usize = 4;

/// Whether this CPU runs [`plane`].
pub(crate) fn available() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

/// One stride-1 output plane `oh × ow` of the `h × w` plane `input` zero-padded by `ph` rows and
/// `pw` columns on each side (`ph, pw < K`), every value written into `out` (returned as
/// floats): `out[y][x] = Σ taps[ki][kj] · input[y + ki − ph][x + kj − pw]` plus `bias`, then
/// ReLU when `relu`; the taps summed in row-major order, one fused multiply-add each (the
/// portable loop's order and rounding). The padding is never stored: rows outside the plane are
/// skipped, columns outside it are masked off the loads.
///
/// # Panics
/// When the sizes do not fit together or `out` does not hold `oh · ow` values.
///
/// # Safety
/// The CPU has AVX-512F ([`available`]).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn plane<'a, const K: usize>(
    input: &[f32],
    (h, w): (usize, usize),
    (ph, pw): (usize, usize),
    taps: &[[f32; K]; K],
    (bias, relu): (f32, bool),
    out: &'a mut [MaybeUninit<f32>],
) -> &'a mut [f32] {
    assert!(ph < K && pw < K && h + 2 * ph >= K && w + 2 * pw >= K && input.len() == h * w);
    let (oh, ow) = (h + 2 * ph + 1 - K, w + 2 * pw + 1 - K);
    assert_eq!(out.len(), oh * ow);
    let taps: [[__m512; K]; K] =
        std::array::from_fn(|ki| std::array::from_fn(|kj| _mm512_set1_ps(taps[ki][kj])));
    let mut x0 = 0;
    while x0 < ow {
        let count = LANES.min(ow - x0);
        // Lanes whose input column `x0 + lane + kj − pw` lies in `0..w`.
        let masks: [__mmask16; K] = std::array::from_fn(|kj| {
            let first = (x0 + kj) as isize - pw as isize;
            let lanes = (0..count).filter(|l| (0..w as isize).contains(&(first + *l as isize)));
            lanes.fold(0, |m, l| m | (1 << l))
        });
        let block = Block {
            input: input.as_ptr(),
            h,
            w,
            ph,
            pw,
            output: out.as_mut_ptr().cast::<f32>(),
            ow,
            x0,
            store: first_lanes(count),
            bias,
            relu,
        };
        let mut oy = 0;
        while oy + ROWS <= oh {
            // SAFETY: output rows `oy .. oy + ROWS` exist; `masks` keeps the loads inside the
            // input's rows, which `rows` keeps inside the plane.
            unsafe { block.rows::<K, ROWS>(&taps, &masks, oy) };
            oy += ROWS;
        }
        while oy < oh {
            // SAFETY: as above, one row.
            unsafe { block.rows::<K, 1>(&taps, &masks, oy) };
            oy += 1;
        }
        x0 += count;
    }
    // SAFETY: the column blocks cover `0..ow` and the row blocks `0..oh`: every value was
    // stored.
    unsafe { assume_written(out) }
}

/// A column block of up to sixteen outputs (`store`) from column `x0` of a plane.
struct Block {
    input: *const f32,
    h: usize,
    w: usize,
    ph: usize,
    pw: usize,
    output: *mut f32,
    ow: usize,
    x0: usize,
    store: __mmask16,
    bias: f32,
    relu: bool,
}

impl Block {
    /// Output rows `oy .. oy + R` of this column block, finished and stored.
    ///
    /// # Safety
    /// AVX-512F; output rows `oy .. oy + R` (of `ow`) hold the block's `store` columns;
    /// `masks[kj]` selects only lanes whose input column `x0 + lane + kj − pw` is in `0..w`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn rows<const K: usize, const R: usize>(
        &self,
        taps: &[[__m512; K]; K],
        masks: &[__mmask16; K],
        oy: usize,
    ) {
        let mut acc = [_mm512_setzero_ps(); R];
        for r in 0..R + K - 1 {
            // Rows of the padding add nothing.
            let Some(iy) = (oy + r).checked_sub(self.ph).filter(|&iy| iy < self.h) else {
                continue;
            };
            for kj in 0..K {
                // Lane `l` reads column `x0 + l + kj − pw` of row `iy`: the unmasked lanes
                // lie inside the row; the masked-off ones (the padding, or past the block) are
                // neither read nor faulted on, so the address may point before the row.
                let at = self
                    .input
                    .wrapping_add(iy * self.w + self.x0 + kj)
                    .wrapping_sub(self.pw);
                // SAFETY: only the lanes of `masks[kj]` are read (see above).
                let v = unsafe { _mm512_maskz_loadu_ps(masks[kj], at) };
                // Input row `oy + r` meets output row `oy + j` at kernel row `r − j`.
                for (j, acc) in acc.iter_mut().enumerate() {
                    if r >= j && r - j < K {
                        *acc = _mm512_fmadd_ps(taps[r - j][kj], v, *acc);
                    }
                }
            }
        }
        let bias = _mm512_set1_ps(self.bias);
        for (j, acc) in acc.into_iter().enumerate() {
            let mut y = _mm512_add_ps(acc, bias);
            if self.relu {
                y = _mm512_max_ps(y, _mm512_setzero_ps());
            }
            // SAFETY: masked-off lanes are not written; the others lie inside output row
            // `oy + j` (the caller's contract).
            unsafe {
                _mm512_mask_storeu_ps(self.output.add((oy + j) * self.ow + self.x0), self.store, y)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sum written out tap by tap, padding as zeros.
    fn reference<const K: usize>(
        input: &[f32],
        (h, w): (usize, usize),
        (ph, pw): (usize, usize),
        taps: &[[f32; K]; K],
        (bias, relu): (f32, bool),
    ) -> Vec<f32> {
        let (oh, ow) = (h + 2 * ph + 1 - K, w + 2 * pw + 1 - K);
        let mut out = Vec::with_capacity(oh * ow);
        for y in 0..oh {
            for x in 0..ow {
                let mut sum = 0.0f64;
                for (ki, row) in taps.iter().enumerate() {
                    for (kj, t) in row.iter().enumerate() {
                        let (iy, ix) = (
                            (y + ki) as isize - ph as isize,
                            (x + kj) as isize - pw as isize,
                        );
                        if (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix) {
                            sum += f64::from(*t) * f64::from(input[iy as usize * w + ix as usize]);
                        }
                    }
                }
                let v = sum as f32 + bias;
                out.push(if relu { v.max(0.0) } else { v });
            }
        }
        out
    }

    fn check<const K: usize>() {
        let value = |i: usize| ((i * 7919 % 1013) as f32 - 506.0) / 300.0;
        let taps: [[f32; K]; K] =
            std::array::from_fn(|ki| std::array::from_fn(|kj| value(ki * K + kj + 11)));
        // Widths around the sixteen lanes and the four rows, every padding below K.
        for (h, w) in [(1, 1), (3, 7), (5, 16), (6, 17), (9, 33), (K, 40)] {
            for (ph, pw) in (0..K).flat_map(|ph| (0..K).map(move |pw| (ph, pw))) {
                if h + 2 * ph < K || w + 2 * pw < K {
                    continue;
                }
                for finish in [(0.0, false), (-0.25, true)] {
                    let input: Vec<f32> = (0..h * w).map(value).collect();
                    let (oh, ow) = (h + 2 * ph + 1 - K, w + 2 * pw + 1 - K);
                    let mut out = vec![MaybeUninit::new(f32::NAN); oh * ow];
                    // SAFETY: checked by the caller.
                    let ours =
                        unsafe { plane::<K>(&input, (h, w), (ph, pw), &taps, finish, &mut out) };
                    let theirs = reference::<K>(&input, (h, w), (ph, pw), &taps, finish);
                    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                        assert!(
                            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                            "K {K}, {h}×{w}, padding ({ph}, {pw}), {finish:?} [{i}]: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_plane_size_and_padding_matches_the_sum_written_out() {
        if !available() {
            return;
        }
        check::<3>();
        check::<5>();
    }
}
