//! Pixel operations on packed 8-bit RGB images, with the rounding rules of the libraries the
//! reference augmentations call: Pillow (`ImageOps`, `ImageEnhance`, `Image.transform`,
//! `convert("L")`) and OpenCV (`cv2.blur`). Training augmentations are built from these, so a
//! transform matches its reference pixel for pixel where the reference is deterministic.

/// An RGB image `width × height`, rows packed, 3 bytes per pixel.
pub type Rgb<'a> = &'a [u8];

/// How [`affine`] samples the source image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    /// The source pixel under the mapped centre (Pillow's `NEAREST`).
    Nearest,
    /// Pillow's `BILINEAR` (edge pixels repeated).
    Bilinear,
    /// Pillow's `BICUBIC` (a = −1 cubic, edge pixels repeated).
    Bicubic,
}

/// Applies one 256-entry table per channel, built from that channel's histogram.
pub fn per_channel_lut(rgb: Rgb, lut_for: impl Fn(&[u64; 256]) -> [u8; 256]) -> Vec<u8> {
    let mut out = rgb.to_vec();
    for c in 0..3 {
        let mut histogram = [0u64; 256];
        rgb.iter()
            .skip(c)
            .step_by(3)
            .for_each(|&v| histogram[v as usize] += 1);
        let lut = lut_for(&histogram);
        out.iter_mut()
            .skip(c)
            .step_by(3)
            .for_each(|v| *v = lut[*v as usize]);
    }
    out
}

fn identity_lut() -> [u8; 256] {
    std::array::from_fn(|i| i as u8)
}

/// `ImageOps.autocontrast` (no cut-off).
pub fn autocontrast(rgb: Rgb) -> Vec<u8> {
    per_channel_lut(rgb, |h| {
        let lo = h.iter().position(|&n| n > 0);
        let hi = h.iter().rposition(|&n| n > 0);
        match (lo, hi) {
            (Some(lo), Some(hi)) if hi > lo => {
                let scale = 255.0 / (hi - lo) as f64;
                let offset = -(lo as f64) * scale;
                std::array::from_fn(|i| (i as f64 * scale + offset).clamp(0.0, 255.0) as u8)
            }
            _ => identity_lut(),
        }
    })
}

/// `ImageOps.equalize`: histogram equalization per channel.
pub fn equalize(rgb: Rgb) -> Vec<u8> {
    per_channel_lut(rgb, |h| {
        let used: Vec<u64> = h.iter().copied().filter(|&n| n > 0).collect();
        if used.len() <= 1 {
            return identity_lut();
        }
        let step = (used.iter().sum::<u64>() - used[used.len() - 1]) / 255;
        if step == 0 {
            return identity_lut();
        }
        let mut n = step / 2;
        std::array::from_fn(|i| {
            let v = (n / step).min(255) as u8;
            n += h[i];
            v
        })
    })
}

/// `ImageOps.posterize`: keeps the `bits` high bits of every value.
pub fn posterize(rgb: Rgb, bits: u32) -> Vec<u8> {
    let mask = !((1u32 << (8 - bits.min(8))) - 1) as u8;
    rgb.iter().map(|v| v & mask).collect()
}

/// `ImageOps.solarize`: values at or above `threshold` inverted.
pub fn solarize(rgb: Rgb, threshold: f32) -> Vec<u8> {
    rgb.iter()
        .map(|&v| if (v as f32) < threshold { v } else { 255 - v })
        .collect()
}

/// `ImageOps.invert`.
pub fn invert(rgb: Rgb) -> Vec<u8> {
    rgb.iter().map(|&v| 255 - v).collect()
}

pub use crate::preprocess::{grey_rgb as grayscale, luma};

/// `Image.blend(degenerate, image, factor)`: interpolation truncates, extrapolation clips.
fn blend(degenerate: &[u8], image: Rgb, factor: f32) -> Vec<u8> {
    degenerate
        .iter()
        .zip(image)
        .map(|(&a, &b)| {
            let v = a as f32 + factor * (b as f32 - a as f32);
            if (0.0..=1.0).contains(&factor) {
                v as u8
            } else {
                v.clamp(0.0, 255.0) as u8
            }
        })
        .collect()
}

