//! The behavioural table of galleries, run on every store (`backends`: in memory, a file, a
//! PostgreSQL database): search identical to a brute-force reference (ordering, ties by id,
//! grouping, camera exclusion, thresholds), mutations, bad input, and concurrent use.

use std::sync::Arc;

use reid::eval::Metric;
use reid::gallery::{Gallery, Match, NewEntry, SearchOptions, TimeSpan};

use crate::backends::{self, Backend, Fresh};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }

    fn vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.next()).collect()
    }
}

const DIM: usize = 32;

fn populated(backend: Backend, metric: Metric, n: usize) -> (Fresh, Vec<NewEntry>) {
    let gallery = backend.fresh(DIM, metric);
    let mut rng = Rng(42);
    let entries: Vec<NewEntry> = (0..n)
        .map(|i| NewEntry {
            id: Some(1000 + 3 * i as u64),
            identity: (i % 50) as u64,
            camera: (i % 4) as i32,
            tag: None,
            // Every fifth entry has no time; the others spans of 0 to 6 s within 100 s.
            time: (i % 5 != 0).then(|| {
                let start = (i % 100) as f64;
                TimeSpan::new(start, start + (i % 7) as f64).unwrap()
            }),
            vector: rng.vector(DIM),
            crop: None,
        })
        .collect();
    gallery.add_batch(entries.clone()).unwrap();
    (gallery, entries)
}

/// Brute force in f64 over the entries, the reference ordering.
fn brute_force(
    metric: Metric,
    entries: &[NewEntry],
    query: &[f32],
    o: &SearchOptions,
) -> Vec<Match> {
    let unit = |v: &[f32]| -> Vec<f64> {
        let n = v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        v.iter().map(|x| *x as f64 / n).collect()
    };
    let mut all: Vec<(f64, Match)> = entries
        .iter()
        .filter(|e| o.exclude_camera != Some(e.camera))
        .filter(|e| match (&o.time_window, &e.time) {
            (None, _) => true,
            (Some(w), Some(t)) => t.start <= w.end && w.start <= t.end,
            (Some(_), None) => false,
        })
        .map(|e| {
            let score = match metric {
                Metric::Cosine => unit(query)
                    .iter()
                    .zip(unit(&e.vector))
                    .map(|(a, b)| a * b)
                    .sum(),
                // Squared, as reid.h documents (and torchreid's distance matrix).
                Metric::Euclidean => query
                    .iter()
                    .zip(&e.vector)
                    .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                    .sum::<f64>(),
            };
            let m = Match {
                id: e.id.unwrap(),
                identity: e.identity,
                camera: e.camera,
                score: score as f32,
            };
            (score, m)
        })
        .filter(|(s, _)| match (o.min_score, metric) {
            (None, _) => true,
            (Some(min), Metric::Cosine) => *s >= min as f64,
            (Some(max), Metric::Euclidean) => *s <= max as f64,
        })
        .collect();
    all.sort_by(|a, b| {
        let ord = match metric {
            Metric::Cosine => b.0.total_cmp(&a.0),
            Metric::Euclidean => a.0.total_cmp(&b.0),
        };
        ord.then(a.1.id.cmp(&b.1.id))
    });
    let mut out: Vec<Match> = Vec::new();
    for (_, m) in all {
        if o.group_by_identity && out.iter().any(|x| x.identity == m.identity) {
            continue;
        }
        out.push(m);
    }
    out.truncate(o.k);
    out
}

/// Same results as the reference: the same scores to f32 rounding. The search reports f32
/// scores and the reference sorts by f64 ones, so two entries whose scores round to the same
/// f32 may trade places; any other difference fails.
fn assert_same(got: &[Match], want: &[Match]) {
    assert_eq!(got.len(), want.len(), "number of results");
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(close(g.score, w.score), "position {i}: {g:?} vs {w:?}");
        if g.id != w.id {
            let twin = want.iter().find(|m| m.id == g.id);
            let near_tie = twin.is_some_and(|t| close(t.score, w.score));
            assert!(
                near_tie,
                "position {i}: {g:?} where the reference has {w:?}"
            );
        } else {
            assert_eq!((g.identity, g.camera), (w.identity, w.camera));
        }
    }
}

