//! Durable gallery files: an SQLite database in WAL mode with `synchronous=FULL`, so that a
//! mutation acknowledged to the caller has reached the disk and a process killed at any moment
//! leaves a file that opens with every acknowledged entry.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, params};

use super::{Entry, SETTING_PREFIX, Setting, TimeSpan};
use crate::distance::Metric;
use crate::error::{Error, Result};

/// Written in the `meta` table: what identifies a file as ours.
const FORMAT: &str = "reid-gallery";
/// Version 2 added the entries' time span (`time_start`, `time_end`), version 3 their crop
/// (`crop`, an encoded image); older files are upgraded when opened.
const FORMAT_VERSION: &str = "3";

/// An open gallery database.
#[derive(Debug)]
pub(crate) struct Db {
    conn: Connection,
    path: PathBuf,
}

fn db_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::GalleryFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

impl Db {
    /// Creates a new, empty gallery file; an error if `path` exists.
    pub fn create(path: &Path, dim: usize, metric: Metric) -> Result<Db> {
        if path.exists() {
            return Err(db_err(path, "already exists"));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .map_err(|e| db_err(path, e))?;
        let db = Db {
            conn,
            path: path.to_path_buf(),
        };
        db.configure()?;
        db.conn
            .execute_batch(
                "BEGIN;
                 CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE entries (
                     id INTEGER PRIMARY KEY,
                     identity INTEGER NOT NULL,
                     camera INTEGER NOT NULL,
                     tag TEXT,
                     vector BLOB NOT NULL,
                     time_start REAL,
                     time_end REAL,
                     crop BLOB);
                 CREATE INDEX entries_identity ON entries(identity);
                 COMMIT;",
            )
            .map_err(|e| db_err(path, e))?;
        for (key, value) in [
            ("format", FORMAT.to_string()),
            ("version", FORMAT_VERSION.to_string()),
            ("dim", dim.to_string()),
            ("metric", metric.name().to_string()),
        ] {
            db.conn
                .execute("INSERT INTO meta VALUES (?1, ?2)", params![key, value])
                .map_err(|e| db_err(path, e))?;
        }
        Ok(db)
    }

    /// Opens an existing gallery file and reads its entries. Nothing is written to a file that
    /// is not a valid gallery.
    pub fn open(path: &Path) -> Result<(Db, usize, Metric, Vec<Entry>)> {
        if !path.is_file() {
            return Err(db_err(path, "no such gallery file"));
        }
        check_not_truncated(path)?;
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|e| db_err(path, e))?;
        let db = Db {
            conn,
            path: path.to_path_buf(),
        };
        let (dim, metric, version) = db.read_meta()?;
        if version != FORMAT_VERSION {
            db.upgrade_from(&version)?;
        }
        let entries = db.read_entries(dim)?;
        db.configure()?;
        Ok((db, dim, metric, entries))
    }

    /// WAL journal, full sync on commit: durability of every acknowledged write.
    fn configure(&self) -> Result<()> {
        self.conn
            .execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
            .map_err(|e| db_err(&self.path, e))
    }

    /// Brings a file of format version 1 or 2 to the current one, in one transaction: version
    /// 2's time columns, version 3's crop column.
    fn upgrade_from(&self, version: &str) -> Result<()> {
        let times = if version == "1" {
            "ALTER TABLE entries ADD COLUMN time_start REAL;
             ALTER TABLE entries ADD COLUMN time_end REAL;"
        } else {
            ""
        };
        self.conn
            .execute_batch(&format!(
                "BEGIN;
                 {times}
                 ALTER TABLE entries ADD COLUMN crop BLOB;
                 UPDATE meta SET value = '{FORMAT_VERSION}' WHERE key = 'version';
                 COMMIT;"
            ))
            .map_err(|e| {
                db_err(
                    &self.path,
                    format!("upgrading from format version {version}: {e}"),
                )
            })
    }

    fn read_meta(&self) -> Result<(usize, Metric, String)> {
        let get = |key: &str| -> Result<String> {
            self.conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .map_err(|e| db_err(&self.path, format!("not a reid gallery ({e})")))
        };
        if get("format")? != FORMAT {
            return Err(db_err(&self.path, "not a reid gallery"));
        }
        let version = get("version")?;
        if !["1", "2", FORMAT_VERSION].contains(&version.as_str()) {
            return Err(db_err(
                &self.path,
                format!("gallery format version {version} is not supported"),
            ));
        }
        let dim: usize = get("dim")?
            .parse()
            .map_err(|_| db_err(&self.path, "corrupt dimension"))?;
        let metric: Metric = get("metric")?.parse()?;
        if dim == 0 {
            return Err(db_err(&self.path, "corrupt dimension"));
        }
        Ok((dim, metric, version))
    }

