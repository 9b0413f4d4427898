//! One table of user scenarios — extract, search, export, finetune, and their error cases — run
//! through the Rust API and through the C ABI (the `extern "C"` functions of reid.h, called as
//! a C program calls them), which must give the same results: the same embeddings and matches
//! bit for bit, the same exported bytes, the same progress reports and trained weights, the
//! same status and message for each error.

use crate::common;

use std::ffi::{CString, c_char};
use std::path::{Path, PathBuf};

use reid::extractor::{Engine, Extractor, ExtractorOptions};
use reid::ffi::export::reid_export_onnx;
use reid::ffi::extractor::{
    reid_extractor, reid_extractor_extract_files, reid_extractor_free, reid_extractor_new,
};
use reid::ffi::extractor_options::*;
use reid::ffi::gallery::{
    reid_gallery, reid_gallery_add_batch, reid_gallery_calibrate, reid_gallery_free,
    reid_gallery_new, reid_gallery_search, reid_match,
};
use reid::ffi::search_options::reid_search_options_default;
use reid::ffi::status::reid_status;
use reid::gallery::{Gallery, NewEntry, SearchOptions};
use reid::models::Arch;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn checkpoint() -> PathBuf {
    root().join("tests/fixtures/osnet_x0_25/checkpoint.pth.tar")
}

fn images() -> Vec<PathBuf> {
    [
        "person0.jpg",
        "person1.jpg",
        "person2.png",
        "person3.jpg",
        "person4.bmp",
        "person5.webp",
    ]
    .iter()
    .map(|n| root().join("tests/fixtures/images").join(n))
    .collect()
}

fn c_path(p: &Path) -> CString {
    CString::new(p.to_str().unwrap()).unwrap()
}

/// What a scenario gives: values, or a status with its message.
#[derive(Debug, PartialEq)]
enum Outcome<T> {
    Ok(T),
    Failed(reid_status, String),
}

fn rust<T>(result: reid::Result<T>) -> Outcome<T> {
    match result {
        Ok(v) => Outcome::Ok(v),
        Err(e) => Outcome::Failed(status_of(&e), e.to_string()),
    }
}

fn status_of(e: &reid::Error) -> reid_status {
    use reid::Error::*;
    match e {
        InvalidInput(_) => reid_status::REID_INVALID_ARGUMENT,
        Io { .. } => reid_status::REID_IO_ERROR,
        BadInput { .. } => reid_status::REID_BAD_IMAGE,
        UnknownArchitecture { .. } => reid_status::REID_UNKNOWN_ARCHITECTURE,
        WeightFormat { .. } | WeightMismatch { .. } => reid_status::REID_MODEL_ERROR,
        ModelFormat(_) => reid_status::REID_MODEL_ERROR,
        other => panic!("no status mapped in this test for {other:?}"),
    }
}

fn c<T>(status: reid_status, value: impl FnOnce() -> T) -> Outcome<T> {
    if status == reid_status::REID_OK {
        Outcome::Ok(value())
    } else {
        Outcome::Failed(status, common::c_last_error())
    }
}

/// An extraction scenario: the images (by path) to embed with the Burn engine.
struct Extract {
    name: &'static str,
    paths: Vec<PathBuf>,
}

fn extract_cases() -> Vec<Extract> {
    let mut with_missing = images();
    with_missing.insert(2, root().join("tests/fixtures/images/absent.jpg"));
    let not_an_image = root().join("tests/fixtures/images/files.txt");
    vec![
        Extract {
            name: "all formats",
            paths: images(),
        },
        Extract {
            name: "one image",
            paths: images()[3..4].to_vec(),
        },
        Extract {
            name: "a missing file",
            paths: with_missing,
        },
        Extract {
            name: "not an image",
            paths: vec![not_an_image],
        },
        Extract {
            name: "no images",
            paths: vec![],
        },
    ]
}

