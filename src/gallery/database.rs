//! The database store: a gallery in PostgreSQL with pgvector, shared by every process and
//! machine that opens the same location.
//!
//! One schema per gallery (default `reid_gallery`): `meta` (format, version, dimension,
//! metric, the next id to assign) and `entries` (id, identity, camera, tag, embedding
//! `vector(D)` stored PLAIN: TOASTed vectors made exact search 4× slower in a trial, and the
//! time span `time_start`, `time_end`), with an HNSW index for the metric and btree indexes on
//! identity, tag and (camera, time_start).
//!
//! Every mutation is one transaction: a client killed mid-batch adds nothing. Writers take
//! the `next_id` row's lock first, so ids are assigned the same way from every process.
//!
//! Search is exact and returns what the embedded store returns: pgvector's float distances,
//! whose rounding is bounded, pick a superset of the candidates (every row within that bound
//! of the k-th best), and the embedded store's own search ranks those rows with its exact
//! scores. With `ef_search=N` in the location, search is approximate instead: the HNSW index
//! proposes `max(k, N)` rows, ranked the same way (exact scores, possibly missing neighbours).
//! A lost connection is an error; the next call connects again.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use pgvector::Vector;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::error::SqlState;
use postgres::{Client, NoTls};

use super::location::Location;
use super::search::{self, Columns};
use super::{
    Entry, Match, SETTING_PREFIX, SearchOptions, Selection, Setting, Store, TimeSpan, assign_ids,
    changed_meanwhile, not_found, parse_counter,
};
use crate::distance::Metric;
use crate::error::{Error, Result};

/// Written in `meta`: what identifies a schema as a gallery of ours.
const FORMAT: &str = "reid-gallery";
/// Version 2 added the time span and the tag index, version 3 the crop; older galleries are
/// upgraded when opened.
const FORMAT_VERSION: &str = "3";
/// The columns of an entry, in the order [`Database::entry`] reads them.
const COLUMNS: &str = "id, identity, camera, tag, embedding, time_start, time_end";
/// The options' filters, on parameters $2 (camera to exclude), $3 and $4 (time window).
const FILTERS: &str = "($2::integer IS NULL OR camera <> $2) \
     AND ($3::float8 IS NULL OR (time_start <= $4 AND time_end >= $3))";
/// The gallery (schema) used when the location names none.
const DEFAULT_GALLERY: &str = "reid_gallery";
/// pgvector indexes vectors of at most 2,000 dimensions (and a PLAIN row must fit a page).
const MAX_DATABASE_DIM: usize = 2000;
/// The HNSW index's name in a gallery's schema.
const HNSW_INDEX: &str = "entries_embedding_hnsw";
/// Batches of at least this many rows that at least double the gallery rebuild its index.
const BULK_ROWS: usize = 10_000;
/// Used when the URL sets no `connect_timeout`: an unreachable server is an error, not a hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A gallery in a PostgreSQL database.
pub(crate) struct Database {
    location: Location,
    config: postgres::Config,
    schema: String,
    /// Approximate search through the HNSW index with this many candidates; exact if `None`.
    ef_search: Option<u32>,
    dim: usize,
    metric: Metric,
    /// `None` after a lost connection: the next call connects again.
    client: Mutex<Option<Client>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("location", &self.location)
            .field("schema", &self.schema)
            .field("dim", &self.dim)
            .field("metric", &self.metric)
            .finish()
    }
}

/// Creates an empty gallery in the database at `url` (an error if the gallery exists).
pub(crate) fn create(url: &str, dim: usize, metric: Metric) -> Result<Box<dyn Store>> {
    if dim > MAX_DATABASE_DIM {
        return Err(Location::Database(url.to_string()).error(format!(
            "{dim}-d embeddings: a database gallery holds at most {MAX_DATABASE_DIM} \
             dimensions (pgvector's index limit)"
        )));
    }
    let db = Database::connect(url, dim, metric)?;
    let s = db.schema.clone();
    let (_, opclass) = operator(metric);
    db.with(|client, fail| {
        let mut tx = client.transaction().map_err(fail)?;
        let exists = tx
            .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&s])
            .map_err(fail)?
            .is_some();
        if exists {
            return Err(Error::InvalidInput(format!(
                "a gallery `{s}` already exists in this database"
            )));
        }
        tx.batch_execute("CREATE EXTENSION IF NOT EXISTS vector")
            .map_err(|e| {
                Error::InvalidInput(format!(
                    "pgvector is not available in this database ({})",
                    message(&e)
                ))
            })?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA \"{s}\";
             CREATE TABLE \"{s}\".meta (key text PRIMARY KEY, value text NOT NULL);
             CREATE TABLE \"{s}\".entries (
                 id bigint PRIMARY KEY,
                 identity bigint NOT NULL,
                 camera integer NOT NULL,
                 tag text,
                 embedding vector({dim}) NOT NULL,
                 time_start double precision,
                 time_end double precision,
                 crop bytea);
             ALTER TABLE \"{s}\".entries ALTER COLUMN embedding SET STORAGE PLAIN;
             ALTER TABLE \"{s}\".entries ALTER COLUMN crop SET STORAGE EXTERNAL;
             CREATE INDEX ON \"{s}\".entries (identity);
             CREATE INDEX ON \"{s}\".entries (tag);
             CREATE INDEX ON \"{s}\".entries (camera, time_start);
             CREATE INDEX {HNSW_INDEX} ON \"{s}\".entries USING hnsw (embedding {opclass});"
        ))
        .map_err(fail)?;
        for (key, value) in [
            ("format", FORMAT.to_string()),
            ("version", FORMAT_VERSION.to_string()),
            ("dim", dim.to_string()),
            ("metric", metric.name().to_string()),
            ("next_id", "0".to_string()),
        ] {
            tx.execute(
                &format!("INSERT INTO \"{s}\".meta VALUES ($1, $2)"),
                &[&key, &value],
            )
            .map_err(fail)?;
        }
        tx.commit().map_err(fail)
    })?;
    Ok(Box::new(db))
}

