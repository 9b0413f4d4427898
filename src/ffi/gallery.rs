//! `reid_gallery`: labelled embeddings and nearest-neighbour search, in memory or in a
//! durable file. Internally synchronized: many threads may search at once; a mutation waits
//! for running searches and blocks new ones while it runs.

use std::ffi::c_char;

use super::boundary::{
    self, guard, guard_value, input_rows, input_slice, output_slice, path, require_out, text,
    write_bytes, write_optional,
};
use super::extractor::{calibration_of, reid_extractor};
use super::handle::{Handle, borrow, free, into_raw};
use super::search_options::{reid_search_options, search_options};
use super::status::{Failure, Outcome, reid_status};
use crate::eval::Metric;
use crate::gallery::{Gallery, NewEntry, TimeSpan};

/// How a gallery compares embeddings.
#[repr(i32)]
#[derive(Debug, Clone, Copy)]
pub enum reid_metric {
    /// Cosine similarity (vectors are stored L2-normalized); scores in [-1, 1].
    REID_METRIC_COSINE = 0,
    /// Squared euclidean distance; scores are distances (lower is closer).
    REID_METRIC_EUCLIDEAN = 1,
}

/// One search result: the entry, its labels and its score.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct reid_match {
    /// Entry id.
    pub id: u64,
    /// Identity label of the entry.
    pub identity: u64,
    /// Camera of the entry.
    pub camera: i32,
    /// Cosine similarity (higher is closer) or squared euclidean distance (lower is closer).
    pub score: f32,
}

/// A gallery handle.
#[repr(C)]
pub struct reid_gallery {
    tag: u64,
    inner: Gallery,
}

// SAFETY: repr(C), tag first.
unsafe impl Handle for reid_gallery {
    const TAG: u64 = 0x5245_4944_4741_4c4c; // "REIDGALL"
    const NAME: &'static str = "reid_gallery";
}

fn metric(value: i32) -> Outcome<Metric> {
    match value {
        0 => Ok(Metric::Cosine),
        1 => Ok(Metric::Euclidean),
        _ => Err(Failure::invalid(format!("unknown metric {value}"))),
    }
}

/// Hands a new gallery to the caller.
///
/// # Safety
/// `out` checked non-NULL and valid for writing.
unsafe fn hand_out(gallery: Gallery, out: *mut *mut reid_gallery) {
    let handle = into_raw(reid_gallery {
        tag: reid_gallery::TAG,
        inner: gallery,
    });
    // SAFETY: the caller's contract.
    unsafe { out.write(handle) };
}

/// # Safety
/// `gallery` NULL or a live gallery handle.
unsafe fn live<'a>(gallery: *const reid_gallery) -> Outcome<&'a Gallery> {
    // SAFETY: forwarded contract.
    Ok(&unsafe { borrow(gallery, "gallery") }?.inner)
}

/// Checks that `dim` is the gallery's dimension.
fn same_dim(gallery: &Gallery, dim: usize) -> Outcome {
    boundary::same_dim(gallery.dim(), dim, "a gallery")
}

/// The gallery and a caller's `count` embeddings of `dim` floats (the gallery's dimension)
/// with their identities.
///
/// # Safety
/// `gallery` NULL or live; `vectors` valid for `count × dim` floats, `identities` for `count`.
unsafe fn labelled_rows<'a>(
    gallery: *const reid_gallery,
    vectors: *const f32,
    count: usize,
    dim: usize,
    identities: *const u64,
) -> Outcome<(&'a Gallery, &'a [f32], &'a [u64])> {
    // SAFETY: forwarded contract.
    let gallery = unsafe { live(gallery) }?;
    same_dim(gallery, dim)?;
    // SAFETY: forwarded contract.
    let (vectors, identities) = unsafe {
        (
            input_rows(vectors, count, dim, "vectors")?,
            input_slice(identities, count, "identities")?,
        )
    };
    Ok((gallery, vectors, identities))
}

