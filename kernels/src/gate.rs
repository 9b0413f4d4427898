//! OSNet's gated sum of its four streams, `Σ_t x_t · g_t` with one gate value per image and
//! channel, in one pass; Burn makes it four broadcast products and three sums, each a pass
//! over the activation (and as many backward).

use crate::output::filled_in_parts;
use crate::simd::{dot, vectorized};

/// Gate values per rayon task in the backward's per-plane dot products.
const GATES_PER_TASK: usize = 64;

/// `Σ_t x_t · g_t` over `[n·c]` planes of `rest` values: `streams[t]` is `x_t`, `gates[t]` its
/// `n·c` gate values. The products are added in stream order, as `x_1·g_1 + x_2·g_2 + …`, onto
/// the zeroed part.
pub(crate) fn forward(rest: usize, streams: &[&[f32]], gates: &[&[f32]]) -> Vec<f32> {
    let len = streams[0].len();
    filled_in_parts(len, rest, true, 4, |plane, out| {
        vectorized(
            #[inline(always)]
            || {
                for (x, g) in streams.iter().zip(gates) {
                    let (x, g) = (&x[plane * rest..][..rest], g[plane]);
                    out.iter_mut().zip(x).for_each(|(o, &x)| *o += x * g);
                }
            },
        );
    })
}

/// The gradients of one stream's product `x · g` from the sum's gradient `dy`: `dx = dy · g`
/// per plane and `dg = Σ dy · x` per plane.
pub(crate) fn backward(rest: usize, x: &[f32], gate: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let dx = filled_in_parts(x.len(), rest, true, 4, |plane, dx| {
        let (dy, g) = (&dy[plane * rest..][..rest], gate[plane]);
        vectorized(
            #[inline(always)]
            || dx.iter_mut().zip(dy).for_each(|(d, &dy)| *d = dy * g),
        );
    });
    let dg = filled_in_parts(gate.len(), GATES_PER_TASK, true, 1, |block, dg| {
        for (i, dg) in dg.iter_mut().enumerate() {
            let plane = block * GATES_PER_TASK + i;
            let (x, dy) = (&x[plane * rest..][..rest], &dy[plane * rest..][..rest]);
            *dg = vectorized(
                #[inline(always)]
                || dot(x, dy),
            );
        }
    });
    (dx, dg)
}
