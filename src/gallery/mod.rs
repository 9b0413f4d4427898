//! A gallery of embeddings with identity and camera labels, searched exactly by cosine
//! similarity or squared euclidean distance (as torchreid's distance matrix).
//!
//! Every check of what goes in (dimension, finite values, labels, tags, search options) is
//! made here, once; the entries live in a [`Store`]:
//! - embedded (`embedded`): in memory, and for a gallery opened on a file
//!   ([`Gallery::create`], [`Gallery::open`]) committed to SQLite before being applied in
//!   memory; searches run on the in-memory copy, many threads at once while writers take turns;
//! - database (`database`, feature `postgres`): PostgreSQL with pgvector, shared by processes
//!   and machines; every search returns what the embedded store would (same order, same
//!   exact scores).

pub use crate::calibration;
mod crops;
#[cfg(feature = "postgres")]
mod database;
#[cfg(not(feature = "postgres"))]
#[path = "no_database.rs"]
mod database;
mod embedded;
mod location;
mod persist;
mod search;

use std::collections::HashSet;
use std::path::Path;

use calibration::{Calibration, MAX_CALIBRATION_ROWS};
pub use crops::{CROPS_PER_CALL, MAX_CROP_BYTES};
use embedded::Embedded;
pub use location::Location;
use persist::Db;

use crate::distance::Metric;
use crate::error::{Error, Result};
use crate::formats::npy::NpyArray;

/// One stored embedding and its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Unique id within the gallery.
    pub id: u64,
    /// The person / object the embedding belongs to (many entries per identity).
    pub identity: u64,
    /// Camera that saw it.
    pub camera: i32,
    /// Optional short label (at most [`MAX_TAG_LEN`] bytes).
    pub tag: Option<String>,
    /// When it was seen, if known.
    pub time: Option<TimeSpan>,
    /// The embedding (normalized to unit length in a cosine gallery).
    pub vector: Vec<f32>,
}

/// What to add: an embedding with its labels, and an id or `None` to have one assigned.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    /// Requested id; `None` assigns one larger than every id so far.
    pub id: Option<u64>,
    /// Identity label.
    pub identity: u64,
    /// Camera id, 0 or more.
    pub camera: i32,
    /// Optional tag.
    pub tag: Option<String>,
    /// When it was seen, if known.
    pub time: Option<TimeSpan>,
    /// The embedding, `dim` values.
    pub vector: Vec<f32>,
    /// The image the embedding was computed from, encoded (JPEG, PNG, BMP or WebP), for a
    /// gallery that keeps crops ([`Gallery::keep_crops`]); `None` for none.
    pub crop: Option<Vec<u8>>,
}

impl NewEntry {
    /// An entry of `identity` seen by `camera`, with an assigned id, no tag and no time.
    pub fn new(identity: u64, camera: i32, vector: Vec<f32>) -> Self {
        Self {
            id: None,
            identity,
            camera,
            tag: None,
            time: None,
            vector,
            crop: None,
        }
    }

    /// The same entry with the id `id`.
    pub fn with_id(self, id: u64) -> Self {
        Self {
            id: Some(id),
            ..self
        }
    }

    /// The same entry tagged `tag`.
    pub fn with_tag(self, tag: impl Into<String>) -> Self {
        Self {
            tag: Some(tag.into()),
            ..self
        }
    }

    /// The same entry seen during `time`.
    pub fn with_time(self, time: TimeSpan) -> Self {
        Self {
            time: Some(time),
            ..self
        }
    }

    /// The same entry with its crop, an encoded image ([`NewEntry::crop`]).
    pub fn with_crop(self, crop: Vec<u8>) -> Self {
        Self {
            crop: Some(crop),
            ..self
        }
    }
}

/// When an entry was seen: from `start` to `end` (equal for one frame), in seconds on a clock
/// of the caller's choosing (Unix time, a video's timeline), the same for every entry of a
/// gallery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeSpan {
    /// First sighting.
    pub start: f64,
    /// Last sighting, at or after `start`.
    pub end: f64,
}

impl TimeSpan {
    /// A span from `start` to `end`: finite, `start <= end`.
    pub fn new(start: f64, end: f64) -> Result<Self> {
        let span = Self { start, end };
        span.check()?;
        Ok(span)
    }

    /// One instant.
    pub fn at(t: f64) -> Result<Self> {
        Self::new(t, t)
    }

    /// Checks that both ends are finite and in order.
    pub fn check(&self) -> Result<()> {
        if !(self.start.is_finite() && self.end.is_finite() && self.start <= self.end) {
            return Err(Error::InvalidInput(format!(
                "time span {}..{} is not two finite times in order",
                self.start, self.end
            )));
        }
        Ok(())
    }