/// Opens the gallery in the database at `url`; returns it with its dimension and metric.
pub(crate) fn open(url: &str) -> Result<(Box<dyn Store>, usize, Metric)> {
    let mut db = Database::connect(url, 0, Metric::Cosine)?;
    let s = db.schema.clone();
    let meta = db.with(|client, fail| {
        let rows = client
            .query(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname IN ('meta', 'entries')",
                &[&s],
            )
            .map_err(fail)?;
        if rows.len() != 2 {
            return Err(Error::NotFound(format!(
                "no gallery `{s}` in this database"
            )));
        }
        let rows = client
            .query(&format!("SELECT key, value FROM \"{s}\".meta"), &[])
            .map_err(fail)?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect::<Vec<_>>())
    })?;
    let get = |key: &str| {
        meta.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| db.error(format!("`{s}` is not a reid gallery (no {key})")))
    };
    if get("format")? != FORMAT {
        return Err(db.error(format!("`{s}` is not a reid gallery")));
    }
    let version = get("version")?;
    if version == "1" || version == "2" {
        db.upgrade()?;
    } else if version != FORMAT_VERSION {
        return Err(db.error(format!("gallery format version {version} is not supported")));
    }
    let dim = get("dim")?
        .parse::<usize>()
        .ok()
        .filter(|&d| (1..=MAX_DATABASE_DIM).contains(&d))
        .ok_or_else(|| db.error("corrupt dimension".into()))?;
    let metric: Metric = get("metric")?.parse()?;
    db.dim = dim;
    db.metric = metric;
    Ok((Box::new(db), dim, metric))
}

