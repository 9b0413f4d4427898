//! One function per fuzz target: what it does with one input. The libFuzzer binaries
//! (fuzz_targets/) call these, and `tests/regressions.rs` replays every input a target ever
//! found (fuzz/regressions/<target>/) through them in `cargo test`.
//!
//! Outcomes are ignored on purpose: an input passes when the call returns (an error is the
//! right answer to most of them); a panic, an abort or an allocation above the bound fails it.

use std::ffi::CString;
use std::path::Path;
use std::sync::OnceLock;

use reid::distance::Metric;
use reid::extractor::{Engine, Extractor, ExtractorOptions};
use reid::ffi::extractor::{reid_extractor, reid_extractor_extract_encoded, reid_extractor_new};
use reid::ffi::extractor_options::{
    reid_engine, reid_extractor_options_free, reid_extractor_options_new,
    reid_extractor_options_set_engine,
};
use reid::gallery::{Gallery, SearchOptions};

use crate::{scratch, scratch_file};

/// What a target does with one input.
pub type Target = fn(&[u8]);

/// Every target by name, as fuzz/Cargo.toml names its binaries.
pub const ALL: [(&str, Target); 13] = [
    ("mat", mat),
    ("pickle", pickle),
    ("npy", npy),
    ("npz", npz),
    ("state_dict", state_dict),
    ("checkpoint", checkpoint),
    ("onnx", onnx),
    ("image", image),
    ("gallery", gallery),
    ("config", config),
    ("hdf5", hdf5),
    ("split_files", split_files),
    ("video_splits", video_splits),
];

/// MATLAB 5 files (split files of CUHK03, GRID, VIPeR and the classification sets).
pub fn mat(data: &[u8]) {
    if let Ok(variables) = reid::formats::mat::from_bytes(data) {
        for value in variables.values() {
            let _ = value.numbers();
            let _ = value.text();
            let _ = value.cells().map(<[_]>::len);
        }
    }
}

/// Python pickles, data only (CIFAR batches, torchreid's split files).
pub fn pickle(data: &[u8]) {
    if let Ok(value) = reid::formats::pickle::unpickle(data) {
        let _ = value.text();
        let _ = value.int();
        let _ = value.items().map(<[_]>::len);
        let _ = value.get("data");
    }
}

/// NumPy `.npy` arrays (features, fixtures, the gallery's exports).
pub fn npy(data: &[u8]) {
    if let Ok(array) = reid::formats::npy::NpyArray::from_bytes(data) {
        let _ = array.to_f32();
        let _ = array.to_f64();
        let _ = array.to_i64();
    }
}

/// NumPy `.npz` archives, read as they are and imported into a gallery
/// (`reid_gallery_import_npz`).
pub fn npz(data: &[u8]) {
    let path = scratch_file("input.npz", data);
    let Ok(arrays) = reid::formats::npy::read_npz(&path) else {
        return;
    };
    let dim = arrays
        .get("vectors")
        .and_then(|v| v.shape.get(1).copied())
        .unwrap_or(4);
    for metric in [Metric::Cosine, Metric::Euclidean] {
        if let Ok(gallery) = Gallery::new(dim, metric) {
            let _ = gallery.import_npz(&path);
        }
    }
}

/// Weight files: `torch.save` archives and pickles (`.pth`, `.pth.tar`) and `.safetensors`.
pub fn state_dict(data: &[u8]) {
    let path = scratch_file("weights.pth", data);
    if let Ok(dict) = reid::weights::StateDict::read(&path) {
        let _ = dict.num_elements();
    }
}

/// reid's own checkpoints (Burn's burnpack with reid's metadata), as `reid_extractor_new` and
/// the finetuner load them.
pub fn checkpoint(data: &[u8]) {
    let path = scratch_file("model.bpk", data);
    let device = reid::device::parse_device("flex").expect("the CPU device");
    let _ = reid::weights::load_checkpoint(&path, &device);
}

/// ONNX files: the metadata and initializers every engine reads, then a Burn engine built from
/// them (`reid_extractor_new` with `REID_ENGINE_BURN`).
pub fn onnx(data: &[u8]) {
    let _ = reid::export::read_metadata(data);
    if reid::export::read_initializers(data).is_err() {
        return;
    }
    let path = scratch_file("model.onnx", data);
    let options = ExtractorOptions {
        engine: Engine::Burn,
        ..ExtractorOptions::default()
    };
    if let Ok(extractor) = Extractor::new(&path, &options) {
        let _ = extractor.dim();
    }
}