    /// The span stored in a store's two nullable columns: both ends or neither.
    pub(crate) fn from_columns(start: Option<f64>, end: Option<f64>) -> Result<Option<Self>> {
        match (start, end) {
            (None, None) => Ok(None),
            (Some(start), Some(end)) => Self::new(start, end).map(Some),
            _ => Err(Error::InvalidInput("a time span with one end only".into())),
        }
    }

    /// Whether the two spans share an instant.
    pub fn overlaps(&self, other: &TimeSpan) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    /// Seconds between the two spans (0 when they overlap).
    pub fn gap(&self, other: &TimeSpan) -> f64 {
        (other.start - self.end)
            .max(self.start - other.end)
            .max(0.0)
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// Entry id.
    pub id: u64,
    /// Its identity.
    pub identity: u64,
    /// Its camera.
    pub camera: i32,
    /// Cosine similarity (higher is closer) or squared euclidean distance (lower is closer),
    /// exact to f32 rounding: the same whether the query was searched alone or in a batch.
    pub score: f32,
}

/// Options of [`Gallery::search`].
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOptions {
    /// Number of results per query (at least 1; fewer when the gallery is smaller).
    pub k: usize,
    /// Minimum similarity (cosine) or maximum squared distance (euclidean) of a result.
    pub min_score: Option<f32>,
    /// Return only the best entry of each identity.
    pub group_by_identity: bool,
    /// Skip entries seen by this camera (cross-camera search).
    pub exclude_camera: Option<i32>,
    /// Only entries seen during this window (their [`TimeSpan`] overlaps it); entries without
    /// a time are left out.
    pub time_window: Option<TimeSpan>,
    /// Use the gallery's calibrated threshold ([`Gallery::calibrate`]) as `min_score` (which
    /// must then be `None`).
    pub calibrated: bool,
}

impl Default for SearchOptions {
    /// The 10 best matches, no filters.
    fn default() -> Self {
        Self::top(10)
    }
}

impl SearchOptions {
    /// Checks the options: `k` at least 1, a `min_score` that is a number. Every search (Rust,
    /// C, CLI, Python) goes through this.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0 {
            return Err(Error::InvalidInput("k must be at least 1".into()));
        }
        if self.min_score.is_some_and(f32::is_nan) {
            return Err(Error::InvalidInput("min_score is NaN".into()));
        }
        if let Some(window) = &self.time_window {
            window.check()?;
        }
        if self.calibrated && self.min_score.is_some() {
            return Err(Error::InvalidInput(
                "min_score and the calibrated threshold are both asked for: choose one".into(),
            ));
        }
        Ok(())
    }

    /// Plain top-`k`.
    pub fn top(k: usize) -> Self {
        Self {
            k,
            min_score: None,
            group_by_identity: false,
            exclude_camera: None,
            time_window: None,
            calibrated: false,
        }
    }
}

/// How a store's meta table marks the gallery's settings ([`Store::meta`]) apart from the
/// store's own keys.
const SETTING_PREFIX: &str = "user.";

/// Where a gallery keeps its calibration among its settings.
const CALIBRATION_KEY: &str = "calibration";
/// Where a gallery keeps the fingerprint of its model among its settings.
const MODEL_KEY: &str = "model";

/// Longest tag accepted, in bytes.
pub const MAX_TAG_LEN: usize = 255;

/// The largest embedding dimension a gallery accepts (re-id and classification embeddings
/// have at most a few thousand).
pub const MAX_DIM: usize = 65_536;

/// Ids and identities are below 2^63: gallery files and npz exports store them as int64.
pub const MAX_LABEL: u64 = i64::MAX as u64;

/// A setting's key and its new value (`None` removes it).
pub(crate) type Setting = (&'static str, Option<String>);

/// Which entries [`Store::select`] returns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Selection {
    /// Those of these identities.
    Identities(Vec<u64>),
    /// Those with this tag.
    Tag(String),
}

impl Selection {
    /// Whether `identity` and `tag` are picked.
    pub fn picks(&self, identity: u64, tag: Option<&str>) -> bool {
        match self {
            Selection::Identities(wanted) => wanted.contains(&identity),
            Selection::Tag(wanted) => tag == Some(wanted.as_str()),
        }
    }
}

