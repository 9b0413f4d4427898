//! A small RGB float canvas with the drawing and camera effects the synthetic generator needs.

/// An RGB colour with channels in 0–255.
pub type Rgb = [f32; 3];

/// `height` rows of `width` RGB pixels.
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pixels: Vec<Rgb>,
}

impl Canvas {
    pub fn new(width: usize, height: usize, fill: Rgb) -> Self {
        Self {
            width,
            height,
            pixels: vec![fill; width * height],
        }
    }

    /// Sets every pixel from `color(x, y)` (coordinates in pixels).
    pub fn paint(&mut self, color: impl Fn(usize, usize) -> Rgb) {
        for y in 0..self.height {
            for x in 0..self.width {
                self.pixels[y * self.width + x] = color(x, y);
            }
        }
    }

    /// Fills the pixels whose centres lie in `[x0, x1) × [y0, y1)`; `color(u, v)` gets the
    /// position inside the rectangle in 0–1, for patterns.
    pub fn rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, color: impl Fn(f32, f32) -> Rgb) {
        let (w, h) = (x1 - x0, y1 - y0);
        if w <= 0.0 || h <= 0.0 {
            return;
        }
        let xs = (x0.max(0.0) as usize)..(x1.ceil().max(0.0) as usize).min(self.width);
        let ys = (y0.max(0.0) as usize)..(y1.ceil().max(0.0) as usize).min(self.height);
        for y in ys {
            let cy = y as f32 + 0.5;
            if cy < y0 || cy >= y1 {
                continue;
            }
            for x in xs.clone() {
                let cx = x as f32 + 0.5;
                if cx >= x0 && cx < x1 {
                    self.pixels[y * self.width + x] = color((cx - x0) / w, (cy - y0) / h);
                }
            }
        }
    }

    /// Fills the ellipse centred at `(cx, cy)` with radii `rx`, `ry`.
    pub fn ellipse(&mut self, cx: f32, cy: f32, rx: f32, ry: f32, color: Rgb) {
        if rx <= 0.0 || ry <= 0.0 {
            return;
        }
        let ys =
            ((cy - ry).max(0.0) as usize)..((cy + ry).ceil().max(0.0) as usize).min(self.height);
        let xs =
            ((cx - rx).max(0.0) as usize)..((cx + rx).ceil().max(0.0) as usize).min(self.width);
        for y in ys {
            for x in xs.clone() {
                let dx = (x as f32 + 0.5 - cx) / rx;
                let dy = (y as f32 + 0.5 - cy) / ry;
                if dx * dx + dy * dy <= 1.0 {
                    self.pixels[y * self.width + x] = color;
                }
            }
        }
    }

    /// Mirrors the image left to right.
    pub fn mirror(&mut self) {
        for row in self.pixels.chunks_mut(self.width) {
            row.reverse();
        }
    }

    /// Multiplies each channel by `gain × cast[c]` (illumination and white balance).
    pub fn light(&mut self, gain: f32, cast: Rgb) {
        for p in &mut self.pixels {
            for c in 0..3 {
                p[c] *= gain * cast[c];
            }
        }
    }

    /// A 3×3 box blur, `passes` times (camera defocus and motion).
    pub fn blur(&mut self, passes: usize) {
        let (w, h) = (self.width, self.height);
        for _ in 0..passes {
            let src = self.pixels.clone();
            for y in 0..h {
                for x in 0..w {
                    let mut sum = [0f32; 3];
                    let mut n = 0.0;
                    for yy in y.saturating_sub(1)..(y + 2).min(h) {
                        for xx in x.saturating_sub(1)..(x + 2).min(w) {
                            let p = src[yy * w + xx];
                            for c in 0..3 {
                                sum[c] += p[c];
                            }
                            n += 1.0;
                        }
                    }
                    self.pixels[y * w + x] = sum.map(|s| s / n);
                }
            }
        }
    }

    /// Adds noise: `sample()` per channel and pixel (sensor noise).
    pub fn noise(&mut self, mut sample: impl FnMut() -> f32) {
        for p in &mut self.pixels {
            for v in p.iter_mut() {
                *v += sample();
            }
        }
    }

    /// Packed 8-bit RGB, clamped.
    pub fn to_rgb8(&self) -> Vec<u8> {
        self.pixels
            .iter()
            .flat_map(|p| p.map(|v| v.round().clamp(0.0, 255.0) as u8))
            .collect()
    }
}