/// The image decoder's own ceiling (`preprocess::decode`: 1 GiB for one image) and some room.
pub const IMAGE_ALLOCATION_LIMIT: usize = (1 << 30) + (64 << 20);

struct Shared(*mut reid_extractor);
// SAFETY: reid.h documents extractors as thread-safe.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

/// osnet_x0_25 (random weights) exported at 64 × 32, loaded on the Burn engine through C.
fn small_extractor() -> *mut reid_extractor {
    static EXTRACTOR: OnceLock<Shared> = OnceLock::new();
    EXTRACTOR
        .get_or_init(|| {
            let device = reid::device::parse_device("flex").expect("the CPU device");
            let model = reid::ReidModel::new(reid::Arch::OsnetX0_25, 10, &device);
            let path = scratch().join("small.onnx");
            let options = reid::export::ExportOptions::new(64, 32);
            reid::export::export_onnx_file(&model, &options, &path).expect("export");
            let path = CString::new(path.to_str().expect("a UTF-8 path")).expect("no NUL");
            // SAFETY: valid pointers and a NUL-terminated path, as reid.h asks.
            unsafe {
                let mut options = std::ptr::null_mut();
                reid_extractor_options_new(&mut options);
                reid_extractor_options_set_engine(options, reid_engine::REID_ENGINE_BURN as i32);
                let mut extractor = std::ptr::null_mut();
                let status = reid_extractor_new(path.as_ptr(), options, &mut extractor);
                reid_extractor_options_free(options);
                assert!(!extractor.is_null(), "extractor: status {status:?}");
                Shared(extractor)
            }
        })
        .0
}

/// Encoded images (JPEG, PNG, BMP, WebP) through `reid_extractor_extract_encoded`, the C entry
/// point that takes a host's bytes (the classifier's and finetuner's share its decoding).
pub fn image(data: &[u8]) {
    let _ = reid::preprocess::decode(data);
    let images = [data.as_ptr()];
    let sizes = [data.len()];
    let mut out = vec![0f32; 512];
    let mut len = 0usize;
    // SAFETY: one image of `sizes[0]` bytes, an output of `out.len()` floats.
    unsafe {
        reid_extractor_extract_encoded(
            small_extractor(),
            images.as_ptr(),
            sizes.as_ptr(),
            1,
            out.as_mut_ptr(),
            out.len(),
            &mut len,
        );
    }
}

