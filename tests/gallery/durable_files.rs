//! Durable gallery files: everything acknowledged survives reopening and a killed writer;
//! corrupt, truncated, foreign or mismatched files are clear errors and are never modified.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use reid::Error;
use reid::eval::Metric;
use reid::formats::npy::read_npz;
use reid::gallery::{Gallery, NewEntry, SearchOptions};

const DIM: usize = 16;

fn vector(seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..DIM)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

fn entries(ids: std::ops::Range<u64>) -> Vec<NewEntry> {
    ids.map(|id| NewEntry {
        id: Some(id),
        identity: id / 4,
        camera: (id % 3) as i32,
        tag: (id % 5 == 0).then(|| format!("tag-{id}")),
        time: None,
        vector: vector(id),
        crop: None,
    })
    .collect()
}

fn populated_file(path: &Path) -> Gallery {
    let gallery = Gallery::create(path, DIM, Metric::Cosine).unwrap();
    gallery.add_batch(entries(0..40)).unwrap();
    gallery
}

#[test]
fn every_mutation_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gallery.db");
    let gallery = populated_file(&path);
    gallery.remove(7).unwrap();
    assert_eq!(gallery.remove_identity(2).unwrap(), 4);
    gallery
        .update(13, NewEntry::new(99, 2, vector(1000)).with_tag("moved"))
        .unwrap();
    let assigned = gallery
        .add(NewEntry {
            id: None,
            identity: 5,
            camera: 1,
            tag: None,
            time: None,
            vector: vector(5000),
            crop: None,
        })
        .unwrap();
    let expected = gallery.entries().unwrap();
    let query = vector(77);
    let results = gallery.search(&query, &SearchOptions::top(5)).unwrap();
    drop(gallery);

    let reopened = Gallery::open(&path).unwrap();
    assert!(reopened.is_durable());
    let mut got = reopened.entries().unwrap();
    let mut want = expected.clone();
    got.sort_by_key(|e| e.id);
    want.sort_by_key(|e| e.id);
    assert_eq!(got, want);
    assert_eq!(
        reopened.search(&query, &SearchOptions::top(5)).unwrap(),
        results
    );
    // Ids keep growing after a reopen: the assigned id is never handed out twice.
    let next = reopened
        .add(NewEntry {
            id: None,
            identity: 1,
            camera: 0,
            tag: None,
            time: None,
            vector: vector(6000),
            crop: None,
        })
        .unwrap();
    assert!(next > assigned);
}

#[test]
fn a_failed_batch_changes_neither_memory_nor_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gallery.db");
    let gallery = populated_file(&path);
    let mut batch = entries(100..110);
    batch[9].id = Some(3); // duplicate of a stored id
    assert!(gallery.add_batch(batch).is_err());
    assert_eq!(gallery.len().unwrap(), 40);
    drop(gallery);
    assert_eq!(Gallery::open(&path).unwrap().len().unwrap(), 40);
}

#[test]
fn save_and_load_in_memory_galleries_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.db");
    let gallery = Gallery::new(DIM, Metric::Euclidean).unwrap();
    gallery.add_batch(entries(0..25)).unwrap();
    gallery.save(&path).unwrap();
    // Saving again over the file replaces it whole.
    gallery.remove(0).unwrap();
    gallery.save(&path).unwrap();
    let loaded = Gallery::load(&path).unwrap();
    assert!(!loaded.is_durable());
    assert_eq!(loaded.metric(), Metric::Euclidean);
    assert_eq!(loaded.len().unwrap(), 24);
    let (mut a, mut b) = (loaded.entries().unwrap(), gallery.entries().unwrap());
    a.sort_by_key(|e| e.id);
    b.sort_by_key(|e| e.id);
    assert_eq!(a, b);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["snapshot.db"], "temporary files left behind");
}

