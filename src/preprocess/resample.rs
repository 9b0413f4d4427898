//! Bilinear resampling as Pillow's `Image.resize(size, BILINEAR)` computes it (torchvision's
//! `Resize` on PIL images, hence torchreid's test transform): a separable triangle filter whose
//! support widens when downscaling (antialiasing), 22-bit fixed-point weights, a horizontal
//! pass then a vertical pass, each rounded to 8 bits.

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// For each output pixel: first input index and fixed-point weights.
struct Coefficients {
    bounds: Vec<(usize, usize)>,
    weights: Vec<Vec<i32>>,
}

fn coefficients(in_size: usize, out_size: usize) -> Coefficients {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = Vec::with_capacity(out_size);
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        // C's truncating casts, as Pillow.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let ss = 1.0 / filterscale;
        let k: Vec<f64> = (xmin..xmax)
            .map(|x| {
                let t = ((x as f64 - center + 0.5) * ss).abs();
                if t < 1.0 { 1.0 - t } else { 0.0 }
            })
            .collect();
        let total: f64 = k.iter().sum();
        let fixed = k
            .iter()
            .map(|&w| {
                let w = if total != 0.0 { w / total } else { w };
                let scaled = w * (1u32 << PRECISION_BITS) as f64;
                (if scaled < 0.0 {
                    scaled - 0.5
                } else {
                    scaled + 0.5
                }) as i32
            })
            .collect();
        bounds.push((xmin, xmax - xmin));
        weights.push(fixed);
    }
    Coefficients { bounds, weights }
}

fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Half a unit in the last place: Pillow's rounding before the shift.
const ROUND: i32 = 1 << (PRECISION_BITS - 1);

/// Resizes a packed RGB image (`width`×`height`×3 bytes) to `out_w`×`out_h`.
///
/// Accumulates in `i32` as Pillow does (a bilinear filter has no negative weights, and
/// 255 × 2²² plus rounding stays below 2³¹).
pub fn resize_rgb(src: &[u8], width: usize, height: usize, out_w: usize, out_h: usize) -> Vec<u8> {
    debug_assert_eq!(src.len(), width * height * 3);
    let horizontal = if out_w != width {
        let c = coefficients(width, out_w);
        let mut out = vec![0u8; height * out_w * 3];
        for (row, dst) in src
            .chunks_exact(width * 3)
            .zip(out.chunks_exact_mut(out_w * 3))
        {
            for ((&(xmin, n), k), px) in
                c.bounds.iter().zip(&c.weights).zip(dst.chunks_exact_mut(3))
            {
                let taps = &row[xmin * 3..(xmin + n) * 3];
                let (mut r, mut g, mut b) = (ROUND, ROUND, ROUND);
                for (p, &w) in taps.chunks_exact(3).zip(k) {
                    r += p[0] as i32 * w;
                    g += p[1] as i32 * w;
                    b += p[2] as i32 * w;
                }
                px.copy_from_slice(&[clip8(r), clip8(g), clip8(b)]);
            }
        }
        out
    } else {
        src.to_vec()
    };
    if out_h == height {
        return horizontal;
    }
    let c = coefficients(height, out_h);
    let stride = out_w * 3;
    let mut out = vec![0u8; out_h * stride];
    let mut acc = vec![0i32; stride];
    for ((&(ymin, n), k), dst) in c
        .bounds
        .iter()
        .zip(&c.weights)
        .zip(out.chunks_exact_mut(stride))
    {
        acc.fill(ROUND);
        for (i, &w) in k.iter().enumerate().take(n) {
            let row = &horizontal[(ymin + i) * stride..(ymin + i + 1) * stride];
            // Whole rows at a time: this loop vectorizes.
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += p as i32 * w;
            }
        }
        for (d, &a) in dst.iter_mut().zip(&acc) {
            *d = clip8(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_identity_and_constant_stays_constant() {
        let img: Vec<u8> = (0..4 * 3 * 3).map(|i| (i * 7 % 256) as u8).collect();
        assert_eq!(resize_rgb(&img, 4, 3, 4, 3), img);
        let flat = vec![77u8; 50 * 40 * 3];
        assert!(resize_rgb(&flat, 50, 40, 13, 29).iter().all(|&v| v == 77));
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(100, 37), (37, 100), (640, 128), (3, 1)] {
            let c = coefficients(i, o);
            for k in &c.weights {
                let sum: i64 = k.iter().map(|&w| w as i64).sum();
                assert!(
                    (sum - (1 << PRECISION_BITS)).abs() <= k.len() as i64,
                    "{i}->{o}"
                );
            }
        }
    }
}
