//! The PostgreSQL store against a real server (`REID_POSTGRES_URL`): exactly the embedded
//! store's results, writers from several connections at once, a client killed mid-batch, a
//! lost connection, and galleries of another dimension, metric or format refused.

use std::process::Command;
use std::time::{Duration, Instant};

use reid::eval::Metric;
use reid::gallery::{Gallery, NewEntry, SearchOptions, TimeSpan};

use crate::backends::{Backend, database_location, database_url, drop_schema};

struct Rng(u64);

impl Rng {
    fn vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }
}

/// A schema of the test database, dropped at the end.
struct Schema {
    url: String,
    location: String,
    name: String,
}

impl Schema {
    fn new(url: &str) -> Schema {
        let (location, name) = database_location(url);
        Schema {
            url: url.to_string(),
            location,
            name,
        }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        drop_schema(&self.url, &self.name);
    }
}

fn sql(url: &str, statement: &str) {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap()
        .batch_execute(statement)
        .unwrap();
}

/// The same entries in memory and in the database give the same results bit for bit: same
/// ids in the same order, same scores, under every option; with near-ties planted (vectors a
/// millionth of a radian around a query), which pgvector's own rounding orders differently
/// (checked: without the rounding bound on its candidates, this test fails), and a hundred
/// such neighbours of one query, more than the first scan fetches (checked: answering from that
/// scan alone fails it).
#[test]
fn database_search_returns_exactly_what_the_embedded_store_returns() {
    let Some(_) = database_url() else { return };
    const D: usize = 128;
    for metric in [Metric::Cosine, Metric::Euclidean] {
        let memory = Backend::Memory.fresh(D, metric);
        let database = Backend::Database.fresh(D, metric);
        let mut rng = Rng(5);
        let mut entries: Vec<NewEntry> = (0..2000u64)
            .map(|i| NewEntry {
                id: Some(i * 7 % 2003),
                identity: i % 97,
                camera: (i % 5) as i32,
                tag: (i % 3 == 0).then(|| format!("t{i}")),
                time: (i % 4 != 0).then(|| TimeSpan::new(i as f64, i as f64 + 3.5).unwrap()),
                vector: rng.vector(D),
                crop: None,
            })
            .collect();
        // Twelve near twins of each of ten vectors, at cosine distances 1e-6 apart by 1e-8
        // steps: distinct exact scores, closer than pgvector's f32 sums can tell apart.
        for n in 0..120 {
            let base = &entries[n / 12 * 3].vector;
            let norm = base.iter().map(|v| v * v).sum::<f32>().sqrt();
            let step = (2.0 * (1e-6 + (n % 12) as f32 * 1e-8)).sqrt() * norm;
            let noise = rng.vector(D);
            let noise_norm = noise.iter().map(|v| v * v).sum::<f32>().sqrt();
            let v = base
                .iter()
                .zip(&noise)
                .map(|(b, e)| b + step * e / noise_norm)
                .collect();
            entries.push(NewEntry {
                id: Some(5000 + n as u64),
                identity: 1000 + n as u64,
                camera: 9,
                tag: None,
                time: None,
                vector: v,
                crop: None,
            });
        }
        // A hundred near twins of one vector, 1e-9 apart: more rows within the rounding bound
        // of the k-th best than the first scan fetches, so the bound is settled by the second
        // statement.
        let base = entries[1].vector.clone();
        let norm = base.iter().map(|v| v * v).sum::<f32>().sqrt();
        for n in 0..100u64 {
            let step = (2.0 * (1e-6 + n as f32 * 1e-9)).sqrt() * norm;
            let noise = rng.vector(D);
            let noise_norm = noise.iter().map(|v| v * v).sum::<f32>().sqrt();
            entries.push(NewEntry {
                id: Some(9000 - 7 * n),
                identity: 2000 + n % 50,
                camera: (n % 3) as i32,
                tag: None,
                time: None,
                vector: base
                    .iter()
                    .zip(&noise)
                    .map(|(b, e)| b + step * e / noise_norm)
                    .collect(),
                crop: None,
            });
        }
        memory.add_batch(entries.clone()).unwrap();
        database.add_batch(entries.clone()).unwrap();
        assert_eq!(memory.ids().unwrap(), database.ids().unwrap());
        let mut queries: Vec<f32> = (0..20).flat_map(|_| rng.vector(D)).collect();
        for n in 0..10 {
            queries.extend(&entries[n * 3].vector);
        }
        queries.extend(&entries[1].vector);
        let threshold = match metric {
            Metric::Cosine => 0.2,
            Metric::Euclidean => 9.0,
        };
        for options in [
            SearchOptions::top(10),
            SearchOptions::top(1),
            SearchOptions {
                group_by_identity: true,
                ..SearchOptions::top(8)
            },
            SearchOptions {
                exclude_camera: Some(0),
                ..SearchOptions::top(5)
            },
            SearchOptions {
                min_score: Some(threshold),
                group_by_identity: true,
                exclude_camera: Some(9),
                ..SearchOptions::top(30)
            },
            SearchOptions {
                time_window: Some(TimeSpan::new(400.0, 900.0).unwrap()),
                group_by_identity: true,
                ..SearchOptions::top(10)
            },
            SearchOptions::top(3000),
        ] {
            let want = memory.search(&queries, &options).unwrap();
            let got = database.search(&queries, &options).unwrap();
            let bits = |m: &[reid::gallery::Match]| -> Vec<(u64, u64, i32, u32)> {
                m.iter()
                    .map(|m| (m.id, m.identity, m.camera, m.score.to_bits()))
                    .collect()
            };
            assert_eq!(got.len(), want.len());
            for (q, (got, want)) in got.iter().zip(&want).enumerate() {
                assert_eq!(bits(got), bits(want), "{metric:?} {options:?}, query {q}");
            }
        }
        let mut stored = database.entries().unwrap();
        let mut kept = memory.entries().unwrap();
        stored.sort_by_key(|e| e.id);
        kept.sort_by_key(|e| e.id);
        assert_eq!(stored, kept, "{metric:?}: entries read back");
    }
}