fn burn_options() -> ExtractorOptions {
    ExtractorOptions {
        engine: Engine::Burn,
        arch: Some(Arch::OsnetX0_25),
        max_batch: 4,
        ..Default::default()
    }
}

/// The C side's extractor with the same options as [`burn_options`].
fn c_extractor() -> *mut reid_extractor {
    let mut options = std::ptr::null_mut();
    let mut extractor = std::ptr::null_mut();
    let arch = CString::new("osnet_x0_25").unwrap();
    let model = c_path(&checkpoint());
    // SAFETY: valid pointers; the options are freed after use.
    unsafe {
        assert_eq!(
            reid_extractor_options_new(&mut options),
            reid_status::REID_OK
        );
        assert_eq!(
            reid_extractor_options_set_engine(options, 1),
            reid_status::REID_OK
        );
        assert_eq!(
            reid_extractor_options_set_architecture(options, arch.as_ptr()),
            reid_status::REID_OK
        );
        assert_eq!(
            reid_extractor_options_set_max_batch(options, 4),
            reid_status::REID_OK
        );
        let status = reid_extractor_new(model.as_ptr(), options, &mut extractor);
        reid_extractor_options_free(options);
        assert_eq!(status, reid_status::REID_OK, "{}", common::c_last_error());
    }
    extractor
}

fn c_extract(extractor: *const reid_extractor, paths: &[PathBuf], dim: usize) -> Outcome<Vec<f32>> {
    let owned: Vec<CString> = paths.iter().map(|p| c_path(p)).collect();
    let pointers: Vec<*const c_char> = owned.iter().map(|p| p.as_ptr()).collect();
    let mut out = vec![0f32; paths.len() * dim];
    let mut len = 0;
    // SAFETY: `pointers` holds `paths.len()` strings; `out` holds what they need.
    let status = unsafe {
        reid_extractor_extract_files(
            extractor,
            pointers.as_ptr(),
            paths.len(),
            out.as_mut_ptr(),
            out.len(),
            &mut len,
        )
    };
    c(status, || {
        out.truncate(len);
        out
    })
}

#[test]
fn extraction_through_rust_and_c_agree() {
    let rust_extractor = Extractor::new(checkpoint(), &burn_options()).unwrap();
    let dim = rust_extractor.dim();
    let c_side = c_extractor();
    let mut failures = 0;
    for case in extract_cases() {
        let want = rust(rust_extractor.extract_files(&case.paths));
        let got = c_extract(c_side, &case.paths, dim);
        if let Outcome::Failed(..) = want {
            failures += 1;
        }
        assert_eq!(got, want, "{}", case.name);
    }
    // SAFETY: created above, not used afterwards.
    unsafe { reid_extractor_free(c_side) };
    assert_eq!(
        failures, 2,
        "the error cases of the table failed on both sides"
    );
}

/// A search scenario over a gallery of the fixture images' embeddings.
struct Search {
    name: &'static str,
    options: SearchOptions,
    /// Values per query (the gallery's dimension unless a case breaks it).
    query_dim: Option<usize>,
}

fn search_cases() -> Vec<Search> {
    vec![
        Search {
            name: "top 3",
            options: SearchOptions::top(3),
            query_dim: None,
        },
        Search {
            name: "more than the gallery holds",
            options: SearchOptions::top(50),
            query_dim: None,
        },
        Search {
            name: "one per identity, another camera, a threshold",
            options: SearchOptions {
                k: 5,
                min_score: Some(0.2),
                group_by_identity: true,
                exclude_camera: Some(1),
                time_window: None,
                calibrated: false,
            },
            query_dim: None,
        },
        Search {
            name: "k = 0",
            options: SearchOptions::top(0),
            query_dim: None,
        },
        Search {
            name: "the calibrated threshold (an error before the galleries are calibrated)",
            options: SearchOptions {
                calibrated: true,
                ..SearchOptions::top(5)
            },
            query_dim: None,
        },
        Search {
            name: "a threshold and the calibrated one",
            options: SearchOptions {
                calibrated: true,
                min_score: Some(0.5),
                ..SearchOptions::top(5)
            },
            query_dim: None,
        },
        Search {
            name: "a time window (the entries were added without times: nothing)",
            options: SearchOptions {
                time_window: Some(reid::gallery::TimeSpan::new(0.0, 1e9).unwrap()),
                ..SearchOptions::top(5)
            },
            query_dim: None,
        },
        Search {
            name: "a time window that ends before it starts",
            options: SearchOptions {
                time_window: Some(reid::gallery::TimeSpan {
                    start: 5.0,
                    end: 1.0,
                }),
                ..SearchOptions::top(5)
            },
            query_dim: None,
        },
        Search {
            name: "a query of the wrong size",
            options: SearchOptions::top(3),
            query_dim: Some(100),
        },
    ]
}

