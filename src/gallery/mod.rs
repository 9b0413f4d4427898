//! A gallery of embeddings with identity and camera labels, searched exactly by cosine
//! similarity or euclidean distance.
//!
//! The gallery is internally synchronized: many threads may search at once while writers
//! take turns. Vectors live in one contiguous row-major buffer (N × D × 4 bytes); a removal
//! moves the last row into the hole, so storage stays dense.

mod search;

use std::collections::HashMap;
use std::sync::RwLock;

use crate::error::{Error, Result};
use crate::eval::Metric;

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
    /// Camera id.
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
    /// Cosine similarity (higher is closer) or euclidean distance (lower is closer).
    pub score: f32,
}

/// Options of [`Gallery::search`].
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOptions {
    /// Number of results per query (at least 1; fewer when the gallery is smaller).
    pub k: usize,
    /// Minimum similarity (cosine) or maximum distance (euclidean) of a result.
    pub min_score: Option<f32>,
    /// Return only the best entry of each identity.
    pub group_by_identity: bool,
    /// Skip entries seen by this camera (cross-camera search).
    pub exclude_camera: Option<i32>,
}

impl SearchOptions {
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

/// An in-memory gallery of `dim`-dimensional embeddings.
#[derive(Debug)]
pub struct Gallery {
    dim: usize,
    metric: Metric,
    store: RwLock<Store>,
}

impl Gallery {
    /// An empty gallery of `dim`-dimensional embeddings compared by `metric`.
    pub fn new(dim: usize, metric: Metric) -> Result<Self> {
        if dim == 0 {
            return Err(Error::InvalidInput("dimension must be at least 1".into()));
        }
        Ok(Self {
            dim,
            metric,
            store: RwLock::new(Store::default()),
        })
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
            let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm == 0.0 || !norm.is_finite() {
                return Err(Error::InvalidInput(
                    "a zero embedding has no direction (cosine metric)".into(),
                ));
            }
            return Ok(vector.iter().map(|v| v / norm).collect());
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
        // Validated: from here on nothing fails, so a batch is never half-applied.
        for ((e, vector), &id) in entries.into_iter().zip(vectors).zip(&ids) {
            let row = store.ids.len();
            store.position.insert(id, row);
            store.ids.push(id);
            store.identities.push(e.identity);
            store.cameras.push(e.camera);
            store.tags.push(e.tag);
            store.vectors.extend(vector);
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
        let mut store = self.write();
        let row = *store.position.get(&id).ok_or_else(|| not_found(id))?;
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
        remove_row(&mut store, row, self.dim);
        Ok(())
    }

    /// Removes every entry of `identity`; returns how many were removed.
    pub fn remove_identity(&self, identity: u64) -> usize {
        let mut store = self.write();
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
        removed
    }

    /// The entry `id`, if present.
    pub fn get(&self, id: u64) -> Option<Entry> {
        let store = self.read();
        store
            .position
            .get(&id)
            .map(|&row| entry_at(&store, row, self.dim))
    }

    /// A snapshot of every entry, in storage order.
    pub fn entries(&self) -> Vec<Entry> {
        let store = self.read();
        (0..store.ids.len())
            .map(|row| entry_at(&store, row, self.dim))
            .collect()
    }

    /// The best matches of each query (`queries.len()` a multiple of `dim`), sorted best
    /// first with ties broken by id. An empty gallery gives empty results.
    pub fn search(&self, queries: &[f32], options: &SearchOptions) -> Result<Vec<Vec<Match>>> {
        if options.k == 0 {
            return Err(Error::InvalidInput("k must be at least 1".into()));
        }
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
    Error::InvalidInput(format!("no entry with id {id}"))
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
