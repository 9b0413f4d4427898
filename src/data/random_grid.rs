//! deep-object-reid's `RandomGrid`: a lattice of slightly slanted lines, drawn on a canvas
//! eight times the image's size, turned about its centre, and a window of the image's size
//! cut from near the centre; the image takes the grid's colour wherever the window is not
//! black.

use crate::data::drawing::{Canvas, line};
use crate::data::random_figures::inclusive;
use crate::data::rng::Rng;
use crate::data::transform_sections::RandomGrid;

/// One grid's draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridDraw {
    /// Spacing of the lines (and the rise of each across the canvas), pixels.
    pub spacing: usize,
    /// Line thickness, pixels.
    pub thickness: u32,
    /// Counter-clockwise turn, whole degrees.
    pub angle: i32,
    /// Horizontal shift of the window from the canvas centre (deep-object-reid draws it from
    /// −16..=16; its vertical shift is always 16, from `randint(16, 16)`).
    pub shift_x: i64,
    /// The grid's colour.
    pub color: [u8; 3],
}

impl GridDraw {
    /// Draws a grid as deep-object-reid does: colour (unless fixed), spacing, thickness,
    /// angle, then the window's horizontal shift.
    pub fn draw(g: &RandomGrid, rng: &mut Rng) -> Self {
        let color = g
            .color
            .unwrap_or_else(|| numpy_color(std::array::from_fn(|_| rng.below(257))));
        Self {
            spacing: inclusive(g.grid_size, rng) as usize,
            thickness: inclusive(g.thickness, rng) as u32,
            angle: inclusive(g.angle, rng) as i32,
            shift_x: inclusive((-16, 16), rng),
            color,
        }
    }
}

/// A colour drawn as deep-object-reid draws it (`randint(0, 256)` per channel) as its
/// `np.where(...).astype('uint8')` stores it: 256 wraps to 0.
pub fn numpy_color(drawn: [usize; 3]) -> [u8; 3] {
    drawn.map(|v| v as u8)
}

/// The window's vertical shift from the canvas centre (deep-object-reid's `randint(16, 16)`).
const SHIFT_Y: i64 = 16;

/// Paints the grid over an RGB image; images under 2 × 2 pixels are left as they are
/// (deep-object-reid's window would be empty). For sides under 5 pixels its window runs off the
/// canvas, where NumPy's slicing shortens it and reid reads black.
pub fn draw_grid(rgb: &mut [u8], w: usize, h: usize, draw: &GridDraw) {
    if w < 2 || h < 2 {
        return;
    }
    for (px, &on) in rgb.chunks_exact_mut(3).zip(&grid_mask(w, h, draw)) {
        if on {
            px.copy_from_slice(&draw.color);
        }
    }
}