#[test]
fn search_through_rust_and_c_agree() {
    let extractor = Extractor::new(checkpoint(), &burn_options()).unwrap();
    let dim = extractor.dim();
    let vectors = extractor.extract_files(&images()).unwrap();
    let identities: Vec<u64> = (0..images().len() as u64).map(|i| i % 3).collect();
    let cameras: Vec<i32> = (0..images().len() as i32).map(|i| i % 2).collect();
    let rust_gallery = Gallery::new(dim, reid::distance::Metric::Cosine).unwrap();
    let entries = vectors
        .chunks(dim)
        .zip(identities.iter().zip(&cameras))
        .map(|(v, (&identity, &camera))| NewEntry {
            id: None,
            identity,
            camera,
            tag: None,
            time: None,
            vector: v.to_vec(),
            crop: None,
        })
        .collect();
    rust_gallery.add_batch(entries).unwrap();
    let mut c_gallery: *mut reid_gallery = std::ptr::null_mut();
    // SAFETY: valid pointers and sizes.
    unsafe {
        assert_eq!(
            reid_gallery_new(dim, 0, &mut c_gallery),
            reid_status::REID_OK
        );
        let status = reid_gallery_add_batch(
            c_gallery,
            vectors.as_ptr(),
            identities.len(),
            dim,
            std::ptr::null(),
            identities.as_ptr(),
            cameras.as_ptr(),
            std::ptr::null_mut(),
        );
        assert_eq!(status, reid_status::REID_OK, "{}", common::c_last_error());
    }
    // Every case, then every case again once both galleries are calibrated on the same
    // labelled set (a threshold that lets a quarter of the different-identity pairs through).
    for calibrated in [false, true] {
        if calibrated {
            let calibration = rust_gallery.calibrate(&vectors, &identities, 0.25).unwrap();
            let (mut threshold, mut tar) = (0f32, 0f64);
            // SAFETY: valid pointers and sizes.
            let status = unsafe {
                reid_gallery_calibrate(
                    c_gallery,
                    vectors.as_ptr(),
                    identities.len(),
                    dim,
                    identities.as_ptr(),
                    0.25,
                    &mut threshold,
                    &mut tar,
                )
            };
            assert_eq!(status, reid_status::REID_OK, "{}", common::c_last_error());
            assert_eq!(
                (threshold.to_bits(), tar),
                (calibration.threshold.to_bits(), calibration.tar)
            );
        }
        search_both(&rust_gallery, c_gallery, &vectors, dim);
    }
    // SAFETY: created above, not used afterwards.
    unsafe { reid_gallery_free(c_gallery) };
}

