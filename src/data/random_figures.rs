//! deep-object-reid's `RandomFigures`: lines, rectangle outlines and circles at random places,
//! in random colours and thicknesses, drawn with OpenCV's rasterization.

use crate::data::drawing::{Canvas, circle, line, rectangle};
use crate::data::rng::Rng;
use crate::data::transform_sections::{Figure, RandomFigures};

/// One figure's draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FigureDraw {
    /// What is drawn.
    pub figure: Figure,
    /// First point (a circle's centre).
    pub p1: (i64, i64),
    /// Second point (unused by circles).
    pub p2: (i64, i64),
    /// Colour.
    pub color: [u8; 3],
    /// Line thickness, pixels.
    pub thickness: u32,
    /// Circle radius, pixels.
    pub radius: u32,
}

/// A colour drawn as deep-object-reid draws it (`randint(0, 256)` per channel) as OpenCV
/// stores it: 256 saturates to 255.
pub fn opencv_color(drawn: [usize; 3]) -> [u8; 3] {
    drawn.map(|v| v.min(255) as u8)
}

/// Inclusive uniform integer in [lo, hi].
pub(crate) fn inclusive((lo, hi): (i64, i64), rng: &mut Rng) -> i64 {
    lo + rng.below((hi - lo + 1).max(1) as usize) as i64
}

/// The figures for one w × h image: one of the list when `always_single_figure`, else each
/// whose uniform draw exceeds `figure_prob`, in the list's order; points anywhere in
/// 0..=w × 0..=h (one past the last pixel, as deep-object-reid's `randint` allows).
pub fn figure_draws(f: &RandomFigures, w: usize, h: usize, rng: &mut Rng) -> Vec<FigureDraw> {
    let chosen: Vec<Figure> = if f.always_single_figure {
        vec![*rng.pick(&f.figures)]
    } else {
        f.figures
            .iter()
            .copied()
            .filter(|_| rng.unit() > f.figure_prob)
            .collect()
    };
    let (w, h) = (w as i64, h as i64);
    chosen
        .into_iter()
        .map(|figure| {
            let p1 = (inclusive((0, w), rng), inclusive((0, h), rng));
            let p2 = (inclusive((0, w), rng), inclusive((0, h), rng));
            let color = if f.random_color {
                opencv_color(std::array::from_fn(|_| rng.below(257)))
            } else {
                [0; 3]
            };
            let thickness = inclusive(f.thicknesses, rng) as u32;
            let radius = match figure {
                Figure::Circle => inclusive(f.circle_radiuses, rng) as u32,
                _ => 0,
            };
            FigureDraw {
                figure,
                p1,
                p2,
                color,
                thickness,
                radius,
            }
        })
        .collect()
}

/// Draws the figures over an RGB image, in order.
pub fn draw_figures(rgb: &mut [u8], w: usize, h: usize, draws: &[FigureDraw]) {
    let mut canvas = Canvas {
        px: rgb,
        width: w,
        height: h,
        channels: 3,
    };
    for d in draws {
        match d.figure {
            Figure::Line => line(&mut canvas, d.p1, d.p2, &d.color, d.thickness),
            Figure::Rectangle => rectangle(&mut canvas, d.p1, d.p2, &d.color, d.thickness),
            Figure::Circle => circle(&mut canvas, d.p1, d.radius, &d.color, d.thickness),
        }
    }
}