/// Where the grid covers a w × h image (w, h ≥ 2), row-major.
pub fn grid_mask(w: usize, h: usize, draw: &GridDraw) -> Vec<bool> {
    let (cw, ch) = (8 * w as i64, 8 * h as i64);
    let centre = (cw / 2, ch / 2);
    let rotation = (draw.angle > 0).then(|| Rotation::about(centre, draw.angle as f64));
    // The window: rows and columns centre ± half the side (an odd side loses one).
    let (ww, wh) = (2 * (w / 2), 2 * (h / 2));
    let (x0, y0) = (
        centre.0 + draw.shift_x - (w / 2) as i64,
        centre.1 + SHIFT_Y - (h / 2) as i64,
    );
    // Only the part of the canvas the window reads is stored (the lines are still drawn and
    // clipped as on the whole canvas): 64 × the image's area would otherwise be allocated.
    let region = read_region(rotation.as_ref(), (x0, y0, ww, wh), (cw, ch));
    let (rx, ry, rw, rh) = region;
    let mut stored = vec![0u8; rw * rh];
    let mut canvas = Canvas::windowed(&mut stored, (cw as usize, ch as usize), region, 1);
    let step = draw.spacing.max(1);
    let s = step as i64;
    // A line whose box (widened by its thickness) misses the stored region colours nothing
    // there: most of the canvas's lines are skipped.
    let reach = draw.thickness as i64 + 1;
    let misses = |lo: i64, hi: i64, start: i64, len: usize| {
        hi + reach < start || lo - reach >= start + len as i64
    };
    for i in (0..ch).step_by(step) {
        if !misses(i, i + s, ry, rh) {
            line(&mut canvas, (0, i), (cw, i + s), &[255], draw.thickness);
        }
    }
    for i in (0..cw).step_by(step) {
        if !misses(i, i + s, rx, rw) {
            line(&mut canvas, (i, 0), (i + s, ch), &[255], draw.thickness);
        }
    }
    let read = |x: i64, y: i64| -> u8 {
        let (x, y) = (x - rx, y - ry);
        if (0..rw as i64).contains(&x) && (0..rh as i64).contains(&y) {
            stored[y as usize * rw + x as usize]
        } else {
            0
        }
    };
    let mut window = vec![0u8; ww * wh];
    for (y, row) in window.chunks_exact_mut(ww).enumerate() {
        for (x, v) in row.iter_mut().enumerate() {
            let (px, py) = (x0 + x as i64, y0 + y as i64);
            *v = match &rotation {
                Some(r) => r.sample(&read, (px, py)),
                None => read(px, py),
            };
        }
    }
    let window = if (ww, wh) == (w, h) {
        window
    } else {
        resize_linear(&window, (ww, wh), (w, h))
    };
    window.iter().map(|&v| v != 0).collect()
}

/// The canvas pixels (x, y, width, height) the window reads: itself, or, turned, the box
/// around where its corners come from, a pixel wider for the bilinear taps; within the canvas.
fn read_region(
    rotation: Option<&Rotation>,
    (x0, y0, ww, wh): (i64, i64, usize, usize),
    (cw, ch): (i64, i64),
) -> (i64, i64, usize, usize) {
    let (x1, y1) = (x0 + ww as i64 - 1, y0 + wh as i64 - 1);
    let (lo, hi) = match rotation {
        None => ((x0, y0), (x1, y1)),
        Some(r) => {
            let corners = [(x0, y0), (x1, y0), (x0, y1), (x1, y1)].map(|p| r.source(p));
            let fold = |f: fn(f64, f64) -> f64, pick: fn(&(f64, f64)) -> f64, start: f64| {
                corners.iter().map(pick).fold(start, f)
            };
            let (minx, maxx) = (
                fold(f64::min, |p| p.0, f64::MAX),
                fold(f64::max, |p| p.0, f64::MIN),
            );
            let (miny, maxy) = (
                fold(f64::min, |p| p.1, f64::MAX),
                fold(f64::max, |p| p.1, f64::MIN),
            );
            (
                (minx.floor() as i64 - 1, miny.floor() as i64 - 1),
                (maxx.floor() as i64 + 2, maxy.floor() as i64 + 2),
            )
        }
    };
    let (left, top) = (lo.0.clamp(0, cw), lo.1.clamp(0, ch));
    let (right, bottom) = ((hi.0 + 1).clamp(0, cw), (hi.1 + 1).clamp(0, ch));
    (left, top, (right - left) as usize, (bottom - top) as usize)
}

/// `cv2.warpAffine` of `cv2.getRotationMatrix2D(centre, angle, 1)`, bilinear, black outside:
/// each output pixel reads the canvas at the inverse turn.
struct Rotation {
    /// Inverse map, rows (a, b, c): source = a·x + b·y + c.
    inverse: [[f64; 3]; 2],
}

impl Rotation {
    fn about((cx, cy): (i64, i64), degrees: f64) -> Self {
        let (cx, cy) = (cx as f64, cy as f64);
        let (alpha, beta) = (degrees.to_radians().cos(), degrees.to_radians().sin());
        // getRotationMatrix2D, then invertAffineTransform as OpenCV computes them.
        let m = [
            [alpha, beta, (1.0 - alpha) * cx - beta * cy],
            [-beta, alpha, beta * cx + (1.0 - alpha) * cy],
        ];
        let d = 1.0 / (m[0][0] * m[1][1] - m[0][1] * m[1][0]);
        let (a11, a22, a12, a21) = (m[1][1] * d, m[0][0] * d, -m[0][1] * d, -m[1][0] * d);
        let b1 = -a11 * m[0][2] - a12 * m[1][2];
        let b2 = -a21 * m[0][2] - a22 * m[1][2];
        Self {
            inverse: [[a11, a12, b1], [a21, a22, b2]],
        }
    }

