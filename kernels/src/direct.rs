//! Direct convolution of inputs with few channels — the zoo's RGB stems (7×7 stride 2,
//! 3 → 16 or 64 channels) — with AVX-512 registers, no unfolding.
//!
//! Unfolded, one 256×128 image's stem is 147 rows as long as the output (4.8 MB) written and
//! read back through memory, then packed again by the matrix product: the stem was a quarter of
//! a batch-32 osnet_x0_25 forward. Here sixteen output pixels × sixteen output channels are
//! summed in sixteen vector registers, each tap one weight vector times one broadcast input
//! value, from a zero-padded copy of the rows they read. x86-64 only (other targets unfold).

use std::arch::x86_64::{
    __m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};

use rayon::prelude::*;

use crate::output::SharedOut;
use crate::shape::{ConvShape, Epilogue};

/// Output channels per vector register.
const LANES: usize = 16;

/// Output pixels summed at once (one register each).
const PIXELS: usize = 16;

/// Whether [`forward`] computes `s`: a dense convolution of one to four input channels, a
/// multiple of sixteen output channels and a kernel larger than 1×1, on a non-empty batch, on a
/// CPU with AVX-512.
pub(crate) fn applies(s: &ConvShape) -> bool {
    s.groups == 1
        && (1..=4).contains(&s.c)
        && s.n > 0
        && s.o.is_multiple_of(LANES)
        && s.kh * s.kw > 1
        && has_avx512()
}

fn has_avx512() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

/// The weight `[o, c, kh, kw]` as `[o / 16, c, kh, kw, 16]`: each tap's sixteen output channels
/// in one vector.
fn pack_weight(s: &ConvShape, weight: &[f32]) -> Vec<f32> {
    let taps = s.c * s.kh * s.kw;
    let mut packed = vec![0.0; s.o * taps];
    for (block, dst) in packed.chunks_exact_mut(taps * LANES).enumerate() {
        for t in 0..taps {
            for l in 0..LANES {
                dst[t * LANES + l] = weight[(block * LANES + l) * taps + t];
            }
        }
    }
    packed
}

/// Forward: `x` `[n, c, h, w]`, `weight` `[o, c, kh, kw]` → `[n, o, oh, ow]` with the epilogue;
/// only for shapes [`applies`] accepts. Tasks take whole images, or row ranges of one image
/// when there are fewer images than threads.
pub(crate) fn forward(s: &ConvShape, x: &[f32], weight: &[f32], epilogue: Epilogue) -> Vec<f32> {
    assert!(applies(s), "a direct convolution of {s:?}");
    assert!(x.len() >= s.n * s.c * s.hw() && weight.len() >= s.o * s.k());
    let packed = pack_weight(s, weight);
    let threads = rayon::current_num_threads();
    // Rows per task: whole images when they are enough to share out, else a few tasks per
    // thread (an image's rows are independent), none shorter than two rows.
    let chunks = if s.n >= threads {
        1
    } else {
        (4 * threads).div_ceil(s.n).min(s.oh.div_ceil(2)).max(1)
    };
    let rows = s.oh.div_ceil(chunks);
    let len = s.n * s.o * s.p();
    let mut out: Vec<f32> = Vec::with_capacity(len);
    // The tasks write disjoint (image, row) ranges of it.
    let dst = SharedOut(out.as_mut_ptr());
    let task = |t: usize| {
        let (image, first) = (t / chunks, t % chunks * rows);
        let last = (first + rows).min(s.oh);
        if first < last {
            // SAFETY: `applies` checked AVX-512; the task writes rows `first..last` of every
            // channel of `image`, which no other task writes, all inside the `len` elements.
            unsafe { image_rows(s, x, &packed, image, first..last, dst, &epilogue) };
        }
    };
    if s.n * s.o * s.p() * s.k() >= 1 << 18 {
        (0..s.n * chunks).into_par_iter().for_each(task);
    } else {
        (0..s.n * chunks).for_each(task);
    }
    // SAFETY: the tasks' row ranges cover every row of every channel of every image, each
    // element written once, so all `len` elements are initialized.
    unsafe { out.set_len(len) };
    out
}

