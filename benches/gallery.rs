//! Exact top-10 search of 1,000 normalized 512-d queries against 100k and 1M entries, beside
//! faiss IndexFlatIP's throughput in PEERS.md (1,795 and 152 queries/s on a quiet machine).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use reid::eval::Metric;
use reid::gallery::{Gallery, NewEntry, SearchOptions};

const DIM: usize = 512;

fn vectors(seed: u64, n: usize) -> Vec<f32> {
    let mut state = seed | 1;
    (0..n * DIM)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

fn search(c: &mut Criterion) {
    let queries = vectors(7, 1000);
    let mut group = c.benchmark_group("gallery_top10_512d");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1000));
    for size in [100_000usize, 1_000_000] {
        let gallery = Gallery::new(DIM, Metric::Cosine).unwrap();
        let data = vectors(size as u64, size);
        let entries = data
            .chunks(DIM)
            .enumerate()
            .map(|(i, v)| NewEntry {
                id: Some(i as u64),
                identity: (i / 8) as u64,
                camera: (i % 6) as i32,
                tag: None,
                time: None,
                vector: v.to_vec(),
                crop: None,
            })
            .collect();
        drop(data);
        gallery.add_batch(entries).unwrap();
        group.bench_with_input(BenchmarkId::new("queries_1000", size), &gallery, |b, g| {
            b.iter(|| g.search(&queries, &SearchOptions::top(10)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);
