//! Depthwise convolutions (one input and one output channel per group), computed directly per
//! channel plane: unfolding would copy each input `kh·kw` times for a product with one row.

use std::mem::MaybeUninit;

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use crate::depthwise_avx512;
use crate::output::{assume_written, written_in_parts, zeroed};
use crate::scratch::with_scratch;
use crate::shape::{ConvShape, Epilogue};
use crate::simd::{dot, vectorized};

/// Planes per part of the forward's output (and smallest number per rayon task elsewhere):
/// late OSNet planes are 16×8 pixels.
const PLANES_PER_PART: usize = 4;

/// `dst[i] += a · src[i·stride]` over `dst`.
#[inline(always)]
fn axpy_strided(dst: &mut [f32], a: f32, src: &[f32], stride: usize) {
    if stride == 1 {
        for (d, x) in dst.iter_mut().zip(src) {
            *d += a * *x;
        }
    } else {
        for (d, x) in dst.iter_mut().zip(src.iter().step_by(stride)) {
            *d += a * *x;
        }
    }
}

/// `dst[i·stride] += a · src[i]` over `src`.
#[inline(always)]
fn scatter_axpy(dst: &mut [f32], a: f32, src: &[f32], stride: usize) {
    if stride == 1 {
        for (d, x) in dst.iter_mut().zip(src) {
            *d += a * *x;
        }
    } else {
        for (d, x) in dst.iter_mut().step_by(stride).zip(src) {
            *d += a * *x;
        }
    }
}

/// `Σ a[i] · b[i·stride]`: [`dot`] at stride 1, else eight partial sums.
#[inline(always)]
fn dot_strided(a: &[f32], b: &[f32], stride: usize) -> f32 {
    if stride == 1 {
        return dot(a, &b[..a.len()]);
    }
    let mut lanes = [0.0f32; 8];
    for (i, (x, y)) in a.iter().zip(b.iter().step_by(stride)).enumerate() {
        lanes[i % 8] += x * y;
    }
    lanes.iter().sum()
}

/// Forward: each output plane is the sum over taps of a shifted, scaled input plane, then the
/// epilogue.
pub(crate) fn forward(s: &ConvShape, x: &[f32], weight: &[f32], epilogue: Epilogue) -> Vec<f32> {
    let (hw, p, taps) = (s.hw(), s.p(), s.kh * s.kw);
    let padded_len = (s.h + 2 * s.ph) * (s.w + 2 * s.pw);
    // Several planes per part: the vector dispatch and the scratch buffer are set up once per
    // part, not once per plane (late OSNet planes of 16×8 took longer to set up than to sum).
    let planes = PLANES_PER_PART.min(s.n * s.o).max(1);
    written_in_parts(s.n * s.o * p, planes * p, true, 1, |part, out| {
        vectorized(
            #[inline(always)]
            || {
                with_scratch(
                    padded_len,
                    #[inline(always)]
                    |padded| {
                        for (j, out) in out.chunks_exact_mut(p).enumerate() {
                            let plane = part * planes + j;
                            let (input, channel) = (&x[plane * hw..][..hw], plane % s.c);
                            let w = &weight[channel * taps..][..taps];
                            // Bias and ReLU go into the store where the kernel can take them.
                            let finish = epilogue.residual.is_none().then(|| {
                                (epilogue.bias.map_or(0.0, |b| b[channel]), epilogue.relu)
                            });
                            let (out, finished) = forward_plane(s, input, w, padded, out, finish);
                            if !finished {
                                epilogue.apply(out, plane, channel);
                            }
                        }
                    },
                )
            },
        );
        // SAFETY: `forward_plane` wrote every plane of the part (a whole number of planes).
        unsafe { assume_written(out) }
    })
}

/// One output plane, every value written; `finish` (a bias, then ReLU or not), when given, is
/// applied if the kernel can do it as it stores: the plane and whether it did.
#[inline(always)]
fn forward_plane<'a>(
    s: &ConvShape,
    input: &[f32],
    w: &[f32],
    padded: &mut [f32],
    out: &'a mut [MaybeUninit<f32>],
    finish: Option<(f32, bool)>,
) -> (&'a mut [f32], bool) {
    match (s.kh, s.kw) {
        (3, 3) => forward_plane_square::<3>(s, input, w, padded, out, finish),
        (5, 5) => forward_plane_square::<5>(s, input, w, padded, out, finish),
        _ => {
            let out = zeroed(out);
            forward_plane_any(s, input, w, out);
            (out, false)
        }
    }
}