/// Rows `rows` of every output channel of image `image`, written through `out`, then the
/// epilogue on them.
///
/// # Safety
/// The CPU has AVX-512F; no other thread reads or writes these rows meanwhile, and `out` holds
/// the whole `[n, o, oh, ow]` output.
#[target_feature(enable = "avx512f")]
unsafe fn image_rows(
    s: &ConvShape,
    x: &[f32],
    packed: &[f32],
    image: usize,
    rows: std::ops::Range<usize>,
    out: SharedOut,
    epilogue: &Epilogue,
) {
    let (wp, p) = (s.w + 2 * s.pw, s.p());
    // The padded input rows these output rows read.
    let (top, bottom) = (rows.start * s.sh, (rows.end - 1) * s.sh + s.kh);
    let hp = bottom - top;
    let mut padded = vec![0.0f32; s.c * hp * wp];
    for ci in 0..s.c {
        let plane = &x[(image * s.c + ci) * s.hw()..][..s.hw()];
        for (r, dst) in padded[ci * hp * wp..][..hp * wp]
            .chunks_exact_mut(wp)
            .enumerate()
        {
            let iy = (top + r) as isize - s.ph as isize;
            if (0..s.h as isize).contains(&iy) {
                dst[s.pw..s.pw + s.w].copy_from_slice(&plane[iy as usize * s.w..][..s.w]);
            }
        }
    }
    let taps = s.c * s.kh * s.kw;
    for oy in rows.clone() {
        let mut ox = 0;
        while ox < s.ow {
            let count = PIXELS.min(s.ow - ox);
            for block in 0..s.o / LANES {
                let weights = &packed[block * taps * LANES..][..taps * LANES];
                let sums = if count == PIXELS {
                    // SAFETY: AVX-512F (this function's contract); reads inside `padded`.
                    unsafe { pixel_block::<PIXELS>(s, &padded, hp, oy - rows.start, ox, weights) }
                } else {
                    let mut sums = [[0.0; LANES]; PIXELS];
                    for (j, sum) in sums.iter_mut().take(count).enumerate() {
                        // SAFETY: as above.
                        *sum = unsafe {
                            pixel_block::<1>(s, &padded, hp, oy - rows.start, ox + j, weights)
                        }[0];
                    }
                    sums
                };
                for l in 0..LANES {
                    let channel = block * LANES + l;
                    let start = ((image * s.o + channel) * p + oy * s.ow + ox) as isize;
                    for (j, sum) in sums.iter().take(count).enumerate() {
                        // SAFETY: inside this task's rows of the output (the caller's contract).
                        unsafe { out.0.offset(start + j as isize).write(sum[l]) };
                    }
                }
            }
            ox += count;
        }
    }
    let (first, count) = (rows.start * s.ow, rows.len() * s.ow);
    for channel in 0..s.o {
        let index = image * s.o + channel;
        // SAFETY: this task's rows of one output plane, written above, no other task's.
        let part = unsafe { std::slice::from_raw_parts_mut(out.0.add(index * p + first), count) };
        epilogue.apply_part(part, index, channel, p, first);
    }
}

/// The sums of `N` consecutive output pixels from `(oy, ox)` (`oy` counted in the padded rows'
/// output rows), sixteen output channels each: per tap, the tap's weight vector times the
/// input value under it, one register per pixel.
///
/// # Safety
/// The CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn pixel_block<const N: usize>(
    s: &ConvShape,
    padded: &[f32],
    hp: usize,
    oy: usize,
    ox: usize,
    weights: &[f32],
) -> [[f32; LANES]; N] {
    let wp = s.w + 2 * s.pw;
    // Every read below lies inside `padded`: the last pixel's last tap.
    let span = (N - 1) * s.sw + s.kw;
    assert!(ox * s.sw + span <= wp && oy * s.sh + s.kh <= hp);
    assert!(padded.len() >= s.c * hp * wp && weights.len() >= s.c * s.kh * s.kw * LANES);
    let mut acc: [__m512; N] = [_mm512_setzero_ps(); N];
    let mut w = weights.as_ptr();
    for ci in 0..s.c {
        for ki in 0..s.kh {
            let row = padded[(ci * hp + oy * s.sh + ki) * wp + ox * s.sw..].as_ptr();
            for kj in 0..s.kw {
                // SAFETY: `weights` holds `c · kh · kw` vectors of 16 (asserted), read in order;
                // the row reads stay within `span` of the row start (asserted).
                unsafe {
                    let wv = _mm512_loadu_ps(w);
                    for (j, a) in acc.iter_mut().enumerate() {
                        let v = _mm512_set1_ps(*row.add(j * s.sw + kj));
                        *a = _mm512_fmadd_ps(wv, v, *a);
                    }
                    w = w.add(LANES);
                }
            }
        }
    }
    let mut sums = [[0.0f32; LANES]; N];
    for (sum, a) in sums.iter_mut().zip(acc) {
        // SAFETY: a 16-float destination.
        unsafe { _mm512_storeu_ps(sum.as_mut_ptr(), a) };
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::ConvParams;

    /// The direct stem against the unfolding path (itself checked against PyTorch), on shapes
    /// with a pixel tail, two channel blocks, one image split into row ranges, and several
    /// images, with a residual epilogue.
    #[test]
    fn matches_the_unfolding_path() {
        if !has_avx512() {
            return;
        }
        for (n, c, h, w, o, k, stride, pad) in [
            (1, 3, 40, 70, 32, 7, 2, 3),
            (3, 3, 33, 17, 16, 7, 2, 3),
            (2, 4, 9, 21, 16, 3, 1, 1),
        ] {
            let params = ConvParams {
                stride: [stride; 2],
                padding: [pad; 2],
                groups: 1,
            };
            let s = ConvShape::new([n, c, h, w], [o, c, k, k], params).unwrap();
            assert!(applies(&s));
            let value = |i: usize| ((i * 7919 % 1013) as f32 - 506.0) / 300.0;
            let x: Vec<f32> = (0..n * c * h * w).map(value).collect();
            let weight: Vec<f32> = (0..o * c * k * k).map(|i| value(i + 5)).collect();
            let bias: Vec<f32> = (0..o).map(|i| value(i + 9)).collect();
            let residual: Vec<f32> = (0..n * o * s.p()).map(|i| value(i + 3)).collect();
            let epilogue = || Epilogue {
                bias: Some(&bias),
                residual: Some(&residual),
                relu: true,
            };
            let ours = forward(&s, &x, &weight, epilogue());
            let theirs = crate::dense::unfolded_forward(&s, &x, &weight, epilogue());
            assert_eq!(ours.len(), theirs.len());
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                    "{s:?} [{i}]: {a} vs {b}"
                );
            }
        }
    }
}
