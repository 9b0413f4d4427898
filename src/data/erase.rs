//! Random erasing (Zhong et al., AAAI 2020) as torchreid and deep-object-reid apply it: a
//! rectangle of random area and aspect, placed at random, filled with one value per channel.

use crate::data::rng::Rng;

/// Random erasing's shape parameters: probability, area share range, aspect range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EraseShape {
    /// Probability per image.
    pub p: f32,
    /// Smallest and largest share of the image's area.
    pub area: (f32, f32),
    /// Smallest and largest aspect (height / width).
    pub aspect: (f32, f32),
}

/// torchreid's `RandomErasing` defaults.
pub const TORCHREID_ERASE: EraseShape = EraseShape {
    p: 0.5,
    area: (0.02, 0.4),
    aspect: (0.3, 1.0 / 0.3),
};

/// The rectangle `(x0, y0, width, height)` random erasing blanks, if any (100 attempts).
pub fn erase_rect(
    w: usize,
    h: usize,
    shape: EraseShape,
    rng: &mut Rng,
) -> Option<(usize, usize, usize, usize)> {
    if rng.unit() >= shape.p {
        return None;
    }
    let area = (w * h) as f32;
    for _ in 0..100 {
        let target = rng.range(shape.area.0, shape.area.1) * area;
        let aspect = rng.range(shape.aspect.0, shape.aspect.1);
        let eh = (target * aspect).sqrt().round() as usize;
        let ew = (target / aspect).sqrt().round() as usize;
        if ew < w && eh < h && ew > 0 && eh > 0 {
            let y0 = rng.below(h - eh + 1);
            let x0 = rng.below(w - ew + 1);
            return Some((x0, y0, ew, eh));
        }
    }
    None
}

/// Fills `rect` of every plane of a CHW image with that plane's `fill`.
pub fn fill_planes(
    chw: &mut [f32],
    w: usize,
    h: usize,
    (x0, y0, ew, eh): (usize, usize, usize, usize),
    fill: [f32; 3],
) {
    for (c, value) in fill.iter().enumerate() {
        for y in y0..y0 + eh {
            let row = c * w * h + y * w;
            chw[row + x0..row + x0 + ew].fill(*value);
        }
    }
}