/// Writes `input` (`h × w`) into `padded` as rows of `w + 2·pw` with `ph` rows and `pw`
/// columns of zeros around it, and zeros in whatever of `padded` lies past that. Only the
/// border is zeroed: the plane is copied once.
#[inline(always)]
fn pad_into(padded: &mut [f32], input: &[f32], s: &ConvShape) {
    let wp = s.w + 2 * s.pw;
    let (top, rest) = padded.split_at_mut(s.ph * wp);
    top.fill(0.0);
    let (middle, bottom) = rest.split_at_mut(s.h * wp);
    for (row, input) in middle.chunks_exact_mut(wp).zip(input.chunks_exact(s.w)) {
        row[..s.pw].fill(0.0);
        row[s.pw..s.pw + s.w].copy_from_slice(input);
        row[s.pw + s.w..].fill(0.0);
    }
    bottom.fill(0.0);
}

/// Forward of a square `K×K` kernel (the zoo's 3×3 and 5×5) on a zero-padded copy of the
/// plane: each output value is summed whole in registers and written once, instead of a load,
/// an add and a store of the output row per tap. The taps are summed in the same order as
/// [`forward_plane_any`] does; at stride 1 each as one fused multiply-add (a rounding fewer).
/// Stride 1 with padding below `K` on a CPU with AVX-512 goes to `depthwise_avx512::plane`
/// (4× faster: no padded copy, no zeroing, bias and ReLU in the store). `finish` and the
/// result as in [`forward_plane`].
#[inline(always)]
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn forward_plane_square<'a, const K: usize>(
    s: &ConvShape,
    input: &[f32],
    w: &[f32],
    padded: &mut [f32],
    out: &'a mut [MaybeUninit<f32>],
    finish: Option<(f32, bool)>,
) -> (&'a mut [f32], bool) {
    let taps: [[f32; K]; K] = std::array::from_fn(|ki| std::array::from_fn(|kj| w[ki * K + kj]));
    #[cfg(target_arch = "x86_64")]
    if s.sh == 1 && s.sw == 1 && s.ph < K && s.pw < K && depthwise_avx512::available() {
        let finished = finish.unwrap_or((0.0, false));
        let sizes = ((s.h, s.w), (s.ph, s.pw));
        // SAFETY: AVX-512F is available (checked).
        let out =
            unsafe { depthwise_avx512::plane::<K>(input, sizes.0, sizes.1, &taps, finished, out) };
        return (out, finish.is_some());
    }
    // The loops write every value; zeroed only to be had as floats.
    let out = zeroed(out);
    forward_plane_square_portable(s, input, &taps, padded, out);
    (out, false)
}

/// [`forward_plane_square`]'s loops for any CPU, on a zero-padded copy of the plane.
#[inline(always)]
fn forward_plane_square_portable<const K: usize>(
    s: &ConvShape,
    input: &[f32],
    taps: &[[f32; K]; K],
    padded: &mut [f32],
    out: &mut [f32],
) {
    let wp = s.w + 2 * s.pw;
    pad_into(padded, input, s);
    if s.sh == 1 && s.sw == 1 {
        let mut oy = 0;
        while oy + ROWS <= s.oh {
            row_block::<K, ROWS>(s.ow, taps, padded, wp, oy, out);
            oy += ROWS;
        }
        for oy in oy..s.oh {
            row_block::<K, 1>(s.ow, taps, padded, wp, oy, out);
        }
        return;
    }
    let span = (s.ow - 1) * s.sw + K;
    for (oy, dst) in out.chunks_exact_mut(s.ow).enumerate() {
        let rows: [&[f32]; K] = std::array::from_fn(|ki| &padded[(oy * s.sh + ki) * wp..][..span]);
        for (x, d) in dst.iter_mut().enumerate() {
            let mut acc = 0.0;
            for ki in 0..K {
                for kj in 0..K {
                    acc += taps[ki][kj] * rows[ki][x * s.sw + kj];
                }
            }
            *d = acc;
        }
    }
}