/// Every search case through the Rust gallery and the C one (holding the same entries): the
/// same matches, or the same refusal.
fn search_both(rust_gallery: &Gallery, c_gallery: *mut reid_gallery, vectors: &[f32], dim: usize) {
    for case in search_cases() {
        for query in vectors.chunks(dim) {
            let query: Vec<f32> = match case.query_dim {
                Some(n) => query.iter().cycle().take(n).copied().collect(),
                None => query.to_vec(),
            };
            let want = rust(rust_gallery.search(&query, &case.options)).map(|rows| {
                rows[0]
                    .iter()
                    .map(|m| (m.id, m.identity, m.camera, m.score.to_bits()))
                    .collect::<Vec<_>>()
            });
            let mut options = reid_search_options_default();
            options.k = case.options.k;
            if let Some(min) = case.options.min_score {
                options.min_score = min;
                options.flags |= reid::ffi::search_options::REID_SEARCH_MIN_SCORE;
            }
            if case.options.group_by_identity {
                options.flags |= reid::ffi::search_options::REID_SEARCH_GROUP_BY_IDENTITY;
            }
            if let Some(camera) = case.options.exclude_camera {
                options.exclude_camera = camera;
                options.flags |= reid::ffi::search_options::REID_SEARCH_EXCLUDE_CAMERA;
            }
            if case.options.calibrated {
                options.flags |= reid::ffi::search_options::REID_SEARCH_CALIBRATED;
            }
            if let Some(window) = case.options.time_window {
                (options.time_from, options.time_to) = (window.start, window.end);
                options.flags |= reid::ffi::search_options::REID_SEARCH_TIME_WINDOW;
            }
            let mut out = vec![reid_match::default(); case.options.k.max(1)];
            let mut len = 0;
            // SAFETY: `out` holds `out.len()` matches.
            let status = unsafe {
                reid_gallery_search(
                    c_gallery,
                    query.as_ptr(),
                    query.len(),
                    &options,
                    out.as_mut_ptr(),
                    out.len(),
                    &mut len,
                )
            };
            let got = c(status, || {
                out[..len]
                    .iter()
                    .map(|m| (m.id, m.identity, m.camera, m.score.to_bits()))
                    .collect::<Vec<_>>()
            });
            if case.query_dim.is_some() {
                // C declares the query's dimension and gets REID_DIMENSION_MISMATCH; Rust
                // takes a flat slice and finds it is no whole number of embeddings. Both refuse.
                assert!(
                    matches!((&got, &want), (Outcome::Failed(..), Outcome::Failed(..))),
                    "{}: {got:?} / {want:?}",
                    case.name
                );
            } else {
                assert_eq!(got, want, "{}", case.name);
            }
        }
    }
}

impl<T> Outcome<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Ok(v) => Outcome::Ok(f(v)),
            Outcome::Failed(s, m) => Outcome::Failed(s, m),
        }
    }
}

/// An export scenario: the architecture, weights and input size given.
struct Export {
    name: &'static str,
    arch: Option<&'static str>,
    weights: PathBuf,
    size: (usize, usize),
}

fn export_cases() -> Vec<Export> {
    vec![
        Export {
            name: "torchreid checkpoint at its default size",
            arch: Some("osnet_x0_25"),
            weights: checkpoint(),
            size: (0, 0),
        },
        Export {
            name: "another input size",
            arch: Some("osnet_x0_25"),
            weights: checkpoint(),
            size: (128, 64),
        },
        Export {
            name: "an input size beyond any model",
            arch: Some("osnet_x0_25"),
            weights: checkpoint(),
            size: (usize::MAX, usize::MAX),
        },
        Export {
            name: "too small for the network",
            arch: Some("osnet_x0_25"),
            weights: checkpoint(),
            size: (8, 8),
        },
        Export {
            name: "missing weights",
            arch: Some("osnet_x0_25"),
            weights: root().join("tests/fixtures/absent.pth"),
            size: (0, 0),
        },
    ]
}