/// Creates an empty in-memory gallery of `dim`-dimensional embeddings compared by `metric`
/// (a `reid_metric`). Free with `reid_gallery_free`.
///
/// Errors: `REID_INVALID_ARGUMENT` (`dim` 0 or above 65,536, unknown metric, NULL output).
///
/// # Safety
/// `out_gallery` valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_new(
    dim: usize,
    metric: i32,
    out_gallery: *mut *mut reid_gallery,
) -> reid_status {
    guard(|| {
        require_out(out_gallery, "out_gallery")?;
        let gallery = Gallery::new(dim, self::metric(metric)?)?;
        // SAFETY: checked above.
        unsafe { hand_out(gallery, out_gallery) };
        Ok(())
    })
}

/// Creates a durable gallery at `path` (which must not hold one): every later mutation is
/// committed before the call returns, and survives a crash. `path` is a location: a file path
/// (or `sqlite:PATH`), or a PostgreSQL database with pgvector,
/// `postgres://user@host:port/database?gallery=NAME` (a build with the `postgres` feature;
/// the gallery is shared by every process that opens the same location).
///
/// Errors: `REID_INVALID_ARGUMENT`, `REID_GALLERY_ERROR` (the gallery exists, or cannot be
/// created; the database cannot be reached).
///
/// # Safety
/// `path` a NUL-terminated string; `out_gallery` valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_create(
    path: *const c_char,
    dim: usize,
    metric: i32,
    out_gallery: *mut *mut reid_gallery,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let path = unsafe { self::path(path, "path") }?;
        require_out(out_gallery, "out_gallery")?;
        let gallery = Gallery::create(&path, dim, self::metric(metric)?)?;
        // SAFETY: checked above.
        unsafe { hand_out(gallery, out_gallery) };
        Ok(())
    })
}

/// Opens an existing durable gallery (a location, as for `reid_gallery_create`); later
/// mutations are committed to it. A corrupt, truncated or foreign file or database is refused
/// and left unchanged.
///
/// Errors: `REID_INVALID_ARGUMENT`, `REID_GALLERY_ERROR`, `REID_IO_ERROR`, `REID_NOT_FOUND`
/// (no gallery of that name in the database).
///
/// # Safety
/// `path` a NUL-terminated string; `out_gallery` valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_open(
    path: *const c_char,
    out_gallery: *mut *mut reid_gallery,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let path = unsafe { self::path(path, "path") }?;
        require_out(out_gallery, "out_gallery")?;
        let gallery = Gallery::open(&path)?;
        // SAFETY: checked above.
        unsafe { hand_out(gallery, out_gallery) };
        Ok(())
    })
}

/// Reads a gallery file into a new in-memory gallery (later changes are not written back;
/// use `reid_gallery_save`).
///
/// Errors: as `reid_gallery_open`.
///
/// # Safety
/// As for `reid_gallery_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_load(
    path: *const c_char,
    out_gallery: *mut *mut reid_gallery,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let path = unsafe { self::path(path, "path") }?;
        require_out(out_gallery, "out_gallery")?;
        let gallery = Gallery::load(&path)?;
        // SAFETY: checked above.
        unsafe { hand_out(gallery, out_gallery) };
        Ok(())
    })
}

/// Writes the whole gallery to `path` atomically: the file is either the old one or the
/// complete new one, never half-written. Thread-safe (a snapshot is taken).
///
/// Errors: `REID_INVALID_ARGUMENT`, `REID_INVALID_HANDLE`, `REID_GALLERY_ERROR`,
/// `REID_IO_ERROR`.
///
/// # Safety
/// `gallery` NULL or live; `path` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_save(
    gallery: *const reid_gallery,
    path: *const c_char,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let (gallery, path) = unsafe { (live(gallery)?, self::path(path, "path")?) };
        Ok(gallery.save(&path)?)
    })
}

/// Frees a gallery (a durable one has nothing pending: every mutation was already
/// committed). NULL is a no-op. No other thread may be using it.
///
/// # Safety
/// `gallery` NULL or a live gallery handle, not used again afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_free(gallery: *mut reid_gallery) {
    // SAFETY: the caller's contract.
    unsafe { free(gallery) };
}

/// Number of entries; 0 for NULL, an invalid handle or a database that cannot be read
/// (`reid_gallery_count` says why). Thread-safe.
///
/// # Safety
/// `gallery` NULL or a live gallery handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_len(gallery: *const reid_gallery) -> usize {
    // SAFETY: the caller's contract.
    guard_value(0, || Ok(unsafe { live(gallery) }?.len()?))
}

