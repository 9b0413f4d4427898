//! JPEG bytes → embeddings through the Extractor, beside the same model run on an already
//! prepared tensor, for both engines: the difference is the cost of decoding, resizing and
//! normalizing. Needs ONNX Runtime for the `onnxruntime` rows (found as the Extractor finds it).

use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use reid::device::default_device;
use reid::export::{ExportOptions, export_onnx_file};
use reid::extractor::{Engine, Extractor, ExtractorOptions};
use reid::models::{Arch, ReidModel};

// As the `reid` command line does.
#[global_allocator]
static ALLOCATOR: reid::allocator::ReusingAllocator =
    reid::allocator::ReusingAllocator::new(reid::allocator::DEFAULT_CAPACITY);

fn jpegs(n: usize) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images");
    let files: Vec<Vec<u8>> = ["person0.jpg", "person1.jpg", "person3.jpg"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    (0..n).map(|i| files[i % files.len()].clone()).collect()
}

fn extract(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("extract_256x128");
    group.sample_size(10);
    for arch in [Arch::OsnetX0_25, Arch::OsnetX1_0] {
        let model = ReidModel::new(arch, 751, &default_device());
        let onnx = dir.path().join(format!("{}.onnx", arch.name()));
        export_onnx_file(&model, &ExportOptions::new(256, 128), &onnx).unwrap();
        for engine in [Engine::OnnxRuntime, Engine::Burn] {
            let options = ExtractorOptions {
                engine,
                max_batch: 32,
                ..Default::default()
            };
            let extractor = match Extractor::new(&onnx, &options) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("{engine:?} skipped: {e}");
                    continue;
                }
            };
            let engine_name = format!("{engine:?}").to_lowercase();
            for batch in [1usize, 32] {
                let images = jpegs(batch);
                let refs: Vec<&[u8]> = images.iter().map(|b| b.as_slice()).collect();
                let prepared = vec![0.1f32; batch * extractor.preprocessing().input_len()];
                group.throughput(Throughput::Elements(batch as u64));
                group.bench_function(
                    BenchmarkId::new(format!("{}/{engine_name}/jpeg", arch.name()), batch),
                    |b| b.iter(|| extractor.extract_encoded(&refs).unwrap()),
                );
                group.bench_function(
                    BenchmarkId::new(format!("{}/{engine_name}/prepared", arch.name()), batch),
                    |b| b.iter(|| extractor.extract_prepared(&prepared, batch).unwrap()),
                );
            }
        }
    }
    group.finish();
}

/// The stages of the JPEG path for one crop: decode, Pillow-exact resize, normalization.
fn stages(c: &mut Criterion) {
    use reid::preprocess::{ImageView, PixelFormat, Preprocessing, decode};
    let jpeg = jpegs(2).remove(1);
    let (rgb, w, h) = decode(&jpeg).unwrap();
    let p = Preprocessing::torchreid(256, 128);
    let mut out = vec![0f32; p.input_len()];
    let mut group = c.benchmark_group("preprocess_one_crop");
    group.bench_function("decode_jpeg", |b| b.iter(|| decode(&jpeg).unwrap()));
    group.bench_function("resize", |b| {
        b.iter(|| reid::preprocess::resample::resize_rgb(&rgb, w, h, 128, 256))
    });
    group.bench_function("prepare", |b| {
        b.iter(|| {
            p.prepare(&ImageView::packed(&rgb, w, h, PixelFormat::Rgb8), &mut out)
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, stages, extract);
criterion_main!(benches);