#[test]
fn export_through_rust_and_c_agree() {
    let dir = tempfile::tempdir().unwrap();
    let device = reid::device::default_device();
    let mut failures = 0;
    for (i, case) in export_cases().into_iter().enumerate() {
        let rust_out = dir.path().join(format!("rust{i}.onnx"));
        let c_out = dir.path().join(format!("c{i}.onnx"));
        let want = rust((|| {
            let arch = case.arch.map(str::parse::<Arch>).transpose()?;
            let model = reid::weights::load_any(arch, &case.weights, &device)?;
            let (h, w) = match case.size {
                (0, 0) => model.input_size(),
                size => size,
            };
            model.check_input_size(h, w)?;
            let options = reid::export::ExportOptions::new(h, w);
            reid::export::export_onnx_file(&model, &options, &rust_out)?;
            Ok(std::fs::read(&rust_out).unwrap())
        })());
        let arch = case.arch.map(|a| CString::new(a).unwrap());
        let (weights, out) = (c_path(&case.weights), c_path(&c_out));
        // SAFETY: NUL-terminated strings or NULL.
        let status = unsafe {
            reid_export_onnx(
                arch.as_ref().map_or(std::ptr::null(), |a| a.as_ptr()),
                weights.as_ptr(),
                out.as_ptr(),
                case.size.0,
                case.size.1,
                0,
            )
        };
        let got = c(status, || std::fs::read(&c_out).unwrap());
        if let Outcome::Failed(..) = want {
            failures += 1;
            assert!(
                !c_out.exists(),
                "{}: a failed export left a file",
                case.name
            );
        }
        assert!(
            got == want,
            "{}: {:?} vs {:?}",
            case.name,
            summary(&got),
            summary(&want)
        );
    }
    assert_eq!(
        failures, 3,
        "the error cases of the table failed on both sides"
    );
}

fn summary(o: &Outcome<Vec<u8>>) -> String {
    match o {
        Outcome::Ok(bytes) => format!("{} bytes", bytes.len()),
        Outcome::Failed(s, m) => format!("{s:?}: {m}"),
    }
}

/// One progress report, as `reid_progress` carries it (loss and mAP as bits: compared exactly).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Report {
    epoch: u32,
    epochs: u32,
    step: u32,
    steps: u32,
    loss: u32,
    map: u32,
    end_of_epoch: bool,
}

/// A finetuning scenario: the architecture, a folder of identities and single encoded images
/// (path, identity, camera) added before one epoch.
struct Finetune {
    name: &'static str,
    arch: &'static str,
    folder: bool,
    encoded: Vec<(PathBuf, u64, i32)>,
}

fn finetune_cases() -> Vec<Finetune> {
    vec![
        Finetune {
            name: "one epoch on a folder of identities, evaluated on its held-out images",
            arch: "osnet_x0_25",
            folder: true,
            encoded: vec![],
        },
        Finetune {
            name: "no images",
            arch: "osnet_x0_25",
            folder: false,
            encoded: vec![],
        },
        Finetune {
            name: "a negative camera",
            arch: "osnet_x0_25",
            folder: false,
            encoded: vec![(images()[0].clone(), 3, -1)],
        },
        Finetune {
            name: "an unknown architecture",
            arch: "osnet_x9",
            folder: true,
            encoded: vec![],
        },
    ]
}

/// Epochs, batch size and input size of every finetuning scenario.
const FINETUNE_TRAINING: (usize, usize, usize, usize) = (1, 16, 64, 32);