/// Writes the number of entries to `*out_len`. Unlike `reid_gallery_len`, a failure is
/// reported: a database gallery asks its server, which can be unreachable. Thread-safe.
///
/// Errors: `REID_INVALID_ARGUMENT` (`out_len` NULL), `REID_INVALID_HANDLE`,
/// `REID_GALLERY_ERROR` (the database cannot be read).
///
/// # Safety
/// `gallery` NULL or live; `out_len` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_count(
    gallery: *const reid_gallery,
    out_len: *mut usize,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let gallery = unsafe { live(gallery) }?;
        require_out(out_len, "out_len")?;
        let len = gallery.len()?;
        // SAFETY: checked non-NULL.
        unsafe { out_len.write(len) };
        Ok(())
    })
}

/// The gallery's `reid_metric`; -1 for NULL or an invalid handle. Thread-safe.
///
/// # Safety
/// `gallery` NULL or a live gallery handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_metric(gallery: *const reid_gallery) -> i32 {
    // SAFETY: the caller's contract.
    guard_value(-1, || {
        Ok(match unsafe { live(gallery) }?.metric() {
            Metric::Cosine => reid_metric::REID_METRIC_COSINE as i32,
            Metric::Euclidean => reid_metric::REID_METRIC_EUCLIDEAN as i32,
        })
    })
}

/// 1 when entry `id` is in the gallery; 0 when it is not, for NULL or an invalid handle, or
/// a database that cannot be read (`reid_gallery_get` reports why). Thread-safe.
///
/// # Safety
/// `gallery` NULL or a live gallery handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_contains(gallery: *const reid_gallery, id: u64) -> i32 {
    // SAFETY: the caller's contract.
    guard_value(0, || Ok(i32::from(unsafe { live(gallery) }?.contains(id)?)))
}

/// Embedding dimension; 0 for NULL or an invalid handle. Thread-safe.
///
/// # Safety
/// `gallery` NULL or a live gallery handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_dim(gallery: *const reid_gallery) -> usize {
    // SAFETY: the caller's contract.
    guard_value(0, || Ok(unsafe { live(gallery) }?.dim()))
}

/// Adds one embedding of `dim` floats with its identity and camera; `*out_id` (optional)
/// receives the new entry's id. Identities and ids are below 2^63 (files store int64);
/// cameras are numbered from 0. Thread-safe (exclusive with other mutations and searches).
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL, non-finite values, a zero vector under cosine, an
/// identity or id of 2^63 or more, a negative camera), `REID_INVALID_HANDLE`,
/// `REID_DIMENSION_MISMATCH`, `REID_GALLERY_ERROR` (durable file cannot be written; the
/// gallery is unchanged).
///
/// # Safety
/// `gallery` NULL or live; `vector` points to `dim` floats; `out_id` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_add(
    gallery: *mut reid_gallery,
    vector: *const f32,
    dim: usize,
    identity: u64,
    camera: i32,
    out_id: *mut u64,
) -> reid_status {
    // SAFETY: the caller's contract.
    unsafe {
        add_one(gallery, vector, dim, out_id, |v| {
            Ok(NewEntry::new(identity, camera, v))
        })
    }
}

/// Adds the entry `entry` makes of the caller's `dim` floats.
///
/// # Safety
/// As for `reid_gallery_add`.
unsafe fn add_one(
    gallery: *mut reid_gallery,
    vector: *const f32,
    dim: usize,
    out_id: *mut u64,
    entry: impl FnOnce(Vec<f32>) -> crate::Result<NewEntry>,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let gallery = unsafe { live(gallery) }?;
        same_dim(gallery, dim)?;
        // SAFETY: the caller's contract.
        let vector = unsafe { input_slice(vector, dim, "vector") }?;
        let id = gallery.add(entry(vector.to_vec())?)?;
        // SAFETY: the caller's contract.
        unsafe { write_optional(out_id, id) };
        Ok(())
    })
}

