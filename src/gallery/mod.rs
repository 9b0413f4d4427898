//! A gallery of embeddings with identity and camera labels, searched exactly by cosine
//! similarity or squared euclidean distance (as torchreid's distance matrix).
//!
//! The gallery is internally synchronized: many threads may search at once while writers
//! take turns. Vectors live in one contiguous row-major buffer (N × D × 4 bytes); a removal
//! moves the last row into the hole, so storage stays dense. A gallery opened on a file
//! ([`Gallery::create`], [`Gallery::open`]) commits every mutation to SQLite before applying
//! it in memory; searches always run on the in-memory copy.

mod persist;
mod search;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, RwLock};

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
    /// The embedding, `dim` values.
    pub vector: Vec<f32>,
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
        Ok(())
    }

    /// Plain top-`k`.
    pub fn top(k: usize) -> Self {
        Self {
            k,
            min_score: None,
            group_by_identity: false,
            exclude_camera: None,
        }
    }
}

/// Longest tag accepted, in bytes.
pub const MAX_TAG_LEN: usize = 255;

/// The largest embedding dimension a gallery accepts (re-id and classification embeddings
/// have at most a few thousand).
pub const MAX_DIM: usize = 65_536;

/// Ids and identities are below 2^63: gallery files and npz exports store them as int64.
pub const MAX_LABEL: u64 = i64::MAX as u64;

#[derive(Debug, Default)]
struct Store {
    ids: Vec<u64>,
    identities: Vec<u64>,
    cameras: Vec<i32>,
    tags: Vec<Option<String>>,
    vectors: Vec<f32>,
    position: HashMap<u64, usize>,
    next_id: u64,
}

/// A gallery of `dim`-dimensional embeddings, in memory or backed by a durable file.
#[derive(Debug)]
pub struct Gallery {
    dim: usize,
    metric: Metric,
    store: RwLock<Store>,
    /// The database of a durable gallery; locked only while the store's write lock is held.
    db: Option<Mutex<Db>>,
}

impl Gallery {
    /// An empty gallery of `dim`-dimensional embeddings compared by `metric`.
    pub fn new(dim: usize, metric: Metric) -> Result<Self> {
        if dim == 0 || dim > MAX_DIM {
            return Err(Error::InvalidInput(format!(
                "dimension {dim}: it must be between 1 and {MAX_DIM}"
            )));
        }
        Ok(Self {
            dim,
            metric,
            store: RwLock::new(Store::default()),
            db: None,
        })
    }

    /// Creates a durable gallery file at `path` (an error if it exists).
    pub fn create(path: impl AsRef<Path>, dim: usize, metric: Metric) -> Result<Self> {
        let mut gallery = Self::new(dim, metric)?;
        gallery.db = Some(Mutex::new(Db::create(path.as_ref(), dim, metric)?));
        Ok(gallery)
    }