impl Database {
    /// Parses `url` (taking out reid's own parameters) and connects.
    fn connect(url: &str, dim: usize, metric: Metric) -> Result<Database> {
        let location = Location::Database(url.to_string());
        let Parameters {
            libpq_url,
            schema,
            ef_search,
        } = split_parameters(url).map_err(|reason| location.error(reason))?;
        let mut config = postgres::Config::from_str(&libpq_url)
            .map_err(|e| location.error(format!("not a valid PostgreSQL URL ({e})")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // Named in the server's session list (pg_stat_activity) unless the URL names it.
        if config.get_application_name().is_none() {
            config.application_name("reid");
        }
        let db = Database {
            location,
            config,
            schema,
            ef_search,
            dim,
            metric,
            client: Mutex::new(None),
        };
        db.with(|_, _| Ok(()))?;
        Ok(db)
    }

    /// Brings a gallery of version 1 or 2 to the current one in one transaction: version 2's
    /// time columns and indexes, version 3's crop (the version row's lock makes a second
    /// process wait, then skip).
    fn upgrade(&self) -> Result<()> {
        let (meta, entries) = (self.table("meta"), self.table("entries"));
        self.with(|client, fail| {
            let mut tx = client.transaction().map_err(fail)?;
            let version: String = tx
                .query_one(
                    &format!("SELECT value FROM {meta} WHERE key = 'version' FOR UPDATE"),
                    &[],
                )
                .map_err(fail)?
                .get(0);
            if version == "1" {
                tx.batch_execute(&format!(
                    "ALTER TABLE {entries} ADD COLUMN time_start double precision,
                         ADD COLUMN time_end double precision;
                     CREATE INDEX ON {entries} (tag);
                     CREATE INDEX ON {entries} (camera, time_start);"
                ))
                .map_err(fail)?;
            }
            if version == "1" || version == "2" {
                tx.batch_execute(&format!(
                    "ALTER TABLE {entries} ADD COLUMN crop bytea;
                     ALTER TABLE {entries} ALTER COLUMN crop SET STORAGE EXTERNAL;
                     UPDATE {meta} SET value = '{FORMAT_VERSION}' WHERE key = 'version';"
                ))
                .map_err(fail)?;
            }
            tx.commit().map_err(fail)
        })
    }

    fn error(&self, reason: String) -> Error {
        self.location.error(reason)
    }

    /// Runs `op` on the connection (connecting first if there is none). `op` turns the
    /// driver's errors into ours with the `fail` it is given. A connection found closed
    /// afterwards, or that failed as a lost one does, is dropped, so the next call connects
    /// again.
    fn with<T>(
        &self,
        op: impl FnOnce(&mut Client, &dyn Fn(postgres::Error) -> Error) -> Result<T>,
    ) -> Result<T> {
        let mut slot = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            let client = self
                .config
                .connect(NoTls)
                .map_err(|e| self.error(format!("cannot connect ({})", message(&e))))?;
            *slot = Some(client);
        }
        let client = slot.as_mut().expect("connected above");
        // The client may notice a connection the server cut only later than the error that
        // reports it: an error the server did not send, or one of the connection and
        // shutdown classes (08, 57), drops it as well.
        let lost = std::cell::Cell::new(false);
        let fail = |e: postgres::Error| {
            let code = e.code().map(|c| c.code());
            if code.is_none_or(|c| c.starts_with("08") || c.starts_with("57")) {
                lost.set(true);
            }
            self.error(message(&e))
        };
        let result = op(client, &fail);
        if lost.get() || client.is_closed() {
            *slot = None;
        }
        result
    }

    /// Runs one query in a transaction of its own under `settings` (`SET LOCAL …`).
    fn query_with(
        &self,
        settings: &str,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>> {
        self.with(|client, fail| {
            let mut tx = client.transaction().map_err(fail)?;
            tx.batch_execute(settings).map_err(fail)?;
            let rows = tx.query(sql, params).map_err(fail)?;
            tx.commit().map_err(fail)?;
            Ok(rows)
        })
    }

    fn table(&self, name: &str) -> String {
        format!("\"{}\".{name}", self.schema)
    }

    fn entry(&self, row: &postgres::Row) -> Result<Entry> {
        let id: i64 = row.get(0);
        let camera: i32 = row.get(2);
        let vector = row.get::<_, Vector>(4).to_vec();
        if vector.len() != self.dim || vector.iter().any(|v| !v.is_finite()) {
            return Err(self.error(format!(
                "entry {id}: the stored embedding is not {} finite values",
                self.dim
            )));
        }
        let time = TimeSpan::from_columns(row.get(5), row.get(6))
            .map_err(|e| self.error(format!("entry {id}: {e}")))?;
        Ok(Entry {
            id: id as u64,
            identity: row.get::<_, i64>(1) as u64,
            camera,
            tag: row.get(3),
            time,
            vector,
        })
    }

    /// Approximate candidates of one query: the `max(k, ef)` nearest rows the HNSW index
    /// finds (pgvector's iterative scan goes on past filtered-out rows).
    fn approximate_candidates(
        &self,
        query: &[f32],
        options: &SearchOptions,
        ef: u32,
    ) -> Result<Vec<Entry>> {
        let (op, _) = operator(self.metric);
        let entries = self.table("entries");
        let sql = format!(
            "SELECT {COLUMNS} FROM {entries} WHERE {FILTERS} ORDER BY embedding {op} $1 LIMIT $5"
        );
        let (window_start, window_end) = window(options);
        let vector = Vector::from(query.to_vec());
        let limit = options.k.max(ef as usize).min(i64::MAX as usize) as i64;
        // The caller asked for the index: the search mode must not hang on the planner's
        // estimate for a small table.
        let rows = self.query_with(
            &format!(
                "SET LOCAL hnsw.ef_search = {ef}; SET LOCAL hnsw.iterative_scan = relaxed_order; \
                 SET LOCAL enable_seqscan = off"
            ),
            &sql,
            &[
                &vector,
                &options.exclude_camera,
                &window_start,
                &window_end,
                &limit,
            ],
        )?;
        rows.iter().map(|r| self.entry(r)).collect()
    }

    /// The candidates of one query: every row that could be among its exact top `k` (see
    /// the module's documentation). Usually one scan (`nearest_rows`), which the server runs
    /// in parallel; when the rows it returns do not settle the bound, one statement that
    /// computes the bound on the server (`rows_within_bound`).
    fn candidates(&self, query: &[f32], options: &SearchOptions) -> Result<Vec<Entry>> {
        let bounds = Bounds::new(self.metric, self.dim, options);
        // Enough rows for the k-th best, its near-ties, and (grouping) several images per
        // identity; more are fetched only when these do not settle it.
        let limit = if options.group_by_identity {
            options.k.saturating_mul(4)
        } else {
            options.k
        }
        .saturating_add(32)
        .min(i64::MAX as usize);
        let rows = self.nearest_rows(query, options, &bounds, limit)?;
        if rows.len() < limit {
            // Every row that may pass is here.
            return rows.into_iter().map(|(e, _)| Ok(e)).collect();
        }
        let kth = kth_best(&rows, options, &bounds);
        if let Some(kth) = kth {
            let bound = kth * bounds.times + bounds.plus;
            if rows.last().is_some_and(|(_, d)| *d > bound) {
                return Ok(rows
                    .into_iter()
                    .filter(|(_, d)| *d <= bound)
                    .map(|(e, _)| e)
                    .collect());
            }
        }
        self.rows_within_bound(query, options, &bounds)
    }

    /// The `limit` eligible rows nearest to `query` by pgvector's distance, nearest first,
    /// with that distance; found by a full scan (the HNSW index would be approximate).
    fn nearest_rows(
        &self,
        query: &[f32],
        options: &SearchOptions,
        bounds: &Bounds,
        limit: usize,
    ) -> Result<Vec<(Entry, f64)>> {
        let (op, _) = operator(self.metric);
        let sql = format!(
            "SELECT {COLUMNS}, d FROM (
                 SELECT {COLUMNS}, embedding {op} $1 AS d FROM {} WHERE {FILTERS}
             ) AS scored WHERE d <= $5 ORDER BY d, id LIMIT $6",
            self.table("entries")
        );
        let vector = Vector::from(query.to_vec());
        let (window_start, window_end) = window(options);
        let rows = self.query_with(
            "SET LOCAL enable_indexscan = off",
            &sql,
            &[
                &vector,
                &options.exclude_camera,
                &window_start,
                &window_end,
                &bounds.maybe,
                &(limit as i64),
            ],
        )?;
        rows.iter()
            .map(|r| Ok((self.entry(r)?, r.get::<_, f64>(7))))
            .collect()
    }

    /// Every row within the bound of the k-th best, the bound computed on the server.
    fn rows_within_bound(
        &self,
        query: &[f32],
        options: &SearchOptions,
        bounds: &Bounds,
    ) -> Result<Vec<Entry>> {
        let (op, _) = operator(self.metric);
        let best = if options.group_by_identity {
            "SELECT d FROM (SELECT min(d) AS d FROM scored WHERE d <= $6 GROUP BY identity) \
             AS best ORDER BY d LIMIT 1 OFFSET $7"
        } else {
            "SELECT d FROM scored WHERE d <= $6 ORDER BY d LIMIT 1 OFFSET $7"
        };
        let entries = self.table("entries");
        // The rows are fetched by primary key (`= ANY`): a join let the planner walk the
        // whole key index to meet a handful of rows.
        let sql = format!(
            "WITH scored AS MATERIALIZED (
                 SELECT id, identity, d FROM (
                     SELECT id, identity, embedding {op} $1 AS d FROM {entries} WHERE {FILTERS}
                 ) AS all_rows
                 WHERE d <= $5
             ),
             bound AS ({best})
             SELECT {COLUMNS} FROM {entries}
             WHERE id = ANY(ARRAY(
                 SELECT id FROM scored
                 WHERE d <= COALESCE((SELECT d FROM bound) * $8 + $9, 'Infinity'::float8)
             ))"
        );
        let vector = Vector::from(query.to_vec());
        let (window_start, window_end) = window(options);
        let offset = options.k as i64 - 1;
        let rows = self.with(|client, fail| {
            client
                .query(
                    &sql,
                    &[
                        &vector,
                        &options.exclude_camera,
                        &window_start,
                        &window_end,
                        &bounds.maybe,
                        &bounds.sure,
                        &offset,
                        &bounds.times,
                        &bounds.plus,
                    ],
                )
                .map_err(fail)
        })?;
        rows.iter().map(|r| self.entry(r)).collect()
    }
}