/// Adds one embedding seen from `time_start` to `time_end` (seconds on the caller's clock;
/// equal for one frame), for searches with `REID_SEARCH_TIME_WINDOW`; otherwise as
/// `reid_gallery_add`.
///
/// Errors: as `reid_gallery_add`, and `REID_INVALID_ARGUMENT` for times that are not finite
/// or out of order.
///
/// # Safety
/// As for `reid_gallery_add`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_add_timed(
    gallery: *mut reid_gallery,
    vector: *const f32,
    dim: usize,
    identity: u64,
    camera: i32,
    time_start: f64,
    time_end: f64,
    out_id: *mut u64,
) -> reid_status {
    // SAFETY: the caller's contract.
    unsafe {
        add_one(gallery, vector, dim, out_id, |v| {
            let time = TimeSpan::new(time_start, time_end)?;
            Ok(NewEntry::new(identity, camera, v).with_time(time))
        })
    }
}

/// Adds `count` embeddings (`count × dim` floats, row-major) with their identities and
/// cameras, all or nothing. `ids` (optional, `count` items) gives the entries' ids (an id
/// already present fails the whole batch); NULL assigns new ids. `out_ids` (optional, `count`
/// items) receives the ids. Thread-safe.
///
/// Errors: as `reid_gallery_add`.
///
/// # Safety
/// `vectors` points to `count × dim` floats, `identities` and `cameras` to `count` items,
/// `ids` and `out_ids` NULL or `count` items.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_add_batch(
    gallery: *mut reid_gallery,
    vectors: *const f32,
    count: usize,
    dim: usize,
    ids: *const u64,
    identities: *const u64,
    cameras: *const i32,
    out_ids: *mut u64,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract for each array.
        let (gallery, vectors, identities, cameras) = unsafe {
            let (gallery, vectors, identities) =
                labelled_rows(gallery, vectors, count, dim, identities)?;
            (
                gallery,
                vectors,
                identities,
                input_slice(cameras, count, "cameras")?,
            )
        };
        let ids = if ids.is_null() {
            None
        } else {
            // SAFETY: the caller's contract.
            Some(unsafe { input_slice(ids, count, "ids") }?)
        };
        let out_ids = if out_ids.is_null() {
            None
        } else {
            // SAFETY: the caller's contract.
            Some(unsafe { output_slice(out_ids, count, "out_ids") }?)
        };
        let entries = (0..count)
            .map(|i| NewEntry {
                id: ids.map(|ids| ids[i]),
                identity: identities[i],
                camera: cameras[i],
                tag: None,
                time: None,
                vector: vectors[i * dim..(i + 1) * dim].to_vec(),
                crop: None,
            })
            .collect();
        let assigned = gallery.add_batch(entries)?;
        if let Some(out) = out_ids {
            out.copy_from_slice(&assigned);
        }
        Ok(())
    })
}

/// Finds the score threshold that accepts `target_far` (between 0 and 1) of the
/// different-identity pairs of a labelled set — `count` embeddings (`count × dim` floats) and
/// their identities, every pair of rows scored as searches score them, at most 5,000 rows —
/// and keeps it in the gallery (durably for a file or database), for searches with
/// `REID_SEARCH_CALIBRATED`. `*out_threshold` (optional) receives the threshold (a minimum
/// similarity, or a maximum squared distance), `*out_tar` (optional) the share of
/// same-identity pairs it accepts. Thread-safe.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL arrays, a target outside (0, 1), no same- or no
/// different-identity pair, too many rows, non-finite values), `REID_INVALID_HANDLE`,
/// `REID_DIMENSION_MISMATCH`, `REID_GALLERY_ERROR`.
///
/// # Safety
/// `vectors` points to `count × dim` floats, `identities` to `count` items; `out_threshold`
/// and `out_tar` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_calibrate(
    gallery: *mut reid_gallery,
    vectors: *const f32,
    count: usize,
    dim: usize,
    identities: *const u64,
    target_far: f64,
    out_threshold: *mut f32,
    out_tar: *mut f64,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract for each array.
        let (gallery, vectors, identities) =
            unsafe { labelled_rows(gallery, vectors, count, dim, identities) }?;
        let calibration = gallery.calibrate(vectors, identities, target_far)?;
        // SAFETY: the caller's contract.
        unsafe { write_calibration(&calibration, out_threshold, out_tar) };
        Ok(())
    })
}

