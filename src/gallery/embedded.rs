//! The embedded store: every entry in memory as columns, optionally backed by a durable
//! SQLite file that each mutation is committed to before it is applied in memory.
//!
//! Vectors live in one contiguous row-major buffer (N × D × 4 bytes); a removal moves the
//! last row into the hole, so storage stays dense. Many threads may search at once while
//! writers take turns. Crops stay in the file of a durable gallery (read when asked for), in
//! memory otherwise.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::persist::Db;
use super::search::{self, Columns};
use super::{
    Entry, Match, SearchOptions, Selection, Setting, Store, TimeSpan, assign_ids,
    changed_meanwhile, not_found, parse_counter,
};
use crate::distance::Metric;
use crate::error::Result;

#[derive(Debug, Default)]
struct Rows {
    ids: Vec<u64>,
    identities: Vec<u64>,
    cameras: Vec<i32>,
    tags: Vec<Option<String>>,
    times: Vec<Option<TimeSpan>>,
    /// Each entry's crop in an in-memory gallery (a durable one keeps them in its file).
    crops: Vec<Option<Vec<u8>>>,
    vectors: Vec<f32>,
    position: HashMap<u64, usize>,
    next_id: u64,
}

/// The in-memory store, with the SQLite file of a durable gallery.
#[derive(Debug)]
pub(crate) struct Embedded {
    dim: usize,
    metric: Metric,
    rows: RwLock<Rows>,
    /// The gallery's settings ([`Store::meta`]), as in the file.
    meta: Mutex<BTreeMap<String, String>>,
    /// The database of a durable gallery; locked last (after the rows' or the settings' lock
    /// where a change takes them), so that no two threads wait for each other.
    db: Option<Mutex<Db>>,
}