#[test]
fn search_equals_brute_force_under_every_option() {
    for (backend, metric) in backends::all()
        .into_iter()
        .flat_map(|b| [(b, Metric::Cosine), (b, Metric::Euclidean)])
    {
        eprintln!("{backend:?}, {metric:?}");
        // Over two chunks of the scan, so that merging across chunks is exercised.
        let (gallery, entries) = populated(backend, metric, 5000);
        let mut rng = Rng(7);
        let queries: Vec<f32> = (0..70).flat_map(|_| rng.vector(DIM)).collect();
        let threshold = match metric {
            Metric::Cosine => 0.3,
            Metric::Euclidean => 2.1,
        };
        let options = [
            SearchOptions::top(10),
            SearchOptions {
                group_by_identity: true,
                ..SearchOptions::top(7)
            },
            SearchOptions {
                exclude_camera: Some(2),
                ..SearchOptions::top(5)
            },
            SearchOptions {
                min_score: Some(threshold),
                ..SearchOptions::top(50)
            },
            SearchOptions {
                time_window: Some(TimeSpan::new(30.0, 32.5).unwrap()),
                ..SearchOptions::top(10)
            },
            SearchOptions {
                time_window: Some(TimeSpan::at(90.0).unwrap()),
                exclude_camera: Some(1),
                group_by_identity: true,
                ..SearchOptions::top(5)
            },
            SearchOptions::top(100_000),
        ];
        for o in &options {
            let results = gallery.search(&queries, o).unwrap();
            assert_eq!(results.len(), 70);
            for (q, got) in results.iter().enumerate() {
                let want = brute_force(metric, &entries, &queries[q * DIM..(q + 1) * DIM], o);
                assert_same(got, &want);
            }
        }
    }
}

#[test]
fn ties_are_broken_by_id() {
    for backend in backends::all() {
        ties_are_broken_by_id_on(backend);
    }
}

fn ties_are_broken_by_id_on(backend: Backend) {
    let gallery = backend.fresh(4, Metric::Cosine);
    let v = vec![1.0, 2.0, 3.0, 4.0];
    for id in [30, 10, 20] {
        gallery
            .add(NewEntry {
                id: Some(id),
                identity: id,
                camera: 0,
                tag: None,
                time: None,
                vector: v.clone(),
                crop: None,
            })
            .unwrap();
    }
    let got = gallery.search(&v, &SearchOptions::top(3)).unwrap();
    assert_eq!(
        got[0].iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![10, 20, 30]
    );
}

#[test]
fn mutations_keep_search_exact() {
    for backend in backends::all() {
        mutations_keep_search_exact_on(backend);
    }
}

fn mutations_keep_search_exact_on(backend: Backend) {
    let (gallery, mut entries) = populated(backend, Metric::Cosine, 300);
    // Remove one entry, a whole identity, and update another.
    gallery.remove(1000 + 3 * 17).unwrap();
    entries.retain(|e| e.id != Some(1000 + 3 * 17));
    assert_eq!(gallery.remove_identity(5).unwrap(), 6);
    entries.retain(|e| e.identity != 5);
    let new_vector = Rng(99).vector(DIM);
    gallery
        .update(
            1000,
            NewEntry::new(77, 3, new_vector.clone()).with_tag("moved"),
        )
        .unwrap();
    let first = entries.iter_mut().find(|e| e.id == Some(1000)).unwrap();
    (first.identity, first.camera, first.vector) = (77, 3, new_vector.clone());
    assert_eq!(gallery.len().unwrap(), entries.len());
    let fetched = gallery.get(1000).unwrap().unwrap();
    assert_eq!(
        (fetched.identity, fetched.camera, fetched.tag.as_deref()),
        (77, 3, Some("moved"))
    );
    // Times come back as they went in.
    let timed = gallery.get(1000 + 3 * 13).unwrap().unwrap();
    assert_eq!(timed.time, Some(TimeSpan::new(13.0, 19.0).unwrap()));
    assert!(gallery.get(1000 + 3 * 17).unwrap().is_none());
    let query = Rng(5).vector(DIM);
    let o = SearchOptions::top(20);
    assert_same(
        &gallery.search(&query, &o).unwrap()[0],
        &brute_force(Metric::Cosine, &entries, &query, &o),
    );
    // Assigned ids never collide with given ones.
    let id = gallery
        .add(NewEntry {
            id: None,
            identity: 1,
            camera: 0,
            tag: None,
            time: None,
            vector: query.clone(),
            crop: None,
        })
        .unwrap();
    assert!(
        gallery
            .entries()
            .unwrap()
            .iter()
            .filter(|e| e.id == id)
            .count()
            == 1
    );
}

