//! Ranked-results pictures (torchreid's `visualize_ranked_results`): for each query, one PNG
//! with the query image on the left and its top-k gallery matches to the right, each framed
//! green when it is the same identity and red when not. Gallery images of the query's
//! identity seen by the query's camera are skipped, as the evaluation protocol skips them.

use std::path::{Path, PathBuf};

use crate::data::Sample;
use crate::distance::Matrix;
use crate::error::{Error, Result};
use crate::preprocess::resample::resize_rgb;

/// Size of the pictures in a ranked-results grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridLayout {
    /// Width of each image.
    pub width: usize,
    /// Height of each image.
    pub height: usize,
    /// Matches shown per query.
    pub topk: usize,
}

impl Default for GridLayout {
    /// torchreid's: 128 × 256 images, top 10.
    fn default() -> Self {
        Self {
            width: 128,
            height: 256,
            topk: 10,
        }
    }
}

/// Frame width around each match.
pub const BORDER: usize = 10;
/// Space between matches.
pub const SPACING: usize = 10;
/// Extra space between the query and its matches.
pub const QUERY_SPACING: usize = 90;
/// Frame of a correct match.
pub const GREEN: [u8; 3] = [0, 255, 0];
/// Frame of a wrong match.
pub const RED: [u8; 3] = [255, 0, 0];

impl GridLayout {
    /// Width and height of a grid.
    pub fn size(&self) -> (usize, usize) {
        let cell = self.width + 2 * BORDER;
        let width = cell + QUERY_SPACING + self.topk * (cell + SPACING);
        (width, self.height + 2 * BORDER)
    }

    /// Left edge of the frame of match `rank` (from 0).
    pub fn match_x(&self, rank: usize) -> usize {
        let cell = self.width + 2 * BORDER;
        cell + QUERY_SPACING + rank * (cell + SPACING)
    }
}

/// Gallery indices of the top `k` matches of a query row, skipping the protocol's junk.
pub fn top_matches(distances: &[f32], query: &Sample, gallery: &[Sample], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..gallery.len()).collect();
    order.sort_by(|&a, &b| distances[a].total_cmp(&distances[b]));
    order
        .into_iter()
        .filter(|&g| !(gallery[g].pid == query.pid && gallery[g].camera == query.camera))
        .take(k)
        .collect()
}

fn load(path: &Path, layout: &GridLayout) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (rgb, w, h) = crate::preprocess::decode(&bytes)?;
    Ok(resize_rgb(&rgb, w, h, layout.width, layout.height))
}

/// Copies a `layout`-sized image into `canvas` at (x, y), framed by `frame` when given.
fn paste(
    canvas: &mut image::RgbImage,
    x: usize,
    y: usize,
    rgb: &[u8],
    layout: &GridLayout,
    frame: Option<[u8; 3]>,
) {
    if let Some(colour) = frame {
        for fy in 0..layout.height + 2 * BORDER {
            for fx in 0..layout.width + 2 * BORDER {
                canvas.put_pixel((x + fx) as u32, (y + fy) as u32, image::Rgb(colour));
            }
        }
    }
    for py in 0..layout.height {
        for px in 0..layout.width {
            let i = (py * layout.width + px) * 3;
            let pixel = image::Rgb([rgb[i], rgb[i + 1], rgb[i + 2]]);
            canvas.put_pixel((x + BORDER + px) as u32, (y + BORDER + py) as u32, pixel);
        }
    }
}

/// The grid of one query and its ranked matches (`correct` tells each match's frame).
pub fn ranked_grid(
    query: &Path,
    matches: &[(PathBuf, bool)],
    layout: &GridLayout,
) -> Result<image::RgbImage> {
    let (width, height) = layout.size();
    let mut canvas = image::RgbImage::from_pixel(width as u32, height as u32, image::Rgb([255; 3]));
    paste(&mut canvas, 0, 0, &load(query, layout)?, layout, None);
    for (rank, (path, correct)) in matches.iter().enumerate().take(layout.topk) {
        let frame = if *correct { GREEN } else { RED };
        paste(
            &mut canvas,
            layout.match_x(rank),
            0,
            &load(path, layout)?,
            layout,
            Some(frame),
        );
    }
    Ok(canvas)
}

/// Writes one PNG per query into `dir` (named after the query's file, `NNNNN_` numbered to
/// stay unique), from the query × gallery `distances`; returns the files written.
pub fn write_ranked_results(
    distances: &Matrix,
    query: &[Sample],
    gallery: &[Sample],
    dir: &Path,
    layout: &GridLayout,
) -> Result<Vec<PathBuf>> {
    if distances.rows != query.len() || distances.cols != gallery.len() {
        return Err(Error::InvalidInput(format!(
            "distances are {}×{} for {} queries and {} gallery images",
            distances.rows,
            distances.cols,
            query.len(),
            gallery.len()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut written = Vec::with_capacity(query.len());
    for (i, q) in query.iter().enumerate() {
        let matches: Vec<(PathBuf, bool)> = top_matches(distances.row(i), q, gallery, layout.topk)
            .into_iter()
            .map(|g| (gallery[g].path.clone(), gallery[g].pid == q.pid))
            .collect();
        let grid = ranked_grid(&q.path, &matches, layout)?;
        let stem = q
            .path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("query");
        let path = dir.join(format!("{i:05}_{stem}.png"));
        crate::preprocess::write_png(&grid, &path)?;
        written.push(path);
    }
    Ok(written)
}