impl Embedded {
    /// A store holding `entries` and the settings `meta`, committing later mutations to `db`
    /// when there is one.
    pub fn new(
        dim: usize,
        metric: Metric,
        entries: Vec<Entry>,
        meta: Vec<(String, String)>,
        db: Option<Db>,
    ) -> Self {
        let mut rows = Rows::default();
        for e in entries {
            rows.next_id = rows.next_id.max(e.id.saturating_add(1));
            push_entry(&mut rows, e, None);
        }
        Self {
            dim,
            metric,
            rows: RwLock::new(rows),
            meta: Mutex::new(meta.into_iter().collect()),
            db: db.map(Mutex::new),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Rows> {
        // A writer that panicked cannot leave a half-applied change (see `add`).
        self.rows.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Rows> {
        self.rows.write().unwrap_or_else(|p| p.into_inner())
    }

    fn settings(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.meta.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The same in-memory store with `crops` (by entry id) kept with its entries.
    pub fn with_crops(self, crops: Vec<(u64, Vec<u8>)>) -> Self {
        {
            let mut rows = self.write();
            for (id, crop) in crops {
                if let Some(&row) = rows.position.get(&id) {
                    rows.crops[row] = Some(crop);
                }
            }
        }
        self
    }

    /// The same store in memory only: the crops read from its file, the file let go.
    pub fn into_memory(mut self) -> Result<Self> {
        let crops = super::crops::all_crops(&self)?;
        self.db = None;
        Ok(self.with_crops(crops))
    }

    /// Runs `read` on the database of a durable gallery; `None` for an in-memory one.
    fn in_file<T>(&self, read: impl FnOnce(&mut Db) -> Result<T>) -> Option<Result<T>> {
        let db = self.db.as_ref()?;
        Some(read(&mut db.lock().unwrap_or_else(|p| p.into_inner())))
    }

    /// Runs `write` on the database of a durable gallery (nothing for an in-memory one).
    fn commit(&self, write: impl FnOnce(&mut Db) -> Result<()>) -> Result<()> {
        match &self.db {
            Some(db) => write(&mut db.lock().unwrap_or_else(|p| p.into_inner())),
            None => Ok(()),
        }
    }
}

impl Store for Embedded {
    fn is_durable(&self) -> bool {
        self.db.is_some()
    }

    fn len(&self) -> Result<usize> {
        Ok(self.read().ids.len())
    }

    fn add(
        &self,
        mut entries: Vec<Entry>,
        crops: Vec<Option<Vec<u8>>>,
        requested: &[Option<u64>],
    ) -> Result<Vec<u64>> {
        let mut rows = self.write();
        let (ids, next) = assign_ids(rows.next_id, requested, |id| {
            rows.position.contains_key(&id)
        })?;
        for (e, &id) in entries.iter_mut().zip(&ids) {
            e.id = id;
        }
        // The file first: memory changes only once the batch is on disk, in one transaction.
        self.commit(|db| db.insert(&entries, &crops))?;
        let durable = self.db.is_some();
        let mut crops = crops.into_iter();
        for e in entries {
            let crop = crops.next().flatten().filter(|_| !durable);
            push_entry(&mut rows, e, crop);
        }
        rows.next_id = next;
        Ok(ids)
    }

    fn update(&self, entry: Entry) -> Result<()> {
        let mut rows = self.write();
        let row = *rows
            .position
            .get(&entry.id)
            .ok_or_else(|| not_found(entry.id))?;
        self.commit(|db| db.update(&entry))?;
        rows.identities[row] = entry.identity;
        rows.cameras[row] = entry.camera;
        rows.tags[row] = entry.tag;
        rows.times[row] = entry.time;
        rows.vectors[row * self.dim..(row + 1) * self.dim].copy_from_slice(&entry.vector);
        Ok(())
    }

    fn remove(&self, id: u64) -> Result<()> {
        let mut rows = self.write();
        let row = *rows.position.get(&id).ok_or_else(|| not_found(id))?;
        self.commit(|db| db.delete(id))?;
        remove_row(&mut rows, row, self.dim);
        Ok(())
    }

    fn remove_identity(&self, identity: u64) -> Result<usize> {
        let mut rows = self.write();
        self.commit(|db| db.delete_identity(identity))?;
        let mut removed = 0;
        let mut row = 0;
        while row < rows.ids.len() {
            if rows.identities[row] == identity {
                remove_row(&mut rows, row, self.dim);
                removed += 1;
            } else {
                row += 1;
            }
        }
        Ok(removed)
    }

    fn get(&self, id: u64) -> Result<Option<Entry>> {
        let rows = self.read();
        Ok(rows
            .position
            .get(&id)
            .map(|&row| entry_at(&rows, row, self.dim)))
    }

    fn ids(&self) -> Result<Vec<u64>> {
        let mut ids = self.read().ids.clone();
        ids.sort_unstable();
        Ok(ids)
    }

    fn entries(&self) -> Result<Vec<Entry>> {
        let rows = self.read();
        Ok((0..rows.ids.len())
            .map(|row| entry_at(&rows, row, self.dim))
            .collect())
    }

    fn select(&self, selection: &Selection) -> Result<Vec<Entry>> {
        let rows = self.read();
        let mut picked: Vec<Entry> = (0..rows.ids.len())
            .filter(|&row| selection.picks(rows.identities[row], rows.tags[row].as_deref()))
            .map(|row| entry_at(&rows, row, self.dim))
            .collect();
        picked.sort_unstable_by_key(|e| e.id);
        Ok(picked)
    }

    fn relabel(&self, ids: &[u64], identity: u64) -> Result<()> {
        let mut rows = self.write();
        let positions = ids
            .iter()
            .map(|id| rows.position.get(id).copied().ok_or_else(|| not_found(*id)))
            .collect::<Result<Vec<usize>>>()?;
        self.commit(|db| db.relabel(ids, identity))?;
        for row in positions {
            rows.identities[row] = identity;
        }
        Ok(())
    }

    fn crop(&self, id: u64) -> Result<Option<Vec<u8>>> {
        if let Some(found) = self.in_file(|db| db.crop(id)) {
            return found?.ok_or_else(|| not_found(id));
        }
        let rows = self.read();
        let row = *rows.position.get(&id).ok_or_else(|| not_found(id))?;
        Ok(rows.crops[row].clone())
    }

    fn set_crop(&self, id: u64, crop: Vec<u8>) -> Result<()> {
        let mut rows = self.write();
        let row = *rows.position.get(&id).ok_or_else(|| not_found(id))?;
        match self.in_file(|db| db.set_crop(id, &crop)) {
            Some(stored) => stored.map(|_| ()),
            None => {
                rows.crops[row] = Some(crop);
                Ok(())
            }
        }
    }

    fn crops(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Option<Vec<u8>>)>> {
        if let Some(page) = self.in_file(|db| db.crops(after, limit)) {
            return page;
        }
        let rows = self.read();
        let mut ids: Vec<u64> = rows
            .ids
            .iter()
            .copied()
            .filter(|&id| after.is_none_or(|after| id > after))
            .collect();
        // Only the page is sorted: paging through N entries stays O(N) a page.
        if limit < ids.len() {
            ids.select_nth_unstable(limit);
            ids.truncate(limit);
        }
        ids.sort_unstable();
        Ok(ids
            .into_iter()
            .map(|id| (id, rows.crops[rows.position[&id]].clone()))
            .collect())
    }

    fn without_crop(&self) -> Result<Vec<u64>> {
        if let Some(ids) = self.in_file(|db| db.without_crop()) {
            return ids;
        }
        let rows = self.read();
        let mut ids: Vec<u64> = (0..rows.ids.len())
            .filter(|&row| rows.crops[row].is_none())
            .map(|row| rows.ids[row])
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    fn replace_vectors(&self, vectors: Vec<(u64, Vec<f32>)>, changes: &[Setting]) -> Result<()> {
        let mut rows = self.write();
        let positions = vectors
            .iter()
            .map(|(id, _)| rows.position.get(id).copied())
            .collect::<Option<Vec<usize>>>()
            .filter(|p| p.len() == rows.ids.len())
            .ok_or_else(changed_meanwhile)?;
        let mut settings = self.settings();
        self.commit(|db| db.replace_vectors(&vectors, changes))?;
        for ((_, vector), row) in vectors.into_iter().zip(positions) {
            rows.vectors[row * self.dim..(row + 1) * self.dim].copy_from_slice(&vector);
        }
        for (key, value) in changes {
            match value {
                Some(value) => settings.insert(key.to_string(), value.clone()),
                None => settings.remove(*key),
            };
        }
        Ok(())
    }

    fn increment_meta(&self, key: &str) -> Result<u64> {
        let mut settings = self.settings();
        let value = parse_counter(key, settings.get(key))? + 1;
        self.commit(|db| db.set_meta(key, &value.to_string()))?;
        settings.insert(key.to_string(), value.to_string());
        Ok(value)
    }

    fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self.settings().get(key).cloned())
    }

    fn all_meta(&self) -> Result<Vec<(String, String)>> {
        Ok(self
            .settings()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let mut settings = self.settings();
        self.commit(|db| db.set_meta(key, value))?;
        settings.insert(key.to_string(), value.to_string());
        Ok(())
    }

    fn search(&self, queries: &[f32], options: &SearchOptions) -> Result<Vec<Vec<Match>>> {
        let rows = self.read();
        let cols = Columns {
            dim: self.dim,
            metric: self.metric,
            vectors: &rows.vectors,
            ids: &rows.ids,
            identities: &rows.identities,
            cameras: &rows.cameras,
            times: &rows.times,
        };
        Ok(search::search(&cols, queries, options))
    }
}

fn entry_at(rows: &Rows, row: usize, dim: usize) -> Entry {
    Entry {
        id: rows.ids[row],
        identity: rows.identities[row],
        camera: rows.cameras[row],
        tag: rows.tags[row].clone(),
        time: rows.times[row],
        vector: rows.vectors[row * dim..(row + 1) * dim].to_vec(),
    }
}

/// Appends one entry (with its crop, in memory) to every column.
fn push_entry(rows: &mut Rows, e: Entry, crop: Option<Vec<u8>>) {
    let row = rows.ids.len();
    rows.position.insert(e.id, row);
    rows.ids.push(e.id);
    rows.identities.push(e.identity);
    rows.cameras.push(e.camera);
    rows.tags.push(e.tag);
    rows.times.push(e.time);
    rows.crops.push(crop);
    rows.vectors.extend(e.vector);
}

/// Moves the last row into `row` and shrinks every column by one.
fn remove_row(rows: &mut Rows, row: usize, dim: usize) {
    let last = rows.ids.len() - 1;
    let id = rows.ids[row];
    rows.ids.swap_remove(row);
    rows.identities.swap_remove(row);
    rows.cameras.swap_remove(row);
    rows.tags.swap_remove(row);
    rows.times.swap_remove(row);
    rows.crops.swap_remove(row);
    if row != last {
        rows.vectors
            .copy_within(last * dim..(last + 1) * dim, row * dim);
        let moved = rows.ids[row];
        rows.position.insert(moved, row);
    }
    rows.vectors.truncate(last * dim);
    rows.position.remove(&id);
}