/// Gallery files (SQLite) opened as `reid_gallery_open` does, then searched.
pub fn gallery(data: &[u8]) {
    let path = scratch_file("gallery.reid", data);
    // SQLite keeps a journal beside the file; an old one would change what the next input reads.
    for suffix in ["-journal", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let Ok(gallery) = Gallery::open(&path) else {
        return;
    };
    let query = vec![1.0f32; gallery.dim()];
    let _ = gallery.search(&query, &SearchOptions::top(3));
    let _ = gallery.entries();
}

/// Training configs: torchreid-style YAML and reid's own `config.json`. The first line, when it
/// holds `=`, is also given as a `key=value` override.
pub fn config(data: &[u8]) {
    let overrides: Vec<String> = std::str::from_utf8(data)
        .ok()
        .and_then(|text| text.lines().next())
        .filter(|line| line.contains('='))
        .map(|line| vec![line.to_string()])
        .unwrap_or_default();
    for name in ["config.yaml", "config.json"] {
        let path = scratch_file(name, data);
        let _ = reid::config::load_train_config(Some(&path), &overrides);
    }
}

/// CUHK03's MATLAB 7.3 (HDF5) release, unpacked into images and splits as `reid train` does.
pub fn hdf5(data: &[u8]) {
    let root = scratch().join("cuhk03");
    let _ = std::fs::remove_dir_all(&root);
    scratch_file("cuhk03/cuhk03_release/cuhk-03.mat", data);
    let _ = reid::data::reid::cuhk03_release::extract(&root);
}

/// A dataset folder with the images the split files name (empty files: only names are read).
fn dataset_layout(root: &Path) {
    for (folder, names) in [
        (
            "cuhk03/images_labeled",
            &["1_001_1_01.png", "1_002_2_01.png"][..],
        ),
        (
            "grid/underground_reid/probe",
            &["0001_1_25004_107_32_106_221.jpeg"][..],
        ),
        (
            "grid/underground_reid/gallery",
            &["0001_2_25023_116_134_128_330.jpeg"][..],
        ),
    ] {
        std::fs::create_dir_all(root.join(folder)).expect("scratch folder");
        for name in names {
            std::fs::write(root.join(folder).join(name), b"").expect("scratch file");
        }
    }
}

/// Split files of the re-id benchmarks that come as MATLAB 5 files, read as `reid train` reads
/// them: CUHK03's new protocol and GRID's partitions (one input is tried as both).
pub fn split_files(data: &[u8]) {
    use reid::data::reid::cuhk03::{Cuhk03Variant, cuhk03};
    let root = scratch().join("datasets");
    if !root.exists() {
        dataset_layout(&root);
    }
    // Splits read once are cached as JSON beside the data; each input starts without them.
    let _ = std::fs::remove_file(root.join("cuhk03/splits_new_labeled.json"));
    let _ = std::fs::remove_file(root.join("grid/splits.json"));
    scratch_file(
        "datasets/cuhk03/cuhk03_new_protocol_config_labeled.mat",
        data,
    );
    scratch_file(
        "datasets/grid/underground_reid/features_and_partitions.mat",
        data,
    );
    let variant = Cuhk03Variant {
        labeled: true,
        classic: false,
    };
    let _ = cuhk03(&root, variant, 0);
    let _ = reid::data::reid::benchmarks::grid(&root, 0);
}

/// tests/fixtures/video_datasets, from the fuzz package (fuzz/) or from reid's tests, which
/// compile these targets as part of reid.
fn video_fixtures() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        "tests/fixtures/video_datasets",
        "../tests/fixtures/video_datasets",
    ]
    .iter()
    .map(|p| dir.join(p))
    .find(|p| p.is_dir())
    .expect("tests/fixtures/video_datasets")
}

/// The fake video re-id layouts of tests/fixtures/video_datasets (empty frames, the datasets'
/// own files) under `root`.
fn video_layout(root: &Path) {
    let fixtures = video_fixtures();
    let text = std::fs::read_to_string(fixtures.join("layout.json")).expect("the video layout");
    let layout: serde_json::Value = serde_json::from_str(&text).expect("the video layout");
    let list = |key: &str| -> Vec<String> {
        let items = layout[key].as_array().expect("a list of paths");
        items
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    };
    for frame in list("frames") {
        let path = root.join(frame);
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("scratch folder");
        std::fs::write(path, b"").expect("scratch frame");
    }
    for file in list("files") {
        let path = root.join(&file);
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("scratch folder");
        std::fs::copy(fixtures.join("files").join(&file), path).expect("scratch file");
    }
}

/// The video re-id datasets' tables and split files, read as `reid train` reads them: MARS's
/// MATLAB tables, iLIDS-VID's split file, PRID2011's JSON splits, and the JSON split caches
/// iLIDS-VID and DukeMTMC-VideoReID write. One input is tried as each of them in turn, the
/// others being the fixture's valid files.
pub fn video_splits(data: &[u8]) {
    const FILES: [&str; 9] = [
        "mars/info/tracks_train_info.mat",
        "mars/info/tracks_test_info.mat",
        "mars/info/query_IDX.mat",
        "ilids-vid/train-test people splits/train_test_splits_ilidsvid.mat",
        "ilids-vid/splits.json",
        "prid2011/splits_prid2011.json",
        "dukemtmc-vidreid/split_train.json",
        "dukemtmc-vidreid/split_query.json",
        "dukemtmc-vidreid/split_gallery.json",
    ];
    let root = scratch().join("video");
    if !root.exists() {
        video_layout(&root);
    }
    let fixtures = video_fixtures();
    for file in FILES {
        std::fs::write(root.join(file), data).expect("scratch file");
        for name in reid::data::video::VIDEO_DATASETS {
            let _ = reid::data::video::load_video_dataset(name, &root, 0);
        }
        // A reader may have replaced a cache it could not read; the next file starts valid.
        for other in FILES {
            let source = fixtures.join("files").join(other);
            let _ = std::fs::copy(source, root.join(other));
        }
    }
}