/// Writes a calibration's threshold and true-accept rate through the caller's optional
/// outputs.
///
/// # Safety
/// Each pointer NULL or writable.
pub(crate) unsafe fn write_calibration(
    calibration: &crate::calibration::Calibration,
    out_threshold: *mut f32,
    out_tar: *mut f64,
) {
    // SAFETY: forwarded contract.
    unsafe {
        write_optional(out_threshold, calibration.threshold);
        write_optional(out_tar, calibration.tar);
    }
}

/// Keeps the threshold calibrated for `extractor`'s model (`reid_extractor_calibration`) as
/// the gallery's, for searches with `REID_SEARCH_CALIBRATED` (durably for a file or database).
/// Thread-safe.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL; a euclidean gallery: the model's threshold is a
/// cosine similarity), `REID_INVALID_HANDLE`, `REID_NOT_FOUND` (the model carries none),
/// `REID_GALLERY_ERROR`.
///
/// # Safety
/// `gallery` and `extractor` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_adopt_calibration(
    gallery: *mut reid_gallery,
    extractor: *const reid_extractor,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let (gallery, extractor) = unsafe { (live(gallery)?, reid_extractor::live(extractor)?) };
        Ok(gallery.adopt_calibration(calibration_of(extractor)?)?)
    })
}

/// Binds the gallery to the model whose embeddings it holds, by its fingerprint
/// (`reid_extractor_fingerprint`): a gallery that records none, or is empty, records it; one
/// that records another fails with `REID_MODEL_MISMATCH` (embeddings of two models are not
/// comparable) unless `replace` is non-zero (the entries were re-embedded, or the caller
/// accepts the mix), which records the new one. Durable for a file or database gallery.
/// Thread-safe.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL, not 1–128 printable ASCII characters),
/// `REID_INVALID_HANDLE`, `REID_MODEL_MISMATCH`, `REID_GALLERY_ERROR`.
///
/// # Safety
/// `gallery` NULL or live; `fingerprint` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_bind_model(
    gallery: *mut reid_gallery,
    fingerprint: *const c_char,
    replace: i32,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let (gallery, fingerprint) = unsafe { (live(gallery)?, text(fingerprint, "fingerprint")?) };
        Ok(gallery.bind_model(fingerprint, replace != 0)?)
    })
}

/// Keeps each entry's crop from now on (`reid_gallery_set_crop`), each at most `max_bytes`
/// (1 to 16 MiB), so that `reid_gallery_reembed` can embed them again with a new model.
/// Recorded with the gallery (durably for a file or database). Thread-safe.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL, `max_bytes` out of range), `REID_INVALID_HANDLE`,
/// `REID_GALLERY_ERROR`.
///
/// # Safety
/// `gallery` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_keep_crops(
    gallery: *mut reid_gallery,
    max_bytes: usize,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        Ok(unsafe { live(gallery) }?.keep_crops(max_bytes)?)
    })
}

/// Gives entry `id` its crop: the image its embedding was computed from, encoded (JPEG, PNG,
/// BMP or WebP, `size` bytes within the gallery's bound), replacing any it had. Thread-safe.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL; the gallery keeps no crops; over its bound; an image
/// that does not decode), `REID_INVALID_HANDLE`, `REID_NOT_FOUND`, `REID_GALLERY_ERROR`.
///
/// # Safety
/// `gallery` NULL or live; `crop` points to `size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_set_crop(
    gallery: *mut reid_gallery,
    id: u64,
    crop: *const u8,
    size: usize,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let (gallery, crop) = unsafe { (live(gallery)?, input_slice(crop, size, "crop")?) };
        Ok(gallery.set_crop(id, crop.to_vec())?)
    })
}

/// Copies entry `id`'s crop into `buf`; `*out_len` receives its size in bytes (0: the entry
/// has none), also when the buffer is too small. Thread-safe.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL `out_len`, `buf` NULL with `cap` > 0),
/// `REID_INVALID_HANDLE`, `REID_NOT_FOUND`, `REID_BUFFER_TOO_SMALL` (nothing written to
/// `buf`), `REID_GALLERY_ERROR`.
///
/// # Safety
/// `gallery` NULL or live; `buf` valid for writing `cap` bytes; `out_len` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_crop(
    gallery: *const reid_gallery,
    id: u64,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> reid_status {
    guard(|| {
        require_out(out_len, "out_len")?;
        // SAFETY: the caller's contract.
        let crop = unsafe { live(gallery) }?.crop(id)?.unwrap_or_default();
        // SAFETY: the caller's contract.
        unsafe { write_bytes(&crop, buf, cap, out_len, "the crop") }
    })
}