#[test]
fn arrays_round_trip_through_npz() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = Gallery::new(DIM, Metric::Cosine).unwrap();
    gallery.add_batch(entries(0..12)).unwrap();
    let path = dir.path().join("gallery.npz");
    gallery.export_npz(&path).unwrap();
    let arrays = read_npz(&path).unwrap();
    assert_eq!(arrays["vectors"].shape, vec![12, DIM]);
    let ids: Vec<u64> = arrays["ids"]
        .to_i64()
        .unwrap()
        .iter()
        .map(|&i| i as u64)
        .collect();
    let identities: Vec<u64> = arrays["identities"]
        .to_i64()
        .unwrap()
        .iter()
        .map(|&i| i as u64)
        .collect();
    let cameras: Vec<i32> = arrays["cameras"]
        .to_i64()
        .unwrap()
        .iter()
        .map(|&c| c as i32)
        .collect();
    let copy = Gallery::new(DIM, Metric::Cosine).unwrap();
    copy.add_arrays(&arrays["vectors"], Some(&ids), &identities, &cameras, None)
        .unwrap();
    let strip = |g: &Gallery| {
        let mut v: Vec<_> = g
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| (e.id, e.identity, e.camera, e.vector))
            .collect();
        v.sort_by_key(|e| e.0);
        v
    };
    let (a, b) = (strip(&gallery), strip(&copy));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.0, x.1, x.2), (y.0, y.1, y.2));
        assert!(x.3.iter().zip(&y.3).all(|(p, q)| (p - q).abs() < 1e-6));
    }
    assert!(
        copy.add_arrays(&arrays["vectors"], None, &identities[..3], &cameras, None)
            .is_err()
    );
}

fn assert_refused_and_untouched(path: &Path, what: &str) {
    let before = std::fs::read(path).unwrap();
    match Gallery::open(path) {
        Err(Error::GalleryFile { .. }) => {}
        Err(other) => panic!("{what}: unexpected error kind: {other}"),
        Ok(_) => panic!("{what}: opened"),
    }
    assert!(Gallery::load(path).is_err(), "{what}: loaded");
    assert_eq!(
        std::fs::read(path).unwrap(),
        before,
        "{what}: file modified"
    );
}

#[test]
fn corrupt_truncated_and_foreign_files_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.db");
    populated_file(&good);
    // Reopen once so that the WAL is checkpointed into the main file.
    drop(Gallery::load(&good).unwrap());
    let bytes = std::fs::read(&good).unwrap();
    let cut_path = dir.path().join("cut.db");
    // Every byte position of SQLite's 100-byte header, then every page boundary.
    let cuts = (0..=100).chain((512..bytes.len()).step_by(512));
    for cut in cuts {
        std::fs::write(&cut_path, &bytes[..cut]).unwrap();
        assert_refused_and_untouched(&cut_path, &format!("truncated at {cut}"));
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", cut_path.display()));
        }
    }
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, b"these are not embeddings").unwrap();
    assert_refused_and_untouched(&text, "text file");

    let foreign = dir.path().join("foreign.db");
    {
        let conn = rusqlite::Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE people (name TEXT); INSERT INTO people VALUES ('x');")
            .unwrap();
    }
    assert_refused_and_untouched(&foreign, "foreign database");

    assert!(matches!(
        Gallery::open(dir.path().join("absent.db")),
        Err(Error::GalleryFile { .. })
    ));
    assert!(
        Gallery::create(&good, DIM, Metric::Cosine).is_err(),
        "create over an existing file"
    );
    let err = Gallery::open_expecting(&good, 128).unwrap_err().to_string();
    assert!(err.contains("16-d"), "{err}");
}

/// The writer half of the crash test, spawned by it (`--ignored`); never run on its own.
#[test]
#[ignore = "child process of a_killed_writer_loses_nothing_it_acknowledged"]
fn crash_test_child_writer() {
    let path = std::env::var("REID_GALLERY_CRASH_CHILD")
        .expect("spawned by a_killed_writer_loses_nothing_it_acknowledged");
    let gallery = Gallery::open(&path).unwrap();
    let start = gallery.len().unwrap() as u64;
    for batch in 0u64.. {
        let first = start + batch * 50;
        gallery.add_batch(entries(first..first + 50)).unwrap();
        println!("acked {}", first + 50);
    }
}

#[test]
fn a_killed_writer_loses_nothing_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    drop(Gallery::create(&path, DIM, Metric::Cosine).unwrap());
    // The child's test name inside this binary (its module path without the crate).
    let (_, module) = module_path!().split_once("::").unwrap();
    let child_test = format!("{module}::crash_test_child_writer");
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &child_test,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("REID_GALLERY_CRASH_CHILD", &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut acknowledged = 0u64;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        while acknowledged < 400 * (round + 1) {
            let line = lines.next().expect("child output").unwrap();
            if let Some(n) = line.strip_prefix("acked ") {
                acknowledged = n.parse().unwrap();
            }
        }
        // SIGKILL while the child is in the middle of its next batch.
        child.kill().unwrap();
        child.wait().unwrap();
        let gallery = Gallery::open(&path).unwrap();
        let n = gallery.len().unwrap() as u64;
        assert!(
            n >= acknowledged,
            "round {round}: {n} entries, {acknowledged} acknowledged"
        );
        assert_eq!(n % 50, 0, "round {round}: a batch was half-written");
        for id in [0, acknowledged / 2, acknowledged - 1] {
            assert_eq!(gallery.get(id).unwrap().unwrap().vector.len(), DIM);
        }
    }
}

