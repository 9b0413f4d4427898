//! Numerical parity of the model zoo with torchreid 0.2.5.
//!
//! The fixtures were written by `tests/fixtures/make_fixtures.py` with PyPI torch and
//! torchreid: random weights with randomized normalization statistics, two fixed input
//! batches, and torchreid's eval-mode outputs. The small architectures' fixtures are
//! committed; the large ones are checked when `--large` fixtures have been generated.

use std::path::{Path, PathBuf};

use reid::device::default_device;
use reid::models::Arch;
use reid::npy::read_npy;
use reid::weights::load_torchreid;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// max |Δ| ≤ 1e-4 × max(1, max |ref|), the tolerance the issue sets.
fn assert_close(arch: &str, what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{arch} {what}: length");
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        worst <= 1e-4 * scale,
        "{arch} {what}: max |Δ| = {worst:e} > 1e-4 × {scale}"
    );
    eprintln!("{arch} {what}: max |Δ| = {worst:.3e} (scale {scale:.3})");
}

fn check(arch: Arch, dir: &Path) {
    let device = default_device();
    let (model, report) = load_torchreid(arch, dir.join("weights.safetensors"), &device)
        .unwrap_or_else(|e| panic!("{arch}: {e}"));
    assert!(report.skipped.is_empty(), "{arch}: {:?}", report.skipped);
    for size in ["256x128", "160x64"] {
        let input = read_npy(fixtures().join(format!("input_{size}.npy"))).unwrap();
        let want = read_npy(dir.join(format!("out_{size}.npy"))).unwrap();
        let got = reid::embed::embed_array(&model, &input, 8, &device).unwrap();
        assert_eq!(got.shape, want.shape, "{arch} {size}: shape");
        assert_close(arch.name(), size, &got.to_f32(), &want.to_f32());
    }
}

macro_rules! parity {
    ($($test:ident => $arch:expr),* $(,)?) => {$(
        #[test]
        fn $test() {
            check($arch, &fixtures().join($arch.name()));
        }
    )*};
}

parity! {
    osnet_x0_25 => Arch::OsnetX0_25,
    osnet_x0_5 => Arch::OsnetX0_5,
    osnet_ain_x0_25 => Arch::OsnetAinX0_25,
    osnet_ain_x0_5 => Arch::OsnetAinX0_5,
    osnet_ibn_x1_0 => Arch::OsnetIbnX1_0,
}

/// The architectures whose fixtures are too large to commit: each is checked when
/// `python tests/fixtures/make_fixtures.py --large` has written its files.
#[test]
fn large_architectures_when_generated() {
    let large = fixtures().join("large");
    let mut checked = Vec::new();
    for arch in Arch::ALL {
        let dir = large.join(arch.name());
        // Classifiers' large fixtures share the folder (tests/classifier_parity.rs reads them).
        if dir.join("out_256x128.npy").exists() {
            check(arch, &dir);
            checked.push(arch.name());
        }
    }
    eprintln!("large fixtures checked: {checked:?}");
}
