//! OpenCV's 8-connected drawing — `cv2.line`, `cv2.rectangle` and `cv2.circle` on 8-bit
//! images — the primitives deep-object-reid's `random_grid` and `random_figures` draw with.
//! The same calls colour the same pixels: thin lines are OpenCV's integer Bresenham walk
//! (after its clipping), thick lines its fixed-point quadrilateral (16 fraction bits) with
//! round caps, circles its midpoint walk, thick circles its 5–90° polygons of thick segments.

/// Fraction bits of OpenCV's fixed-point drawing coordinates.
const SHIFT: u32 = 16;
const ONE: i64 = 1 << SHIFT;
const HALF: i64 = ONE >> 1;

/// An interleaved 8-bit image being drawn on (`channels` values per pixel).
pub struct Canvas<'a> {
    /// Row-major pixels.
    pub px: &'a mut [u8],
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Values per pixel (the colour's length).
    pub channels: usize,
}

impl<'a> Canvas<'a> {
    /// A canvas of `width × height` of which only `window` (x, y, w, h) is stored, in `px`:
    /// drawing clips as on the whole canvas (so the same pixels are coloured) and keeps what
    /// falls in the window.
    pub fn windowed(
        px: &'a mut [u8],
        (width, height): (usize, usize),
        window: (i64, i64, usize, usize),
        channels: usize,
    ) -> WindowedCanvas<'a> {
        WindowedCanvas {
            stored: Canvas {
                px,
                width: window.2,
                height: window.3,
                channels,
            },
            size: (width as i64, height as i64),
            origin: (window.0, window.1),
        }
    }
}

/// A canvas whose pixels are stored only in a window (see [`Canvas::windowed`]).
pub struct WindowedCanvas<'a> {
    stored: Canvas<'a>,
    size: (i64, i64),
    origin: (i64, i64),
}

/// What the rasterizers draw on: a size to clip to, and pixels to colour.
pub trait Surface {
    /// The size drawing clips to.
    fn size(&self) -> (i64, i64);
    /// Colours pixel (x, y) when it is stored.
    fn put(&mut self, x: i64, y: i64, color: &[u8]);
    /// Pixels x1..=x2 of row y, clipped.
    fn hline(&mut self, y: i64, x1: i64, x2: i64, color: &[u8]) {
        let (w, h) = self.size();
        if !(0..h).contains(&y) {
            return;
        }
        for x in x1.max(0)..=x2.min(w - 1) {
            self.put(x, y, color);
        }
    }
}

impl Surface for Canvas<'_> {
    fn size(&self) -> (i64, i64) {
        (self.width as i64, self.height as i64)
    }

    fn put(&mut self, x: i64, y: i64, color: &[u8]) {
        if (0..self.width as i64).contains(&x) && (0..self.height as i64).contains(&y) {
            let at = (y as usize * self.width + x as usize) * self.channels;
            self.px[at..at + self.channels].copy_from_slice(color);
        }
    }
}

impl Surface for WindowedCanvas<'_> {
    fn size(&self) -> (i64, i64) {
        self.size
    }

    fn put(&mut self, x: i64, y: i64, color: &[u8]) {
        self.stored.put(x - self.origin.0, y - self.origin.1, color);
    }

    fn hline(&mut self, y: i64, x1: i64, x2: i64, color: &[u8]) {
        let (w, h) = self.size;
        if !(0..h).contains(&y) {
            return;
        }
        // Only the stored part of the row is visited.
        let (left, right) = (self.origin.0, self.origin.0 + self.stored.width as i64 - 1);
        for x in x1.max(0).max(left)..=x2.min(w - 1).min(right) {
            self.put(x, y, color);
        }
    }
}

type Point = (i64, i64);

/// `cv2.line(img, p1, p2, color, thickness)` (8-connected).
pub fn line(canvas: &mut impl Surface, p1: Point, p2: Point, color: &[u8], thickness: u32) {
    thick_line(canvas, p1, p2, color, thickness, 3, 0);
}

