//! Activation maps against torchreid's algorithm and OpenCV's heat maps
//! (tests/fixtures/make_actmap_fixtures.py), and `reid actmap` end to end.

use crate::common;
use crate::common::fixture;

use std::process::Command;

use burn::tensor::{Tensor, TensorData};
use reid::actmap::{activation_maps, heatmap};
use reid::device::default_device;
use reid::formats::npy::{read_npy, read_npz};
use reid::models::Arch;
use reid::weights::load_torchreid;

#[test]
fn maps_and_heatmaps_match_torchreid_and_opencv() {
    let device = default_device();
    let (model, _) = load_torchreid(
        Arch::OsnetX0_25,
        fixture("osnet_x0_25/weights.safetensors"),
        &device,
    )
    .unwrap();
    let input = read_npy(fixture("input_256x128.npy")).unwrap();
    let images = Tensor::<4>::from_data(
        TensorData::new(input.to_f32(), input.shape.clone()),
        &device,
    );
    let (maps, h, w) = activation_maps(&model, images).unwrap();
    let f = read_npz(fixture("actmap/osnet_x0_25.npz")).unwrap();
    assert_eq!(&f["maps"].shape[1..], [h, w]);
    let want_maps = f["maps"].to_f32();
    let heat_want: Vec<i64> = f["heatmaps"].to_i64().unwrap();
    let per_map = 256 * 128 * 3;
    for (i, map) in maps.iter().enumerate() {
        let reference = &want_maps[i * h * w..(i + 1) * h * w];
        let worst = map
            .iter()
            .zip(reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-5, "map {i} off by {worst}");
        let ours = heatmap(reference, w, h, 128, 256);
        let theirs = &heat_want[i * per_map..(i + 1) * per_map];
        let diffs: Vec<i64> = ours
            .iter()
            .zip(theirs)
            .map(|(&a, &b)| (a as i64 - b).abs())
            .collect();
        // OpenCV resizes in fixed point and its jet table is interpolated: a level or two.
        let far = diffs.iter().filter(|&&d| d > 4).count();
        assert!(
            far * 1000 < diffs.len(),
            "map {i}: {far} of {} channel values differ by > 4",
            diffs.len()
        );
        assert!(
            diffs.iter().sum::<i64>() as f64 / (diffs.len() as f64) < 1.0,
            "map {i}"
        );
    }
}

#[test]
fn actmap_command_writes_one_picture_per_image() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_reid"))
        .args([
            "actmap",
            "--arch",
            "osnet_x0_25",
            "--height",
            "128",
            "--width",
            "64",
            "--weights",
        ])
        .arg(fixture("osnet_x0_25/checkpoint.pth.tar"))
        .arg("-o")
        .arg(dir.path().join("maps"))
        .arg(fixture("images/person0.jpg"))
        .arg(fixture("images/person2.png"))
        .output()
        .unwrap();
    common::assert_success(&out);
    let mut written: Vec<_> = std::fs::read_dir(dir.path().join("maps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    written.sort();
    assert_eq!(written.len(), 2);
    let picture = image::open(&written[0]).unwrap().to_rgb8();
    assert_eq!(
        (picture.width(), picture.height()),
        (3 * 64 + 2 * reid::actmap::SPACING as u32, 128)
    );
    // The spacing is white and the heat map is made of jet colours (blue through red).
    assert_eq!(picture.get_pixel(64 + 3, 5).0, [255, 255, 255]);
    let hot = picture
        .get_pixel(64 + reid::actmap::SPACING as u32 + 20, 60)
        .0;
    assert!(
        (0..=255u8).any(|level| reid::actmap::jet(level) == hot),
        "{hot:?}"
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_reid"))
        .args(["actmap", "--arch", "osnet_x0_25", "--weights"])
        .arg(fixture("osnet_x0_25/checkpoint.pth.tar"))
        .arg("-o")
        .arg(dir.path().join("none"))
        .arg(fixture("images/files.txt"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