/// Pillow's `ImageFilter.SMOOTH` (3 × 3, weights 1 … 5 … 1 over 13), border pixels kept.
fn smooth(rgb: Rgb, w: usize, h: usize) -> Vec<u8> {
    let mut out = rgb.to_vec();
    if w < 3 || h < 3 {
        return out;
    }
    let k: [f32; 3] = [1.0 / 13.0, 5.0 / 13.0, 1.0 / 13.0];
    let edge = 1.0f32 / 13.0;
    let at = |x: usize, y: usize, c: usize| rgb[(y * w + x) * 3 + c] as f32;
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            for c in 0..3 {
                // Pillow's order and float32 arithmetic: row below, this row, row above.
                let row = |yy: usize, centre: f32| {
                    at(x - 1, yy, c) * edge + at(x, yy, c) * centre + at(x + 1, yy, c) * edge
                };
                let mut s = 0.5f32;
                s += row(y + 1, edge);
                s += row(y, k[1]);
                s += row(y - 1, edge);
                out[(y * w + x) * 3 + c] = s.clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// One of `ImageEnhance`'s four enhancers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enhance {
    /// Blend with the grey image (`ImageEnhance.Color`).
    Color,
    /// Blend with the mean grey level (`ImageEnhance.Contrast`).
    Contrast,
    /// Blend with black (`ImageEnhance.Brightness`).
    Brightness,
    /// Blend with the smoothed image (`ImageEnhance.Sharpness`).
    Sharpness,
}

/// `ImageEnhance.<kind>(image).enhance(factor)`; 1 leaves the image as it is.
pub fn enhance(rgb: Rgb, w: usize, h: usize, kind: Enhance, factor: f32) -> Vec<u8> {
    let degenerate = match kind {
        Enhance::Color => grayscale(rgb),
        Enhance::Contrast => {
            let n = (rgb.len() / 3).max(1) as f64;
            let sum: f64 = rgb.chunks(3).map(|p| luma(p) as f64).sum();
            vec![(sum / n + 0.5) as u8; rgb.len()]
        }
        Enhance::Brightness => vec![0; rgb.len()],
        Enhance::Sharpness => smooth(rgb, w, h),
    };
    blend(&degenerate, rgb, factor)
}

/// `Image.transform(size, AFFINE, m, resample, fillcolor=fill)`: output pixel (x, y) takes
/// the source at `(m0 x + m1 y + m2, m3 x + m4 y + m5)` of its centre; outside, `fill`.
pub fn affine(
    rgb: Rgb,
    w: usize,
    h: usize,
    m: [f64; 6],
    resample: Resample,
    fill: [u8; 3],
) -> Vec<u8> {
    let mut out: Vec<u8> = (0..w * h).flat_map(|_| fill).collect();
    let mut put = |x: usize, y: usize, sx: isize, sy: isize| {
        if sx >= 0 && sy >= 0 && (sx as usize) < w && (sy as usize) < h {
            let s = (sy as usize * w + sx as usize) * 3;
            out[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&rgb[s..s + 3]);
        }
    };
    match resample {
        Resample::Nearest if m[1] == 0.0 && m[3] == 0.0 => {
            // Pillow's scaling path: positions tabulated by repeated addition in doubles.
            let coord = |v: f64| if v < 0.0 { -1 } else { v as isize };
            let mut xs = Vec::with_capacity(w);
            let mut xo = m[2] + m[0] * 0.5;
            for _ in 0..w {
                xs.push(coord(xo));
                xo += m[0];
            }
            let mut yo = m[5] + m[4] * 0.5;
            for y in 0..h {
                let sy = coord(yo);
                for (x, &sx) in xs.iter().enumerate() {
                    put(x, y, sx, sy);
                }
                yo += m[4];
            }
        }
        Resample::Nearest => {
            // Pillow's general nearest path: 16.16 fixed point.
            let fix = |v: f64| (v * 65536.0 + 0.5).floor() as i64;
            let (a0, a1, a3, a4) = (fix(m[0]), fix(m[1]), fix(m[3]), fix(m[4]));
            let mut a2 = fix(m[2] + m[0] * 0.5 + m[1] * 0.5);
            let mut a5 = fix(m[5] + m[3] * 0.5 + m[4] * 0.5);
            for y in 0..h {
                let (mut xx, mut yy) = (a2, a5);
                for x in 0..w {
                    put(x, y, (xx >> 16) as isize, (yy >> 16) as isize);
                    xx += a0;
                    yy += a3;
                }
                a2 += a1;
                a5 += a4;
            }
        }
        Resample::Bilinear | Resample::Bicubic => {
            for y in 0..h {
                for x in 0..w {
                    let (cx, cy) = (x as f64 + 0.5, y as f64 + 0.5);
                    let sx = m[0] * cx + m[1] * cy + m[2];
                    let sy = m[3] * cx + m[4] * cy + m[5];
                    if sx < 0.0 || sy < 0.0 || sx >= w as f64 || sy >= h as f64 {
                        continue;
                    }
                    let px = if resample == Resample::Bilinear {
                        bilinear(rgb, w, h, sx, sy)
                    } else {
                        bicubic(rgb, w, h, sx, sy)
                    };
                    out[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&px);
                }
            }
        }
    }
    out
}

/// `Image.transform(size, PERSPECTIVE, c, BILINEAR, fillcolor=fill)`: output pixel (x, y)
/// takes the source at `((c0 x + c1 y + c2) / d, (c3 x + c4 y + c5) / d)` of its centre, with
/// `d = c6 x + c7 y + 1`; outside, `fill`.
pub fn perspective(rgb: Rgb, w: usize, h: usize, c: [f64; 8], fill: [u8; 3]) -> Vec<u8> {
    let mut out: Vec<u8> = (0..w * h).flat_map(|_| fill).collect();
    for y in 0..h {
        for x in 0..w {
            let (cx, cy) = (x as f64 + 0.5, y as f64 + 0.5);
            let d = c[6] * cx + c[7] * cy + 1.0;
            let sx = (c[0] * cx + c[1] * cy + c[2]) / d;
            let sy = (c[3] * cx + c[4] * cy + c[5]) / d;
            if sx < 0.0 || sy < 0.0 || sx >= w as f64 || sy >= h as f64 {
                continue;
            }
            let px = bilinear(rgb, w, h, sx, sy);
            out[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&px);
        }
    }
    out
}

/// torchvision's `_get_perspective_coeffs`: the map taking each of the four `end` corners to
/// its `start` corner, solved in double precision and rounded to single precision as
/// torchvision returns it.
pub fn perspective_coefficients(start: [[f64; 2]; 4], end: [[f64; 2]; 4]) -> [f64; 8] {
    let mut a = [[0f64; 9]; 8];
    for (i, (p, q)) in end.iter().zip(&start).enumerate() {
        a[2 * i] = [
            p[0],
            p[1],
            1.0,
            0.0,
            0.0,
            0.0,
            -q[0] * p[0],
            -q[0] * p[1],
            q[0],
        ];
        a[2 * i + 1] = [
            0.0,
            0.0,
            0.0,
            p[0],
            p[1],
            1.0,
            -q[1] * p[0],
            -q[1] * p[1],
            q[1],
        ];
    }
    // Gaussian elimination with partial pivoting on the augmented 8 × 9 system.
    for col in 0..8 {
        let pivot = (col..8)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap_or(col);
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (r, row) in a.iter_mut().enumerate() {
            if r != col && pivot_row[col] != 0.0 {
                let f = row[col] / pivot_row[col];
                for (v, p) in row.iter_mut().zip(&pivot_row).skip(col) {
                    *v -= f * p;
                }
            }
        }
    }
    std::array::from_fn(|i| {
        let v = if a[i][i] != 0.0 {
            a[i][8] / a[i][i]
        } else {
            0.0
        };
        v as f32 as f64
    })
}

fn clip_index(v: isize, n: usize) -> usize {
    v.clamp(0, n as isize - 1) as usize
}

/// Pillow's bilinear filter at source position (sx, sy); rows outside repeat the last inside.
fn bilinear(rgb: Rgb, w: usize, h: usize, sx: f64, sy: f64) -> [u8; 3] {
    let (sx, sy) = (sx - 0.5, sy - 0.5);
    let (x, y) = (sx.floor(), sy.floor());
    let (dx, dy) = (sx - x, sy - y);
    let (x, y) = (x as isize, y as isize);
    let (x0, x1) = (clip_index(x, w), clip_index(x + 1, w));
    std::array::from_fn(|c| {
        let row = |yy: usize| {
            let a = rgb[(yy * w + x0) * 3 + c] as f64;
            let b = rgb[(yy * w + x1) * 3 + c] as f64;
            a + (b - a) * dx
        };
        let v1 = row(clip_index(y, h));
        let v2 = if y + 1 >= 0 && ((y + 1) as usize) < h {
            row((y + 1) as usize)
        } else {
            v1
        };
        (v1 + (v2 - v1) * dy) as u8
    })
}

fn cubic(v1: f64, v2: f64, v3: f64, v4: f64, d: f64) -> f64 {
    let p1 = v2;
    let p2 = -v1 + v3;
    let p3 = 2.0 * (v1 - v2) + v3 - v4;
    let p4 = -v1 + v2 - v3 + v4;
    p1 + d * (p2 + d * (p3 + d * p4))
}

/// Pillow's bicubic filter at source position (sx, sy); rows outside repeat the last inside.
fn bicubic(rgb: Rgb, w: usize, h: usize, sx: f64, sy: f64) -> [u8; 3] {
    let (sx, sy) = (sx - 0.5, sy - 0.5);
    let (x, y) = (sx.floor(), sy.floor());
    let (dx, dy) = (sx - x, sy - y);
    let (x, y) = (x as isize - 1, y as isize - 1);
    let xs = [0, 1, 2, 3].map(|i| clip_index(x + i, w));
    std::array::from_fn(|c| {
        let row = |yy: usize| {
            let p = |i: usize| rgb[(yy * w + xs[i]) * 3 + c] as f64;
            cubic(p(0), p(1), p(2), p(3), dx)
        };
        let v1 = row(clip_index(y, h));
        let inside = |yy: isize| yy >= 0 && (yy as usize) < h;
        let v2 = if inside(y + 1) {
            row((y + 1) as usize)
        } else {
            v1
        };
        let v3 = if inside(y + 2) {
            row((y + 2) as usize)
        } else {
            v2
        };
        let v4 = if inside(y + 3) {
            row((y + 3) as usize)
        } else {
            v3
        };
        let v = cubic(v1, v2, v3, v4, dy);
        if v <= 0.0 {
            0
        } else if v >= 255.0 {
            255
        } else {
            v as u8
        }
    })
}

/// The map of Pillow's `Image.rotate(degrees)` about the image centre (counter-clockwise for
/// positive angles), as `Image.rotate` builds it (cosines rounded to 15 places).
pub fn rotation(degrees: f64, w: usize, h: usize) -> [f64; 6] {
    let angle = -(degrees.rem_euclid(360.0)).to_radians();
    let round15 = |v: f64| (v * 1e15).round() / 1e15;
    let (cos, sin) = (round15(angle.cos()), round15(angle.sin()));
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let mut m = [cos, sin, 0.0, -sin, cos, 0.0];
    m[2] = m[0] * -cx + m[1] * -cy + cx;
    m[5] = m[3] * -cx + m[4] * -cy + cy;
    m
}

/// `Image.rotate(degrees, resample, fillcolor=fill)` without expansion. Pillow turns
/// multiples of 180° (and of 90° on square images) into exact transpositions.
pub fn rotate(
    rgb: Rgb,
    w: usize,
    h: usize,
    degrees: f64,
    resample: Resample,
    fill: [u8; 3],
) -> Vec<u8> {
    let turn = degrees.rem_euclid(360.0);
    if turn == 0.0 {
        return rgb.to_vec();
    }
    if turn == 180.0 {
        return rgb.chunks(3).rev().flatten().copied().collect();
    }
    if (turn == 90.0 || turn == 270.0) && w == h {
        let mut out = vec![0u8; rgb.len()];
        for y in 0..h {
            for x in 0..w {
                // Counter-clockwise 90°: output (x, y) shows source (w − 1 − y, x).
                let (sx, sy) = if turn == 90.0 {
                    (w - 1 - y, x)
                } else {
                    (y, h - 1 - x)
                };
                let s = (sy * w + sx) * 3;
                out[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&rgb[s..s + 3]);
            }
        }
        return out;
    }
    affine(rgb, w, h, rotation(degrees, w, h), resample, fill)
}

/// `cv2.blur(image, (k, k))`: the mean over a k × k box, borders reflected without repeating
/// the edge (BORDER_REFLECT_101), rounded to nearest.
pub fn box_blur(rgb: Rgb, w: usize, h: usize, k: usize) -> Vec<u8> {
    let r = (k / 2) as isize;
    let reflect = |i: isize, n: usize| -> usize {
        let n = n as isize;
        if n == 1 {
            return 0;
        }
        let mut i = i;
        loop {
            if i < 0 {
                i = -i;
            } else if i >= n {
                i = 2 * (n - 1) - i;
            } else {
                return i as usize;
            }
        }
    };
    // Horizontal sums, then vertical sums of those: integers, one rounding at the end.
    let mut rows = vec![0u32; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                rows[(y * w + x) * 3 + c] = (-r..=r)
                    .map(|d| rgb[(y * w + reflect(x as isize + d, w)) * 3 + c] as u32)
                    .sum();
            }
        }
    }
    let scale = 1.0 / (k * k) as f64;
    let mut out = vec![0u8; rgb.len()];
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let s: u32 = (-r..=r)
                    .map(|d| rows[(reflect(y as isize + d, h) * w + x) * 3 + c])
                    .sum();
                out[(y * w + x) * 3 + c] = (s as f64 * scale).round_ties_even().min(255.0) as u8;
            }
        }
    }
    out
}