/// `cv2.rectangle(img, p1, p2, color, thickness)`: the closed outline through both corners.
pub fn rectangle(canvas: &mut impl Surface, p1: Point, p2: Point, color: &[u8], thickness: u32) {
    let corners = [p1, (p2.0, p1.1), p2, (p1.0, p2.1)];
    poly_line(canvas, &corners, true, color, thickness, 0);
}

/// `cv2.circle(img, centre, radius, color, thickness)` (outline).
pub fn circle(canvas: &mut impl Surface, centre: Point, radius: u32, color: &[u8], thickness: u32) {
    if thickness > 1 {
        let fixed = |v: i64| v << SHIFT;
        let outline = circle_polygon((fixed(centre.0), fixed(centre.1)), fixed(radius as i64));
        poly_line(canvas, &outline, false, color, thickness, SHIFT);
    } else {
        midpoint_circle(canvas, centre, radius as i64, color, false);
    }
}

/// OpenCV's `clipLine`: the part of p1–p2 inside a w × h box, in integer steps; false when
/// none of it is.
fn clip_line((w, h): (i64, i64), p1: &mut Point, p2: &mut Point) -> bool {
    if w <= 0 || h <= 0 {
        return false;
    }
    let (right, bottom) = (w - 1, h - 1);
    let code = |x: i64, y: i64| {
        (x < 0) as u8 | ((x > right) as u8) << 1 | ((y < 0) as u8) << 2 | ((y > bottom) as u8) << 3
    };
    let (mut c1, mut c2) = (code(p1.0, p1.1), code(p2.0, p2.1));
    if c1 & c2 == 0 && c1 | c2 != 0 {
        if c1 & 12 != 0 {
            let a = if c1 < 8 { 0 } else { bottom };
            p1.0 += (a - p1.1) * (p2.0 - p1.0) / (p2.1 - p1.1);
            p1.1 = a;
            c1 = code(p1.0, 0) & 3;
        }
        if c2 & 12 != 0 {
            let a = if c2 < 8 { 0 } else { bottom };
            p2.0 += (a - p2.1) * (p2.0 - p1.0) / (p2.1 - p1.1);
            p2.1 = a;
            c2 = code(p2.0, 0) & 3;
        }
        if c1 & c2 == 0 && c1 | c2 != 0 {
            if c1 != 0 {
                let a = if c1 == 1 { 0 } else { right };
                p1.1 += (a - p1.0) * (p2.1 - p1.1) / (p2.0 - p1.0);
                p1.0 = a;
                c1 = 0;
            }
            if c2 != 0 {
                let a = if c2 == 1 { 0 } else { right };
                p2.1 += (a - p2.0) * (p2.1 - p1.1) / (p2.0 - p1.0);
                p2.0 = a;
                c2 = 0;
            }
        }
    }
    c1 | c2 == 0
}

/// OpenCV's `LineIterator` (8-connected, left to right) over whole-pixel end points.
fn bresenham(canvas: &mut impl Surface, mut p1: Point, mut p2: Point, color: &[u8]) {
    let (w, h) = canvas.size();
    let inside = |p: Point| (0..w).contains(&p.0) && (0..h).contains(&p.1);
    let clipped = inside(p1) && inside(p2) || clip_line((w, h), &mut p1, &mut p2);
    if !clipped {
        return;
    }
    if p2.0 < p1.0 {
        std::mem::swap(&mut p1, &mut p2);
    }
    let (dx, dy) = (p2.0 - p1.0, p2.1 - p1.1);
    let sy = if dy < 0 { -1 } else { 1 };
    let (major, minor, long, short) = if dy.abs() > dx {
        ((0, sy), (1, 0), dy.abs(), dx)
    } else {
        ((1, 0), (0, sy), dx, dy.abs())
    };
    let mut err = long - 2 * short;
    let (mut x, mut y) = p1;
    for _ in 0..=long {
        canvas.put(x, y, color);
        let step_minor = err < 0;
        err += -2 * short + if step_minor { 2 * long } else { 0 };
        x += major.0 + if step_minor { minor.0 } else { 0 };
        y += major.1 + if step_minor { minor.1 } else { 0 };
    }
}

