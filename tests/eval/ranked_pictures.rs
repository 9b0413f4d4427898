//! Ranked-results pictures: the query on the left, its top-k matches in distance order with
//! the protocol's junk (same identity, same camera) left out, framed green or red.

use std::path::{Path, PathBuf};

use reid::data::Sample;
use reid::eval::Matrix;
use reid::eval::visualize::{BORDER, GREEN, GridLayout, RED, top_matches, write_ranked_results};

fn solid(dir: &Path, name: &str, colour: [u8; 3]) -> PathBuf {
    let path = dir.join(name);
    image::RgbImage::from_pixel(20, 40, image::Rgb(colour))
        .save(&path)
        .unwrap();
    path
}

#[test]
fn grids_show_ranked_matches_framed_by_correctness() {
    let dir = tempfile::tempdir().unwrap();
    let sample = |name: &str, colour, pid, camera| Sample {
        path: solid(dir.path(), name, colour),
        pid,
        camera,
        dataset: 0,
    };
    let query = vec![sample("q.png", [10, 20, 30], 7, 0)];
    let gallery = vec![
        sample("same_camera.png", [1, 1, 1], 7, 0), // junk: never shown
        sample("other.png", [200, 0, 200], 3, 1),
        sample("right.png", [0, 100, 0], 7, 1),
        sample("far.png", [50, 50, 50], 7, 2),
    ];
    // Distances: junk closest, then the wrong identity, then the right one, then the far one.
    let distances = Matrix::new(1, 4, vec![0.1, 0.2, 0.3, 0.9]).unwrap();
    assert_eq!(
        top_matches(distances.row(0), &query[0], &gallery, 3),
        vec![1, 2, 3]
    );
    assert_eq!(
        top_matches(distances.row(0), &query[0], &gallery, 1),
        vec![1]
    );
    let layout = GridLayout {
        width: 16,
        height: 32,
        topk: 2,
    };
    let out = dir.path().join("grids");
    let written = write_ranked_results(&distances, &query, &gallery, &out, &layout).unwrap();
    assert_eq!(written.len(), 1);
    let grid = image::open(&written[0]).unwrap().to_rgb8();
    assert_eq!(
        (grid.width() as usize, grid.height() as usize),
        layout.size()
    );
    let at = |x: usize, y: usize| grid.get_pixel(x as u32, y as u32).0;
    let middle = (BORDER + layout.width / 2, BORDER + layout.height / 2);
    assert_eq!(at(middle.0, middle.1), [10, 20, 30], "the query");
    // First match: the wrong identity in a red frame; second: the right one in green.
    assert_eq!(at(layout.match_x(0) + 2, 2), RED);
    assert_eq!(at(layout.match_x(0) + middle.0, middle.1), [200, 0, 200]);
    assert_eq!(at(layout.match_x(1) + 2, 2), GREEN);
    assert_eq!(at(layout.match_x(1) + middle.0, middle.1), [0, 100, 0]);
    // A distance matrix of the wrong shape is an error, and nothing is written for it.
    let wrong = Matrix::new(1, 3, vec![0.0; 3]).unwrap();
    let elsewhere = dir.path().join("none");
    assert!(write_ranked_results(&wrong, &query, &gallery, &elsewhere, &layout).is_err());
    assert!(!elsewhere.exists());
}
