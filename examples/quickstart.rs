//! The SDK's main path without any native library: load a torchreid checkpoint, check it
//! against torchreid's own output, embed JPEG / PNG / BMP / WebP files, and match them in a
//! gallery.
//!
//! Run: `cargo run --example quickstart`

use std::path::Path;

use reid::device::default_device;
use reid::formats::npy::read_npy;
use reid::models::Arch;
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
    let features = reid::models::embed::embed_array(&model, &images, 32, &device)?;
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

    // Image files through the Extractor (Burn engine: no ONNX Runtime needed).
    let options = reid::ExtractorOptions {
        engine: reid::extractor::Engine::Burn,
        arch: Some(Arch::OsnetX0_25),
        ..Default::default()
    };
    let extractor = reid::Extractor::new(&checkpoint, &options)?;
    let names = [
        "person0.jpg",
        "person1.jpg",
        "person2.png",
        "person4.bmp",
        "person5.webp",
    ];
    let files: Vec<_> = names
        .iter()
        .map(|n| fixtures.join("images").join(n))
        .collect();
    let embeddings = extractor.extract_files(&files)?;
    println!(
        "{} image files -> {}-d L2-normalized embeddings",
        files.len(),
        extractor.dim()
    );

    // A gallery of the first four; the fifth is the query.
    let gallery = reid::Gallery::new(extractor.dim(), reid::eval::Metric::Cosine)?;
    let dim = extractor.dim();
    let entries = (0..4)
        .map(|i| reid::gallery::NewEntry {
            id: None,
            identity: i as u64,
            camera: 0,
            tag: Some(names[i].to_string()),
            time: None,
            vector: embeddings[i * dim..(i + 1) * dim].to_vec(),
            crop: None,
        })
        .collect();
    gallery.add_batch(entries)?;
    let query = &embeddings[4 * dim..];
    let results = gallery.search(query, &reid::gallery::SearchOptions::top(3))?;
    for m in &results[0] {
        let tag = gallery.get(m.id)?.and_then(|e| e.tag).unwrap_or_default();
        println!(
            "  match {tag:<12} identity {} similarity {:.4}",
            m.identity, m.score
        );
    }
    Ok(())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