/// The `(x, y, width, height)` region of an RGB image of width `w`.
pub fn crop(rgb: Rgb, w: usize, (x, y, cw, ch): (usize, usize, usize, usize)) -> Vec<u8> {
    let mut out = Vec::with_capacity(cw * ch * 3);
    for row in y..y + ch {
        out.extend_from_slice(&rgb[(row * w + x) * 3..(row * w + x + cw) * 3]);
    }
    out
}

/// Paints the rectangle `[x0, x1) × [y0, y1)` (clipped to the image) with `color`.
pub fn fill_rect(
    rgb: &mut [u8],
    w: usize,
    h: usize,
    (x0, y0, x1, y1): (usize, usize, usize, usize),
    color: [u8; 3],
) {
    for y in y0.min(h)..y1.min(h) {
        for x in x0.min(w)..x1.min(w) {
            rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&color);
        }
    }
}

/// Mirrors the image left-right in place.
pub fn flip(rgb: &mut [u8], w: usize) {
    for row in rgb.chunks_mut(w * 3) {
        let pixels = row.len() / 3;
        for x in 0..pixels / 2 {
            for c in 0..3 {
                row.swap(x * 3 + c, (pixels - 1 - x) * 3 + c);
            }
        }
    }
}

/// Pillow's RGB → HSV of one pixel (each 0–255).
fn to_hsv(p: &[u8]) -> [u8; 3] {
    let (r, g, b) = (p[0], p[1], p[2]);
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    if max == min {
        return [0, 0, max];
    }
    let cr = (max - min) as f32;
    let s = cr / max as f32;
    let rc = (max - r) as f32 / cr;
    let gc = (max - g) as f32 / cr;
    let bc = (max - b) as f32 / cr;
    let h = if r == max {
        bc - gc
    } else if g == max {
        (2.0 + rc as f64 - bc as f64) as f32
    } else {
        (4.0 + gc as f64 - rc as f64) as f32
    };
    // Pillow computes in doubles and keeps floats: the same steps here.
    let h = ((h as f64 / 6.0 + 1.0) % 1.0) as f32;
    let clip8 = |v: f64| (v as i32).clamp(0, 255) as u8;
    [clip8(h as f64 * 255.0), clip8(s as f64 * 255.0), max]
}