    /// Opens a durable gallery file; every later mutation is committed to it. A corrupt or
    /// foreign file is an error and is left unchanged.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let (db, dim, metric, entries) = Db::open(path.as_ref())?;
        let gallery = Self::new(dim, metric)?;
        gallery.load_entries(entries);
        Ok(Self {
            db: Some(Mutex::new(db)),
            ..gallery
        })
    }

    /// Opens a durable gallery file and checks that it holds `dim`-dimensional embeddings.
    pub fn open_expecting(path: impl AsRef<Path>, dim: usize) -> Result<Self> {
        let gallery = Self::open(path.as_ref())?;
        if gallery.dim != dim {
            return Err(Error::GalleryFile {
                path: path.as_ref().to_path_buf(),
                reason: format!("holds {}-d embeddings, not {dim}-d", gallery.dim),
            });
        }
        Ok(gallery)
    }

    /// Reads a gallery file into an in-memory gallery (later changes are not written back).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let (db, dim, metric, entries) = Db::open(path.as_ref())?;
        drop(db);
        let gallery = Self::new(dim, metric)?;
        gallery.load_entries(entries);
        Ok(gallery)
    }

    /// Writes the whole gallery to `path` atomically (replacing any file there).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        persist::write_snapshot(path.as_ref(), self.dim, self.metric, &self.entries())
    }

    /// Whether mutations are committed to a file.
    pub fn is_durable(&self) -> bool {
        self.db.is_some()
    }

    fn load_entries(&self, entries: Vec<Entry>) {
        let mut store = self.write();
        for e in entries {
            store.next_id = store.next_id.max(e.id.saturating_add(1));
            push_entry(&mut store, e);
        }
    }

    /// Runs `write` on the database of a durable gallery (nothing for an in-memory one).
    fn commit(&self, write: impl FnOnce(&mut Db) -> Result<()>) -> Result<()> {
        match &self.db {
            Some(db) => write(&mut db.lock().unwrap_or_else(|p| p.into_inner())),
            None => Ok(()),
        }
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The comparison metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.read().ids.len()
    }

    /// Whether the gallery is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        // A writer that panicked cannot leave a half-applied change (see `add_batch`).
        self.store.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|p| p.into_inner())
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
        if vector.iter().any(|v| !v.is_finite()) {
            return Err(Error::InvalidInput(
                "embedding holds NaN or infinity".into(),
            ));
        }
        if self.metric == Metric::Cosine {
            // In f64: the squared norm of large f32 values (3e38) overflows f32.
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
            return Ok(vector.iter().map(|&v| (v as f64 / norm) as f32).collect());
        }
        Ok(vector.to_vec())
    }

    /// Adds one entry and returns its id.
    pub fn add(&self, entry: NewEntry) -> Result<u64> {
        Ok(self.add_batch(vec![entry])?[0])
    }

    /// Adds entries all-or-nothing: on any invalid entry or duplicate id, nothing is added.
    pub fn add_batch(&self, entries: Vec<NewEntry>) -> Result<Vec<u64>> {
        let vectors = entries
            .iter()
            .map(|e| self.prepare(&e.vector))
            .collect::<Result<Vec<_>>>()?;
        for e in &entries {
            check_tag(&e.tag)?;
            check_label("identity", e.identity)?;
            check_camera(e.camera)?;
            if let Some(id) = e.id {
                check_label("id", id)?;
            }
        }
        let mut store = self.write();
        let mut next = store.next_id;
        let mut ids = Vec::with_capacity(entries.len());
        let mut seen = std::collections::HashSet::new();
        for e in &entries {
            let id = match e.id {
                Some(id) => id,
                None => {
                    while store.position.contains_key(&next) || seen.contains(&next) {
                        next += 1;
                    }
                    next
                }
            };
            if store.position.contains_key(&id) || !seen.insert(id) {
                return Err(Error::InvalidInput(format!(
                    "id {id} is already in the gallery"
                )));
            }
            next = next.max(id.saturating_add(1));
            ids.push(id);
        }
        let rows: Vec<Entry> = entries
            .into_iter()
            .zip(vectors)
            .zip(&ids)
            .map(|((e, vector), &id)| Entry {
                id,
                identity: e.identity,
                camera: e.camera,
                tag: e.tag,
                vector,
            })
            .collect();
        // The file first: memory changes only once the batch is on disk, in one transaction.
        self.commit(|db| db.insert(&rows))?;
        for e in rows {
            push_entry(&mut store, e);
        }
        store.next_id = next;
        Ok(ids)
    }

    /// Replaces the embedding and labels of entry `id`.
    pub fn update(
        &self,
        id: u64,
        identity: u64,
        camera: i32,
        tag: Option<String>,
        vector: &[f32],
    ) -> Result<()> {
        let vector = self.prepare(vector)?;
        check_tag(&tag)?;
        check_label("identity", identity)?;
        check_camera(camera)?;
        let mut store = self.write();
        let row = *store.position.get(&id).ok_or_else(|| not_found(id))?;
        let entry = Entry {
            id,
            identity,
            camera,
            tag: tag.clone(),
            vector: vector.clone(),
        };
        self.commit(|db| db.update(&entry))?;
        store.identities[row] = identity;
        store.cameras[row] = camera;
        store.tags[row] = tag;
        store.vectors[row * self.dim..(row + 1) * self.dim].copy_from_slice(&vector);
        Ok(())
    }

    /// Removes entry `id`.
    pub fn remove(&self, id: u64) -> Result<()> {
        let mut store = self.write();
        let row = *store.position.get(&id).ok_or_else(|| not_found(id))?;
        self.commit(|db| db.delete(id))?;
        remove_row(&mut store, row, self.dim);
        Ok(())
    }

    /// Removes every entry of `identity`; returns how many were removed.
    pub fn remove_identity(&self, identity: u64) -> Result<usize> {
        let mut store = self.write();
        self.commit(|db| db.delete_identity(identity))?;
        let mut removed = 0;
        let mut row = 0;
        while row < store.ids.len() {
            if store.identities[row] == identity {
                remove_row(&mut store, row, self.dim);
                removed += 1;
            } else {
                row += 1;
            }
        }
        Ok(removed)
    }

    /// Whether entry `id` is present.
    pub fn contains(&self, id: u64) -> bool {
        self.read().position.contains_key(&id)
    }

    /// The entry `id`, if present.
    pub fn get(&self, id: u64) -> Option<Entry> {
        let store = self.read();
        store
            .position
            .get(&id)
            .map(|&row| entry_at(&store, row, self.dim))
    }

    /// The ids of every entry, ascending (a snapshot: entries added or removed afterwards are
    /// not reflected).
    pub fn ids(&self) -> Vec<u64> {
        let mut ids = self.read().ids.clone();
        ids.sort_unstable();
        ids
    }

    /// A snapshot of every entry, in storage order.
    pub fn entries(&self) -> Vec<Entry> {
        let store = self.read();
        (0..store.ids.len())
            .map(|row| entry_at(&store, row, self.dim))
            .collect()
    }

    /// Writes the gallery as NumPy arrays for Python / faiss users: a `.npz` holding `vectors`
    /// (float32 [N, D], as stored: unit length in a cosine gallery), `ids` and `identities`
    /// (uint64 as int64) and `cameras` (int64).
    pub fn export_npz(&self, path: impl AsRef<Path>) -> Result<()> {
        let entries = self.entries();
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
        crate::formats::npy::write_npz(
            path,
            [
                ("vectors", &vectors),
                ("ids", &ids),
                ("identities", &identities),
                ("cameras", &cameras),
            ],
        )
    }

    /// Adds the entries of a `.npz` written by [`Gallery::export_npz`] (or by NumPy with the
    /// same arrays: `vectors` [N, D], `identities` [N], `cameras` [N], `ids` [N] optional),
    /// all or nothing. Returns the ids of the new entries.
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
        self.add_arrays(&vectors, ids.as_deref(), &identities, &cameras)
    }

    /// Adds the rows of a float `[N, D]` array with their labels (all-or-nothing, as
    /// [`Gallery::add_batch`]); `ids` of `None` assigns them. Returns the ids.
    pub fn add_arrays(
        &self,
        vectors: &NpyArray,
        ids: Option<&[u64]>,
        identities: &[u64],
        cameras: &[i32],
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
        let values = vectors.to_f32();
        let entries = values
            .chunks(self.dim)
            .enumerate()
            .map(|(i, v)| NewEntry {
                id: ids.map(|ids| ids[i]),
                identity: identities[i],
                camera: cameras[i],
                tag: None,
                vector: v.to_vec(),
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
        let store = self.read();
        let cols = search::Columns {
            dim: self.dim,
            metric: self.metric,
            vectors: &store.vectors,
            ids: &store.ids,
            identities: &store.identities,
            cameras: &store.cameras,
        };
        Ok(search::search(&cols, &prepared, options))
    }
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

fn not_found(id: u64) -> Error {
    Error::NotFound(format!("no entry with id {id}"))
}

fn entry_at(store: &Store, row: usize, dim: usize) -> Entry {
    Entry {
        id: store.ids[row],
        identity: store.identities[row],
        camera: store.cameras[row],
        tag: store.tags[row].clone(),
        vector: store.vectors[row * dim..(row + 1) * dim].to_vec(),
    }
}

/// Appends one entry to every column.
fn push_entry(store: &mut Store, e: Entry) {
    let row = store.ids.len();
    store.position.insert(e.id, row);
    store.ids.push(e.id);
    store.identities.push(e.identity);
    store.cameras.push(e.camera);
    store.tags.push(e.tag);
    store.vectors.extend(e.vector);
}

/// Moves the last row into `row` and shrinks every column by one.
fn remove_row(store: &mut Store, row: usize, dim: usize) {
    let last = store.ids.len() - 1;
    let id = store.ids[row];
    store.ids.swap_remove(row);
    store.identities.swap_remove(row);
    store.cameras.swap_remove(row);
    store.tags.swap_remove(row);
    if row != last {
        store
            .vectors
            .copy_within(last * dim..(last + 1) * dim, row * dim);
        let moved = store.ids[row];
        store.position.insert(moved, row);
    }
    store.vectors.truncate(last * dim);
    store.position.remove(&id);
}
