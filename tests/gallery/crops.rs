//! Crop storage and re-embedding, on every store: crops bounded and checked on the way in,
//! kept through reopening, loading and saving; a re-embedding replaces every vector, the
//! model's fingerprint and the calibration at once, or nothing.

use std::cell::Cell;

use reid::calibration::Calibration;
use reid::eval::Metric;
use reid::gallery::{CROPS_PER_CALL, Gallery, MAX_CROP_BYTES, NewEntry, SearchOptions};

use crate::backends::{self, Backend};
use crate::common::fixture;

const DIM: usize = 8;

/// The example images (JPEG, PNG, BMP, WebP), as encoded crops.
fn images() -> Vec<Vec<u8>> {
    [
        "person0.jpg",
        "person1.jpg",
        "person2.png",
        "person4.bmp",
        "person5.webp",
    ]
    .iter()
    .map(|name| std::fs::read(fixture(&format!("images/{name}"))).unwrap())
    .collect()
}

/// A stand-in model: each crop's embedding from its bytes (FNV-1a per coordinate), `salt`
/// telling two models apart; every value in [-1, 1).
fn model(salt: u64) -> impl Fn(&[&[u8]]) -> Vec<f32> {
    move |crops| {
        crops
            .iter()
            .flat_map(|crop| {
                (0..DIM as u64).map(move |k| {
                    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ salt.wrapping_mul(31).wrapping_add(k);
                    for &b in crop.iter() {
                        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
                    }
                    (h >> 40) as f32 / (1u64 << 23) as f32 - 1.0
                })
            })
            .collect()
    }
}

fn unit(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    v.iter().map(|x| (*x as f64 / norm) as f32).collect()
}

fn assert_near(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    assert!(
        got.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
        "{got:?} vs {want:?}"
    );
}

#[test]
fn crops_are_bounded_checked_and_kept() {
    for backend in backends::all() {
        crops_kept_on(backend);
    }
}