/// How far pgvector's distances may be from the exact ones, in its distance's terms: rows
/// that may pass `min_score` (`maybe`), rows that surely pass it (`sure`), and every row that
/// may beat a k-th best at `d` lies within `d * times + plus`.
struct Bounds {
    maybe: f64,
    sure: f64,
    times: f64,
    plus: f64,
}

impl Bounds {
    fn new(metric: Metric, dim: usize, options: &SearchOptions) -> Bounds {
        // pgvector sums `dim` f32 products: within γ of exact (absolutely for unit vectors,
        // relatively for a sum of squares), 4× for safety as the embedded search does.
        let gamma = 4.0 * (dim as f64 + 2.0) * f32::EPSILON as f64;
        let (maybe, sure, times, plus) = match metric {
            Metric::Cosine => {
                let limit = options.min_score.map(|m| 1.0 - m as f64);
                (
                    limit.map(|l| l + gamma),
                    limit.map(|l| l - gamma),
                    1.0,
                    2.0 * gamma,
                )
            }
            // pgvector's `<->` is the distance, the root of the gallery's squared distance.
            Metric::Euclidean => {
                let root = |sq: f64| if sq < 0.0 { -1.0 } else { sq.sqrt() };
                let limit = options.min_score.map(|m| m as f64);
                (
                    limit.map(|l| root(l * (1.0 + gamma))),
                    limit.map(|l| root(l * (1.0 - gamma))),
                    ((1.0 + gamma) / (1.0 - gamma)).sqrt(),
                    0.0,
                )
            }
        };
        Bounds {
            maybe: maybe.unwrap_or(f64::INFINITY),
            sure: sure.unwrap_or(f64::INFINITY),
            times,
            plus,
        }
    }
}