/// Four connections add batches with assigned ids at once: every id is given once, every
/// batch lands whole.
#[test]
fn writers_on_several_connections_get_distinct_ids() {
    let Some(url) = database_url() else { return };
    let schema = Schema::new(&url);
    Gallery::create(&schema.location, 8, Metric::Cosine).unwrap();
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let location = schema.location.clone();
            std::thread::spawn(move || {
                let gallery = Gallery::open(&location).unwrap();
                let mut rng = Rng(w + 1);
                let mut ids = Vec::new();
                for b in 0..25 {
                    let batch = (0..4)
                        .map(|_| NewEntry {
                            id: None,
                            identity: w * 1000 + b,
                            camera: w as i32,
                            tag: None,
                            time: None,
                            vector: rng.vector(8),
                            crop: None,
                        })
                        .collect();
                    ids.extend(gallery.add_batch(batch).unwrap());
                }
                ids
            })
        })
        .collect();
    let mut ids: Vec<u64> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..400).collect::<Vec<u64>>());
    let gallery = Gallery::open(&schema.location).unwrap();
    assert_eq!(gallery.ids().unwrap(), ids);
    // Each batch of four is one identity; none was split or half-added.
    let entries = gallery.entries().unwrap();
    let mut per_identity = std::collections::HashMap::<u64, usize>::new();
    for e in &entries {
        *per_identity.entry(e.identity).or_default() += 1;
    }
    assert!(per_identity.values().all(|&n| n == 4), "{per_identity:?}");
}