/// What a gallery's entries are kept in: one implementation per backend, behind the same
/// checks. Vectors, labels and options arrive validated (and cosine vectors normalized) by
/// [`Gallery`]; a backend keeps them and answers searches exactly as the embedded store does.
pub(crate) trait Store: Send + Sync + std::fmt::Debug {
    /// Whether mutations outlive the process.
    fn is_durable(&self) -> bool;
    /// Number of entries.
    fn len(&self) -> Result<usize>;
    /// Adds `entries` with their crops (one per entry) all-or-nothing, with ids from
    /// `requested` (one per entry; `None` assigned by [`assign_ids`]); returns the ids.
    fn add(
        &self,
        entries: Vec<Entry>,
        crops: Vec<Option<Vec<u8>>>,
        requested: &[Option<u64>],
    ) -> Result<Vec<u64>>;
    /// Replaces entry `entry.id`, keeping its crop ([`Error::NotFound`] if absent).
    fn update(&self, entry: Entry) -> Result<()>;
    /// Removes entry `id` ([`Error::NotFound`] if absent).
    fn remove(&self, id: u64) -> Result<()>;
    /// Removes every entry of `identity`; returns how many.
    fn remove_identity(&self, identity: u64) -> Result<usize>;
    /// Entry `id`, if present.
    fn get(&self, id: u64) -> Result<Option<Entry>>;
    /// Every id, ascending.
    fn ids(&self) -> Result<Vec<u64>>;
    /// Every entry.
    fn entries(&self) -> Result<Vec<Entry>>;
    /// The entries `selection` picks, by id.
    fn select(&self, selection: &Selection) -> Result<Vec<Entry>>;
    /// Gives entries `ids` the identity `identity`, all or nothing.
    fn relabel(&self, ids: &[u64], identity: u64) -> Result<()>;
    /// The crop of entry `id` ([`Error::NotFound`] if the entry is absent).
    fn crop(&self, id: u64) -> Result<Option<Vec<u8>>>;
    /// Gives entry `id` the crop `crop` ([`Error::NotFound`] if absent).
    fn set_crop(&self, id: u64, crop: Vec<u8>) -> Result<()>;
    /// Up to `limit` entries' crops, by id, from the first id above `after`.
    fn crops(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Option<Vec<u8>>)>>;
    /// The ids of the entries without a crop, ascending.
    fn without_crop(&self) -> Result<Vec<u64>>;
    /// Gives every entry its vector in `vectors` (prepared; one per entry of the gallery,
    /// each once) and sets (or, `None`, removes) `settings`, all in one transaction;
    /// [`changed_meanwhile`] if the gallery's entries are not exactly those of `vectors`.
    fn replace_vectors(&self, vectors: Vec<(u64, Vec<f32>)>, settings: &[Setting]) -> Result<()>;
    /// Adds one to the counter in setting `key` (absent: 0) and returns it, atomically.
    fn increment_meta(&self, key: &str) -> Result<u64>;
    /// The value of `key` among the gallery's settings (kept apart from the store's own).
    fn meta(&self, key: &str) -> Result<Option<String>>;
    /// Every setting, by key.
    fn all_meta(&self) -> Result<Vec<(String, String)>>;
    /// Sets `key`, durably in a durable store.
    fn set_meta(&self, key: &str, value: &str) -> Result<()>;
    /// Top matches of each prepared query, as [`search::search`] ranks them.
    fn search(&self, queries: &[f32], options: &SearchOptions) -> Result<Vec<Vec<Match>>>;
}

/// A gallery of `dim`-dimensional embeddings: in memory, in a durable file, or (feature
/// `postgres`) in a PostgreSQL database with pgvector.
#[derive(Debug)]
pub struct Gallery {
    dim: usize,
    metric: Metric,
    store: Box<dyn Store>,
}

impl Gallery {
    /// An empty gallery of `dim`-dimensional embeddings compared by `metric`.
    pub fn new(dim: usize, metric: Metric) -> Result<Self> {
        check_dim(dim)?;
        Ok(Self {
            dim,
            metric,
            store: Box::new(Embedded::new(dim, metric, Vec::new(), Vec::new(), None)),
        })
    }

    /// Creates a durable gallery at `location` (an error if one is there already): a file path
    /// (or `sqlite:PATH`), or a database, `postgres://…` (see [`Location`]).
    pub fn create(location: impl AsRef<Path>, dim: usize, metric: Metric) -> Result<Self> {
        check_dim(dim)?;
        let store: Box<dyn Store> = match Location::parse(location.as_ref())? {
            Location::File(path) => {
                let db = Db::create(&path, dim, metric)?;
                Box::new(Embedded::new(dim, metric, Vec::new(), Vec::new(), Some(db)))
            }
            Location::Database(url) => database::create(&url, dim, metric)?,
        };
        Ok(Self { dim, metric, store })
    }

    /// Opens a durable gallery; every later mutation is committed to it. A corrupt or foreign
    /// file or database is an error and is left unchanged.
    pub fn open(location: impl AsRef<Path>) -> Result<Self> {
        match Location::parse(location.as_ref())? {
            Location::File(path) => {
                let (db, dim, metric, entries) = Db::open(&path)?;
                check_dim(dim)?;
                let meta = db.all_meta()?;
                Ok(Self {
                    dim,
                    metric,
                    store: Box::new(Embedded::new(dim, metric, entries, meta, Some(db))),
                })
            }
            Location::Database(url) => {
                let (store, dim, metric) = database::open(&url)?;
                Ok(Self { dim, metric, store })
            }
        }
    }