/// Re-embeds every entry from its kept crop with `extractor`'s model (after a finetune), then
/// in one transaction replaces every embedding, binds the gallery to the model's fingerprint
/// and takes the model's calibration (or drops the old model's, which would not fit). Nothing
/// changes on failure. `*out_count` (optional) receives the number of entries re-embedded.
/// Thread-safe; searches meanwhile see the old embeddings.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL; an entry without a crop; a model of another
/// dimension; entries added or removed meanwhile), `REID_INVALID_HANDLE`,
/// `REID_RUNTIME_ERROR`, `REID_GALLERY_ERROR`.
///
/// # Safety
/// `gallery` and `extractor` NULL or live; `out_count` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_reembed(
    gallery: *mut reid_gallery,
    extractor: *const reid_extractor,
    out_count: *mut usize,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let (gallery, extractor) = unsafe { (live(gallery)?, reid_extractor::live(extractor)?) };
        let count = gallery.reembed(extractor.fingerprint(), extractor.calibration(), |crops| {
            extractor.extract_encoded(crops)
        })?;
        // SAFETY: the caller's contract.
        unsafe { write_optional(out_count, count) };
        Ok(())
    })
}

/// Replaces the embedding, identity and camera of entry `id` (its tag and time span are kept).
/// Thread-safe.
///
/// Errors: as `reid_gallery_add`, plus `REID_NOT_FOUND`.
///
/// # Safety
/// `gallery` NULL or live; `vector` points to `dim` floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_update(
    gallery: *mut reid_gallery,
    id: u64,
    vector: *const f32,
    dim: usize,
    identity: u64,
    camera: i32,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let gallery = unsafe { live(gallery) }?;
        same_dim(gallery, dim)?;
        // SAFETY: the caller's contract.
        let vector = unsafe { input_slice(vector, dim, "vector") }?;
        let old = gallery.get(id)?;
        let (tag, time) = old.map_or((None, None), |old| (old.tag, old.time));
        Ok(gallery.update(
            id,
            NewEntry {
                id: None,
                identity,
                camera,
                tag,
                time,
                vector: vector.to_vec(),
                crop: None,
            },
        )?)
    })
}

/// Removes entry `id`. Thread-safe.
///
/// Errors: `REID_INVALID_ARGUMENT`, `REID_INVALID_HANDLE`, `REID_NOT_FOUND`,
/// `REID_GALLERY_ERROR`.
///
/// # Safety
/// `gallery` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_remove(gallery: *mut reid_gallery, id: u64) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        Ok(unsafe { live(gallery) }?.remove(id)?)
    })
}

/// Removes every entry of `identity`; `*out_removed` (optional) receives how many (0 is not
/// an error). Thread-safe.
///
/// Errors: `REID_INVALID_ARGUMENT`, `REID_INVALID_HANDLE`, `REID_GALLERY_ERROR`.
///
/// # Safety
/// `gallery` NULL or live; `out_removed` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_remove_identity(
    gallery: *mut reid_gallery,
    identity: u64,
    out_removed: *mut usize,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let removed = unsafe { live(gallery) }?.remove_identity(identity)?;
        // SAFETY: the caller's contract.
        unsafe { write_optional(out_removed, removed) };
        Ok(())
    })
}