fn rust_finetune(case: &Finetune, folder: &Path, work: &Path) -> Outcome<(Vec<Report>, Vec<u8>)> {
    use reid::finetuner::{Finetuner, Split};
    use reid::train::Event;
    let (epochs, batch, height, width) = FINETUNE_TRAINING;
    rust((|| {
        let mut job = Finetuner::new(case.arch, Some(&checkpoint()), work)?;
        if case.folder {
            job.add_folder(folder)?;
        }
        for (path, identity, camera) in &case.encoded {
            let bytes = std::fs::read(path).unwrap();
            job.add_encoded(&bytes, *identity, *camera, Split::Train)?;
        }
        job.set_epochs(epochs)?;
        job.set_training(batch, 0.0, height, width)?;
        let mut reports = Vec::new();
        job.run(&mut |event| {
            let report = match event {
                Event::Step {
                    epoch,
                    step,
                    steps,
                    stats,
                    ..
                } => Report {
                    epoch: *epoch as u32,
                    epochs: epochs as u32,
                    step: *step as u32,
                    steps: *steps as u32,
                    loss: stats.loss.to_bits(),
                    map: f32::NAN.to_bits(),
                    end_of_epoch: false,
                },
                Event::Epoch(log) => Report {
                    epoch: log.epoch as u32,
                    epochs: epochs as u32,
                    step: log.steps as u32,
                    steps: log.steps as u32,
                    loss: (log.loss as f32).to_bits(),
                    map: log
                        .eval
                        .first()
                        .map_or(f32::NAN, |e| e.map as f32)
                        .to_bits(),
                    end_of_epoch: true,
                },
                _ => return true,
            };
            reports.push(report);
            true
        })?;
        let saved = work.join("model.bpk");
        job.save_checkpoint(&saved)?;
        Ok((reports, std::fs::read(saved).unwrap()))
    })())
}

/// The embeddings (as bits) of a fixed batch through a saved checkpoint: the same for two
/// checkpoints of the same weights (the files differ in Burn's random parameter ids).
fn trained_features(checkpoint: &[u8]) -> Vec<u32> {
    use burn::tensor::{Tensor, TensorData};
    let (_, _, height, width) = FINETUNE_TRAINING;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bpk");
    std::fs::write(&path, checkpoint).unwrap();
    let device = reid::device::default_device();
    let model = reid::weights::load_checkpoint(&path, &device).unwrap();
    let n = 2 * 3 * height * width;
    let pixels: Vec<f32> = (0..n)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let images = Tensor::<4>::from_data(TensorData::new(pixels, [2, 3, height, width]), &device);
    let features = reid::models::embed::tensor_to_vec(model.features(images));
    features.iter().map(|v| v.to_bits()).collect()
}

unsafe extern "C" fn collect_report(
    user_data: *mut std::ffi::c_void,
    p: *const reid::ffi::finetuner::reid_progress,
) -> i32 {
    // SAFETY: `user_data` is the Vec given to reid_finetuner_run; `p` is valid for this call.
    let (reports, p) = unsafe { (&mut *(user_data as *mut Vec<Report>), &*p) };
    reports.push(Report {
        epoch: p.epoch,
        epochs: p.epochs,
        step: p.step,
        steps: p.steps,
        loss: p.loss.to_bits(),
        map: p.map.to_bits(),
        end_of_epoch: p.end_of_epoch != 0,
    });
    0
}

fn c_finetune(case: &Finetune, folder: &Path, work: &Path) -> Outcome<(Vec<Report>, Vec<u8>)> {
    use reid::ffi::finetuner::*;
    let (epochs, batch, height, width) = FINETUNE_TRAINING;
    let (arch, weights, work_c) = (
        CString::new(case.arch).unwrap(),
        c_path(&checkpoint()),
        c_path(work),
    );
    let mut job: *mut reid_finetuner = std::ptr::null_mut();
    // SAFETY: NUL-terminated strings and a writable out pointer.
    let status =
        unsafe { reid_finetuner_new(arch.as_ptr(), weights.as_ptr(), work_c.as_ptr(), &mut job) };
    if status != reid_status::REID_OK {
        return c(status, || unreachable!());
    }
    let mut reports: Vec<Report> = Vec::new();
    let saved = work.join("model.bpk");
    let saved_c = c_path(&saved);
    // SAFETY: `job` is live until freed below; every pointer is valid for its call.
    let status = unsafe {
        let mut status = reid_status::REID_OK;
        if case.folder {
            let folder = c_path(folder);
            status = reid_finetuner_add_folder(job, folder.as_ptr(), std::ptr::null_mut());
        }
        for (path, identity, camera) in &case.encoded {
            if status == reid_status::REID_OK {
                let bytes = std::fs::read(path).unwrap();
                status = reid_finetuner_add_encoded(
                    job,
                    bytes.as_ptr(),
                    bytes.len(),
                    *identity,
                    *camera,
                    0,
                );
            }
        }
        if status == reid_status::REID_OK {
            status = reid_finetuner_set_epochs(job, epochs);
        }
        if status == reid_status::REID_OK {
            status = reid_finetuner_set_training(job, batch, 0.0, height, width);
        }
        if status == reid_status::REID_OK {
            let user_data = &mut reports as *mut Vec<Report> as *mut std::ffi::c_void;
            status = reid_finetuner_run(job, Some(collect_report), user_data);
        }
        if status == reid_status::REID_OK {
            status = reid_finetuner_save(job, saved_c.as_ptr());
        }
        status
    };
    let outcome = c(status, || (reports.clone(), std::fs::read(&saved).unwrap()));
    // SAFETY: created above, not used afterwards.
    unsafe { reid_finetuner_free(job) };
    outcome
}