    /// Opens a durable gallery and checks that it holds `dim`-dimensional embeddings.
    pub fn open_expecting(location: impl AsRef<Path>, dim: usize) -> Result<Self> {
        let gallery = Self::open(location.as_ref())?;
        if gallery.dim != dim {
            return Err(Location::parse(location.as_ref())?
                .error(format!("holds {}-d embeddings, not {dim}-d", gallery.dim)));
        }
        Ok(gallery)
    }

    /// Reads a durable gallery into an in-memory gallery (later changes are not written back).
    pub fn load(location: impl AsRef<Path>) -> Result<Self> {
        let (dim, metric, store) = match Location::parse(location.as_ref())? {
            // A file's entries are read once, into the store that keeps them.
            Location::File(path) => {
                let (db, dim, metric, entries) = Db::open(&path)?;
                check_dim(dim)?;
                let meta = db.all_meta()?;
                let durable = Embedded::new(dim, metric, entries, meta, Some(db));
                (dim, metric, durable.into_memory()?)
            }
            Location::Database(_) => {
                let durable = Self::open(location)?;
                let (dim, metric) = (durable.dim, durable.metric);
                let meta = durable.store.all_meta()?;
                let crops = crops::all_crops(durable.store.as_ref())?;
                let store = Embedded::new(dim, metric, durable.entries()?, meta, None);
                (dim, metric, store.with_crops(crops))
            }
        };
        Ok(Self {
            dim,
            metric,
            store: Box::new(store),
        })
    }