/// Reads entry `id`: its embedding (as stored: unit length in a cosine gallery) into
/// `out_vector` (`cap` ≥ dim floats), its identity and camera into the optional outputs.
/// `*out_len` (optional) gets the dimension, also when the buffer is too small. Thread-safe.
///
/// Errors: `REID_INVALID_ARGUMENT`, `REID_INVALID_HANDLE`, `REID_BUFFER_TOO_SMALL` (`cap` <
/// dim), `REID_NOT_FOUND`.
///
/// # Safety
/// `gallery` NULL or live; `out_vector` valid for `cap` floats; the others NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_get(
    gallery: *const reid_gallery,
    id: u64,
    out_vector: *mut f32,
    cap: usize,
    out_len: *mut usize,
    out_identity: *mut u64,
    out_camera: *mut i32,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let gallery = unsafe { live(gallery) }?;
        // SAFETY: the caller's contract.
        unsafe { write_optional(out_len, gallery.dim()) };
        if cap < gallery.dim() {
            return Err(Failure::new(
                reid_status::REID_BUFFER_TOO_SMALL,
                format!(
                    "an embedding needs {} floats, the buffer holds {cap}",
                    gallery.dim()
                ),
            ));
        }
        // SAFETY: the caller's contract.
        let out = unsafe { output_slice(out_vector, gallery.dim(), "out_vector") }?;
        let entry = gallery.get(id)?.ok_or_else(|| {
            Failure::from(crate::Error::NotFound(format!("no entry with id {id}")))
        })?;
        out.copy_from_slice(&entry.vector);
        // SAFETY: the caller's contract.
        unsafe {
            write_optional(out_identity, entry.identity);
            write_optional(out_camera, entry.camera);
        }
        Ok(())
    })
}

/// Lists the ids of every entry, ascending, into `out_ids` (`cap` items) and their number into
/// `*out_len`. With a buffer too small, `*out_len` gets the number needed and nothing else is
/// written. A snapshot: ids added or removed by other threads afterwards are not reflected.
/// Thread-safe.
///
/// Errors: `REID_INVALID_ARGUMENT` (`out_len` NULL, `out_ids` NULL with entries to write),
/// `REID_INVALID_HANDLE`, `REID_BUFFER_TOO_SMALL`.
///
/// # Safety
/// `gallery` NULL or live; `out_ids` valid for `cap` items; `out_len` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_ids(
    gallery: *const reid_gallery,
    out_ids: *mut u64,
    cap: usize,
    out_len: *mut usize,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let gallery = unsafe { live(gallery) }?;
        require_out(out_len, "out_len")?;
        let ids = gallery.ids()?;
        // SAFETY: checked non-NULL.
        unsafe { out_len.write(ids.len()) };
        if cap < ids.len() {
            return Err(Failure::new(
                reid_status::REID_BUFFER_TOO_SMALL,
                format!(
                    "{} ids need {} slots, the buffer holds {cap}",
                    ids.len(),
                    ids.len()
                ),
            ));
        }
        // SAFETY: the caller's contract.
        let out = unsafe { output_slice(out_ids, ids.len(), "out_ids") }?;
        out.copy_from_slice(&ids);
        Ok(())
    })
}

fn to_c(m: &crate::gallery::Match) -> reid_match {
    reid_match {
        id: m.id,
        identity: m.identity,
        camera: m.camera,
        score: m.score,
    }
}

/// Finds the best matches of one query embedding (`dim` floats), best first, ties broken by
/// id. `options` NULL means `reid_search_options_default()`. Writes up to `k` matches to
/// `out_matches` and their number to `*out_len` (fewer than `k` when the gallery is small or
/// filters apply). Thread-safe; runs concurrently with other searches.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL, k 0, unknown flags), `REID_INVALID_HANDLE`,
/// `REID_DIMENSION_MISMATCH`, `REID_BUFFER_TOO_SMALL` (`out_cap` < `k`; `*out_len` gets `k`).
///
/// # Safety
/// `gallery` NULL or live; `query` points to `dim` floats; `options` NULL or valid;
/// `out_matches` valid for `out_cap` items; `out_len` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_search(
    gallery: *const reid_gallery,
    query: *const f32,
    dim: usize,
    options: *const reid_search_options,
    out_matches: *mut reid_match,
    out_cap: usize,
    out_len: *mut usize,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let gallery = unsafe { live(gallery) }?;
        same_dim(gallery, dim)?;
        let options = search_options(options)?;
        require_out(out_len, "out_len")?;
        if out_cap < options.k {
            // SAFETY: checked non-NULL.
            unsafe { out_len.write(options.k) };
            return Err(Failure::new(
                reid_status::REID_BUFFER_TOO_SMALL,
                format!(
                    "k = {} matches need {} slots, the buffer holds {out_cap}",
                    options.k, options.k
                ),
            ));
        }
        // SAFETY: the caller's contract.
        let (query, out) = unsafe {
            (
                input_slice(query, dim, "query")?,
                output_slice(out_matches, options.k, "out_matches")?,
            )
        };
        let results = gallery.search(query, &options)?;
        let matches = &results[0];
        for (slot, m) in out.iter_mut().zip(matches) {
            *slot = to_c(m);
        }
        // SAFETY: checked non-NULL.
        unsafe { out_len.write(matches.len()) };
        Ok(())
    })
}