/// OpenCV's `Line2`: a thin line between fixed-point end points (a polygon's outline).
fn fixed_line(canvas: &mut impl Surface, mut p1: Point, mut p2: Point, color: &[u8]) {
    let (w, h) = canvas.size();
    if !clip_line((w << SHIFT, h << SHIFT), &mut p1, &mut p2) {
        return;
    }
    let (dx, dy) = (p2.0 - p1.0, p2.1 - p1.1);
    let (ax, ay) = (dx.abs(), dy.abs());
    let x_major = ax > ay;
    // Walk from the end with the smaller major coordinate.
    if (x_major && dx < 0) || (!x_major && dy < 0) {
        std::mem::swap(&mut p1, &mut p2);
    }
    let (dx, dy) = (p2.0 - p1.0, p2.1 - p1.1);
    canvas.put((p2.0 + HALF) >> SHIFT, (p2.1 + HALF) >> SHIFT, color);
    let (mut x, mut y) = (p1.0 + HALF, p1.1 + HALF);
    if x_major {
        let y_step = (dy << SHIFT) / (ax | 1);
        x >>= SHIFT;
        for _ in 0..=(dx >> SHIFT) {
            canvas.put(x, y >> SHIFT, color);
            x += 1;
            y += y_step;
        }
    } else {
        let x_step = (dx << SHIFT) / (ay | 1);
        y >>= SHIFT;
        for _ in 0..=(dy >> SHIFT) {
            canvas.put(x >> SHIFT, y, color);
            x += x_step;
            y += 1;
        }
    }
}