    /// Where output pixel (x, y) reads the canvas.
    fn source(&self, (x, y): (i64, i64)) -> (f64, f64) {
        let [r0, r1] = &self.inverse;
        let (x, y) = (x as f64, y as f64);
        (r0[0] * x + r0[1] * y + r0[2], r1[0] * x + r1[1] * y + r1[2])
    }

    /// Output pixel (x, y): the canvas (`read`, black outside it) sampled bilinearly.
    fn sample(&self, read: &impl Fn(i64, i64) -> u8, (x, y): (i64, i64)) -> u8 {
        let (sx, sy) = self.source((x, y));
        let (fx, fy) = (sx.floor(), sy.floor());
        let (ax, ay) = ((sx - fx) as f32, (sy - fy) as f32);
        let (ix, iy) = (fx as i64, fy as i64);
        let at = |dx: i64, dy: i64| -> f32 { read(ix + dx, iy + dy) as f32 };
        let top = at(0, 0) * (1.0 - ax) + at(1, 0) * ax;
        let bottom = at(0, 1) * (1.0 - ax) + at(1, 1) * ax;
        (top * (1.0 - ay) + bottom * ay)
            .round_ties_even()
            .min(255.0) as u8
    }
}

/// `cv2.resize(..., INTER_LINEAR)` of one 8-bit channel (half-pixel centres, edges
/// replicated), rounded.
fn resize_linear(src: &[u8], (sw, sh): (usize, usize), (dw, dh): (usize, usize)) -> Vec<u8> {
    let taps = |d: usize, s: usize, n: usize| -> (usize, usize, f32) {
        let f = ((d as f64 + 0.5) * s as f64 / n as f64 - 0.5).max(0.0);
        let i = (f.floor() as usize).min(s - 1);
        (i, (i + 1).min(s - 1), (f - i as f64).min(1.0) as f32)
    };
    let mut out = Vec::with_capacity(dw * dh);
    for y in 0..dh {
        let (y0, y1, fy) = taps(y, sh, dh);
        for x in 0..dw {
            let (x0, x1, fx) = taps(x, sw, dw);
            let v = |xx: usize, yy: usize| src[yy * sw + xx] as f32;
            let top = v(x0, y0) * (1.0 - fx) + v(x1, y0) * fx;
            let bottom = v(x0, y1) * (1.0 - fx) + v(x1, y1) * fx;
            out.push((top * (1.0 - fy) + bottom * fy).round_ties_even() as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unturned_grid_is_the_canvas_window() {
        let draw = GridDraw {
            spacing: 24,
            thickness: 1,
            angle: 0,
            shift_x: 0,
            color: [1, 2, 3],
        };
        let mask = grid_mask(40, 40, &draw);
        // Lines cross the 40 × 40 window about every 24 pixels each way: a few percent of it.
        let share = mask.iter().filter(|&&m| m).count() as f64 / mask.len() as f64;
        assert!((0.03..0.2).contains(&share), "{share}");
        let mut rgb = vec![9u8; 40 * 40 * 3];
        draw_grid(&mut rgb, 40, 40, &draw);
        let painted = rgb.chunks_exact(3).filter(|p| p == &[1, 2, 3]).count();
        assert_eq!(painted, mask.iter().filter(|&&m| m).count());
    }

    #[test]
    fn tiny_images_are_left_alone() {
        let mut rgb = vec![7u8; 3];
        let draw = GridDraw {
            spacing: 24,
            thickness: 1,
            angle: 30,
            shift_x: 3,
            color: [0; 3],
        };
        draw_grid(&mut rgb, 1, 1, &draw);
        assert_eq!(rgb, vec![7; 3]);
    }
}