/// Output rows summed together at stride 1: each input row loaded once serves up to `K` of
/// them, and their sums are independent chains of multiply-adds (one row's nine taps were a
/// chain of dependent instructions that the processor waited on).
const ROWS: usize = 4;

/// Rows `oy .. oy + R` of a stride-1 output of width `ow`: sixteen (then eight, four, one)
/// columns at a time.
#[inline(always)]
fn row_block<const K: usize, const R: usize>(
    ow: usize,
    taps: &[[f32; K]; K],
    padded: &[f32],
    wp: usize,
    oy: usize,
    out: &mut [f32],
) {
    let mut x = 0;
    while x + 16 <= ow {
        taps_sum::<K, 16, R>(taps, padded, wp, (oy, x), ow, out);
        x += 16;
    }
    while x + 4 <= ow {
        if x + 8 <= ow {
            taps_sum::<K, 8, R>(taps, padded, wp, (oy, x), ow, out);
            x += 8;
        } else {
            taps_sum::<K, 4, R>(taps, padded, wp, (oy, x), ow, out);
            x += 4;
        }
    }
    for x in x..ow {
        taps_sum::<K, 1, R>(taps, padded, wp, (oy, x), ow, out);
    }
}

/// Writes the outputs `(oy + j, x0 + l)` for `j < R`, `l < L` of a stride-1 plane of width
/// `ow` from the zero-padded input (rows of `wp`): each the sum over the taps of
/// `taps[ki][kj] · padded[oy + j + ki][x0 + l + kj]`, in row-major tap order, one fused
/// multiply-add per tap. Slices of a length known at compile time make each tap one vector
/// load and multiply-add over the `L` outputs.
#[inline(always)]
fn taps_sum<const K: usize, const L: usize, const R: usize>(
    taps: &[[f32; K]; K],
    padded: &[f32],
    wp: usize,
    (oy, x0): (usize, usize),
    ow: usize,
    out: &mut [f32],
) {
    let mut acc = [[0.0f32; L]; R];
    for r in 0..R + K - 1 {
        let row = &padded[(oy + r) * wp + x0..];
        for kj in 0..K {
            let src: &[f32; L] = row[kj..][..L].try_into().unwrap();
            // Input row `oy + r` meets output row `oy + j` at kernel row `r − j`.
            for (j, acc) in acc.iter_mut().enumerate() {
                if r >= j && r - j < K {
                    let t = taps[r - j][kj];
                    for l in 0..L {
                        acc[l] = t.mul_add(src[l], acc[l]);
                    }
                }
            }
        }
    }
    for (j, acc) in acc.iter().enumerate() {
        out[(oy + j) * ow + x0..][..L].copy_from_slice(acc);
    }
}

/// Forward of any kernel: per tap, the shifted input row scaled into the output row (`out`
/// arrives zeroed).
#[inline(always)]
fn forward_plane_any(s: &ConvShape, input: &[f32], w: &[f32], out: &mut [f32]) {
    for ki in 0..s.kh {
        for oy in s.rows(ki) {
            let src = &input[(oy * s.sh + ki - s.ph) * s.w..][..s.w];
            let dst = &mut out[oy * s.ow..][..s.ow];
            for kj in 0..s.kw {
                let cols = s.cols(kj);
                if !cols.is_empty() {
                    let first = cols.start * s.sw + kj - s.pw;
                    axpy_strided(&mut dst[cols], w[ki * s.kw + kj], &src[first..], s.sw);
                }
            }
        }
    }
}

/// Gradient of the input: each output gradient scattered back through every tap.
pub(crate) fn input_grad(s: &ConvShape, grad: &[f32], weight: &[f32]) -> Vec<f32> {
    let (hw, p, taps) = (s.hw(), s.p(), s.kh * s.kw);
    written_in_parts(s.n * s.c * hw, hw, true, PLANES_PER_PART, |plane, dx| {
        let dy = &grad[plane * p..][..p];
        let w = &weight[(plane % s.c) * taps..][..taps];
        vectorized(
            #[inline(always)]
            || input_grad_plane(s, dy, w, dx),
        )
    })
}