    /// Writes the whole gallery to the file `path` atomically (replacing any file there).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        match Location::parse(path.as_ref())? {
            Location::File(path) => {
                let meta = self.store.all_meta()?;
                let crops = crops::all_crops(self.store.as_ref())?;
                persist::write_snapshot(
                    &path,
                    self.dim,
                    self.metric,
                    &self.entries()?,
                    crops,
                    &meta,
                )
            }
            Location::Database(url) => Err(Location::Database(url).error(
                "save writes a file; to copy into a database, create a gallery there and add \
                 these entries"
                    .into(),
            )),
        }
    }

    /// Whether mutations are committed to a file or database.
    pub fn is_durable(&self) -> bool {
        self.store.is_durable()
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The comparison metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Number of entries (a database gallery asks the database: it can fail).
    pub fn len(&self) -> Result<usize> {
        self.store.len()
    }

    /// Whether the gallery is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Checks and prepares a vector: right length, finite, non-zero for cosine (normalized).
    fn prepare(&self, vector: &[f32]) -> Result<Vec<f32>> {
        if vector.len() != self.dim {
            return Err(Error::InvalidInput(format!(
                "embedding has {} values, the gallery's dimension is {}",
                vector.len(),
                self.dim
            )));
        }
        check_finite(vector)?;
        if self.metric == Metric::Cosine {
            let norm = direction_norm(vector)?;
            return Ok(vector.iter().map(|&v| (v as f64 / norm) as f32).collect());
        }
        Ok(vector.to_vec())
    }

    /// Checks an entry's labels and prepares its vector.
    fn checked(
        &self,
        id: u64,
        identity: u64,
        camera: i32,
        tag: Option<String>,
        time: Option<TimeSpan>,
        vector: &[f32],
    ) -> Result<Entry> {
        let vector = self.prepare(vector)?;
        check_tag(&tag)?;
        check_label("identity", identity)?;
        check_camera(camera)?;
        if let Some(span) = &time {
            span.check()?;
        }
        Ok(Entry {
            id,
            identity,
            camera,
            tag,
            time,
            vector,
        })
    }

    /// Adds one entry and returns its id.
    pub fn add(&self, entry: NewEntry) -> Result<u64> {
        Ok(self.add_batch(vec![entry])?[0])
    }

    /// Adds entries all-or-nothing: on any invalid entry or duplicate id, nothing is added.
    pub fn add_batch(&self, entries: Vec<NewEntry>) -> Result<Vec<u64>> {
        let crop_limit = match entries.iter().any(|e| e.crop.is_some()) {
            true => Some(self.crops_kept()?),
            false => None,
        };
        let mut requested = Vec::with_capacity(entries.len());
        let mut rows = Vec::with_capacity(entries.len());
        let mut crops = Vec::with_capacity(entries.len());
        for e in entries {
            if let Some(id) = e.id {
                check_label("id", id)?;
            }
            if let (Some(crop), Some(limit)) = (&e.crop, crop_limit) {
                crops::check_crop(crop, limit)?;
            }
            requested.push(e.id);
            rows.push(self.checked(0, e.identity, e.camera, e.tag, e.time, &e.vector)?);
            crops.push(e.crop);
        }
        self.store.add(rows, crops, &requested)
    }

    /// Replaces the embedding, labels and time of entry `id` with those of `entry` (whose own
    /// `id` must be `None` or `id`), and its crop when `entry` has one (else it keeps its own).
    pub fn update(&self, id: u64, entry: NewEntry) -> Result<()> {
        if entry.id.is_some_and(|other| other != id) {
            return Err(Error::InvalidInput(format!(
                "entry {id} cannot be updated with the labels of entry {}",
                entry.id.unwrap_or_default()
            )));
        }
        if let Some(crop) = &entry.crop {
            crops::check_crop(crop, self.crops_kept()?)?;
        }
        let checked = self.checked(
            id,
            entry.identity,
            entry.camera,
            entry.tag,
            entry.time,
            &entry.vector,
        )?;
        self.store.update(checked)?;
        match entry.crop {
            Some(crop) => self.store.set_crop(id, crop),
            None => Ok(()),
        }
    }

    /// Gives the entries `ids` the identity `identity`, all or nothing (merging or splitting
    /// identities); [`Error::NotFound`] if one is absent.
    pub fn relabel(&self, ids: &[u64], identity: u64) -> Result<()> {
        check_label("identity", identity)?;
        self.store.relabel(ids, identity)
    }

    /// Removes entry `id`.
    pub fn remove(&self, id: u64) -> Result<()> {
        self.store.remove(id)
    }

    /// Removes every entry of `identity`; returns how many were removed.
    pub fn remove_identity(&self, identity: u64) -> Result<usize> {
        self.store.remove_identity(identity)
    }

    /// Whether entry `id` is present.
    pub fn contains(&self, id: u64) -> Result<bool> {
        Ok(self.store.get(id)?.is_some())
    }

    /// The entry `id`, if present.
    pub fn get(&self, id: u64) -> Result<Option<Entry>> {
        self.store.get(id)
    }

    /// The ids of every entry, ascending (a snapshot: entries added or removed afterwards are
    /// not reflected).
    pub fn ids(&self) -> Result<Vec<u64>> {
        self.store.ids()
    }

    /// A snapshot of every entry (in storage order in memory, by id in a database).
    pub fn entries(&self) -> Result<Vec<Entry>> {
        self.store.entries()
    }

    /// The entries of `identity`, by id (an index lookup in a database).
    pub fn entries_of(&self, identity: u64) -> Result<Vec<Entry>> {
        self.entries_of_any(&[identity])
    }

    /// The entries of any of `identities`, by id (one query in a database).
    pub fn entries_of_any(&self, identities: &[u64]) -> Result<Vec<Entry>> {
        self.store
            .select(&Selection::Identities(identities.to_vec()))
    }

    /// The entries tagged `tag`, by id (an index lookup in a database).
    pub fn entries_tagged(&self, tag: &str) -> Result<Vec<Entry>> {
        self.store.select(&Selection::Tag(tag.to_string()))
    }

    /// The value of the gallery setting `key` (kept with the gallery: in its file or database).
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        self.store.meta(key)
    }

    /// Sets the gallery setting `key` (durably in a file or database gallery).
    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.store.set_meta(key, value)
    }

    /// Adds one to the counter kept in setting `key` (absent counts as 0) and returns the new
    /// value, atomically even between processes sharing a database.
    pub fn increment(&self, key: &str) -> Result<u64> {
        self.store.increment_meta(key)
    }

    /// Finds the threshold that accepts `target_far` of the different-identity pairs of a
    /// labelled set (`vectors`, `identities.len()` rows, prepared as the gallery prepares its
    /// own), keeps it in the gallery (durably, for a file or a database) and returns it with
    /// its rates on those pairs. Every pair of rows is scored exactly, as search scores
    /// them; at most [`MAX_CALIBRATION_ROWS`] rows.
    pub fn calibrate(
        &self,
        vectors: &[f32],
        identities: &[u64],
        target_far: f64,
    ) -> Result<Calibration> {
        let n = identities.len();
        if vectors.len() != n * self.dim {
            return Err(Error::InvalidInput(format!(
                "{} values are not {n} {}-d embeddings",
                vectors.len(),
                self.dim
            )));
        }
        if n > MAX_CALIBRATION_ROWS {
            return Err(Error::InvalidInput(format!(
                "{n} rows: calibration scores every pair of at most {MAX_CALIBRATION_ROWS} \
                 (take a sample)"
            )));
        }
        let rows = vectors
            .chunks(self.dim)
            .map(|v| self.prepare(v))
            .collect::<Result<Vec<_>>>()?;
        // Every pair (i < j), scored row by row in parallel.
        let (scores, same): (Vec<f32>, Vec<bool>) = {
            use rayon::prelude::*;
            (0..n)
                .into_par_iter()
                .flat_map_iter(|i| {
                    let rows = &rows;
                    (i + 1..n).map(move |j| {
                        (
                            search::exact_score(self.metric, &rows[i], &rows[j]),
                            identities[i] == identities[j],
                        )
                    })
                })
                .unzip()
        };
        let calibration = Calibration::from_pairs(self.metric, &scores, &same, target_far)?;
        self.adopt_calibration(&calibration)?;
        Ok(calibration)
    }

    /// Keeps `calibration` — found elsewhere, such as the one a model carries
    /// (`Extractor::calibration`) — as the gallery's threshold; it must be for the gallery's
    /// metric.
    pub fn adopt_calibration(&self, calibration: &Calibration) -> Result<()> {
        let record = calibration_record(calibration, self.metric)?;
        self.store.set_meta(CALIBRATION_KEY, &record)
    }

    /// The calibration kept by [`Gallery::calibrate`], if any.
    pub fn calibration(&self) -> Result<Option<Calibration>> {
        let Some(record) = self.store.meta(CALIBRATION_KEY)? else {
            return Ok(None);
        };
        let calibration: Calibration = serde_json::from_str(&record).map_err(|e| {
            Error::InvalidInput(format!("the gallery's calibration record is corrupt: {e}"))
        })?;
        if calibration.metric()? != self.metric || !calibration.threshold.is_finite() {
            return Err(Error::InvalidInput(
                "the gallery's calibration record does not fit its metric".into(),
            ));
        }
        Ok(Some(calibration))
    }

    /// Binds the gallery to the model whose embeddings it holds, by the model's fingerprint
    /// (`Extractor::fingerprint`): a gallery that records none, or that is empty, records
    /// this one; a gallery that records another is [`Error::ModelMismatch`] — embeddings of
    /// two models are not comparable — unless `replace` (the caller has re-embedded, or
    /// accepts the mix), which records the new one. Kept durably in a file or database.
    pub fn bind_model(&self, fingerprint: &str, replace: bool) -> Result<()> {
        check_fingerprint(fingerprint)?;
        match self.model()? {
            Some(recorded) if recorded == fingerprint => Ok(()),
            Some(recorded) if !replace && !self.is_empty()? => Err(Error::ModelMismatch {
                gallery: recorded,
                model: fingerprint.to_string(),
            }),
            _ => self.store.set_meta(MODEL_KEY, fingerprint),
        }
    }

    /// The fingerprint of the model the gallery is bound to ([`Gallery::bind_model`]).
    pub fn model(&self) -> Result<Option<String>> {
        self.store.meta(MODEL_KEY)
    }

    /// Writes the gallery as NumPy arrays for Python / faiss users: a `.npz` holding `vectors`
    /// (float32 [N, D], as stored: unit length in a cosine gallery), `ids` and `identities`
    /// (uint64 as int64), `cameras` (int64) and, when an entry has one, `times` (float64
    /// [N, 2]: start and end, NaN for entries without a time).
    pub fn export_npz(&self, path: impl AsRef<Path>) -> Result<()> {
        let entries = self.entries()?;
        let n = entries.len();
        let vectors = NpyArray::f32(
            vec![n, self.dim],
            entries
                .iter()
                .flat_map(|e| e.vector.iter().copied())
                .collect(),
        );
        let column =
            |f: &dyn Fn(&Entry) -> i64| NpyArray::i64(vec![n], entries.iter().map(f).collect());
        let ids = column(&|e| e.id as i64);
        let identities = column(&|e| e.identity as i64);
        let cameras = column(&|e| e.camera as i64);
        let times = NpyArray::f64(
            vec![n, 2],
            entries
                .iter()
                .flat_map(|e| e.time.map_or([f64::NAN; 2], |t| [t.start, t.end]))
                .collect(),
        );
        let mut arrays = vec![
            ("vectors", &vectors),
            ("ids", &ids),
            ("identities", &identities),
            ("cameras", &cameras),
        ];
        if entries.iter().any(|e| e.time.is_some()) {
            arrays.push(("times", &times));
        }
        crate::formats::npy::write_npz(path, arrays)
    }

    /// Adds the entries of a `.npz` written by [`Gallery::export_npz`] (or by NumPy with the
    /// same arrays: `vectors` [N, D], `identities` [N], `cameras` [N], `ids` [N] and `times`
    /// [N, 2] optional), all or nothing. Returns the ids of the new entries.
    pub fn import_npz(&self, path: impl AsRef<Path>) -> Result<Vec<u64>> {
        let path = path.as_ref();
        let mut arrays = crate::formats::npy::read_npz(path)?;
        let mut column = |name: &str, required: bool| -> Result<Option<NpyArray>> {
            match arrays.remove(name) {
                Some(a) => Ok(Some(a)),
                None if !required => Ok(None),
                None => Err(Error::Npy {
                    path: path.to_path_buf(),
                    reason: format!("no `{name}` array"),
                }),
            }
        };
        let vectors = column("vectors", true)?.expect("required");
        let integers = |a: NpyArray| -> Result<Vec<i64>> { a.to_i64() };
        let identities = integers(column("identities", true)?.expect("required"))?;
        let cameras = integers(column("cameras", true)?.expect("required"))?;
        let ids = column("ids", false)?.map(integers).transpose()?;
        let times = column("times", false)?;
        let unsigned = |v: Vec<i64>, what: &str| -> Result<Vec<u64>> {
            v.into_iter()
                .map(|x| {
                    u64::try_from(x).map_err(|_| {
                        Error::InvalidInput(format!("negative {what} {x} in the file"))
                    })
                })
                .collect()
        };
        let identities = unsigned(identities, "identity")?;
        let ids = ids.map(|v| unsigned(v, "id")).transpose()?;
        let cameras = cameras
            .into_iter()
            .map(|c| {
                i32::try_from(c)
                    .map_err(|_| Error::InvalidInput(format!("camera {c} out of range")))
            })
            .collect::<Result<Vec<_>>>()?;
        self.add_arrays(
            &vectors,
            ids.as_deref(),
            &identities,
            &cameras,
            times.as_ref(),
        )
    }

    /// Adds the rows of a float `[N, D]` array with their labels (all-or-nothing, as
    /// [`Gallery::add_batch`]); `ids` of `None` assigns them; `times`, a float `[N, 2]` array of
    /// start and end (a row of NaN: no time), is optional. Returns the ids.
    pub fn add_arrays(
        &self,
        vectors: &NpyArray,
        ids: Option<&[u64]>,
        identities: &[u64],
        cameras: &[i32],
        times: Option<&NpyArray>,
    ) -> Result<Vec<u64>> {
        let n = match vectors.shape[..] {
            [n, d] if d == self.dim => n,
            _ => {
                return Err(Error::InvalidInput(format!(
                    "expected a [N, {}] array, got {:?}",
                    self.dim, vectors.shape
                )));
            }
        };
        let lengths_ok =
            identities.len() == n && cameras.len() == n && ids.is_none_or(|ids| ids.len() == n);
        if !lengths_ok {
            return Err(Error::InvalidInput(format!(
                "{n} vectors need {n} identities, cameras (and ids)"
            )));
        }
        let times = times.map(|t| time_rows(t, n)).transpose()?;
        let values = vectors.to_f32();
        let entries = values
            .chunks(self.dim)
            .enumerate()
            .map(|(i, v)| NewEntry {
                id: ids.map(|ids| ids[i]),
                identity: identities[i],
                camera: cameras[i],
                tag: None,
                time: times.as_ref().and_then(|t| t[i]),
                vector: v.to_vec(),
                crop: None,
            })
            .collect();
        self.add_batch(entries)
    }

    /// The best matches of each query (`queries.len()` a multiple of `dim`), sorted best
    /// first with ties broken by id. An empty gallery gives empty results.
    pub fn search(&self, queries: &[f32], options: &SearchOptions) -> Result<Vec<Vec<Match>>> {
        options.validate()?;
        if !queries.len().is_multiple_of(self.dim) {
            return Err(Error::InvalidInput(format!(
                "{} query values are not a whole number of {}-d embeddings",
                queries.len(),
                self.dim
            )));
        }
        let prepared = queries
            .chunks(self.dim)
            .map(|q| self.prepare(q))
            .collect::<Result<Vec<_>>>()?
            .concat();
        if options.calibrated {
            let calibration = self.calibration()?.ok_or_else(|| {
                Error::InvalidInput(
                    "the gallery has no calibrated threshold (Gallery::calibrate, reid calibrate)"
                        .into(),
                )
            })?;
            let options = SearchOptions {
                min_score: Some(calibration.threshold),
                calibrated: false,
                ..options.clone()
            };
            return self.store.search(&prepared, &options);
        }
        self.store.search(&prepared, options)
    }
}