/// Pillow's HSV → RGB of one pixel.
fn from_hsv([h, s, v]: [u8; 3]) -> [u8; 3] {
    if s == 0 {
        return [v; 3];
    }
    let i = (h as f32 as f64 * 6.0 / 255.0).floor() as i32;
    let f = (h as f32 as f64 * 6.0 / 255.0 - i as f32 as f64) as f32;
    let fs = (s as f32 as f64 / 255.0) as f32;
    let v32 = v as f32 as f64;
    let clip8 = |x: f64| (x.round() as i32).clamp(0, 255) as u8;
    let p = clip8(v32 * (1.0 - fs as f64));
    let q = clip8(v32 * (1.0 - (fs * f) as f64));
    let t = clip8(v32 * (1.0 - fs as f64 * (1.0 - f as f64)));
    match i % 6 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// torchvision's `adjust_hue` on a Pillow image: the HSV hue byte shifted by
/// `factor` × 255 (truncated, wrapping), then back to RGB.
pub fn adjust_hue(rgb: Rgb, factor: f32) -> Vec<u8> {
    let shift = (factor * 255.0) as i32 as u8;
    rgb.chunks(3)
        .flat_map(|p| {
            let [h, s, v] = to_hsv(p);
            from_hsv([h.wrapping_add(shift), s, v])
        })
        .collect()
}