    fn read_entries(&self, dim: usize) -> Result<Vec<Entry>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, identity, camera, tag, vector, time_start, time_end FROM entries \
                 ORDER BY rowid",
            )
            .map_err(|e| db_err(&self.path, e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                    r.get::<_, Option<f64>>(5)?,
                    r.get::<_, Option<f64>>(6)?,
                ))
            })
            .map_err(|e| db_err(&self.path, e))?;
        let mut entries = Vec::new();
        for row in rows {
            let (id, identity, camera, tag, blob, start, end) =
                row.map_err(|e| db_err(&self.path, e))?;
            if blob.len() != dim * 4 {
                return Err(db_err(
                    &self.path,
                    format!(
                        "entry {id}: vector of {} bytes, expected {}",
                        blob.len(),
                        dim * 4
                    ),
                ));
            }
            let vector: Vec<f32> = blob
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if vector.iter().any(|v| !v.is_finite()) {
                return Err(db_err(&self.path, format!("entry {id}: non-finite vector")));
            }
            entries.push(Entry {
                id: id as u64,
                identity: identity as u64,
                camera: i32::try_from(camera)
                    .map_err(|_| db_err(&self.path, format!("entry {id}: corrupt camera")))?,
                tag,
                time: TimeSpan::from_columns(start, end)
                    .map_err(|e| db_err(&self.path, format!("entry {id}: {e}")))?,
                vector,
            });
        }
        Ok(entries)
    }

    /// Inserts entries with their crops (`crops[i]` for `entries[i]`; missing ones are
    /// `None`) in one transaction.
    pub fn insert(&mut self, entries: &[Entry], crops: &[Option<Vec<u8>>]) -> Result<()> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| db_err(&path, e))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO entries \
                     (id, identity, camera, tag, vector, time_start, time_end, crop) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(|e| db_err(&path, e))?;
            for (i, e) in entries.iter().enumerate() {
                stmt.execute(params![
                    e.id as i64,
                    e.identity as i64,
                    e.camera as i64,
                    e.tag,
                    vector_blob(&e.vector),
                    e.time.map(|t| t.start),
                    e.time.map(|t| t.end),
                    crops.get(i).and_then(Option::as_deref)
                ])
                .map_err(|err| db_err(&path, err))?;
            }
        }
        tx.commit().map_err(|e| db_err(&path, e))
    }

    /// The crop of entry `id`: `None` if there is no such entry, `Some(None)` if it has none.
    pub fn crop(&self, id: u64) -> Result<Option<Option<Vec<u8>>>> {
        self.conn
            .query_row("SELECT crop FROM entries WHERE id = ?1", [id as i64], |r| {
                r.get::<_, Option<Vec<u8>>>(0)
            })
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(db_err(&self.path, e)),
            })
    }

    /// Gives entry `id` the crop `crop`; whether there was such an entry.
    pub fn set_crop(&mut self, id: u64, crop: &[u8]) -> Result<bool> {
        self.conn
            .execute(
                "UPDATE entries SET crop = ?2 WHERE id = ?1",
                params![id as i64, crop],
            )
            .map(|changed| changed > 0)
            .map_err(|e| db_err(&self.path, e))
    }

    /// Up to `limit` entries' crops, by id, from the first id above `after`.
    pub fn crops(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Option<Vec<u8>>)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, crop FROM entries WHERE id > ?1 ORDER BY id LIMIT ?2")
            .map_err(|e| db_err(&self.path, e))?;
        let first = after.map_or(-1, |id| id as i64);
        let rows = stmt
            .query_map(params![first, limit as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Option<Vec<u8>>>(1)?))
            })
            .map_err(|e| db_err(&self.path, e))?;
        rows.map(|r| r.map_err(|e| db_err(&self.path, e))).collect()
    }

    /// The ids of the entries without a crop, ascending.
    pub fn without_crop(&self) -> Result<Vec<u64>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM entries WHERE crop IS NULL ORDER BY id")
            .map_err(|e| db_err(&self.path, e))?;
        let rows = stmt
            .query_map([], |r| Ok(r.get::<_, i64>(0)? as u64))
            .map_err(|e| db_err(&self.path, e))?;
        rows.map(|r| r.map_err(|e| db_err(&self.path, e))).collect()
    }

    /// Replaces the vectors of entries and sets or removes settings, in one transaction.
    pub fn replace_vectors(
        &mut self,
        vectors: &[(u64, Vec<f32>)],
        settings: &[Setting],
    ) -> Result<()> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| db_err(&path, e))?;
        {
            let mut stmt = tx
                .prepare_cached("UPDATE entries SET vector = ?2 WHERE id = ?1")
                .map_err(|e| db_err(&path, e))?;
            for (id, vector) in vectors {
                stmt.execute(params![*id as i64, vector_blob(vector)])
                    .map_err(|err| db_err(&path, err))?;
            }
            for (key, value) in settings {
                let key = format!("{SETTING_PREFIX}{key}");
                match value {
                    Some(value) => tx.execute(
                        "INSERT OR REPLACE INTO meta VALUES (?1, ?2)",
                        params![key, value],
                    ),
                    None => tx.execute("DELETE FROM meta WHERE key = ?1", [key]),
                }
                .map_err(|e| db_err(&path, e))?;
            }
        }
        tx.commit().map_err(|e| db_err(&path, e))
    }

    /// Replaces one entry.
    pub fn update(&mut self, e: &Entry) -> Result<()> {
        self.conn
            .execute(
                "UPDATE entries SET identity = ?2, camera = ?3, tag = ?4, vector = ?5, \
                 time_start = ?6, time_end = ?7 WHERE id = ?1",
                params![
                    e.id as i64,
                    e.identity as i64,
                    e.camera as i64,
                    e.tag,
                    vector_blob(&e.vector),
                    e.time.map(|t| t.start),
                    e.time.map(|t| t.end)
                ],
            )
            .map(|_| ())
            .map_err(|err| db_err(&self.path, err))
    }

    /// Gives entries `ids` the identity `identity`, in one transaction.
    pub fn relabel(&mut self, ids: &[u64], identity: u64) -> Result<()> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| db_err(&path, e))?;
        {
            let mut stmt = tx
                .prepare_cached("UPDATE entries SET identity = ?2 WHERE id = ?1")
                .map_err(|e| db_err(&path, e))?;
            for &id in ids {
                stmt.execute(params![id as i64, identity as i64])
                    .map_err(|err| db_err(&path, err))?;
            }
        }
        tx.commit().map_err(|e| db_err(&path, e))
    }

    /// Every value set with [`Db::set_meta`], by key.
    pub fn all_meta(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT key, value FROM meta WHERE key LIKE '{SETTING_PREFIX}%' ORDER BY key"
            ))
            .map_err(|e| db_err(&self.path, e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| db_err(&self.path, e))?;
        rows.map(|r| {
            let (k, v) = r.map_err(|e| db_err(&self.path, e))?;
            Ok((k[SETTING_PREFIX.len()..].to_string(), v))
        })
        .collect()
    }

    /// Sets `key` (committed before it returns).
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta VALUES (?1, ?2)",
                params![format!("{SETTING_PREFIX}{key}"), value],
            )
            .map(|_| ())
            .map_err(|e| db_err(&self.path, e))
    }

    /// Deletes one entry.
    pub fn delete(&mut self, id: u64) -> Result<()> {
        self.conn
            .execute("DELETE FROM entries WHERE id = ?1", [id as i64])
            .map(|_| ())
            .map_err(|e| db_err(&self.path, e))
    }

    /// Deletes every entry of an identity.
    pub fn delete_identity(&mut self, identity: u64) -> Result<()> {
        self.conn
            .execute("DELETE FROM entries WHERE identity = ?1", [identity as i64])
            .map(|_| ())
            .map_err(|e| db_err(&self.path, e))
    }
}

