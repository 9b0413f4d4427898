//! The cross-camera identity store on every store backend: global identities under the
//! camera topology, reports of known tracks, merge, split, sightings, reopening, bad input;
//! and on synthetic multi-camera tracks, identities that match the truth (and the same ones
//! on every backend).

use reid::gallery::TimeSpan;
use reid::identity_store::{CameraLink, IdentityStore, MatchingConfig, Track};

use crate::backends::{self, Backend, Place};
use crate::tracks::{self, Rng, Scenario};

const DIM: usize = 8;

/// A unit vector along axis `axis`, nudged by `nudge` along the next axis.
fn look(axis: usize, nudge: f32) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    v[axis] = 1.0;
    v[(axis + 1) % DIM] = nudge;
    v
}

fn open_or_new(place: &Place, config: MatchingConfig) -> IdentityStore {
    match place.location() {
        None => IdentityStore::new(DIM, config).unwrap(),
        Some(location) => IdentityStore::create(location, DIM, config).unwrap(),
    }
}

fn report(camera: i32, track: u64, start: f64, end: f64, crops: &[f32]) -> Track<'_> {
    Track {
        camera,
        track,
        time: TimeSpan::new(start, end).unwrap(),
        embeddings: crops,
        quality: None,
    }
}

#[test]
fn tracks_get_global_identities_under_the_camera_topology() {
    for backend in backends::all() {
        topology_on(backend);
    }
}

fn topology_on(backend: Backend) {
    let place = backend.place();
    let config = MatchingConfig {
        threshold: Some(0.8),
        min_transit_seconds: 60.0,
        links: vec![CameraLink {
            cameras: [0, 1],
            min_seconds: 0.0,
        }],
        ..MatchingConfig::default()
    };
    let store = open_or_new(&place, config.clone());
    let a: Vec<f32> = [look(0, 0.1), look(0, -0.1)].concat();
    let b = look(3, 0.0);
    let first = store.observe(&report(0, 1, 0.0, 10.0, &a)).unwrap();
    assert!(first.created && first.score.is_none());
    // Camera 1 is linked to camera 0: seen by both at once is fine.
    let linked = store
        .observe(&report(1, 1, 5.0, 15.0, &look(0, 0.05)))
        .unwrap();
    assert_eq!((linked.identity, linked.created), (first.identity, false));
    assert!(linked.score.unwrap() > 0.99, "{linked:?}");
    // The same camera, at the same time, another track: another person.
    let twin = store.observe(&report(0, 2, 5.0, 8.0, &a)).unwrap();
    assert!(twin.created && twin.identity != first.identity);
    // Camera 2 is linked to neither: 60 s at least from both, so neither identity can be it.
    let far = store.observe(&report(2, 1, 20.0, 30.0, &a)).unwrap();
    assert!(far.created);
    // Someone else entirely.
    let other = store.observe(&report(2, 5, 200.0, 210.0, &b)).unwrap();
    assert!(other.created);
    let ids = [first.identity, twin.identity, far.identity, other.identity];
    let distinct: std::collections::HashSet<u64> = ids.into_iter().collect();
    assert_eq!(distinct.len(), 4, "{ids:?}");
    // A later report of a known track keeps its identity, whatever it looks like.
    let more = store.observe(&report(0, 1, 10.0, 20.0, &b)).unwrap();
    assert_eq!(
        (more.identity, more.created, more.score),
        (first.identity, false, None)
    );
    let seen: Vec<(i32, u64, f64)> = store
        .sightings(first.identity)
        .unwrap()
        .iter()
        .map(|s| (s.camera, s.track, s.time.start))
        .collect();
    assert_eq!(seen, [(0, 1, 0.0), (1, 1, 5.0), (0, 1, 10.0)]);
    assert_eq!(store.identity_of(2, 1).unwrap(), Some(far.identity));
    assert_eq!(store.identity_of(2, 99).unwrap(), None);
    assert!(store.sightings(424242).unwrap().is_empty());
    // Merge: the operator knows `far` is `first`.
    assert_eq!(store.merge(first.identity, far.identity).unwrap(), 1);
    assert_eq!(store.sightings(first.identity).unwrap().len(), 4);
    assert!(store.sightings(far.identity).unwrap().is_empty());
    assert!(store.merge(first.identity, far.identity).is_err());
    assert!(store.merge(first.identity, first.identity).is_err());
    assert!(store.merge(424242, other.identity).is_err());
    // Split: track 1 of camera 1 was someone else.
    let split = store.split(1, 1).unwrap();
    assert!(!ids.contains(&split));
    assert_eq!(store.identity_of(1, 1).unwrap(), Some(split));
    assert_eq!(store.sightings(first.identity).unwrap().len(), 3);
    assert!(store.split(1, 77).is_err());
    let reports = store.gallery().len().unwrap();
    drop(store);
    // Reopened: identities, configuration and the identity counter are where they were.
    if let Some(location) = place.location() {
        let store = IdentityStore::open(location).unwrap();
        assert_eq!(store.config(), config);
        assert_eq!(store.gallery().len().unwrap(), reports);
        assert_eq!(store.identity_of(1, 1).unwrap(), Some(split));
        let new = store
            .observe(&report(5, 1, 0.0, 1.0, &look(6, 0.0)))
            .unwrap();
        assert!(new.created && new.identity > split, "{new:?}");
    }
}