/// The k-th best distance among `rows` (sorted nearest first) that surely pass the threshold
/// — per identity when grouping — or `None` when these rows hold fewer than `k` of them.
fn kth_best(rows: &[(Entry, f64)], options: &SearchOptions, bounds: &Bounds) -> Option<f64> {
    let mut seen = std::collections::HashSet::new();
    rows.iter()
        .take_while(|(_, d)| *d <= bounds.sure)
        .filter(|(e, _)| !options.group_by_identity || seen.insert(e.identity))
        .nth(options.k - 1)
        .map(|(_, d)| *d)
}

impl Store for Database {
    fn is_durable(&self) -> bool {
        true
    }

    fn len(&self) -> Result<usize> {
        let sql = format!("SELECT count(*) FROM {}", self.table("entries"));
        let count: i64 = self.with(|c, fail| Ok(c.query_one(&sql, &[]).map_err(fail)?.get(0)))?;
        Ok(count as usize)
    }

    fn add(
        &self,
        mut entries: Vec<Entry>,
        crops: Vec<Option<Vec<u8>>>,
        requested: &[Option<u64>],
    ) -> Result<Vec<u64>> {
        let (meta, table) = (self.table("meta"), self.table("entries"));
        self.with(|client, fail| {
            let mut tx = client.transaction().map_err(fail)?;
            // Writers queue here: ids are assigned by one writer at a time.
            let stored: String = tx
                .query_one(
                    &format!("SELECT value FROM {meta} WHERE key = 'next_id' FOR UPDATE"),
                    &[],
                )
                .map_err(fail)?
                .get(0);
            let highest: i64 = tx
                .query_one(
                    &format!("SELECT coalesce(max(id) + 1, 0) FROM {table}"),
                    &[],
                )
                .map_err(fail)?
                .get(0);
            let next = stored
                .parse::<u64>()
                .map_err(|_| self.error("corrupt next_id".into()))?
                .max(highest as u64);
            let wanted: Vec<i64> = requested.iter().flatten().map(|&id| id as i64).collect();
            let taken: std::collections::HashSet<u64> = tx
                .query(
                    &format!("SELECT id FROM {table} WHERE id = ANY($1)"),
                    &[&wanted],
                )
                .map_err(fail)?
                .iter()
                .map(|r| r.get::<_, i64>(0) as u64)
                .collect();
            let (ids, next) = assign_ids(next, requested, |id| taken.contains(&id))?;
            // A load that at least doubles a large gallery rebuilds the HNSW index once
            // instead of updating it row by row (5× faster on 100k 512-d rows here); the
            // dropped index stays visible to other sessions until this transaction commits.
            let rebuild = entries.len() >= BULK_ROWS && {
                let rows: i64 = tx
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                    .map_err(fail)?
                    .get(0);
                entries.len() as i64 >= rows
            };
            let index = format!("\"{}\".{HNSW_INDEX}", self.schema);
            if rebuild {
                tx.batch_execute(&format!("DROP INDEX {index}"))
                    .map_err(fail)?;
            }
            // The rows go in as one binary COPY; the embedding's type (pgvector's, with an OID
            // of its own in each database) is read from a prepared statement.
            let columns = format!("{COLUMNS}, crop");
            let types = tx
                .prepare(&format!(
                    "INSERT INTO {table} ({columns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ))
                .map_err(fail)?
                .params()
                .to_vec();
            let sink = tx
                .copy_in(&format!("COPY {table} ({columns}) FROM STDIN BINARY"))
                .map_err(fail)?;
            let mut writer = BinaryCopyInWriter::new(sink, &types);
            for ((e, &id), crop) in entries.iter_mut().zip(&ids).zip(&crops) {
                e.id = id;
                let vector = Vector::from(std::mem::take(&mut e.vector));
                writer
                    .write(&[
                        &(id as i64),
                        &(e.identity as i64),
                        &e.camera,
                        &e.tag,
                        &vector,
                        &e.time.map(|t| t.start),
                        &e.time.map(|t| t.end),
                        crop,
                    ])
                    .map_err(fail)?;
            }
            writer.finish().map_err(|err| match err.code() {
                Some(&SqlState::UNIQUE_VIOLATION) => {
                    Error::InvalidInput("an id of the batch is already in the gallery".into())
                }
                _ => fail(err),
            })?;
            if rebuild {
                tx.batch_execute(&build_index(self.metric, &table))
                    .map_err(fail)?;
            }
            tx.execute(
                &format!("UPDATE {meta} SET value = $1 WHERE key = 'next_id'"),
                &[&next.to_string()],
            )
            .map_err(fail)?;
            tx.commit().map_err(fail)?;
            Ok(ids)
        })
    }

    fn update(&self, entry: Entry) -> Result<()> {
        let sql = format!(
            "UPDATE {} SET identity = $2, camera = $3, tag = $4, embedding = $5, \
             time_start = $6, time_end = $7 WHERE id = $1",
            self.table("entries")
        );
        let vector = Vector::from(entry.vector);
        let changed = self.with(|c, fail| {
            c.execute(
                &sql,
                &[
                    &(entry.id as i64),
                    &(entry.identity as i64),
                    &entry.camera,
                    &entry.tag,
                    &vector,
                    &entry.time.map(|t| t.start),
                    &entry.time.map(|t| t.end),
                ],
            )
            .map_err(fail)
        })?;
        if changed == 0 {
            return Err(not_found(entry.id));
        }
        Ok(())
    }

    fn remove(&self, id: u64) -> Result<()> {
        let sql = format!("DELETE FROM {} WHERE id = $1", self.table("entries"));
        let removed = self.with(|c, fail| c.execute(&sql, &[&(id as i64)]).map_err(fail))?;
        if removed == 0 {
            return Err(not_found(id));
        }
        Ok(())
    }

    fn remove_identity(&self, identity: u64) -> Result<usize> {
        let sql = format!("DELETE FROM {} WHERE identity = $1", self.table("entries"));
        let removed = self.with(|c, fail| c.execute(&sql, &[&(identity as i64)]).map_err(fail))?;
        Ok(removed as usize)
    }

    fn get(&self, id: u64) -> Result<Option<Entry>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM {} WHERE id = $1",
            self.table("entries")
        );
        let row = self.with(|c, fail| c.query_opt(&sql, &[&(id as i64)]).map_err(fail))?;
        row.map(|r| self.entry(&r)).transpose()
    }