/// One plane of the input gradient, every value written.
#[inline(always)]
fn input_grad_plane<'a>(
    s: &ConvShape,
    dy: &[f32],
    w: &[f32],
    dx: &'a mut [MaybeUninit<f32>],
) -> &'a mut [f32] {
    match (s.kh, s.kw) {
        (3, 3) if square_stride_1::<3>(s) => input_grad_plane_square::<3>(s, dy, w, dx),
        (5, 5) if square_stride_1::<5>(s) => input_grad_plane_square::<5>(s, dy, w, dx),
        _ => {
            let dx = zeroed(dx);
            input_grad_plane_any(s, dy, w, dx);
            dx
        }
    }
}

/// A `K×K` kernel at stride 1 with less than `K` padding: its input gradient is the forward of
/// the flipped kernel over the output gradient, and its weight gradient a set of long
/// contiguous dot products.
fn square_stride_1<const K: usize>(s: &ConvShape) -> bool {
    s.sh == 1 && s.sw == 1 && s.ph < K && s.pw < K
}

/// The input gradient at stride 1: the output gradient convolved with the flipped kernel,
/// padded by `K − 1 − padding`, which gives back the input's size.
#[inline(always)]
fn input_grad_plane_square<'a, const K: usize>(
    s: &ConvShape,
    dy: &[f32],
    w: &[f32],
    dx: &'a mut [MaybeUninit<f32>],
) -> &'a mut [f32] {
    let transposed = ConvShape {
        h: s.oh,
        w: s.ow,
        ph: K - 1 - s.ph,
        pw: K - 1 - s.pw,
        oh: s.h,
        ow: s.w,
        ..*s
    };
    // Room for the largest square kernel the zoo has, 5×5.
    let flipped: [f32; 25] =
        std::array::from_fn(|t| if t < K * K { w[K * K - 1 - t] } else { 0.0 });
    let padded_len = (transposed.h + 2 * transposed.ph) * (transposed.w + 2 * transposed.pw);
    with_scratch(
        padded_len,
        #[inline(always)]
        |padded| forward_plane_square::<K>(&transposed, dy, &flipped, padded, dx, None).0,
    )
}

/// The input gradient of any kernel: each output gradient row scattered back through every tap
/// (`dx` arrives zeroed).
#[inline(always)]
fn input_grad_plane_any(s: &ConvShape, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    for ki in 0..s.kh {
        for oy in s.rows(ki) {
            let dst = &mut dx[(oy * s.sh + ki - s.ph) * s.w..][..s.w];
            let src = &dy[oy * s.ow..][..s.ow];
            for kj in 0..s.kw {
                let cols = s.cols(kj);
                if !cols.is_empty() {
                    let first = cols.start * s.sw + kj - s.pw;
                    scatter_axpy(&mut dst[first..], w[ki * s.kw + kj], &src[cols], s.sw);
                }
            }
        }
    }
}

/// Gradient of the weight: per channel and tap, the dot product of the output gradient with
/// the input under that tap, summed over the batch.
pub(crate) fn weight_grad(s: &ConvShape, x: &[f32], grad: &[f32]) -> Vec<f32> {
    let (hw, p, taps) = (s.hw(), s.p(), s.kh * s.kw);
    let mut dw = vec![0.0; s.c * taps];
    dw.par_chunks_mut(taps).enumerate().for_each(|(c, dw)| {
        for i in 0..s.n {
            let input = &x[(i * s.c + c) * hw..][..hw];
            let dy = &grad[(i * s.c + c) * p..][..p];
            vectorized(
                #[inline(always)]
                || weight_grad_plane(s, input, dy, dw),
            );
        }
    });
    dw
}

#[inline(always)]
fn weight_grad_plane(s: &ConvShape, input: &[f32], dy: &[f32], dw: &mut [f32]) {
    match (s.kh, s.kw) {
        (3, 3) if square_stride_1::<3>(s) => weight_grad_plane_square::<3>(s, input, dy, dw),
        (5, 5) if square_stride_1::<5>(s) => weight_grad_plane_square::<5>(s, input, dy, dw),
        _ => weight_grad_plane_any(s, input, dy, dw),
    }
}