/// `reid gallery add` killed while its transaction is open: the database holds none of the
/// batch, and the gallery stays usable.
#[test]
fn a_client_killed_mid_batch_adds_nothing() {
    let Some(url) = database_url() else { return };
    let schema = Schema::new(&url);
    const D: usize = 256;
    let gallery = Gallery::create(&schema.location, D, Metric::Euclidean).unwrap();
    gallery
        .add(NewEntry {
            id: Some(7),
            identity: 1,
            camera: 0,
            tag: None,
            time: None,
            vector: vec![1.0; D],
            crop: None,
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let n = 100_000;
    let mut rng = Rng(9);
    let vectors = reid::formats::npy::NpyArray::f32(vec![n, D], rng.vector(n * D));
    let identities = reid::formats::npy::NpyArray::i64(vec![n], (0..n as i64).collect());
    reid::formats::npy::write_npy(dir.path().join("v.npy"), &vectors).unwrap();
    reid::formats::npy::write_npy(dir.path().join("i.npy"), &identities).unwrap();
    // The writer's sessions carry a name of their own, so that only they are watched.
    let app = format!("writer_{}", schema.name);
    let mut child = Command::new(env!("CARGO_BIN_EXE_reid"))
        .args([
            "gallery",
            "add",
            &format!("{}&application_name={app}", schema.location),
        ])
        .arg("--vectors")
        .arg(dir.path().join("v.npy"))
        .arg("--identities")
        .arg(dir.path().join("i.npy"))
        .spawn()
        .unwrap();
    // Kill it once its transaction has written rows (it holds a transaction id from its
    // first insert on), then wait for the server to notice and roll back.
    let writing = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}' \
         AND backend_xid IS NOT NULL"
    );
    let connected =
        format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}'");
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let count = |client: &mut postgres::Client, query: &str| -> i64 {
        client.query_one(query, &[]).unwrap().get(0)
    };
    let started = Instant::now();
    while count(&mut client, &writing) == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the writer finished before it could be killed: give it more rows"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no insert seen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "the writer finished");
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&mut client, &connected) > 0 {
        assert!(
            Instant::now() < deadline,
            "the killed client's session stayed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(gallery.len().unwrap(), 1, "part of a killed batch was kept");
    assert_eq!(gallery.ids().unwrap(), [7]);
    let id = gallery
        .add(NewEntry {
            id: None,
            identity: 2,
            camera: 0,
            tag: None,
            time: None,
            vector: vec![0.5; D],
            crop: None,
        })
        .unwrap();
    assert_eq!(id, 8);
}

/// A connection closed by the server is reported as an error naming the database (without
/// its password); the next call connects again and works.
#[test]
fn a_lost_connection_is_an_error_then_the_next_call_reconnects() {
    let Some(url) = database_url() else { return };
    let schema = Schema::new(&url);
    // Its sessions carry a name of their own: only they are cut.
    let app = format!("lost_{}", schema.name);
    let location = format!("{}&application_name={app}", schema.location);
    let gallery = Gallery::create(&location, 4, Metric::Cosine).unwrap();
    let entry = |identity| NewEntry {
        id: None,
        identity,
        camera: 0,
        tag: None,
        time: None,
        vector: vec![1.0, 2.0, 3.0, 4.0],
        crop: None,
    };
    gallery.add(entry(1)).unwrap();
    sql(
        &url,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = '{app}'"
        ),
    );
    let err = gallery.add(entry(2)).unwrap_err();
    assert!(
        matches!(err, reid::Error::GalleryDatabase { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("gallery database postgres"),
        "{err}"
    );
    assert_eq!(gallery.len().unwrap(), 1, "the failed add left nothing");
    gallery.add(entry(3)).unwrap();
    let got = gallery
        .search(&[1.0, 2.0, 3.0, 4.0], &SearchOptions::top(5))
        .unwrap();
    assert_eq!(got[0].len(), 2);
}

/// A database that is not there, a gallery created twice, one of another dimension, one
/// that is not ours, a name that is not an identifier, a dimension pgvector cannot index:
/// each a clear error, and nothing changed.
#[test]
fn other_dimensions_metrics_and_foreign_schemas_are_refused() {
    let Some(url) = database_url() else { return };
    let schema = Schema::new(&url);
    let gallery = Gallery::create(&schema.location, 16, Metric::Euclidean).unwrap();
    drop(gallery);
    let err = Gallery::create(&schema.location, 16, Metric::Euclidean).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    let err = Gallery::open_expecting(&schema.location, 32).unwrap_err();
    assert!(
        err.to_string().contains("holds 16-d embeddings, not 32-d"),
        "{err}"
    );
    let reopened = Gallery::open(&schema.location).unwrap();
    assert_eq!((reopened.dim(), reopened.metric()), (16, Metric::Euclidean));

    let missing = Schema::new(&url);
    let err = Gallery::open(&missing.location).unwrap_err();
    assert!(matches!(err, reid::Error::NotFound(_)), "{err:?}");

    let foreign = Schema::new(&url);
    sql(
        &url,
        &format!(
            "CREATE SCHEMA {s}; CREATE TABLE {s}.meta (key text, value text); \
             CREATE TABLE {s}.entries (id bigint); INSERT INTO {s}.meta VALUES ('format', 'x')",
            s = foreign.name
        ),
    );
    let err = Gallery::open(&foreign.location).unwrap_err();
    assert!(err.to_string().contains("is not a reid gallery"), "{err}");

    let too_wide = Schema::new(&url);
    let err = Gallery::create(&too_wide.location, 4096, Metric::Cosine).unwrap_err();
    assert!(err.to_string().contains("at most 2000"), "{err}");

    let err = Gallery::open(format!("{url}?gallery=Robert'); DROP TABLE x;--")).unwrap_err();
    assert!(err.to_string().contains("gallery name"), "{err}");

    let unreachable = "postgres://nobody:secret@127.0.0.1:1/none?connect_timeout=2";
    let err = Gallery::open(unreachable).unwrap_err().to_string();
    assert!(err.contains("cannot connect"), "{err}");
    assert!(!err.contains("secret"), "a password in a message: {err}");
}

/// The HNSW index's scan counter in the server's statistics.
fn index_scans(url: &str, schema: &str) -> i64 {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap()
        .query_one(
            "SELECT coalesce(sum(idx_scan), 0)::bigint FROM pg_stat_user_indexes \
             WHERE schemaname = $1 AND indexrelname LIKE '%embedding%'",
            &[&schema],
        )
        .unwrap()
        .get(0)
}

/// Runs `search` on the gallery at `location` in a session of its own and waits for that
/// session to end: by then its counters are in the server's statistics.
fn in_own_session<T>(url: &str, location: &str, search: impl FnOnce(&Gallery) -> T) -> T {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let app = format!(
        "session_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let gallery = Gallery::open(format!("{location}&application_name={app}")).unwrap();
    let result = search(&gallery);
    drop(gallery);
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let open: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .unwrap()
            .get(0);
        if open == 0 {
            return result;
        }
        assert!(
            Instant::now() < deadline,
            "the gallery's session stayed open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ef_search=N` in the location makes searches go through the HNSW index (the index's scan
/// counter moves; exact searches leave it alone), with exact scores for what it finds, camera
/// exclusion kept, and on a small gallery nearly every exact neighbour found.
#[test]
fn ef_search_goes_through_the_index_and_finds_the_neighbours() {
    let Some(url) = database_url() else { return };
    let schema = Schema::new(&url);
    const D: usize = 64;
    let mut rng = Rng(21);
    let entries: Vec<NewEntry> = (0..3000u64)
        .map(|i| NewEntry {
            id: Some(i),
            identity: i / 3,
            camera: (i % 4) as i32,
            tag: None,
            time: None,
            vector: rng.vector(D),
            crop: None,
        })
        .collect();
    Gallery::create(&schema.location, D, Metric::Cosine)
        .unwrap()
        .add_batch(entries.clone())
        .unwrap();
    let queries: Vec<f32> = (0..30).flat_map(|_| rng.vector(D)).collect();
    let options = SearchOptions {
        exclude_camera: Some(1),
        ..SearchOptions::top(10)
    };
    let search = |g: &Gallery| g.search(&queries, &options).unwrap();
    let before = index_scans(&url, &schema.name);
    let want = in_own_session(&url, &schema.location, search);
    let after_exact = index_scans(&url, &schema.name);
    assert_eq!(after_exact, before, "an exact search used the index");
    let approximate = format!("{}&ef_search=200", schema.location);
    let got = in_own_session(&url, &approximate, search);
    assert!(
        index_scans(&url, &schema.name) > after_exact,
        "an approximate search did not use the index"
    );

    let memory = Backend::Memory.fresh(D, Metric::Cosine);
    memory.add_batch(entries).unwrap();
    let (mut found, mut wanted) = (0, 0);
    for (q, (got, want)) in got.iter().zip(&want).enumerate() {
        assert_eq!(got.len(), 10);
        let query = &queries[q * D..(q + 1) * D];
        let all = memory.search(query, &SearchOptions::top(3000)).unwrap();
        for m in got {
            assert_ne!(m.camera, 1);
            let truth = all[0].iter().find(|t| t.id == m.id).unwrap();
            assert_eq!(m.score.to_bits(), truth.score.to_bits());
        }
        found += got
            .iter()
            .filter(|m| want.iter().any(|w| w.id == m.id))
            .count();
        wanted += want.len();
    }
    let recall = found as f64 / wanted as f64;
    assert!(recall >= 0.9, "recall@10 {recall}");
}

/// A batch that at least doubles a gallery of 10,000 rows or more goes in by rebuilding the
/// HNSW index: afterwards the index is there, exact search still equals the embedded store's,
/// and approximate search goes through the rebuilt index.
#[test]
fn a_bulk_load_rebuilds_the_index_and_loses_nothing() {
    let Some(url) = database_url() else { return };
    let schema = Schema::new(&url);
    const D: usize = 8;
    let mut rng = Rng(31);
    let entries: Vec<NewEntry> = (0..10_020u64)
        .map(|i| NewEntry {
            id: None,
            identity: i % 500,
            camera: (i % 3) as i32,
            tag: None,
            time: None,
            vector: rng.vector(D),
            crop: None,
        })
        .collect();
    let gallery = Gallery::create(&schema.location, D, Metric::Euclidean).unwrap();
    let memory = Backend::Memory.fresh(D, Metric::Euclidean);
    for batch in [&entries[..20], &entries[20..]] {
        assert_eq!(
            gallery.add_batch(batch.to_vec()).unwrap(),
            memory.add_batch(batch.to_vec()).unwrap()
        );
    }
    let indexes: i64 = postgres::Client::connect(&url, postgres::NoTls)
        .unwrap()
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 \
             AND indexdef LIKE '%USING hnsw%'",
            &[&schema.name],
        )
        .unwrap()
        .get(0);
    assert_eq!(indexes, 1, "the HNSW index after a bulk load");
    assert_eq!(gallery.len().unwrap(), 10_020);
    let queries: Vec<f32> = (0..10).flat_map(|_| rng.vector(D)).collect();
    let options = SearchOptions::top(5);
    assert_eq!(
        gallery.search(&queries, &options).unwrap(),
        memory.search(&queries, &options).unwrap()
    );
    let approximate = Gallery::open(format!("{}&ef_search=100", schema.location)).unwrap();
    let found = approximate.search(&queries, &options).unwrap();
    assert!(found.iter().all(|m| m.len() == 5));
}

/// A gallery of format version 1 (before time spans and crops), made here as reid 0.3 made
/// it, opens with its entries, is upgraded in place, and then keeps times and crops.
#[test]
fn a_version_1_database_gallery_is_upgraded_when_opened() {
    let Some(url) = database_url() else { return };
    let schema = Schema::new(&url);
    let s = &schema.name;
    sql(
        &url,
        &format!(
            "CREATE SCHEMA \"{s}\";
             CREATE TABLE \"{s}\".meta (key text PRIMARY KEY, value text NOT NULL);
             CREATE TABLE \"{s}\".entries (id bigint PRIMARY KEY, identity bigint NOT NULL,
                 camera integer NOT NULL, tag text, embedding vector(3) NOT NULL);
             CREATE INDEX ON \"{s}\".entries (identity);
             CREATE INDEX ON \"{s}\".entries (camera);
             INSERT INTO \"{s}\".meta VALUES ('format', 'reid-gallery'), ('version', '1'),
                 ('dim', '3'), ('metric', 'cosine'), ('next_id', '6');
             INSERT INTO \"{s}\".entries VALUES (5, 2, 1, 'old', '[0,1,0]');"
        ),
    );
    let gallery = Gallery::open(&schema.location).unwrap();
    let old = gallery.get(5).unwrap().unwrap();
    assert_eq!(
        (old.identity, old.camera, old.tag.as_deref(), old.time),
        (2, 1, Some("old"), None)
    );
    let span = TimeSpan::new(1.0, 2.0).unwrap();
    let id = gallery
        .add(NewEntry::new(3, 0, vec![1.0, 0.0, 0.0]).with_time(span))
        .unwrap();
    assert_eq!(id, 6);
    let window = SearchOptions {
        time_window: Some(span),
        ..SearchOptions::top(5)
    };
    let found = &gallery.search(&[0.0, 1.0, 0.0], &window).unwrap()[0];
    assert_eq!(found.iter().map(|m| m.id).collect::<Vec<_>>(), [6]);
    let crop = std::fs::read(crate::common::fixture("images/person2.png")).unwrap();
    gallery.keep_crops(1 << 20).unwrap();
    gallery.set_crop(5, crop.clone()).unwrap();
    drop(gallery);
    // A second open finds the current version and changes nothing.
    let reopened = Gallery::open(&schema.location).unwrap();
    assert_eq!(reopened.get(id).unwrap().unwrap().time, Some(span));
    assert_eq!(reopened.entries_tagged("old").unwrap().len(), 1);
    assert_eq!(reopened.crop(5).unwrap(), Some(crop));
}