/// Searches `count` queries at once (`count × dim` floats; faster than one call each). The
/// matches of query `q` are written from `out_matches[q × k]`, and their number to
/// `out_counts[q]`; `out_cap` must be at least `count × k`. Otherwise as
/// `reid_gallery_search`.
///
/// Errors: as `reid_gallery_search` (`REID_BUFFER_TOO_SMALL` when `out_cap` < `count × k`).
///
/// # Safety
/// `queries` points to `count × dim` floats; `out_matches` to `out_cap` items; `out_counts`
/// to `count` writable items.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_search_batch(
    gallery: *const reid_gallery,
    queries: *const f32,
    count: usize,
    dim: usize,
    options: *const reid_search_options,
    out_matches: *mut reid_match,
    out_cap: usize,
    out_counts: *mut usize,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let gallery = unsafe { live(gallery) }?;
        same_dim(gallery, dim)?;
        let options = search_options(options)?;
        let slots = count
            .checked_mul(options.k)
            .ok_or_else(|| Failure::invalid("count × k overflows"))?;
        if out_cap < slots {
            return Err(Failure::new(
                reid_status::REID_BUFFER_TOO_SMALL,
                format!(
                    "{count} queries × k = {} need {slots} slots, the buffer holds {out_cap}",
                    options.k
                ),
            ));
        }
        // SAFETY: the caller's contract.
        let (queries, out, counts) = unsafe {
            (
                input_rows(queries, count, dim, "queries")?,
                output_slice(out_matches, slots, "out_matches")?,
                output_slice(out_counts, count, "out_counts")?,
            )
        };
        if count == 0 {
            return Ok(());
        }
        let results = gallery.search(queries, &options)?;
        for (q, matches) in results.iter().enumerate() {
            let row = &mut out[q * options.k..(q + 1) * options.k];
            for (slot, m) in row.iter_mut().zip(matches) {
                *slot = to_c(m);
            }
            counts[q] = matches.len();
        }
        Ok(())
    })
}

/// Writes the gallery as a NumPy `.npz` (arrays `vectors` float32 [N, D], `ids`,
/// `identities`, `cameras` int64) for Python / faiss users, atomically. Thread-safe.
///
/// Errors: `REID_INVALID_ARGUMENT`, `REID_INVALID_HANDLE`, `REID_IO_ERROR`.
///
/// # Safety
/// `gallery` NULL or live; `path` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_export_npz(
    gallery: *const reid_gallery,
    path: *const c_char,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let (gallery, path) = unsafe { (live(gallery)?, self::path(path, "path")?) };
        Ok(gallery.export_npz(&path)?)
    })
}

/// Adds the entries of a `.npz` (as `reid_gallery_export_npz` writes it; `ids` optional),
/// all or nothing; `*out_added` (optional) receives how many. Thread-safe.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL, an id already present, negative labels),
/// `REID_INVALID_HANDLE`, `REID_DATA_FILE_ERROR` (not a NumPy file, a missing array),
/// `REID_IO_ERROR`, `REID_GALLERY_ERROR`.
///
/// # Safety
/// `gallery` NULL or live; `path` a NUL-terminated string; `out_added` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_gallery_import_npz(
    gallery: *mut reid_gallery,
    path: *const c_char,
    out_added: *mut usize,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let (gallery, path) = unsafe { (live(gallery)?, self::path(path, "path")?) };
        let added = gallery.import_npz(&path)?;
        // SAFETY: the caller's contract.
        unsafe { write_optional(out_added, added.len()) };
        Ok(())
    })
}
