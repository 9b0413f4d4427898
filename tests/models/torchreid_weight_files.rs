//! Numerical parity of the model zoo with torchreid 0.2.5.
//!
//! Weight files as users bring them: `tests/fixtures/make_fixtures.py` saved torchreid models
//! with random weights (randomized normalization statistics; one in half precision) as
//! safetensors, with torchreid's eval-mode outputs of two fixed batches. Loading those files
//! must give the same outputs. Every architecture's parity (without weight files) is in
//! `tests/models/zoo_parity.rs`.

use crate::common;

use common::assert_close;

use std::path::{Path, PathBuf};

use reid::device::default_device;
use reid::formats::npy::read_npy;
use reid::models::Arch;
use reid::weights::load_torchreid;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn check(arch: Arch, dir: &Path) {
    let device = default_device();
    let (model, report) = load_torchreid(arch, dir.join("weights.safetensors"), &device)
        .unwrap_or_else(|e| panic!("{arch}: {e}"));
    assert!(report.skipped.is_empty(), "{arch}: {:?}", report.skipped);
    for size in ["256x128", "160x64"] {
        let input = read_npy(fixtures().join(format!("input_{size}.npy"))).unwrap();
        let want = read_npy(dir.join(format!("out_{size}.npy"))).unwrap();
        let got = reid::models::embed::embed_array(&model, &input, 8, &device).unwrap();
        assert_eq!(got.shape, want.shape, "{arch} {size}: shape");
        assert_close(&format!("{arch} {size}"), &got.to_f32(), &want.to_f32());
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