#[test]
fn bad_reports_and_settings_are_errors_and_change_nothing() {
    for backend in backends::all() {
        bad_input_on(backend);
    }
}

fn bad_input_on(backend: Backend) {
    let place = backend.place();
    let store = open_or_new(
        &place,
        MatchingConfig {
            threshold: Some(0.5),
            ..MatchingConfig::default()
        },
    );
    let good = look(0, 0.0);
    store.observe(&report(0, 1, 0.0, 1.0, &good)).unwrap();
    let mut nan = good.clone();
    nan[2] = f32::NAN;
    let two = [good.clone(), good.clone()].concat();
    let bad: Vec<(&str, Track)> = vec![
        ("no crops", report(0, 2, 0.0, 1.0, &[])),
        ("not whole crops", report(0, 2, 0.0, 1.0, &good[..5])),
        ("NaN", report(0, 2, 0.0, 1.0, &nan)),
        ("zero crop", report(0, 2, 0.0, 1.0, &[0.0; DIM])),
        ("negative camera", report(-1, 2, 0.0, 1.0, &good)),
        ("track id", report(0, u64::MAX, 0.0, 1.0, &good)),
        (
            "quality of another length",
            Track {
                quality: Some(&[1.0]),
                ..report(0, 2, 0.0, 1.0, &two)
            },
        ),
        (
            "negative quality",
            Track {
                quality: Some(&[1.0, -1.0]),
                ..report(0, 2, 0.0, 1.0, &two)
            },
        ),
        (
            "all-zero quality",
            Track {
                quality: Some(&[0.0, 0.0]),
                ..report(0, 2, 0.0, 1.0, &two)
            },
        ),
        (
            "time in reverse",
            Track {
                time: TimeSpan {
                    start: 3.0,
                    end: 1.0,
                },
                ..report(0, 2, 0.0, 1.0, &good)
            },
        ),
    ];
    for (what, track) in &bad {
        assert!(store.observe(track).is_err(), "{what}");
    }
    assert_eq!(store.gallery().len().unwrap(), 1);
    // Quality weighs crops: a report whose weight is all on one crop is that crop.
    let weighted = store
        .observe(&Track {
            quality: Some(&[0.0, 2.0]),
            ..report(3, 1, 0.0, 1.0, &[look(4, 0.0), look(5, 0.0)].concat())
        })
        .unwrap();
    let kept = store.gallery().get(weighted.entry).unwrap().unwrap();
    assert_eq!(kept.vector, look(5, 0.0));
}