/// The weight gradient at stride 1. With the input zero-padded to rows of `wp` and the output
/// gradient laid out on rows of the same length (zeros past its width), tap `(ki, kj)` is one
/// contiguous dot product of the gradient with the padded input from `ki·wp + kj`: the zeros
/// cancel the wrapped-around terms.
#[inline(always)]
fn weight_grad_plane_square<const K: usize>(
    s: &ConvShape,
    input: &[f32],
    dy: &[f32],
    dw: &mut [f32],
) {
    let wp = s.w + 2 * s.pw;
    let padded_len = (s.h + 2 * s.ph) * wp + K;
    with_scratch(padded_len + s.oh * wp, |buffer| {
        let (padded, spread) = buffer.split_at_mut(padded_len);
        pad_into(padded, input, s);
        for (row, dy) in spread.chunks_exact_mut(wp).zip(dy.chunks_exact(s.ow)) {
            let (values, zeros) = row.split_at_mut(s.ow);
            values.copy_from_slice(dy);
            zeros.fill(0.0);
        }
        for ki in 0..K {
            for kj in 0..K {
                dw[ki * K + kj] += dot(spread, &padded[ki * wp + kj..][..spread.len()]);
            }
        }
    });
}

#[inline(always)]
fn weight_grad_plane_any(s: &ConvShape, input: &[f32], dy: &[f32], dw: &mut [f32]) {
    for ki in 0..s.kh {
        for kj in 0..s.kw {
            let cols = s.cols(kj);
            if cols.is_empty() {
                continue;
            }
            let first = cols.start * s.sw + kj - s.pw;
            let mut sum = 0.0;
            for oy in s.rows(ki) {
                let src = &input[(oy * s.sh + ki - s.ph) * s.w..][first..];
                sum += dot_strided(&dy[oy * s.ow..][cols.clone()], src, s.sw);
            }
            dw[ki * s.kw + kj] += sum;
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::shape::ConvParams;

    /// The AVX-512 plane and the portable loops sum the same taps in the same order with the
    /// same fused multiply-adds: the same bits, for every padding pair below `K` (the input
    /// gradient's transposed padding differs by axis).
    fn same_bits<const K: usize>() {
        let value = |i: usize| ((i * 7919 % 1013) as f32 - 506.0) / 300.0;
        let w: Vec<f32> = (0..K * K).map(|i| value(i + 3)).collect();
        let taps: [[f32; K]; K] =
            std::array::from_fn(|ki| std::array::from_fn(|kj| w[ki * K + kj]));
        for (h, width) in [(1, 1), (4, 7), (9, 16), (13, 37)] {
            for (ph, pw) in (0..K).flat_map(|ph| (0..K).map(move |pw| (ph, pw))) {
                let params = ConvParams {
                    stride: [1, 1],
                    padding: [ph, pw],
                    groups: 1,
                };
                let Some(s) = ConvShape::new([1, 1, h, width], [1, 1, K, K], params) else {
                    continue;
                };
                let input: Vec<f32> = (0..h * width).map(value).collect();
                let mut padded = vec![0.0; (h + 2 * ph) * (width + 2 * pw)];
                let mut portable = vec![f32::NAN; s.p()];
                forward_plane_square_portable(&s, &input, &taps, &mut padded, &mut portable);
                let mut out = vec![MaybeUninit::new(f32::NAN); s.p()];
                // SAFETY: AVX-512F is available (checked by the caller).
                let ours = unsafe {
                    depthwise_avx512::plane::<K>(
                        &input,
                        (h, width),
                        (ph, pw),
                        &taps,
                        (0.0, false),
                        &mut out,
                    )
                };
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(ours),
                    bits(&portable),
                    "K {K}, {h}×{width}, padding ({ph}, {pw})"
                );
            }
        }
    }

    #[test]
    fn the_avx512_plane_gives_the_portable_loops_bits() {
        if !depthwise_avx512::available() {
            return;
        }
        same_bits::<3>();
        same_bits::<5>();
    }
}