/// The time spans of a float `[n, 2]` array (start, end; a row of NaN: no time).
fn time_rows(times: &NpyArray, n: usize) -> Result<Vec<Option<TimeSpan>>> {
    if times.shape != [n, 2] {
        return Err(Error::InvalidInput(format!(
            "times: expected a [{n}, 2] array, got {:?}",
            times.shape
        )));
    }
    times
        .to_f64()
        .chunks_exact(2)
        .map(|row| match (row[0], row[1]) {
            (start, end) if start.is_nan() && end.is_nan() => Ok(None),
            (start, end) => TimeSpan::new(start, end).map(Some),
        })
        .collect()
}

/// Picks the ids of a batch: each requested id, or for `None` the next one from `next` that
/// is neither `taken` nor used earlier in the batch. Returns the ids and the next id to
/// assign afterwards (above every id of the batch). A requested id that is taken or repeated
/// is an error.
pub(crate) fn assign_ids(
    mut next: u64,
    requested: &[Option<u64>],
    taken: impl Fn(u64) -> bool,
) -> Result<(Vec<u64>, u64)> {
    let mut ids = Vec::with_capacity(requested.len());
    let mut seen = HashSet::new();
    for &want in requested {
        let id = match want {
            Some(id) => id,
            None => {
                while taken(next) || seen.contains(&next) {
                    next += 1;
                }
                next
            }
        };
        if taken(id) || !seen.insert(id) {
            return Err(duplicate(id));
        }
        next = next.max(id.saturating_add(1));
        ids.push(id);
    }
    Ok((ids, next))
}