fn crops_kept_on(backend: Backend) {
    let images = images();
    let g = backend.fresh(DIM, Metric::Cosine);
    let entry = |i: usize| NewEntry::new(i as u64, 0, model(1)(&[&images[i % images.len()]]));
    // A gallery keeps crops only when told to, within a bound it records.
    let err = g.add(entry(0).with_crop(images[0].clone())).unwrap_err();
    assert!(err.to_string().contains("keeps no crops"), "{err}");
    assert_eq!(g.len().unwrap(), 0);
    for bad in [0, MAX_CROP_BYTES + 1] {
        assert!(g.keep_crops(bad).is_err(), "bound {bad}");
    }
    assert_eq!(g.crop_limit().unwrap(), None);
    let largest = images.iter().map(Vec::len).max().unwrap();
    g.keep_crops(largest).unwrap();
    assert_eq!(g.crop_limit().unwrap(), Some(largest));

    // Over the bound, or not an image: refused, and nothing of the batch is added.
    let mut long = images[0].clone();
    long.resize(largest + 1, 0);
    let garbage = vec![0x42u8; 300];
    for bad in [long, garbage, Vec::new()] {
        let batch = vec![
            entry(0).with_crop(images[0].clone()),
            entry(1).with_crop(bad),
        ];
        assert!(g.add_batch(batch).is_err());
        assert_eq!(g.len().unwrap(), 0);
    }

    let ids = g
        .add_batch(
            (0..images.len())
                .map(|i| entry(i).with_crop(images[i].clone()))
                .chain([entry(9)])
                .collect(),
        )
        .unwrap();
    for (i, &id) in ids.iter().enumerate().take(images.len()) {
        assert_eq!(g.crop(id).unwrap().as_deref(), Some(&images[i][..]));
    }
    let without = ids[images.len()];
    assert_eq!(g.crop(without).unwrap(), None);
    assert!(matches!(g.crop(999), Err(reid::Error::NotFound(_))));
    // A crop given later, or replaced by an update; an update without one keeps it.
    g.set_crop(without, images[2].clone()).unwrap();
    assert!(matches!(
        g.set_crop(999, images[2].clone()),
        Err(reid::Error::NotFound(_))
    ));
    assert!(g.set_crop(without, b"not an image".to_vec()).is_err());
    assert_eq!(g.crop(without).unwrap().as_deref(), Some(&images[2][..]));
    g.update(ids[0], entry(0).with_crop(images[1].clone()))
        .unwrap();
    g.update(ids[1], entry(1)).unwrap();
    assert_eq!(g.crop(ids[0]).unwrap().as_deref(), Some(&images[1][..]));
    assert_eq!(g.crop(ids[1]).unwrap().as_deref(), Some(&images[1][..]));
    g.remove(ids[1]).unwrap();
    assert!(matches!(g.crop(ids[1]), Err(reid::Error::NotFound(_))));

    let expected: Vec<(u64, Option<Vec<u8>>)> = g
        .ids()
        .unwrap()
        .into_iter()
        .map(|id| (id, g.crop(id).unwrap()))
        .collect();
    let same_crops = |other: &Gallery| {
        assert_eq!(other.crop_limit().unwrap(), Some(largest));
        for (id, crop) in &expected {
            assert_eq!(&other.crop(*id).unwrap(), crop, "entry {id}");
        }
    };
    // Kept through reopening, loading into memory and saving to a file.
    if let Some(location) = g.location() {
        same_crops(&Gallery::open(location).unwrap());
        same_crops(&Gallery::load(location).unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    g.save(&copy).unwrap();
    same_crops(&Gallery::open(&copy).unwrap());
}

#[test]
fn reembedding_replaces_vectors_model_and_calibration_at_once_or_not_at_all() {
    for backend in backends::all() {
        reembedding_on(backend);
    }
}

fn reembedding_on(backend: Backend) {
    let images = images();
    let g = backend.fresh(DIM, Metric::Cosine);
    g.keep_crops(1 << 20).unwrap();
    // More entries than one call of the embedding function takes.
    let n = CROPS_PER_CALL + 6;
    let crops: Vec<&[u8]> = (0..n).map(|i| &images[i % images.len()][..]).collect();
    let old = model(1)(&crops);
    let ids = g
        .add_batch(
            (0..n)
                .map(|i| {
                    NewEntry::new(i as u64, 0, old[i * DIM..(i + 1) * DIM].to_vec())
                        .with_crop(crops[i].to_vec())
                })
                .collect(),
        )
        .unwrap();
    g.bind_model("model-1", false).unwrap();
    let genuine = [0.9f32, 0.8, 0.7, 0.6];
    let impostor = [0.5f32, 0.3, 0.2, 0.1, 0.0, -0.1];
    let scores: Vec<f32> = genuine.iter().chain(&impostor).copied().collect();
    let same: Vec<bool> = scores.iter().map(|s| genuine.contains(s)).collect();
    let old_calibration = Calibration::from_pairs(Metric::Cosine, &scores, &same, 0.2).unwrap();
    g.adopt_calibration(&old_calibration).unwrap();
    let by_id = |g: &Gallery| {
        let mut entries = g.entries().unwrap();
        entries.sort_by_key(|e| e.id);
        entries
    };
    let before = by_id(&g);
    let unchanged = |g: &Gallery| {
        assert_eq!(by_id(g), before);
        assert_eq!(g.model().unwrap().as_deref(), Some("model-1"));
        assert_eq!(g.calibration().unwrap(), Some(old_calibration.clone()));
    };

    // A failure on the second call of the embedding function changes nothing.
    let calls = Cell::new(0);
    let err = g
        .reembed("model-2", None, |batch| {
            calls.set(calls.get() + 1);
            match calls.get() {
                1 => Ok(model(2)(batch)),
                _ => Err(reid::Error::Runtime("the model failed".into())),
            }
        })
        .unwrap_err();
    assert!(err.to_string().contains("the model failed"), "{err}");
    unchanged(&g);
    // A model of another dimension, or a bad fingerprint: refused, nothing changes.
    let wider = |batch: &[&[u8]]| Ok(vec![0.5f32; batch.len() * (DIM + 1)]);
    assert!(g.reembed("model-2", None, wider).is_err());
    assert!(g.reembed("", None, |b| Ok(model(2)(b))).is_err());
    unchanged(&g);
    // An entry removed after its crop was embedded: nothing is replaced.
    let err = g
        .reembed("model-2", None, |batch| {
            if batch.len() < CROPS_PER_CALL {
                g.remove(ids[0]).unwrap();
            }
            Ok(model(2)(batch))
        })
        .unwrap_err();
    assert!(err.to_string().contains("re-embed again"), "{err}");
    g.add(
        NewEntry::new(0, 0, old[..DIM].to_vec())
            .with_id(ids[0])
            .with_crop(crops[0].to_vec()),
    )
    .unwrap();
    unchanged(&g);
    // An entry without a crop stops it before any embedding.
    let bare = g.add(NewEntry::new(7, 0, vec![1.0; DIM])).unwrap();
    calls.set(0);
    let err = g
        .reembed("model-2", None, |b| {
            calls.set(calls.get() + 1);
            Ok(model(2)(b))
        })
        .unwrap_err();
    assert!(err.to_string().contains("no crop"), "{err}");
    assert_eq!(calls.get(), 0);
    g.remove(bare).unwrap();
    unchanged(&g);

    // Success: every vector is the new model's, the gallery is bound to it, and the new
    // model's calibration replaces the old (a model without one drops it).
    let new_calibration = Calibration::from_pairs(Metric::Cosine, &scores, &same, 0.4).unwrap();
    let count = g
        .reembed("model-2", Some(&new_calibration), |b| Ok(model(2)(b)))
        .unwrap();
    assert_eq!(count, n);
    let check = |g: &Gallery, calibration: Option<&Calibration>| {
        assert_eq!(g.model().unwrap().as_deref(), Some("model-2"));
        assert_eq!(g.calibration().unwrap().as_ref(), calibration);
        assert!(g.bind_model("model-1", false).is_err());
        for (i, &id) in ids.iter().enumerate() {
            let e = g.get(id).unwrap().unwrap();
            assert_near(&e.vector, &unit(&model(2)(&[crops[i]])));
            assert_eq!((e.identity, e.camera), (i as u64, 0));
        }
        let query = model(2)(&[crops[3]]);
        let top = g.search(&query, &SearchOptions::top(1)).unwrap();
        assert!(top[0][0].score > 0.999_99, "{top:?}");
    };
    check(&g, Some(&new_calibration));
    if let Some(location) = g.location() {
        check(&Gallery::open(location).unwrap(), Some(&new_calibration));
    }
    g.reembed("model-2", None, |b| Ok(model(2)(b))).unwrap();
    check(&g, None);
}
