//! `cut_out_with_prior` against deep-object-reid's `CutOutWithPrior` given the same draws
//! (tests/fixtures/make_cutout_prior_fixtures.py): the boxes over the face landmarks, pixel for
//! pixel, on an aligned-face-sized image and on a wide one (where its swapped axes show).

use std::path::Path;

use reid::data::image_ops::fill_rect;
use reid::data::section_pipeline::landmark_boxes;
use reid::data::transform_sections::TransformSections;
use reid::data::transforms::Augment;

#[test]
fn boxes_match_deep_object_reids_pixel_for_pixel() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/transforms/cutout_prior.npz");
    let f = reid::formats::npy::read_npz(path).unwrap();
    let bytes =
        |key: &str| -> Vec<u8> { f[key].to_i64().unwrap().iter().map(|&v| v as u8).collect() };
    let mut cases = 0;
    for name in ["face", "wide"] {
        let image = bytes(name);
        let (h, w) = (f[name].shape[0], f[name].shape[1]);
        for i in 0..5 {
            let d = f[&format!("{name}_{i}_draws")].to_f64();
            let (max_area, u, count) = (d[0], d[1], d[2] as usize);
            // The fixture's draw: uniform over [max_area / 2, max_area) at fraction u, in
            // single precision as torch stores it.
            let share = (max_area / 2.0 + (max_area - max_area / 2.0) * u) as f32;
            let marks: Vec<usize> = d[3..3 + count].iter().map(|&m| m as usize).collect();
            let mut ours = image.clone();
            for rect in landmark_boxes(w, h, share, &marks) {
                fill_rect(&mut ours, w, h, rect, [0; 3]);
            }
            let theirs = bytes(&format!("{name}_{i}"));
            let differ = ours.iter().zip(&theirs).filter(|(a, b)| a != b).count();
            assert_eq!(differ, 0, "{name} case {i}: {differ} values differ");
            assert_ne!(ours, image, "{name} case {i} blacks something out");
            cases += 1;
        }
    }
    assert_eq!(cases, 10);
}

#[test]
fn an_area_outside_the_image_is_refused_by_name() {
    for max_area in [0.0, 1.5, f32::NAN] {
        let mut sections = TransformSections::default();
        sections.cut_out_with_prior.enable = true;
        sections.cut_out_with_prior.max_area = max_area;
        let err = Augment::from_sections(&sections).unwrap_err().to_string();
        assert!(err.contains("cut_out_with_prior"), "{err}");
    }
}