#[test]
fn bad_input_is_an_error_and_loses_nothing() {
    for backend in backends::all() {
        bad_input_is_an_error_and_loses_nothing_on(backend);
    }
}

fn bad_input_is_an_error_and_loses_nothing_on(backend: Backend) {
    let (gallery, _) = populated(backend, Metric::Cosine, 20);
    let before = gallery.entries().unwrap();
    let entry = |id: u64, vector: Vec<f32>| NewEntry {
        id: Some(id),
        identity: 1,
        camera: 0,
        tag: None,
        time: None,
        vector,
        crop: None,
    };
    let bad_batches = vec![
        vec![entry(1, vec![1.0; DIM]), entry(2, vec![f32::NAN; DIM])],
        vec![entry(3, vec![0.0; DIM])],
        vec![entry(4, vec![1.0; DIM - 1])],
        vec![entry(5, vec![1.0; DIM]), entry(5, vec![1.0; DIM])],
        vec![entry(1000, vec![1.0; DIM])],
        vec![NewEntry {
            tag: Some("x".repeat(300)),
            time: None,
            ..entry(6, vec![1.0; DIM])
        }],
    ];
    for batch in bad_batches {
        assert!(gallery.add_batch(batch).is_err());
        assert_eq!(
            gallery.entries().unwrap(),
            before,
            "a failed batch changed the gallery"
        );
    }
    assert!(gallery.search(&[1.0; DIM], &SearchOptions::top(0)).is_err());
    assert!(
        gallery
            .search(&[1.0; DIM + 1], &SearchOptions::top(1))
            .is_err()
    );
    assert!(
        gallery
            .search(&[f32::NAN; DIM], &SearchOptions::top(1))
            .is_err()
    );
    assert!(gallery.remove(424242).is_err());
    assert!(
        gallery
            .update(424242, NewEntry::new(1, 1, vec![1.0; DIM]))
            .is_err()
    );
    assert!(Gallery::new(0, Metric::Cosine).is_err());
    assert_eq!(gallery.entries().unwrap(), before);
    let empty = backend.fresh(DIM, Metric::Cosine);
    assert_eq!(
        empty.search(&[1.0; DIM], &SearchOptions::top(5)).unwrap(),
        vec![vec![]]
    );
    assert_eq!(
        gallery
            .search(&[1.0; DIM], &SearchOptions::top(500))
            .unwrap()[0]
            .len(),
        20
    );
}

#[test]
fn searches_run_while_a_writer_adds() {
    for backend in backends::all() {
        searches_run_while_a_writer_adds_on(backend);
    }
}