    fn ids(&self) -> Result<Vec<u64>> {
        let sql = format!("SELECT id FROM {} ORDER BY id", self.table("entries"));
        let rows = self.with(|c, fail| c.query(&sql, &[]).map_err(fail))?;
        Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
    }

    fn entries(&self) -> Result<Vec<Entry>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM {} ORDER BY id",
            self.table("entries")
        );
        let rows = self.with(|c, fail| c.query(&sql, &[]).map_err(fail))?;
        rows.iter().map(|r| self.entry(r)).collect()
    }

    fn select(&self, selection: &Selection) -> Result<Vec<Entry>> {
        let table = self.table("entries");
        let rows = self.with(|c, fail| {
            match selection {
                Selection::Identities(identities) => c.query(
                    &format!("SELECT {COLUMNS} FROM {table} WHERE identity = ANY($1) ORDER BY id"),
                    &[&identities.iter().map(|&i| i as i64).collect::<Vec<i64>>()],
                ),
                Selection::Tag(tag) => c.query(
                    &format!("SELECT {COLUMNS} FROM {table} WHERE tag = $1 ORDER BY id"),
                    &[tag],
                ),
            }
            .map_err(fail)
        })?;
        rows.iter().map(|r| self.entry(r)).collect()
    }

    fn relabel(&self, ids: &[u64], identity: u64) -> Result<()> {
        let table = self.table("entries");
        let wanted: Vec<i64> = ids.iter().map(|&id| id as i64).collect();
        self.with(|client, fail| {
            let mut tx = client.transaction().map_err(fail)?;
            let changed: std::collections::HashSet<u64> = tx
                .query(
                    &format!("UPDATE {table} SET identity = $2 WHERE id = ANY($1) RETURNING id"),
                    &[&wanted, &(identity as i64)],
                )
                .map_err(fail)?
                .iter()
                .map(|r| r.get::<_, i64>(0) as u64)
                .collect();
            // Dropping the transaction rolls it back.
            if let Some(&missing) = ids.iter().find(|id| !changed.contains(id)) {
                return Err(not_found(missing));
            }
            tx.commit().map_err(fail)
        })
    }

    fn crop(&self, id: u64) -> Result<Option<Vec<u8>>> {
        let sql = format!("SELECT crop FROM {} WHERE id = $1", self.table("entries"));
        let row = self.with(|c, fail| c.query_opt(&sql, &[&(id as i64)]).map_err(fail))?;
        Ok(row.ok_or_else(|| not_found(id))?.get(0))
    }

    fn set_crop(&self, id: u64, crop: Vec<u8>) -> Result<()> {
        let sql = format!(
            "UPDATE {} SET crop = $2 WHERE id = $1",
            self.table("entries")
        );
        let changed = self.with(|c, fail| c.execute(&sql, &[&(id as i64), &crop]).map_err(fail))?;
        if changed == 0 {
            return Err(not_found(id));
        }
        Ok(())
    }

    fn crops(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Option<Vec<u8>>)>> {
        let sql = format!(
            "SELECT id, crop FROM {} WHERE id > $1 ORDER BY id LIMIT $2",
            self.table("entries")
        );
        let first = after.map_or(-1, |id| id as i64);
        let rows = self.with(|c, fail| c.query(&sql, &[&first, &(limit as i64)]).map_err(fail))?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1)))
            .collect())
    }

    fn without_crop(&self) -> Result<Vec<u64>> {
        let sql = format!(
            "SELECT id FROM {} WHERE crop IS NULL ORDER BY id",
            self.table("entries")
        );
        let rows = self.with(|c, fail| c.query(&sql, &[]).map_err(fail))?;
        Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
    }

    fn replace_vectors(&self, vectors: Vec<(u64, Vec<f32>)>, settings: &[Setting]) -> Result<()> {
        let (meta, table) = (self.table("meta"), self.table("entries"));
        let dim = self.dim;
        self.with(|client, fail| {
            let mut tx = client.transaction().map_err(fail)?;
            // Adding writers queue on this row (see `add`): none adds while the vectors change.
            tx.query_one(
                &format!("SELECT value FROM {meta} WHERE key = 'next_id' FOR UPDATE"),
                &[],
            )
            .map_err(fail)?;
            let rows: i64 = tx
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .map_err(fail)?
                .get(0);
            if rows != vectors.len() as i64 {
                return Err(changed_meanwhile());
            }
            // Every row changes: a large gallery's HNSW index is built again once, as a bulk
            // load's is, rather than updated row by row.
            let rebuild = vectors.len() >= BULK_ROWS;
            if rebuild {
                tx.batch_execute(&format!("DROP INDEX \"{}\".{HNSW_INDEX}", self.schema))
                    .map_err(fail)?;
            }
            tx.batch_execute(&format!(
                "CREATE TEMPORARY TABLE reid_new_vectors (id bigint PRIMARY KEY, \
                 embedding vector({dim}) NOT NULL) ON COMMIT DROP"
            ))
            .map_err(fail)?;
            let types = tx
                .prepare("INSERT INTO reid_new_vectors (id, embedding) VALUES ($1, $2)")
                .map_err(fail)?
                .params()
                .to_vec();
            let sink = tx
                .copy_in("COPY reid_new_vectors (id, embedding) FROM STDIN BINARY")
                .map_err(fail)?;
            let mut writer = BinaryCopyInWriter::new(sink, &types);
            let count = vectors.len();
            for (id, vector) in vectors {
                writer
                    .write(&[&(id as i64), &Vector::from(vector)])
                    .map_err(fail)?;
            }
            writer.finish().map_err(fail)?;
            let changed = tx
                .execute(
                    &format!(
                        "UPDATE {table} e SET embedding = n.embedding FROM reid_new_vectors n \
                         WHERE e.id = n.id"
                    ),
                    &[],
                )
                .map_err(fail)?;
            if changed != count as u64 {
                return Err(changed_meanwhile());
            }
            if rebuild {
                tx.batch_execute(&build_index(self.metric, &table))
                    .map_err(fail)?;
            }
            for (key, value) in settings {
                let key = format!("{SETTING_PREFIX}{key}");
                match value {
                    Some(value) => tx.execute(
                        &format!(
                            "INSERT INTO {meta} VALUES ($1, $2) \
                             ON CONFLICT (key) DO UPDATE SET value = $2"
                        ),
                        &[&key, value],
                    ),
                    None => tx.execute(&format!("DELETE FROM {meta} WHERE key = $1"), &[&key]),
                }
                .map_err(fail)?;
            }
            tx.commit().map_err(fail)
        })
    }

    fn increment_meta(&self, key: &str) -> Result<u64> {
        let sql = format!(
            "INSERT INTO {meta} AS m VALUES ($1, '1') ON CONFLICT (key) \
             DO UPDATE SET value = (m.value::bigint + 1)::text RETURNING value",
            meta = self.table("meta")
        );
        let stored = format!("{SETTING_PREFIX}{key}");
        let value: String =
            self.with(|c, fail| Ok(c.query_one(&sql, &[&stored]).map_err(fail)?.get(0)))?;
        parse_counter(key, Some(&value))
    }

    fn meta(&self, key: &str) -> Result<Option<String>> {
        let sql = format!("SELECT value FROM {} WHERE key = $1", self.table("meta"));
        let key = format!("{SETTING_PREFIX}{key}");
        let row = self.with(|c, fail| c.query_opt(&sql, &[&key]).map_err(fail))?;
        Ok(row.map(|r| r.get(0)))
    }

    fn all_meta(&self) -> Result<Vec<(String, String)>> {
        let sql = format!(
            "SELECT key, value FROM {} WHERE key LIKE '{SETTING_PREFIX}%' ORDER BY key",
            self.table("meta")
        );
        let rows = self.with(|c, fail| c.query(&sql, &[]).map_err(fail))?;
        Ok(rows
            .iter()
            .map(|r| {
                let key: String = r.get(0);
                (key[SETTING_PREFIX.len()..].to_string(), r.get(1))
            })
            .collect())
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let sql = format!(
            "INSERT INTO {} VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2",
            self.table("meta")
        );
        let key = format!("{SETTING_PREFIX}{key}");
        self.with(|c, fail| c.execute(&sql, &[&key, &value]).map_err(fail))?;
        Ok(())
    }

    fn search(&self, queries: &[f32], options: &SearchOptions) -> Result<Vec<Vec<Match>>> {
        queries
            .chunks(self.dim)
            .map(|query| {
                let rows = match self.ef_search {
                    Some(ef) => self.approximate_candidates(query, options, ef)?,
                    None => self.candidates(query, options)?,
                };
                let (mut ids, mut identities, mut cameras) = (vec![], vec![], vec![]);
                let mut times = Vec::with_capacity(rows.len());
                let mut vectors = Vec::with_capacity(rows.len() * self.dim);
                for e in rows {
                    ids.push(e.id);
                    identities.push(e.identity);
                    cameras.push(e.camera);
                    times.push(e.time);
                    vectors.extend(e.vector);
                }
                let cols = Columns {
                    dim: self.dim,
                    metric: self.metric,
                    vectors: &vectors,
                    ids: &ids,
                    identities: &identities,
                    cameras: &cameras,
                    times: &times,
                };
                Ok(search::search(&cols, query, options).remove(0))
            })
            .collect()
    }
}