/// OpenCV's `FillConvexPoly` for fixed-point vertices: the outline, then rows between two
/// edge walkers that step down from the topmost vertex.
fn fill_convex(canvas: &mut impl Surface, v: &[Point], color: &[u8]) {
    let n = v.len();
    let mut previous = v[n - 1];
    for &p in v {
        fixed_line(canvas, previous, p, color);
        previous = p;
    }
    let round = |c: i64| (c + HALF) >> SHIFT;
    let top = (0..n).min_by_key(|&i| (v[i].1, i)).unwrap_or(0);
    let (xmin, xmax) = v.iter().fold((i64::MAX, i64::MIN), |(lo, hi), p| {
        (lo.min(p.0), hi.max(p.0))
    });
    let (ymin, ymax) = v.iter().fold((i64::MAX, i64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let (xmin, xmax, ymin, ymax) = (round(xmin), round(xmax), round(ymin), round(ymax));
    let (w, h) = canvas.size();
    if n < 3 || xmax < 0 || ymax < 0 || xmin >= w || ymin >= h {
        return;
    }
    let ymax = ymax.min(h - 1);
    struct Walker {
        idx: usize,
        step: usize,
        x: i64,
        dx: i64,
        ye: i64,
    }
    let mut edge = [1, n - 1].map(|step| Walker {
        idx: top,
        step,
        x: -ONE,
        dx: 0,
        ye: ymin,
    });
    let mut edges = n as i64;
    let mut y = ymin;
    loop {
        for e in edge.iter_mut() {
            if y < e.ye {
                continue;
            }
            let mut idx0 = e.idx;
            let mut idx = (idx0 + e.step) % n;
            loop {
                let more = edges > 0;
                edges -= 1;
                if !more {
                    break;
                }
                let ty = round(v[idx].1);
                if ty > y {
                    let (xs, xe) = (v[idx0].0, v[idx].0);
                    e.ye = ty;
                    e.dx = ((xe - xs) * 2 + (ty - y)) / (2 * (ty - y));
                    e.x = xs;
                    e.idx = idx;
                    break;
                }
                idx0 = idx;
                idx = (idx + e.step) % n;
            }
        }
        if edges < 0 {
            break;
        }
        if y >= 0 {
            let (left, right) = if edge[0].x > edge[1].x {
                (1, 0)
            } else {
                (0, 1)
            };
            let x1 = (edge[left].x + HALF) >> SHIFT;
            let x2 = (edge[right].x + HALF) >> SHIFT;
            if x2 >= 0 && x1 < w {
                canvas.hline(y, x1, x2, color);
            }
        }
        edge[0].x += edge[0].dx;
        edge[1].x += edge[1].dx;
        y += 1;
        if y > ymax {
            break;
        }
    }
}

/// OpenCV's `Circle`: the midpoint walk over one octant, mirrored; filled as row spans.
fn midpoint_circle(
    canvas: &mut impl Surface,
    (cx, cy): Point,
    radius: i64,
    color: &[u8],
    fill: bool,
) {
    let (mut err, mut dx, mut dy, mut plus, mut minus) = (0i64, radius, 0i64, 1i64, 2 * radius - 1);
    while dx >= dy {
        for (half, row) in [(dx, dy), (dy, dx)] {
            for y in [cy - row, cy + row] {
                if fill {
                    canvas.hline(y, cx - half, cx + half, color);
                } else {
                    canvas.put(cx - half, y, color);
                    canvas.put(cx + half, y, color);
                }
            }
        }
        dy += 1;
        err += plus;
        plus += 2;
        if err > 0 {
            err -= minus;
            dx -= 1;
            minus -= 2;
        }
    }
}

/// OpenCV's `ThickLine`: end points with `shift` fraction bits; a thick line is a
/// quadrilateral of half-width ⌈thickness / 2⌉ with a filled circle at the ends `caps` names
/// (bit 0: the first, bit 1: the second).
fn thick_line(
    canvas: &mut impl Surface,
    p0: Point,
    p1: Point,
    color: &[u8],
    thickness: u32,
    caps: u8,
    shift: u32,
) {
    let up = |p: Point| (p.0 << (SHIFT - shift), p.1 << (SHIFT - shift));
    let (p0, p1) = (up(p0), up(p1));
    if thickness <= 1 {
        let round = |p: Point| ((p.0 + HALF) >> SHIFT, (p.1 + HALF) >> SHIFT);
        if shift == 0 {
            bresenham(canvas, round(p0), round(p1), color);
        } else {
            fixed_line(canvas, p0, p1, color);
        }
        return;
    }
    let half = (thickness as i64) << (SHIFT - 1);
    let dx = (p0.0 - p1.0) as f64 / ONE as f64;
    let dy = (p1.1 - p0.1) as f64 / ONE as f64;
    let r = dx * dx + dy * dy;
    if r.abs() > f64::EPSILON {
        let odd = (thickness & 1) as f64;
        let r = (half as f64 + odd * ONE as f64 * 0.5) / r.sqrt();
        let dp = (
            (dy * r).round_ties_even() as i64,
            (dx * r).round_ties_even() as i64,
        );
        let quad = [
            (p0.0 + dp.0, p0.1 + dp.1),
            (p0.0 - dp.0, p0.1 - dp.1),
            (p1.0 - dp.0, p1.1 - dp.1),
            (p1.0 + dp.0, p1.1 + dp.1),
        ];
        fill_convex(canvas, &quad, color);
    }
    for (bit, end) in [(1, p0), (2, p1)] {
        if caps & bit != 0 {
            let centre = ((end.0 + HALF) >> SHIFT, (end.1 + HALF) >> SHIFT);
            midpoint_circle(canvas, centre, (half + HALF) >> SHIFT, color, true);
        }
    }
}

/// OpenCV's `PolyLine`: thick segments through `v`; each segment caps its far end, the first
/// of an open polyline also its near one.
fn poly_line(
    canvas: &mut impl Surface,
    v: &[Point],
    closed: bool,
    color: &[u8],
    t: u32,
    shift: u32,
) {
    let Some(&last) = v.last() else { return };
    let mut p0 = if closed { last } else { v[0] };
    let mut caps = if closed { 2 } else { 3 };
    for &p in &v[usize::from(!closed)..] {
        thick_line(canvas, p0, p, color, t, caps, shift);
        p0 = p;
        caps = 2;
    }
}

/// OpenCV's sine table entry for whole degrees (seven decimals, single precision).
fn table_sin(degrees: i64) -> f64 {
    let exact = (degrees as f64).to_radians().sin();
    ((exact * 1e7).round() / 1e7) as f32 as f64
}

/// `ellipse2Poly` + `EllipseEx` for a full circle in fixed point: vertices every 90, 30, 18 or
/// 5 degrees as the radius grows, consecutive duplicates dropped.
fn circle_polygon(centre: Point, radius: i64) -> Vec<Point> {
    let r = (radius + HALF) >> SHIFT;
    let delta = match r {
        0..=2 => 90,
        3..=9 => 30,
        10..=14 => 18,
        _ => 5,
    };
    let mut v: Vec<Point> = Vec::new();
    for angle in (0..=360).step_by(delta) {
        let x = centre.0 as f64 + radius as f64 * table_sin(450 - angle);
        let y = centre.1 as f64 + radius as f64 * table_sin(angle);
        let fixed = |c: f64| {
            let whole = ((c / ONE as f64).round_ties_even() as i64) << SHIFT;
            whole + (c - whole as f64).round_ties_even() as i64
        };
        let p = (fixed(x), fixed(y));
        if v.last() != Some(&p) {
            v.push(p);
        }
    }
    if v.len() == 1 {
        v = vec![centre, centre];
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drawn(w: usize, h: usize, draw: impl FnOnce(&mut Canvas)) -> Vec<u8> {
        let mut px = vec![0u8; w * h];
        draw(&mut Canvas {
            px: &mut px,
            width: w,
            height: h,
            channels: 1,
        });
        px
    }

    #[test]
    fn a_thin_line_has_one_pixel_per_step_of_its_longer_axis() {
        let px = drawn(20, 10, |c| line(c, (1, 1), (17, 6), &[9], 1));
        assert_eq!(px.iter().filter(|&&v| v == 9).count(), 17);
        assert_eq!(px[20 + 1], 9);
        assert_eq!(px[6 * 20 + 17], 9);
    }

    /// A canvas stored only in a window colours there what the whole canvas colours.
    #[test]
    fn a_windowed_canvas_holds_the_whole_canvas_window() {
        let figures = |s: &mut dyn FnMut(Point, Point, u32, u32)| {
            s((-3, 2), (70, 41), 1, 0);
            s((5, 50), (60, -8), 4, 1);
            s((30, 20), (0, 0), 3, 2);
            s((12, 33), (0, 0), 1, 2);
        };
        let (w, h) = (64usize, 48usize);
        let mut whole = vec![0u8; w * h];
        let mut c = Canvas {
            px: &mut whole,
            width: w,
            height: h,
            channels: 1,
        };
        figures(&mut |p, q, t, kind| match kind {
            0 => line(&mut c, p, q, &[1], t),
            1 => rectangle(&mut c, p, q, &[2], t),
            _ => circle(&mut c, p, 14, &[3], t),
        });
        let (x0, y0, ww, wh) = (9i64, 5i64, 30usize, 22usize);
        let mut part = vec![0u8; ww * wh];
        let mut c = Canvas::windowed(&mut part, (w, h), (x0, y0, ww, wh), 1);
        figures(&mut |p, q, t, kind| match kind {
            0 => line(&mut c, p, q, &[1], t),
            1 => rectangle(&mut c, p, q, &[2], t),
            _ => circle(&mut c, p, 14, &[3], t),
        });
        for y in 0..wh {
            let from = (y0 as usize + y) * w + x0 as usize;
            assert_eq!(&part[y * ww..][..ww], &whole[from..][..ww], "row {y}");
        }
        assert!(part.iter().filter(|&&v| v != 0).count() > 40);
    }

    #[test]
    fn lines_outside_the_image_draw_nothing_and_degenerate_ones_a_dot() {
        let px = drawn(8, 8, |c| line(c, (-5, -5), (-1, 20), &[1], 3));
        assert!(px.iter().all(|&v| v == 0));
        let px = drawn(8, 8, |c| line(c, (3, 3), (3, 3), &[1], 1));
        assert_eq!(px.iter().filter(|&&v| v == 1).count(), 1);
    }
}