fn check_dim(dim: usize) -> Result<()> {
    if dim == 0 || dim > MAX_DIM {
        return Err(Error::InvalidInput(format!(
            "dimension {dim}: it must be between 1 and {MAX_DIM}"
        )));
    }
    Ok(())
}

pub(crate) fn duplicate(id: u64) -> Error {
    Error::InvalidInput(format!("id {id} is already in the gallery"))
}

fn check_label(what: &str, value: u64) -> Result<()> {
    if value > MAX_LABEL {
        return Err(Error::InvalidInput(format!(
            "{what} {value} is not below 2^63 (gallery files store int64)"
        )));
    }
    Ok(())
}

/// Checks a camera id: cameras are numbered from 0 everywhere (gallery entries, the finetuner's
/// images, whose file names carry the camera and would not read a minus sign back).
pub fn check_camera(camera: i32) -> Result<()> {
    if camera < 0 {
        return Err(Error::InvalidInput(format!(
            "camera {camera} is negative (cameras are numbered from 0)"
        )));
    }
    Ok(())
}

fn check_tag(tag: &Option<String>) -> Result<()> {
    match tag {
        Some(t) if t.len() > MAX_TAG_LEN => Err(Error::InvalidInput(format!(
            "tag of {} bytes exceeds {MAX_TAG_LEN}",
            t.len()
        ))),
        _ => Ok(()),
    }
}

