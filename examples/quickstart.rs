//! Loads a torchreid checkpoint, embeds a batch of prepared images and compares the
//! embeddings with each other and with torchreid's own output for the same checkpoint.
//!
//! Run: `cargo run --example quickstart`

use std::path::Path;

use reid::device::default_device;
use reid::models::Arch;
use reid::npy::read_npy;
use reid::weights::load_torchreid;

fn main() -> reid::Result<()> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let device = default_device();

    // A checkpoint as torchreid's engine writes it (state_dict + epoch + optimizer).
    let checkpoint = fixtures.join("osnet_x0_25/checkpoint.pth.tar");
    let (model, report) = load_torchreid(Arch::OsnetX0_25, &checkpoint, &device)?;
    println!(
        "loaded {} ({} tensors, {} identities) from {}",
        model.arch,
        report.loaded,
        model.num_classes(),
        checkpoint.display()
    );

    // Two images, already resized to 256x128 and normalized (float32 NCHW).
    let images = read_npy(fixtures.join("input_256x128.npy"))?;
    let features = reid::embed::embed_array(&model, &images, 32, &device)?;
    let dim = features.shape[1];
    let values = features.to_f32();
    let (a, b) = values.split_at(dim);
    let cosine = dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt());
    println!(
        "{} embeddings of dimension {dim}; cosine(image 0, image 1) = {cosine:.4}",
        features.shape[0]
    );

    // The same checkpoint through torchreid 0.2.5 (written by tests/fixtures/make_fixtures.py).
    let reference = read_npy(fixtures.join("osnet_x0_25/out_256x128.npy"))?;
    let worst = values
        .iter()
        .zip(reference.to_f32())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    println!("max |difference| from torchreid's output: {worst:.2e}");
    Ok(())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
