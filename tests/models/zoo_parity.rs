//! Numerical parity of every architecture of the zoo with its reference implementation
//! (torchreid 0.2.5, timm, PyTorch), checked in every run.
//!
//! No weights are committed: `tests/fixtures/make_parity_fixtures.py` gave each reference model
//! weights drawn from a counter-based hash of (parameter name, index) — normalization
//! statistics, scales and biases included — and recorded its eval-mode outputs; this test draws
//! the same weights (`common::hashed_weights`), loads them under torchreid's / timm's names and
//! compares. Tolerance: max |Δ| ≤ 1e-4 × max(1, max |ref|).

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use common::{assert_close, hashed_weights};
use reid::device::default_device;
use reid::formats::npy::read_npy;
use reid::models::embed::{embed_array, tensor_to_vec};
use reid::models::kernels::{CpuKernels, cpu_kernels};
use reid::models::{Arch, ReidModel};
use reid::weights::load_state_dict;
use serde::Deserialize;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[derive(Deserialize)]
struct Manifest {
    arch: String,
    reference: String,
    num_classes: usize,
    tensors: Vec<(String, Vec<usize>)>,
    #[serde(default)]
    running_var_scale: BTreeMap<String, f32>,
    inputs: Vec<String>,
}

fn manifest(arch: &str) -> Manifest {
    let path = fixtures().join("parity").join(arch).join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The zoo model of `arch` with the hashed weights of its manifest.
fn hashed_model(arch: Arch) -> (ReidModel, Manifest) {
    let m = manifest(arch.name());
    assert_eq!(m.arch, arch.name());
    let device = default_device();
    let dict = hashed_weights::state_dict(&m.tensors, &m.running_var_scale);
    let model = ReidModel::new(arch, m.num_classes, &device);
    let (model, report) = load_state_dict(model, &dict).unwrap_or_else(|e| panic!("{arch}: {e}"));
    assert!(report.skipped.is_empty(), "{arch}: {:?}", report.skipped);
    (model, m)
}

/// The reference rows differ between the samples of the batch by far more than the tolerance:
/// a fixture whose output hardly depends on its input could not catch a wrong network.
fn assert_input_dependent(what: &str, want: &[f32], rows: usize) {
    let cols = want.len() / rows;
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    let spread = (1..rows)
        .flat_map(|r| (0..cols).map(move |c| (want[r * cols + c] - want[c]).abs()))
        .fold(0f32, f32::max);
    assert!(
        spread >= 10.0 * 1e-4 * scale,
        "{what}: the reference varies by only {spread:e} between inputs"
    );
}

/// The models whose embedding runs as a graph of reid's kernels: OSNet without instance
/// normalization and ResNet, on reid's CPU kernels.
fn runs_as_a_graph(arch: Arch) -> bool {
    let covered = [
        Arch::OsnetX1_0,
        Arch::OsnetX0_75,
        Arch::OsnetX0_5,
        Arch::OsnetX0_25,
        Arch::Resnet50,
        Arch::Resnet50Fc512,
    ];
    covered.contains(&arch) && cpu_kernels() == CpuKernels::Reid
}

fn check(arch: Arch) {
    let (model, m) = hashed_model(arch);
    let device = default_device();
    let dir = fixtures().join("parity").join(arch.name());
    eprintln!("{arch} against {}", m.reference);
    for input_name in &m.inputs {
        let input = read_npy(fixtures().join(input_name)).unwrap();
        let size = format!("{}x{}", input.shape[2], input.shape[3]);
        let reid_out = dir.join(format!("out_{size}.npy"));
        if reid_out.exists() {
            // Re-id models: the eval-mode embedding.
            let want = read_npy(&reid_out).unwrap();
            let got = embed_array(&model, &input, 8, &device).unwrap();
            assert_eq!(got.shape, want.shape, "{arch} {size}: shape");
            assert_input_dependent(&format!("{arch} {size}"), &want.to_f32(), want.shape[0]);
            assert_close(&format!("{arch} {size}"), &got.to_f32(), &want.to_f32());
            // Where the model runs as a kernel graph, `embed_array` took the graph: the Burn
            // model's own forward is checked as well.
            let graph = model.embedding_graph(None);
            assert_eq!(
                graph.is_some(),
                runs_as_a_graph(arch),
                "{arch}: which models run as a kernel graph"
            );
            if graph.is_some() {
                let shape: [usize; 4] = input.shape.clone().try_into().unwrap();
                let x = Tensor::<4>::from_data(TensorData::new(input.to_f32(), shape), &device);
                let by_burn = tensor_to_vec(model.features(x));
                assert_close(&format!("{arch} {size} (Burn)"), &by_burn, &want.to_f32());
            }
        } else {
            // Classifiers: the embedding and the classifier's logits.
            let shape: [usize; 4] = input.shape.clone().try_into().unwrap();
            let x = Tensor::<4>::from_data(TensorData::new(input.to_f32(), shape), &device);
            let out = model.logits(x);
            let embedding = read_npy(dir.join(format!("emb_{size}.npy"))).unwrap();
            let logits = read_npy(dir.join(format!("logits_{size}.npy"))).unwrap();
            assert_eq!(out.features.dims().to_vec(), embedding.shape, "{arch}");
            let rows = embedding.shape[0];
            assert_input_dependent(&format!("{arch} embedding"), &embedding.to_f32(), rows);
            assert_input_dependent(&format!("{arch} logits"), &logits.to_f32(), rows);
            assert_close(
                &format!("{arch} {size} embedding"),
                &tensor_to_vec(out.features),
                &embedding.to_f32(),
            );
            assert_close(
                &format!("{arch} {size} logits"),
                &tensor_to_vec(out.logits),
                &logits.to_f32(),
            );
        }
    }
}

macro_rules! parity {
    ($($test:ident => $arch:expr),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check($arch);
            }
        )*
        /// Every architecture of the zoo has a parity test above, and every fixture folder
        /// is one of them.
        #[test]
        fn every_architecture_is_checked() {
            let tested: Vec<Arch> = vec![$($arch),*];
            for arch in Arch::ALL {
                assert!(tested.contains(&arch), "{arch} has no parity test");
            }
            let folders = std::fs::read_dir(fixtures().join("parity"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_dir())
                .count();
            assert_eq!(folders, tested.len(), "parity fixture folders");
        }
    };
}