/// The options' time window as the filters' parameters $3 and $4.
fn window(options: &SearchOptions) -> (Option<f64>, Option<f64>) {
    (
        options.time_window.map(|w| w.start),
        options.time_window.map(|w| w.end),
    )
}

/// The statements building the HNSW index of `table` again in one pass (after a bulk load).
///
/// pgvector builds far faster while the graph fits in `maintenance_work_mem`, whose stock
/// 64 MB holds about 25,000 rows of 512-d: the build gets at least 1 GB for its transaction,
/// and more only where the server's administrator configured more (a 1M × 512-d graph needs
/// about 4 GB), since only they know what the server's memory can spare.
fn build_index(metric: Metric, table: &str) -> String {
    let (_, opclass) = operator(metric);
    format!(
        "SELECT set_config('maintenance_work_mem', '1GB', true)
           WHERE pg_size_bytes(current_setting('maintenance_work_mem')) < pg_size_bytes('1GB');
         CREATE INDEX {HNSW_INDEX} ON {table} USING hnsw (embedding {opclass})"
    )
}

/// pgvector's distance operator and index operator class for a metric.
fn operator(metric: Metric) -> (&'static str, &'static str) {
    match metric {
        Metric::Cosine => ("<=>", "vector_cosine_ops"),
        Metric::Euclidean => ("<->", "vector_l2_ops"),
    }
}