/// A file of format version 1 (before time spans and crops), written here as reid 0.3 wrote
/// it, opens with its entries and is upgraded in place to the current version.
#[test]
fn a_version_1_file_is_upgraded_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.gallery");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE entries (id INTEGER PRIMARY KEY, identity INTEGER NOT NULL,
                 camera INTEGER NOT NULL, tag TEXT, vector BLOB NOT NULL);
             CREATE INDEX entries_identity ON entries(identity);
             INSERT INTO meta VALUES ('format', 'reid-gallery'), ('version', '1'),
                 ('dim', '2'), ('metric', 'euclidean');",
        )
        .unwrap();
        let blob: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        conn.execute(
            "INSERT INTO entries VALUES (7, 3, 1, 'old', ?1)",
            rusqlite::params![blob],
        )
        .unwrap();
    }
    let gallery = Gallery::open(&path).unwrap();
    let old = gallery.get(7).unwrap().unwrap();
    assert_eq!(
        (
            old.identity,
            old.camera,
            old.tag.as_deref(),
            old.time,
            old.vector
        ),
        (3, 1, Some("old"), None, vec![1.5, -2.0])
    );
    let span = reid::gallery::TimeSpan::new(10.0, 12.5).unwrap();
    let id = gallery
        .add(NewEntry::new(4, 0, vec![0.0, 1.0]).with_time(span))
        .unwrap();
    let crop = std::fs::read(crate::common::fixture("images/person2.png")).unwrap();
    gallery.keep_crops(1 << 20).unwrap();
    gallery.set_crop(7, crop.clone()).unwrap();
    drop(gallery);
    let reopened = Gallery::open(&path).unwrap();
    assert_eq!(reopened.get(id).unwrap().unwrap().time, Some(span));
    assert_eq!(reopened.crop(7).unwrap(), Some(crop));
    assert_eq!(reopened.len().unwrap(), 2);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: String = conn
        .query_row("SELECT value FROM meta WHERE key = 'version'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(version, "3");
}

/// Time spans go out as a float64 `times` [N, 2] array (NaN rows for entries without one) and
/// come back in; a bad `times` array adds nothing.
#[test]
fn time_spans_round_trip_through_npz() {
    use reid::formats::npy::NpyArray;
    use reid::gallery::TimeSpan;
    let dir = tempfile::tempdir().unwrap();
    let gallery = Gallery::new(DIM, Metric::Euclidean).unwrap();
    let span = TimeSpan::new(5.0, 7.5).unwrap();
    let timed = gallery
        .add(NewEntry::new(1, 0, vector(1)).with_time(span))
        .unwrap();
    let untimed = gallery.add(NewEntry::new(2, 0, vector(2))).unwrap();
    let path = dir.path().join("timed.npz");
    gallery.export_npz(&path).unwrap();
    let times = read_npz(&path).unwrap()["times"].to_f64();
    assert_eq!(times[..2], [5.0, 7.5]);
    assert!(times[2].is_nan() && times[3].is_nan());
    let copy = Gallery::new(DIM, Metric::Euclidean).unwrap();
    copy.import_npz(&path).unwrap();
    assert_eq!(copy.get(timed).unwrap().unwrap().time, Some(span));
    assert_eq!(copy.get(untimed).unwrap().unwrap().time, None);
    // Without times, nothing is written for them.
    let plain = Gallery::new(DIM, Metric::Euclidean).unwrap();
    plain.add(NewEntry::new(2, 0, vector(2))).unwrap();
    plain.export_npz(&path).unwrap();
    assert!(!read_npz(&path).unwrap().contains_key("times"));
    // Bad times: the wrong shape, or a span in reverse.
    let vectors = NpyArray::f32(vec![1, DIM], vector(3));
    for times in [
        NpyArray::f64(vec![1, 3], vec![0.0, 1.0, 2.0]),
        NpyArray::f64(vec![1, 2], vec![2.0, 1.0]),
        NpyArray::f64(vec![1, 2], vec![f64::NAN, 1.0]),
    ] {
        assert!(
            plain
                .add_arrays(&vectors, None, &[1], &[0], Some(&times))
                .is_err()
        );
    }
    assert_eq!(plain.len().unwrap(), 1);
}