/// SQLite notices a truncated file only when it reads a missing page; its header records the
/// database size (bytes 28..32, valid when the change counter at 24 equals the one at 92), so a
/// file shorter than that is refused before anything is read.
fn check_not_truncated(path: &Path) -> Result<()> {
    let bytes = {
        use std::io::Read;
        let mut header = Vec::with_capacity(100);
        std::fs::File::open(path)
            .and_then(|f| f.take(100).read_to_end(&mut header))
            .map_err(|e| Error::io(path, e))?;
        header
    };
    if bytes.len() < 100 {
        // An empty file is how SQLite represents an empty database: the meta check refuses it.
        return if bytes.is_empty() {
            Ok(())
        } else {
            Err(db_err(path, "truncated header: not a reid gallery"))
        };
    }
    let be32 =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let page_size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65536,
        n => n as u64,
    };
    if be32(24) == be32(92) {
        let expected = page_size * be32(28) as u64;
        let actual = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        if actual < expected {
            return Err(db_err(
                path,
                format!("truncated: {actual} bytes, the header records {expected}"),
            ));
        }
    }
    Ok(())
}

fn vector_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes `entries` (with `crops`, by entry id) as a complete gallery file at `path`,
/// atomically: a temporary database is filled in one transaction, closed (checkpointing its journal), then renamed into place.
pub(crate) fn write_snapshot(
    path: &Path,
    dim: usize,
    metric: Metric,
    entries: &[Entry],
    crops: Vec<(u64, Vec<u8>)>,
    meta: &[(String, String)],
) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let cleanup = |tmp: &Path| {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", tmp.display()));
        }
    };
    cleanup(&tmp);
    let result = (|| {
        let mut db = Db::create(&tmp, dim, metric)?;
        let mut by_id: std::collections::HashMap<u64, Vec<u8>> = crops.into_iter().collect();
        let aligned: Vec<Option<Vec<u8>>> = entries.iter().map(|e| by_id.remove(&e.id)).collect();
        db.insert(entries, &aligned)?;
        for (key, value) in meta {
            db.set_meta(key, value)?;
        }
        db.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;")
            .map_err(|e| db_err(path, e))?;
        drop(db);
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        cleanup(&tmp);
    }
    result
}
