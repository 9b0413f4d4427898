//! Market-1501-sized evaluation (3,368 queries × 15,913 gallery, 512-d, 751 identities,
//! 6 cameras): distance matrix and CMC + mAP + mINP, against torchreid's 0.6 s + 4.1 s
//! (quiet machine) in PEERS.md.

use criterion::{Criterion, criterion_group, criterion_main};

use reid::eval::{Labels, Matrix, Metric, distance_matrix, evaluate_market1501};

/// Deterministic split: identity centres plus noise, normalized like real embeddings.
struct Split {
    qf: Matrix,
    gf: Matrix,
    q_ids: Vec<i64>,
    g_ids: Vec<i64>,
    q_cams: Vec<i64>,
    g_cams: Vec<i64>,
}

fn split() -> Split {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32
    };
    let (dim, ids) = (512, 751);
    let centres: Vec<f32> = (0..ids * dim).map(|_| uniform() - 0.5).collect();
    let mut draw = |n: usize| {
        let mut feats = Vec::with_capacity(n * dim);
        let (mut pids, mut cams) = (Vec::new(), Vec::new());
        for i in 0..n {
            let id = (i * 7919) % ids;
            pids.push(id as i64);
            cams.push((uniform() * 6.0) as i64);
            feats.extend((0..dim).map(|d| centres[id * dim + d] + 0.8 * (uniform() - 0.5)));
        }
        (Matrix::new(n, dim, feats).unwrap(), pids, cams)
    };
    let (qf, q_ids, q_cams) = draw(3368);
    let (gf, g_ids, g_cams) = draw(15913);
    Split {
        qf,
        gf,
        q_ids,
        g_ids,
        q_cams,
        g_cams,
    }
}

fn evaluation(c: &mut Criterion) {
    let s = split();
    let labels = Labels {
        query_ids: &s.q_ids,
        gallery_ids: &s.g_ids,
        query_cams: &s.q_cams,
        gallery_cams: &s.g_cams,
    };
    let mut group = c.benchmark_group("market1501_3368x15913x512");
    group.sample_size(10);
    group.bench_function("distance_cosine", |b| {
        b.iter(|| distance_matrix(&s.qf, &s.gf, Metric::Cosine).unwrap())
    });
    let dist = distance_matrix(&s.qf, &s.gf, Metric::Cosine).unwrap();
    group.bench_function("cmc_map_minp", |b| {
        b.iter(|| evaluate_market1501(&dist, labels, 50).unwrap())
    });
    group.bench_function("distance_and_metrics", |b| {
        b.iter(|| {
            let dist = distance_matrix(&s.qf, &s.gf, Metric::Cosine).unwrap();
            evaluate_market1501(&dist, labels, 50).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, evaluation);
criterion_main!(benches);
