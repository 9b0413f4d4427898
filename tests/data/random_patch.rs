//! `random_patch` against torchreid 0.2.5's `RandomPatch` given the same draws
//! (tests/fixtures/make_random_patch_fixtures.py): the patch size `generate_wh` picks, and the
//! image after a patch of another image (or of itself) is pasted, mirrored and rotated.

use std::collections::BTreeMap;
use std::path::Path;

use reid::data::random_patch::{Patch, paste, patch_size};
use reid::data::transform_sections::RandomPatch;
use reid::formats::npy::NpyArray;

fn fixture() -> BTreeMap<String, NpyArray> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/transforms/random_patch.npz");
    reid::formats::npy::read_npz(path).unwrap()
}

fn bytes(f: &BTreeMap<String, NpyArray>, key: &str) -> Vec<u8> {
    f[key].to_i64().unwrap().iter().map(|&v| v as u8).collect()
}

/// `patch_size` fed the fractions the fixture's draws were.
fn size(w: usize, h: usize, draws: &[f64]) -> (Option<(usize, usize)>, usize) {
    let mut used = 0;
    let size = patch_size(w, h, &RandomPatch::torchreid(), || {
        used += 1;
        draws[used - 1]
    });
    (size, used)
}

fn cut(rgb: &[u8], w: usize, (x, y, pw, ph): (usize, usize, usize, usize)) -> Patch {
    Patch {
        rgb: reid::data::image_ops::crop(rgb, w, (x, y, pw, ph)),
        width: pw,
        height: ph,
    }
}

#[test]
fn patch_sizes_match_torchreids_generate_wh() {
    let f = fixture();
    let (h, w) = (f["image_a"].shape[0], f["image_a"].shape[1]);
    let mut cases = 0;
    while f.contains_key(&format!("size_{cases}_wh")) {
        let draws = f[&format!("size_{cases}_draws")].to_f64();
        let wh = f[&format!("size_{cases}_wh")].to_i64().unwrap();
        let expected = (wh[0] >= 0).then(|| (wh[0] as usize, wh[1] as usize));
        assert_eq!(size(w, h, &draws), (expected, draws.len()), "case {cases}");
        cases += 1;
    }
    assert_eq!(cases, 6);
}

#[test]
fn pasted_patches_match_torchreids_pixel_for_pixel() {
    let f = fixture();
    let (a, b) = (bytes(&f, "image_a"), bytes(&f, "image_b"));
    let (h, w) = (f["image_a"].shape[0], f["image_a"].shape[1]);
    let settings = RandomPatch::torchreid();
    for i in 0..5 {
        let d = f[&format!("paste_{i}_draws")].to_f64();
        let at = |k: usize| d[k] as usize;
        let (aw, ah) = size(w, h, &d[0..2]).0.unwrap();
        let (bw, bh) = size(w, h, &d[4..6]).0.unwrap();
        let pool = [
            cut(&a, w, (at(2), at(3), aw, ah)),
            cut(&b, w, (at(6), at(7), bw, bh)),
        ];
        let mirror = d[11] as f32 > settings.prob_flip_leftright;
        let degrees = (d[12] as f32 > settings.prob_rotate).then_some(d[13] as i32);
        let mut img = b.clone();
        paste(&mut img, w, &pool[at(8)], (at(9), at(10)), mirror, degrees);
        let expected = bytes(&f, &format!("paste_{i}"));
        let differ = img.iter().zip(&expected).filter(|(x, y)| x != y).count();
        assert_eq!(differ, 0, "case {i}: {differ} values differ");
        assert_ne!(img, b, "case {i} pastes something");
    }
}