/// The driver's error with the server's own message when there is one.
fn message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// reid's own parameters of a database URL.
#[derive(Debug, Clone, PartialEq)]
struct Parameters {
    /// The URL for the driver, without reid's parameters (libpq refuses unknown ones).
    libpq_url: String,
    /// The gallery's schema.
    schema: String,
    /// `ef_search=N`: approximate search through the HNSW index, `N` candidates per query.
    ef_search: Option<u32>,
}

/// Takes reid's parameters (`gallery=NAME`, `ef_search=N`) out of a URL's query.
fn split_parameters(url: &str) -> std::result::Result<Parameters, String> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (url, ""),
    };
    let mut schema = DEFAULT_GALLERY.to_string();
    let mut ef_search = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        if let Some(name) = pair.strip_prefix("gallery=") {
            schema = name.to_string();
        } else if let Some(ef) = pair.strip_prefix("ef_search=") {
            // pgvector's own range for hnsw.ef_search.
            let ef = ef
                .parse::<u32>()
                .ok()
                .filter(|ef| (1..=1000).contains(ef))
                .ok_or_else(|| format!("ef_search `{ef}`: a whole number from 1 to 1000"))?;
            ef_search = Some(ef);
        } else {
            kept.push(pair);
        }
    }
    let valid = schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(format!(
            "gallery name `{schema}`: lower-case letters, digits and _, at most 63, not \
             starting with a digit"
        ));
    }
    let libpq_url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(Parameters {
        libpq_url,
        schema,
        ef_search,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reids_parameters_leave_the_url_to_libpq() {
        let split = |u: &str| split_parameters(u).unwrap();
        assert_eq!(
            split("postgres://h/db"),
            Parameters {
                libpq_url: "postgres://h/db".into(),
                schema: "reid_gallery".into(),
                ef_search: None
            }
        );
        assert_eq!(
            split("postgres://h/db?sslmode=disable&gallery=site_2&ef_search=40&connect_timeout=3"),
            Parameters {
                libpq_url: "postgres://h/db?sslmode=disable&connect_timeout=3".into(),
                schema: "site_2".into(),
                ef_search: Some(40)
            }
        );
        for bad in [
            "gallery=Site",
            "gallery=2x",
            "gallery=a-b",
            "gallery=a\";drop",
            "gallery=",
            "ef_search=0",
            "ef_search=1001",
            "ef_search=x",
        ] {
            assert!(
                split_parameters(&format!("postgres://h/db?{bad}")).is_err(),
                "{bad}"
            );
        }
    }
}