#[test]
fn settings_are_checked_and_a_threshold_is_needed() {
    let invalid = [
        MatchingConfig {
            threshold: Some(1.5),
            ..MatchingConfig::default()
        },
        MatchingConfig {
            candidates: 0,
            ..MatchingConfig::default()
        },
        MatchingConfig {
            min_transit_seconds: -1.0,
            ..MatchingConfig::default()
        },
        MatchingConfig {
            min_transit_seconds: f64::NAN,
            ..MatchingConfig::default()
        },
        MatchingConfig {
            links: vec![CameraLink {
                cameras: [2, 2],
                min_seconds: 0.0,
            }],
            ..MatchingConfig::default()
        },
        MatchingConfig {
            links: vec![
                CameraLink {
                    cameras: [1, 2],
                    min_seconds: 0.0,
                },
                CameraLink {
                    cameras: [2, 1],
                    min_seconds: 5.0,
                },
            ],
            ..MatchingConfig::default()
        },
        MatchingConfig {
            links: vec![CameraLink {
                cameras: [-1, 2],
                min_seconds: 0.0,
            }],
            ..MatchingConfig::default()
        },
    ];
    for config in invalid {
        assert!(
            IdentityStore::new(DIM, config.clone()).is_err(),
            "{config:?}"
        );
    }
    // Unknown keys in stored settings are refused, not ignored.
    assert!(serde_json::from_str::<MatchingConfig>(r#"{"treshold": 0.5}"#).is_err());
    // A plain gallery is not an identity store.
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.db");
    reid::Gallery::create(&plain, DIM, reid::eval::Metric::Cosine).unwrap();
    let err = IdentityStore::open(&plain).unwrap_err().to_string();
    assert!(err.contains("not an identity store"), "{err}");
    // No threshold: the calibration's, which must exist.
    let store = IdentityStore::new(DIM, MatchingConfig::default()).unwrap();
    let err = store
        .observe(&report(0, 1, 0.0, 1.0, &look(0, 0.0)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("calibrat"), "{err}");
    assert_eq!(store.gallery().len().unwrap(), 0);
    let mut rng = Rng(3);
    let mut vectors = Vec::new();
    let mut identities = Vec::new();
    for person in 0..20u64 {
        for _ in 0..4 {
            vectors.extend((0..DIM).map(|d| {
                (if d == person as usize % DIM { 3.0 } else { 0.0 }) + rng.normal() as f32
            }));
            identities.push(person);
        }
    }
    store.calibrate(&vectors, &identities, 0.05).unwrap();
    store
        .observe(&report(0, 1, 0.0, 1.0, &look(0, 0.0)))
        .unwrap();
}

#[test]
fn the_hungarian_mapping_is_the_best_of_every_pairing() {
    fn best_by_permutation(w: &[Vec<i64>]) -> i64 {
        fn go(w: &[Vec<i64>], row: usize, used: &mut Vec<bool>) -> i64 {
            if row == w.len() {
                return 0;
            }
            let mut best = i64::MIN;
            for j in 0..w.len() {
                if !used[j] {
                    used[j] = true;
                    best = best.max(w[row][j] + go(w, row + 1, used));
                    used[j] = false;
                }
            }
            best
        }
        go(w, 0, &mut vec![false; w.len()])
    }
    let mut rng = Rng(11);
    for n in 1..=6 {
        for _ in 0..30 {
            let w: Vec<Vec<i64>> = (0..n)
                .map(|_| (0..n).map(|_| rng.below(7) as i64).collect())
                .collect();
            assert_eq!(tracks::max_assignment(&w), best_by_permutation(&w), "{w:?}");
        }
    }
}

/// On the corridor scenario, global identities match the people; the topology keeps
/// look-alikes apart (it scores better than without); and every backend gives the same
/// identities, since every one searches exactly.
#[test]
fn synthetic_corridor_identities_match_the_people_on_every_backend() {
    let scenario = Scenario {
        people: 60,
        ..Scenario::corridor()
    };
    let tracks = tracks::simulate(&scenario);
    let people: Vec<usize> = tracks.iter().map(|t| t.person).collect();
    let (vectors, identities) = tracks::calibration_set(&scenario, 80);
    let (min_transit_seconds, links) = tracks::corridor_topology(scenario.cameras);
    let run = |backend: Backend, topology: bool| -> Vec<u64> {
        let place = backend.place();
        let config = MatchingConfig {
            min_transit_seconds: if topology { min_transit_seconds } else { 0.0 },
            links: if topology { links.clone() } else { vec![] },
            ..MatchingConfig::default()
        };
        let store = match place.location() {
            None => IdentityStore::new(scenario.dim, config),
            Some(location) => IdentityStore::create(location, scenario.dim, config),
        }
        .unwrap();
        store.calibrate(&vectors, &identities, 0.001).unwrap();
        tracks::assign(&store, &tracks)
    };
    let with = run(Backend::Memory, true);
    let without = run(Backend::Memory, false);
    let (scored, blind) = (
        tracks::score(&people, &with),
        tracks::score(&people, &without),
    );
    eprintln!("with the topology: {scored:?}\nwithout: {blind:?}");
    assert!(scored.idf1 >= 0.9, "{scored:?}");
    assert!(
        scored.pair_precision >= 0.8 && scored.pair_recall >= 0.9,
        "{scored:?}"
    );
    assert!(
        scored.pair_precision > blind.pair_precision,
        "{scored:?} against {blind:?}"
    );
    for backend in backends::all().into_iter().skip(1) {
        assert_eq!(run(backend, true), with, "{backend:?}");
    }
}