/// The outcome with the job's own working folder, which messages name, written `WORK`.
fn in_work<T>(outcome: Outcome<T>, work: &Path) -> Outcome<T> {
    match outcome {
        Outcome::Failed(status, message) => {
            Outcome::Failed(status, message.replace(work.to_str().unwrap(), "WORK"))
        }
        ok => ok,
    }
}

#[test]
fn finetuning_through_rust_and_c_agree() {
    let dir = tempfile::tempdir().unwrap();
    let folder = common::identity_folder_dataset(dir.path());
    let mut failures = 0;
    for (i, case) in finetune_cases().iter().enumerate() {
        let (rust_work, c_work) = (
            dir.path().join(format!("rust{i}")),
            dir.path().join(format!("c{i}")),
        );
        let want = in_work(rust_finetune(case, &folder, &rust_work), &rust_work);
        let got = in_work(c_finetune(case, &folder, &c_work), &c_work);
        match (&got, &want) {
            (Outcome::Ok((c_reports, c_model)), Outcome::Ok((reports, model))) => {
                assert_eq!(c_reports, reports, "{}", case.name);
                assert_eq!(
                    trained_features(c_model),
                    trained_features(model),
                    "{}: the trained models differ",
                    case.name
                );
                // reid.h's contract: steps count from 1 to `steps` (the steps per epoch), and
                // the end-of-epoch report has `step` = `steps`.
                let steps: Vec<&Report> = c_reports.iter().filter(|r| !r.end_of_epoch).collect();
                let end = c_reports.last().unwrap();
                assert!(end.end_of_epoch && end.steps > 0, "{}: {end:?}", case.name);
                assert_eq!((end.step, end.steps as usize), (end.steps, steps.len()));
                for (n, r) in steps.iter().enumerate() {
                    assert_eq!((r.step, r.steps), (n as u32 + 1, end.steps), "{r:?}");
                }
                assert!(
                    f32::from_bits(end.map) > 0.0,
                    "{}: no evaluation",
                    case.name
                );
            }
            _ => {
                failures += 1;
                assert_eq!(got, want, "{}", case.name);
            }
        }
    }
    assert_eq!(
        failures, 3,
        "the error cases of the table failed on both sides"
    );
}