parity! {
    osnet_x1_0 => Arch::OsnetX1_0,
    osnet_x0_75 => Arch::OsnetX0_75,
    osnet_x0_5 => Arch::OsnetX0_5,
    osnet_x0_25 => Arch::OsnetX0_25,
    osnet_ibn_x1_0 => Arch::OsnetIbnX1_0,
    osnet_ain_x1_0 => Arch::OsnetAinX1_0,
    osnet_ain_x0_75 => Arch::OsnetAinX0_75,
    osnet_ain_x0_5 => Arch::OsnetAinX0_5,
    osnet_ain_x0_25 => Arch::OsnetAinX0_25,
    resnet50 => Arch::Resnet50,
    resnet50_fc512 => Arch::Resnet50Fc512,
    mobilenetv2_x1_0 => Arch::Mobilenetv2X1_0,
    mobilenetv2_x1_4 => Arch::Mobilenetv2X1_4,
    mobilenetv3_small => Arch::Mobilenetv3Small,
    mobilenetv3_small_075 => Arch::Mobilenetv3Small075,
    mobilenetv3_small_125 => Arch::Mobilenetv3Small125,
    mobilenetv3_small_150 => Arch::Mobilenetv3Small150,
    mobilenetv3_large => Arch::Mobilenetv3Large,
    mobilenetv3_large_075 => Arch::Mobilenetv3Large075,
    mobilenetv3_large_125 => Arch::Mobilenetv3Large125,
    mobilenetv3_large_150 => Arch::Mobilenetv3Large150,
    efficientnet_b0 => Arch::EfficientnetB0,
    inceptionv4 => Arch::Inceptionv4,
    mobilefacenet => Arch::Mobilefacenet,
}

#[derive(Deserialize)]
struct HashCheck {
    name: String,
    shape: Vec<usize>,
    fnv1a64: String,
    mix0: String,
    first5_bits: Vec<u32>,
}

/// The Rust generator draws bit-for-bit what the Python one drew (values the Python script
/// wrote, not computed here).
#[test]
fn hashed_weights_match_the_python_generator() {
    let text = std::fs::read_to_string(fixtures().join("parity/hash_check.json")).unwrap();
    let cases: Vec<HashCheck> = serde_json::from_str(&text).unwrap();
    assert_eq!(cases.len(), 3);
    for c in cases {
        assert_eq!(
            hashed_weights::fnv1a64(&c.name).to_string(),
            c.fnv1a64,
            "{}",
            c.name
        );
        assert_eq!(
            hashed_weights::element_hash(&c.name, 0).to_string(),
            c.mix0,
            "{}",
            c.name
        );
        let values = hashed_weights::tensor_values(&c.name, &c.shape);
        let bits: Vec<u32> = values[..5].iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits, c.first5_bits, "{}", c.name);
    }
}
