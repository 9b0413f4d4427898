//! `random_grid` and `random_figures` against OpenCV's drawing and deep-object-reid's
//! `RandomGrid` / `RandomFigures` given the same draws
//! (tests/fixtures/make_grid_figures_fixtures.py, written with OpenCV 5.1): lines, rectangles
//! and circles pixel for pixel; grids, turned or not, on even and odd image sizes, pixel for
//! pixel.

use std::collections::BTreeMap;
use std::path::Path;

use reid::data::drawing::{Canvas, circle, line, rectangle};
use reid::data::random_figures::{FigureDraw, draw_figures, figure_draws, opencv_color};
use reid::data::random_grid::{GridDraw, draw_grid, numpy_color};
use reid::data::rng::Rng;
use reid::data::transform_sections::{Figure, RandomFigures};
use reid::formats::npy::NpyArray;

fn fixture() -> BTreeMap<String, NpyArray> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/transforms/grid_figures.npz");
    reid::formats::npy::read_npz(path).unwrap()
}

fn bytes(f: &BTreeMap<String, NpyArray>, key: &str) -> (Vec<u8>, usize, usize) {
    let a = &f[key];
    let v = a.to_i64().unwrap().iter().map(|&v| v as u8).collect();
    (v, a.shape[1], a.shape[0])
}

fn ints(f: &BTreeMap<String, NpyArray>, key: &str) -> Vec<i64> {
    f[key].to_i64().unwrap()
}

/// Pixels (not values) where two RGB images differ.
fn differing(a: &[u8], b: &[u8]) -> usize {
    a.chunks_exact(3)
        .zip(b.chunks_exact(3))
        .filter(|(p, q)| p != q)
        .count()
}

#[test]
fn lines_rectangles_and_circles_are_opencvs_pixel_for_pixel() {
    let f = fixture();
    let (image, w, h) = bytes(&f, "image");
    let mut kinds = [0; 3];
    for i in 0.. {
        let Some(_) = f.get(&format!("shape_{i}")) else {
            break;
        };
        let a = ints(&f, &format!("shape_{i}_args"));
        let color = [a[6] as u8, a[7] as u8, a[8] as u8];
        let mut ours = image.clone();
        let mut canvas = Canvas {
            px: &mut ours,
            width: w,
            height: h,
            channels: 3,
        };
        let t = a[5] as u32;
        match a[0] {
            0 => line(&mut canvas, (a[1], a[2]), (a[3], a[4]), &color, t),
            1 => rectangle(&mut canvas, (a[1], a[2]), (a[3], a[4]), &color, t),
            _ => circle(&mut canvas, (a[1], a[2]), a[3] as u32, &color, t),
        }
        let (theirs, _, _) = bytes(&f, &format!("shape_{i}"));
        let drawn = differing(&theirs, &image);
        assert!(drawn > 0, "case {i} ({a:?}) draws something");
        assert_eq!(
            differing(&ours, &theirs),
            0,
            "case {i}: {a:?} ({drawn} drawn)"
        );
        kinds[a[0] as usize] += 1;
    }
    assert!(kinds.iter().all(|&k| k >= 6), "{kinds:?}");
}

#[test]
fn grids_are_deep_object_reids() {
    let f = fixture();
    let mut cases = 0;
    for name in ["image", "odd"] {
        let (image, w, h) = bytes(&f, name);
        for i in 0..8 {
            let a = ints(&f, &format!("grid_{name}_{i}_args"));
            let drawn = [a[4], a[5], a[6]].map(|v| v as usize);
            let draw = GridDraw {
                spacing: a[0] as usize,
                thickness: a[1] as u32,
                angle: a[2] as i32,
                shift_x: a[3],
                color: numpy_color(drawn),
            };
            let mut ours = image.clone();
            draw_grid(&mut ours, w, h, &draw);
            let (theirs, _, _) = bytes(&f, &format!("grid_{name}_{i}"));
            let painted = differing(&theirs, &image);
            let off = differing(&ours, &theirs);
            assert_eq!(
                off, 0,
                "{name} {i}: {off} of {painted} pixels differ ({a:?})"
            );
            assert!(
                painted > w * h / 50,
                "{name} {i}: the grid covers something"
            );
            cases += 1;
        }
    }
    assert_eq!(cases, 16);
}

#[test]
fn figures_are_deep_object_reids_given_its_draws() {
    let f = fixture();
    let (image, w, h) = bytes(&f, "image");
    for i in 0..5 {
        let a = ints(&f, &format!("figures_{i}_args"));
        let draws: Vec<FigureDraw> = a[5..]
            .chunks_exact(10)
            .map(|d| FigureDraw {
                figure: [Figure::Line, Figure::Rectangle, Figure::Circle][d[0] as usize],
                p1: (d[1], d[2]),
                p2: (d[3], d[4]),
                color: opencv_color([d[5], d[6], d[7]].map(|v| v as usize)),
                thickness: d[8] as u32,
                radius: d[9] as u32,
            })
            .collect();
        let mut ours = image.clone();
        draw_figures(&mut ours, w, h, &draws);
        let (theirs, _, _) = bytes(&f, &format!("figures_{i}"));
        assert_eq!(differing(&ours, &theirs), 0, "case {i}: {a:?}");
        assert!(!draws.is_empty() && differing(&theirs, &image) > 0);
    }
}

#[test]
fn figure_draws_follow_deep_object_reids_distribution() {
    let mut rng = Rng::new(4);
    let each = RandomFigures::default();
    let single = RandomFigures {
        always_single_figure: true,
        random_color: false,
        ..RandomFigures::default()
    };
    let n = 4000;
    let (mut counts, mut single_counts, mut saturated) = ([0usize; 3], [0usize; 3], 0);
    for _ in 0..n {
        for d in figure_draws(&each, 64, 96, &mut rng) {
            counts[d.figure as usize] += 1;
            assert!((0..=64).contains(&d.p1.0) && (0..=96).contains(&d.p2.1));
            assert!((1..=6).contains(&d.thickness));
            assert!(d.figure != Figure::Circle || (5..=64).contains(&d.radius));
            saturated += d.color.iter().filter(|&&c| c == 255).count();
        }
        let one = figure_draws(&single, 64, 96, &mut rng);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].color, [0; 3]);
        single_counts[one[0].figure as usize] += 1;
    }
    // Each figure is drawn half the time; a single one is each a third of the time.
    for (c, s) in counts.iter().zip(&single_counts) {
        assert!((0.47..0.53).contains(&(*c as f64 / n as f64)), "{counts:?}");
        assert!(
            (0.30..0.37).contains(&(*s as f64 / n as f64)),
            "{single_counts:?}"
        );
    }
    // 255 and 256 both give 255: twice as often as any other value (2 / 257 per channel).
    let drawn: usize = counts.iter().sum::<usize>() * 3;
    let share = saturated as f64 / drawn as f64;
    assert!((0.0055..0.0105).contains(&share), "{share}");
}