/// A model calibrated with `export::write_metadata` (what `reid calibrate` does) tells its
/// threshold to Rust and C alike, and both hand it to a gallery; a model without one is
/// `NotFound` on both sides.
#[test]
fn a_models_calibration_through_rust_and_c_agrees() {
    use reid::ffi::extractor::reid_extractor_calibration;
    use reid::ffi::gallery::reid_gallery_adopt_calibration;
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("model.onnx");
    let device = reid::device::default_device();
    let model = reid::weights::load_any(Some(Arch::OsnetX0_25), checkpoint(), &device).unwrap();
    let options = reid::export::ExportOptions::new(64, 32);
    reid::export::export_onnx_file(&model, &options, &model_path).unwrap();
    let open_c = || {
        let mut extractor = std::ptr::null_mut();
        let mut opts = std::ptr::null_mut();
        let path = c_path(&model_path);
        // SAFETY: valid pointers; the options are freed after use.
        unsafe {
            assert_eq!(reid_extractor_options_new(&mut opts), reid_status::REID_OK);
            assert_eq!(
                reid_extractor_options_set_engine(opts, 1),
                reid_status::REID_OK
            );
            let status = reid_extractor_new(path.as_ptr(), opts, &mut extractor);
            reid_extractor_options_free(opts);
            assert_eq!(status, reid_status::REID_OK, "{}", common::c_last_error());
        }
        extractor
    };
    let burn = ExtractorOptions {
        engine: Engine::Burn,
        ..Default::default()
    };
    // None yet, on both sides.
    assert!(
        Extractor::new(&model_path, &burn)
            .unwrap()
            .calibration()
            .is_none()
    );
    let c_ex = open_c();
    let mut threshold = 0f32;
    // SAFETY: a live handle and a writable float.
    let status = unsafe {
        reid_extractor_calibration(
            c_ex,
            &mut threshold,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(status, reid_status::REID_NOT_FOUND);
    // SAFETY: the handle is not used again.
    unsafe { reid_extractor_free(c_ex) };
    // Calibrated on a small labelled set, written into the file's metadata.
    let labelled = Gallery::new(4, reid::eval::Metric::Cosine).unwrap();
    let values = [
        1.0, 0.1, 0.0, 0.0, 0.8, 0.3, 0.1, 0.0, 0.0, 1.0, 0.2, 0.0, 0.1, 0.7, 0.0, 0.4,
    ];
    let calibration = labelled.calibrate(&values, &[1, 1, 2, 2], 0.5).unwrap();
    let record = serde_json::to_string(&calibration).unwrap();
    reid::export::write_metadata(&model_path, &[(reid::export::CALIBRATION, record)]).unwrap();
    let rust_ex = Extractor::new(&model_path, &burn).unwrap();
    assert_eq!(rust_ex.calibration(), Some(&calibration));
    let c_ex = open_c();
    let (mut far, mut tar) = (0f64, 0f64);
    // SAFETY: a live handle and writable outputs.
    let status = unsafe { reid_extractor_calibration(c_ex, &mut threshold, &mut far, &mut tar) };
    assert_eq!(status, reid_status::REID_OK);
    assert_eq!(
        (threshold.to_bits(), far, tar),
        (
            calibration.threshold.to_bits(),
            calibration.far,
            calibration.tar
        )
    );
    // Handed to galleries: the Rust one and the C one keep the same record.
    let rust_gallery = Gallery::new(8, reid::eval::Metric::Cosine).unwrap();
    rust_gallery
        .adopt_calibration(rust_ex.calibration().unwrap())
        .unwrap();
    let mut c_gallery: *mut reid_gallery = std::ptr::null_mut();
    // SAFETY: valid pointers; both handles are freed at the end.
    unsafe {
        assert_eq!(reid_gallery_new(8, 0, &mut c_gallery), reid_status::REID_OK);
        assert_eq!(
            reid_gallery_adopt_calibration(c_gallery, c_ex),
            reid_status::REID_OK
        );
        let mut euclidean: *mut reid_gallery = std::ptr::null_mut();
        assert_eq!(reid_gallery_new(8, 1, &mut euclidean), reid_status::REID_OK);
        assert_eq!(
            reid_gallery_adopt_calibration(euclidean, c_ex),
            reid_status::REID_INVALID_ARGUMENT
        );
        reid_gallery_free(euclidean);
        reid_gallery_free(c_gallery);
        reid_extractor_free(c_ex);
    }
    assert_eq!(rust_gallery.calibration().unwrap(), Some(calibration));
}