fn searches_run_while_a_writer_adds_on(backend: Backend) {
    let (gallery, _) = populated(backend, Metric::Cosine, 1000);
    let gallery = Arc::new(gallery);
    let writer = {
        let g = Arc::clone(&gallery);
        std::thread::spawn(move || {
            let mut rng = Rng(3);
            for i in 0..200 {
                g.add(NewEntry {
                    id: None,
                    identity: i,
                    camera: 1,
                    tag: None,
                    time: None,
                    vector: rng.vector(DIM),
                    crop: None,
                })
                .unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|t| {
            let g = Arc::clone(&gallery);
            std::thread::spawn(move || {
                let mut rng = Rng(100 + t);
                for _ in 0..50 {
                    let r = g.search(&rng.vector(DIM), &SearchOptions::top(10)).unwrap();
                    assert_eq!(r[0].len(), 10);
                }
            })
        })
        .collect();
    writer.join().unwrap();
    readers.into_iter().for_each(|r| r.join().unwrap());
    assert_eq!(gallery.len().unwrap(), 1200);
}

/// A query searched alone gives bit for bit what it gets in a batch (the matrix kernels round
/// differently for one query and for many), and a stored vector finds itself at distance
/// exactly 0 (similarity 1), on 512-d embeddings as models give them.
#[test]
fn alone_or_in_a_batch_the_same_scores_and_a_stored_vector_at_zero() {
    const D: usize = 512;
    for (backend, metric) in backends::all()
        .into_iter()
        .flat_map(|b| [(b, Metric::Cosine), (b, Metric::Euclidean)])
    {
        let gallery = backend.fresh(D, metric);
        let mut rng = Rng(11);
        let entries: Vec<NewEntry> = (0..3000u64)
            .map(|i| NewEntry {
                id: Some(i),
                identity: i % 300,
                camera: (i % 3) as i32,
                tag: None,
                time: None,
                // Large values make the |q|² + |g|² − 2q·g cancellation visible.
                vector: rng.vector(D).iter().map(|v| 40.0 * v).collect(),
                crop: None,
            })
            .collect();
        gallery.add_batch(entries.clone()).unwrap();
        let mut queries: Vec<f32> = (0..37).flat_map(|_| rng.vector(D)).collect();
        for stored in [5usize, 1234, 2999] {
            queries.extend(&entries[stored].vector);
        }
        let options = [
            SearchOptions::top(10),
            SearchOptions {
                group_by_identity: true,
                ..SearchOptions::top(5)
            },
            SearchOptions {
                exclude_camera: Some(1),
                ..SearchOptions::top(3)
            },
        ];
        for o in &options {
            let batch = gallery.search(&queries, o).unwrap();
            for (q, in_batch) in batch.iter().enumerate() {
                let alone = gallery.search(&queries[q * D..(q + 1) * D], o).unwrap();
                let bits = |m: &[Match]| -> Vec<(u64, u32)> {
                    m.iter().map(|m| (m.id, m.score.to_bits())).collect()
                };
                assert_eq!(bits(&alone[0]), bits(in_batch), "{metric:?} query {q}");
            }
        }
        for (n, stored) in [5u64, 1234, 2999].into_iter().enumerate() {
            let q = 37 + n;
            let best = &gallery
                .search(&queries[q * D..(q + 1) * D], &SearchOptions::top(1))
                .unwrap()[0][0];
            assert_eq!(best.id, stored);
            match metric {
                Metric::Euclidean => assert_eq!(best.score, 0.0),
                Metric::Cosine => assert!((best.score - 1.0).abs() <= 1e-6, "{}", best.score),
            }
        }
    }
}

/// Values at the edges: a dimension beyond any model, ids and identities the files cannot
/// store (refused when added, not when read back), and a vector whose squared norm overflows
/// f32 (a direction, not "a zero embedding").
#[test]
fn dimensions_labels_and_huge_values_at_their_bounds() {
    use reid::gallery::MAX_DIM;
    for dim in [0, MAX_DIM + 1, usize::MAX] {
        let err = Gallery::new(dim, Metric::Cosine).unwrap_err().to_string();
        assert!(err.contains(&format!("dimension {dim}")), "{err}");
    }
    for backend in backends::all() {
        labels_and_huge_values_at_their_bounds_on(backend);
    }
}

fn labels_and_huge_values_at_their_bounds_on(backend: Backend) {
    use reid::gallery::MAX_LABEL;
    let gallery = backend.fresh(4, Metric::Cosine);
    let entry = |id: Option<u64>, identity: u64| NewEntry {
        id,
        identity,
        camera: 0,
        tag: None,
        time: None,
        vector: vec![3e38, 3e38, 0.0, 0.0],
        crop: None,
    };
    for (id, identity) in [
        (None, MAX_LABEL + 1),
        (Some(MAX_LABEL + 1), 0),
        (None, u64::MAX),
    ] {
        let err = gallery.add(entry(id, identity)).unwrap_err().to_string();
        assert!(err.contains("2^63"), "{err}");
    }
    assert!(gallery.is_empty().unwrap());
    let id = gallery.add(entry(Some(MAX_LABEL), MAX_LABEL)).unwrap();
    let stored = gallery.get(id).unwrap().unwrap();
    let half = std::f32::consts::FRAC_1_SQRT_2;
    assert_eq!(stored.vector, [half, half, 0.0, 0.0]);
    let err = gallery
        .update(id, NewEntry::new(u64::MAX, 0, vec![1.0; 4]))
        .unwrap_err();
    assert!(err.to_string().contains("2^63"), "{err}");
    // The largest labels survive the npz round trip.
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("g.npz");
    gallery.export_npz(&npz).unwrap();
    let back = Gallery::new(4, Metric::Cosine).unwrap();
    assert_eq!(back.import_npz(&npz).unwrap(), [MAX_LABEL]);
    assert_eq!(back.get(MAX_LABEL).unwrap().unwrap().identity, MAX_LABEL);
}

#[test]
fn negative_cameras_are_refused_as_the_finetuner_refuses_them() {
    for backend in backends::all() {
        negative_cameras_are_refused_on(backend);
    }
}

fn negative_cameras_are_refused_on(backend: Backend) {
    let gallery = backend.fresh(4, Metric::Euclidean);
    let entry = |camera: i32| NewEntry {
        id: None,
        identity: 1,
        camera,
        tag: None,
        time: None,
        vector: vec![1.0, 0.0, 0.0, 0.0],
        crop: None,
    };
    let err = gallery.add(entry(-1)).unwrap_err().to_string();
    assert!(err.contains("camera -1 is negative"), "{err}");
    let id = gallery.add(entry(i32::MAX)).unwrap();
    let err = gallery
        .update(id, NewEntry::new(1, i32::MIN, vec![1.0; 4]))
        .unwrap_err();
    assert!(err.to_string().contains("negative"), "{err}");
    let vectors = reid::formats::npy::NpyArray::f32(vec![1, 4], vec![0.0, 1.0, 0.0, 0.0]);
    let err = gallery
        .add_arrays(&vectors, None, &[2], &[-5], None)
        .unwrap_err();
    assert!(err.to_string().contains("camera -5"), "{err}");
    assert_eq!(gallery.len().unwrap(), 1);
    assert_eq!(gallery.get(id).unwrap().unwrap().camera, i32::MAX);
}

#[test]
fn ids_are_listed_ascending() {
    for backend in backends::all() {
        ids_are_listed_ascending_on(backend);
    }
}

fn ids_are_listed_ascending_on(backend: Backend) {
    let gallery = backend.fresh(2, Metric::Cosine);
    let add = |id: u64| {
        gallery
            .add(NewEntry {
                id: Some(id),
                identity: 0,
                camera: 0,
                tag: None,
                time: None,
                vector: vec![1.0, 0.5],
                crop: None,
            })
            .unwrap()
    };
    for id in [40, 7, 1000, 3] {
        add(id);
    }
    gallery.remove(7).unwrap();
    assert_eq!(gallery.ids().unwrap(), [3, 40, 1000]);
    assert!(
        Gallery::new(2, Metric::Cosine)
            .unwrap()
            .ids()
            .unwrap()
            .is_empty()
    );
}

/// Synthetic identities (points scattered around a centre each): a threshold calibrated for a
/// 1 % false-accept rate on half of them accepts 1 % of the different-identity pairs of the
/// other half, counted here in f64, within three standard deviations (estimated over
/// identities); the gallery keeps it (through reopening), and a calibrated search is a search
/// with that `min_score`.
#[test]
fn a_calibrated_threshold_holds_its_false_accept_rate_on_held_out_identities() {
    for backend in backends::all() {
        for metric in [Metric::Cosine, Metric::Euclidean] {
            calibrated_threshold_on(backend, metric);
        }
    }
}

fn calibrated_threshold_on(backend: Backend, metric: Metric) {
    const D: usize = 16;
    let mut rng = Rng(77);
    let (mut vectors, mut identities) = (Vec::new(), Vec::new());
    for identity in 0..400u64 {
        let centre = rng.vector(D);
        for _ in 0..4 {
            let v: Vec<f32> = centre
                .iter()
                .zip(rng.vector(D))
                .map(|(c, e)| c + 0.45 * e)
                .collect();
            vectors.extend(v);
            identities.push(identity);
        }
    }
    let half = vectors.len() / 2;
    let gallery = backend.fresh(D, metric);
    let err = gallery
        .search(
            &vectors[..D],
            &SearchOptions {
                calibrated: true,
                ..SearchOptions::top(3)
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("no calibrated threshold"), "{err}");
    let target = 0.01;
    let c = gallery
        .calibrate(&vectors[..half], &identities[..half / D], target)
        .unwrap();
    assert!(c.far <= target && c.far > target * 0.9, "{c:?}");
    assert!(c.tar > 0.3, "{c:?}");

    // The held-out half, scored in f64 here.
    let rows: Vec<Vec<f64>> = vectors[half..]
        .chunks(D)
        .map(|v| {
            let v: Vec<f64> = v.iter().map(|&x| x as f64).collect();
            match metric {
                Metric::Cosine => {
                    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
                    v.iter().map(|x| x / n).collect()
                }
                Metric::Euclidean => v,
            }
        })
        .collect();
    let labels = &identities[half / D..];
    // Accepted and counted different-identity pairs, in all and per identity (for the spread).
    let (mut accepted, mut impostors) = (0u64, 0u64);
    let mut per_identity = std::collections::HashMap::<u64, (u64, u64)>::new();
    for i in 0..rows.len() {
        for j in i + 1..rows.len() {
            if labels[i] == labels[j] {
                continue;
            }
            let passes = match metric {
                Metric::Cosine => {
                    let s: f64 = rows[i].iter().zip(&rows[j]).map(|(a, b)| a * b).sum();
                    s >= c.threshold as f64
                }
                Metric::Euclidean => {
                    let d: f64 = rows[i]
                        .iter()
                        .zip(&rows[j])
                        .map(|(a, b)| (a - b).powi(2))
                        .sum();
                    d <= c.threshold as f64
                }
            };
            impostors += 1;
            accepted += u64::from(passes);
            for identity in [labels[i], labels[j]] {
                let counts = per_identity.entry(identity).or_default();
                counts.0 += u64::from(passes);
                counts.1 += 1;
            }
        }
    }
    let realized = accepted as f64 / impostors as f64;
    // Pairs of the same identities are not independent draws: the spread of the realized
    // rate is estimated by leaving out one identity at a time (jackknife), and the
    // calibration half, drawn the same way, is as uncertain again (√2).
    let left_out: Vec<f64> = per_identity
        .values()
        .map(|&(a, n)| (accepted - a) as f64 / (impostors - n) as f64)
        .collect();
    let n = left_out.len() as f64;
    let mean = left_out.iter().sum::<f64>() / n;
    let jackknife =
        ((n - 1.0) / n * left_out.iter().map(|x| (x - mean).powi(2)).sum::<f64>()).sqrt();
    let sigma = std::f64::consts::SQRT_2 * jackknife;
    eprintln!("{backend:?} {metric:?}: realized {realized:.5}, target {target} ± {sigma:.5}");
    assert!(
        (realized - target).abs() <= 3.0 * sigma,
        "{backend:?} {metric:?}: realized {realized}, target {target} ± {sigma}"
    );

    // Kept by the gallery; a calibrated search is a search with that threshold.
    assert_eq!(gallery.calibration().unwrap().as_ref(), Some(&c));
    gallery
        .add_batch(
            vectors[half..]
                .chunks(D)
                .zip(labels)
                .map(|(v, &identity)| NewEntry {
                    id: None,
                    identity,
                    camera: 0,
                    tag: None,
                    time: None,
                    vector: v.to_vec(),
                    crop: None,
                })
                .collect(),
        )
        .unwrap();
    let queries = &vectors[..8 * D];
    let calibrated = gallery
        .search(
            queries,
            &SearchOptions {
                calibrated: true,
                ..SearchOptions::top(20)
            },
        )
        .unwrap();
    let explicit = gallery
        .search(
            queries,
            &SearchOptions {
                min_score: Some(c.threshold),
                ..SearchOptions::top(20)
            },
        )
        .unwrap();
    assert_eq!(calibrated, explicit);
    let both = SearchOptions {
        calibrated: true,
        min_score: Some(0.5),
        ..SearchOptions::top(3)
    };
    assert!(gallery.search(queries, &both).is_err());
    if let Some(location) = gallery.location() {
        let reopened = Gallery::open(location).unwrap();
        assert_eq!(reopened.calibration().unwrap(), Some(c.clone()));
        let loaded = Gallery::load(location).unwrap();
        assert_eq!(loaded.calibration().unwrap(), Some(c.clone()));
    }
}

/// A gallery bound to one model's fingerprint refuses another's once it holds entries
/// (`ModelMismatch`), unless told to replace it; an empty gallery adopts the new one; the
/// binding outlives reopening.
#[test]
fn a_gallery_bound_to_one_model_refuses_another() {
    for backend in backends::all() {
        bound_to_one_model_on(backend);
    }
}

fn bound_to_one_model_on(backend: Backend) {
    let (a, b) = ("a".repeat(64), "b".repeat(64));
    let gallery = backend.fresh(4, Metric::Cosine);
    assert_eq!(gallery.model().unwrap(), None);
    gallery.bind_model(&a, false).unwrap();
    // Empty: another model may take it over.
    gallery.bind_model(&b, false).unwrap();
    gallery.bind_model(&a, false).unwrap();
    gallery
        .add(NewEntry {
            id: None,
            identity: 1,
            camera: 0,
            tag: None,
            time: None,
            vector: vec![1.0, 0.0, 0.0, 0.0],
            crop: None,
        })
        .unwrap();
    gallery.bind_model(&a, false).unwrap();
    let err = gallery.bind_model(&b, false).unwrap_err();
    assert!(matches!(err, reid::Error::ModelMismatch { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&a) && err.to_string().contains(&b),
        "{err}"
    );
    assert_eq!(gallery.model().unwrap(), Some(a.clone()));
    for bad in ["", "with space", &"x".repeat(129)] {
        assert!(gallery.bind_model(bad, true).is_err(), "{bad:?}");
    }
    gallery.bind_model(&b, true).unwrap();
    assert_eq!(gallery.model().unwrap(), Some(b.clone()));
    if let Some(location) = gallery.location() {
        let reopened = Gallery::open(location).unwrap();
        assert!(matches!(
            reopened.bind_model(&a, false),
            Err(reid::Error::ModelMismatch { .. })
        ));
        assert_eq!(reopened.model().unwrap(), Some(b.clone()));
    }
}

#[test]
fn relabelling_selections_counters_and_time_spans() {
    for backend in backends::all() {
        relabelling_selections_counters_and_time_spans_on(backend);
    }
}

fn relabelling_selections_counters_and_time_spans_on(backend: Backend) {
    let gallery = backend.fresh(4, Metric::Cosine);
    let at = |t: f64| TimeSpan::at(t).unwrap();
    let ids = gallery
        .add_batch(vec![
            NewEntry::new(1, 0, vec![1.0, 0.0, 0.0, 0.0]).with_tag("cam0/7"),
            NewEntry::new(1, 1, vec![0.0, 1.0, 0.0, 0.0]).with_time(at(5.0)),
            NewEntry::new(2, 1, vec![0.0, 0.0, 1.0, 0.0]).with_tag("cam0/7"),
            NewEntry::new(3, 2, vec![0.0, 0.0, 0.0, 1.0]),
        ])
        .unwrap();
    let of = |identity| -> Vec<u64> {
        gallery
            .entries_of(identity)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect()
    };
    assert_eq!(of(1), [ids[0], ids[1]]);
    let tagged: Vec<u64> = gallery
        .entries_tagged("cam0/7")
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(tagged, [ids[0], ids[2]]);
    assert!(gallery.entries_tagged("cam9/1").unwrap().is_empty());
    // Relabelling is all or nothing: one missing id changes nothing.
    let err = gallery.relabel(&[ids[2], 424242], 1).unwrap_err();
    assert!(err.to_string().contains("424242"), "{err}");
    assert_eq!(of(2), [ids[2]]);
    gallery.relabel(&[ids[2], ids[3]], 1).unwrap();
    assert_eq!(of(1), [ids[0], ids[1], ids[2], ids[3]]);
    assert!(of(2).is_empty() && of(3).is_empty());
    assert!(gallery.relabel(&[ids[0]], u64::MAX).is_err());
    // Counters start at 1 and count on.
    assert_eq!(gallery.increment("people").unwrap(), 1);
    assert_eq!(gallery.increment("people").unwrap(), 2);
    assert_eq!(gallery.increment("cars").unwrap(), 1);
    assert_eq!(gallery.setting("people").unwrap().as_deref(), Some("2"));
    gallery.set_setting("bad", "x").unwrap();
    assert!(gallery.increment("bad").is_err());
    // Spans that are not two finite times in order are refused, in entries and windows.
    for (start, end) in [(2.0, 1.0), (f64::NAN, 1.0), (0.0, f64::INFINITY)] {
        let span = TimeSpan { start, end };
        let entry = NewEntry::new(1, 0, vec![1.0; 4]).with_time(span);
        assert!(gallery.add(entry).is_err(), "{start}..{end}");
        let window = SearchOptions {
            time_window: Some(span),
            ..SearchOptions::top(1)
        };
        assert!(gallery.search(&[1.0; 4], &window).is_err());
    }
    assert_eq!(gallery.len().unwrap(), 4);
    // A window picks the timed entry only.
    let window = SearchOptions {
        time_window: Some(TimeSpan::new(4.0, 6.0).unwrap()),
        ..SearchOptions::top(10)
    };
    let found = &gallery.search(&[1.0, 0.0, 0.0, 0.0], &window).unwrap()[0];
    assert_eq!(found.iter().map(|m| m.id).collect::<Vec<_>>(), [ids[1]]);
}