/// Refuses an embedding holding NaN or infinity.
pub(crate) fn check_finite(vector: &[f32]) -> Result<()> {
    if vector.iter().any(|v| !v.is_finite()) {
        return Err(Error::InvalidInput(
            "embedding holds NaN or infinity".into(),
        ));
    }
    Ok(())
}

/// The length of an embedding that has a direction (is not zero), in f64: the squared norm of
/// large f32 values (3e38) overflows f32.
pub(crate) fn direction_norm(vector: &[f32]) -> Result<f64> {
    let norm = vector
        .iter()
        .map(|&v| v as f64 * v as f64)
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 {
        return Err(Error::InvalidInput(
            "a zero embedding has no direction (cosine metric)".into(),
        ));
    }
    Ok(norm)
}

/// The value of the counter setting `key` (absent: 0), as both stores keep it.
pub(crate) fn parse_counter(key: &str, value: Option<&String>) -> Result<u64> {
    value.map_or(Ok(0), |v| {
        v.parse()
            .map_err(|_| Error::InvalidInput(format!("setting {key} = {v:?} is not a counter")))
    })
}

/// What a store answers when the entries to re-embed are no longer the gallery's.
pub(crate) fn changed_meanwhile() -> Error {
    Error::InvalidInput(
        "entries were added or removed while the gallery was re-embedded; nothing was \
         replaced (re-embed again)"
            .into(),
    )
}

/// How a gallery of `metric` keeps `calibration` (which must be for that metric).
fn calibration_record(calibration: &Calibration, metric: Metric) -> Result<String> {
    if calibration.metric()? != metric || !calibration.threshold.is_finite() {
        return Err(Error::InvalidInput(format!(
            "a calibration of {} scores (threshold {}) does not fit a {} gallery",
            calibration.metric,
            calibration.threshold,
            metric.name()
        )));
    }
    serde_json::to_string(calibration)
        .map_err(|e| Error::InvalidInput(format!("calibration record: {e}")))
}

/// A model fingerprint: 1 to 128 printable ASCII characters.
fn check_fingerprint(fingerprint: &str) -> Result<()> {
    let valid = !fingerprint.is_empty()
        && fingerprint.len() <= 128
        && fingerprint.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(Error::InvalidInput(format!(
            "model fingerprint `{fingerprint}`: 1 to 128 printable ASCII characters"
        )));
    }
    Ok(())
}

pub(crate) fn not_found(id: u64) -> Error {
    Error::NotFound(format!("no entry with id {id}"))
}
