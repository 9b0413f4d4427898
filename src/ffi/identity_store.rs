//! `reid_identity_store`: global identities for the tracks of many cameras (one person, one
//! identity across cameras), in memory, in a file or in a PostgreSQL database. Internally
//! synchronized: every function may be called from several threads at once.

use std::ffi::c_char;

use super::boundary::{
    guard, guard_value, input_rows, input_slice, output_slice, path, require_out, same_dim,
    write_optional,
};
use super::gallery::write_calibration;
use super::handle::{Handle, borrow, free, into_raw};
use super::matching_config::{matching_config, reid_matching_config};
use super::status::{Failure, Outcome, reid_status};
use crate::gallery::TimeSpan;
use crate::identity_store::{IdentityStore, Sighting, Track};

/// An identity store handle.
#[repr(C)]
pub struct reid_identity_store {
    tag: u64,
    inner: IdentityStore,
}

// SAFETY: repr(C), tag first.
unsafe impl Handle for reid_identity_store {
    const TAG: u64 = 0x5245_4944_4944_5354; // "REIDIDST"
    const NAME: &'static str = "reid_identity_store";
}

/// One report of a tracker: track `track` of camera `camera`, seen from `time_start` to
/// `time_end` (seconds, one clock for every camera), with `crop_count` crops' embeddings.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct reid_track {
    /// The camera (0 or more).
    pub camera: i32,
    /// The tracker's id of the track on that camera (below 2^63).
    pub track: u64,
    /// First sighting of this report.
    pub time_start: f64,
    /// Last sighting of this report (at or after `time_start`).
    pub time_end: f64,
    /// `crop_count × dim` floats, row-major: the crops' embeddings.
    pub embeddings: *const f32,
    /// Number of crops (at least 1).
    pub crop_count: usize,
    /// Embedding dimension (the store's).
    pub dim: usize,
    /// `crop_count` weights of the crops (at least 0, not all 0), or NULL for equal weights.
    pub quality: *const f32,
}

/// What the store made of a report.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct reid_assignment {
    /// The track's global identity.
    pub identity: u64,
    /// The store's entry holding the report.
    pub entry: u64,
    /// The similarity to the identity joined, when `matched` is non-zero.
    pub score: f32,
    /// Non-zero when the identity was created for this track.
    pub created: i32,
    /// Non-zero when the track joined an identity by similarity (0 for a new identity, or a
    /// track already reported: it keeps its identity).
    pub matched: i32,
}

/// Where and when an identity was seen: one report of one track.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct reid_sighting {
    /// The camera.
    pub camera: i32,
    /// The tracker's id of the track.
    pub track: u64,
    /// First sighting of the report.
    pub time_start: f64,
    /// Last sighting of the report.
    pub time_end: f64,
    /// The store's entry holding the report.
    pub entry: u64,
}

/// # Safety
/// `store` NULL or a live identity store handle.
unsafe fn live<'a>(store: *const reid_identity_store) -> Outcome<&'a IdentityStore> {
    // SAFETY: forwarded contract.
    Ok(&unsafe { borrow(store, "store") }?.inner)
}

/// Hands a new store to the caller.
///
/// # Safety
/// `out` checked non-NULL and valid for writing.
unsafe fn hand_out(store: IdentityStore, out: *mut *mut reid_identity_store) {
    let handle = into_raw(reid_identity_store {
        tag: reid_identity_store::TAG,
        inner: store,
    });
    // SAFETY: the caller's contract.
    unsafe { out.write(handle) };
}

/// Creates an identity store in memory for `dim`-dimensional embeddings, matching as `config`
/// says (NULL: `reid_matching_config_default()`). Free with `reid_identity_store_free`.
///
/// Errors: `REID_INVALID_ARGUMENT` (`dim` 0 or too large, an invalid config, NULL output).
///
/// # Safety
/// `config` NULL or valid; `out_store` valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_identity_store_new(
    dim: usize,
    config: *const reid_matching_config,
    out_store: *mut *mut reid_identity_store,
) -> reid_status {
    guard(|| {
        require_out(out_store, "out_store")?;
        // SAFETY: the caller's contract.
        let config = unsafe { matching_config(config) }?;
        let store = IdentityStore::new(dim, config)?;
        // SAFETY: checked above.
        unsafe { hand_out(store, out_store) };
        Ok(())
    })
}

/// Creates a durable identity store at `location` (a file path, `sqlite:PATH`, or
/// `postgres://…?gallery=NAME` as for `reid_gallery_create`; a database store is shared by
/// every process that opens it). Every report is committed before the call returns.
///
/// Errors: `REID_INVALID_ARGUMENT`, `REID_GALLERY_ERROR` (one exists there, or it cannot be
/// created or reached).
///
/// # Safety
/// `location` a NUL-terminated string; `config` NULL or valid; `out_store` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_identity_store_create(
    location: *const c_char,
    dim: usize,
    config: *const reid_matching_config,
    out_store: *mut *mut reid_identity_store,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let (location, config) = unsafe { (path(location, "location")?, matching_config(config)?) };
        require_out(out_store, "out_store")?;
        let store = IdentityStore::create(&location, dim, config)?;
        // SAFETY: checked above.
        unsafe { hand_out(store, out_store) };
        Ok(())
    })
}

/// Opens a durable identity store with the configuration it keeps.
///
/// Errors: `REID_INVALID_ARGUMENT`, `REID_GALLERY_ERROR` (none there, a plain gallery, or
/// corrupt), `REID_NOT_FOUND` (no such gallery in the database).
///
/// # Safety
/// `location` a NUL-terminated string; `out_store` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_identity_store_open(
    location: *const c_char,
    out_store: *mut *mut reid_identity_store,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let location = unsafe { path(location, "location") }?;
        require_out(out_store, "out_store")?;
        let store = IdentityStore::open(&location)?;
        // SAFETY: checked above.
        unsafe { hand_out(store, out_store) };
        Ok(())
    })
}

/// Frees a store (a durable one has nothing pending). NULL is a no-op. No other thread may
/// be using it.
///
/// # Safety
/// `store` NULL or a live handle, not used again afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_identity_store_free(store: *mut reid_identity_store) {
    // SAFETY: the caller's contract.
    unsafe { free(store) };
}

/// The embedding dimension the store holds; 0 for NULL or an invalid handle. Thread-safe.
///
/// # Safety
/// `store` NULL or a live identity store handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_identity_store_dim(store: *const reid_identity_store) -> usize {
    // SAFETY: the caller's contract.
    guard_value(0, || Ok(unsafe { live(store) }?.dim()))
}

/// Replaces the matching configuration (kept with a durable store); later reports use it.
///
/// Errors: `REID_INVALID_ARGUMENT` (an invalid config; the old one stays),
/// `REID_INVALID_HANDLE`, `REID_GALLERY_ERROR`.
///
/// # Safety
/// `store` NULL or live; `config` NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_identity_store_configure(
    store: *const reid_identity_store,
    config: *const reid_matching_config,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let (store, config) = unsafe { (live(store)?, matching_config(config)?) };
        Ok(store.configure(config)?)
    })
}

/// Finds the threshold that accepts `target_far` of the different-identity pairs of a
/// labelled set (`count` embeddings of `dim` floats and their identities; at most 5,000) and
/// keeps it: a config without `REID_MATCH_THRESHOLD` matches with it. `*out_threshold` and
/// `*out_tar` (optional) receive the threshold and the share of same-identity pairs it
/// accepts.
///
/// Errors: `REID_INVALID_ARGUMENT`, `REID_INVALID_HANDLE`, `REID_DIMENSION_MISMATCH`,
/// `REID_GALLERY_ERROR`.
///
/// # Safety
/// `vectors` valid for `count × dim` floats, `identities` for `count`; outputs NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_identity_store_calibrate(
    store: *const reid_identity_store,
    vectors: *const f32,
    count: usize,
    dim: usize,
    identities: *const u64,
    target_far: f64,
    out_threshold: *mut f32,
    out_tar: *mut f64,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let store = unsafe { live(store) }?;
        same_dim(store.dim(), dim, "an identity store")?;
        // SAFETY: the caller's contract.
        let (vectors, identities) = unsafe {
            (
                input_rows(vectors, count, dim, "vectors")?,
                input_slice(identities, count, "identities")?,
            )
        };
        let calibration = store.calibrate(vectors, identities, target_far)?;
        // SAFETY: the caller's contract.
        unsafe { write_calibration(&calibration, out_threshold, out_tar) };
        Ok(())
    })
}

/// Gives the track of `track` its global identity and keeps the report: a track already
/// reported keeps its identity; a new one joins the most similar identity that passes the
/// threshold and that the camera topology allows, or gets a new identity. `*out` (optional)
/// receives the assignment. Nothing is kept when the call fails.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL report or embeddings, no crops, non-finite or zero
/// embeddings, bad quality weights, a negative camera, times out of order, no threshold and
/// no calibration), `REID_INVALID_HANDLE`, `REID_DIMENSION_MISMATCH`, `REID_GALLERY_ERROR`.
///
/// # Safety
/// `store` NULL or live; `track` NULL or valid, its `embeddings` valid for `crop_count × dim`
/// floats and `quality` NULL or valid for `crop_count`; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_identity_store_observe(
    store: *const reid_identity_store,
    track: *const reid_track,
    out: *mut reid_assignment,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let store = unsafe { live(store) }?;
        if track.is_null() {
            return Err(Failure::null("track"));
        }
        // SAFETY: non-NULL; the caller's contract.
        let t = unsafe { track.read() };
        same_dim(store.dim(), t.dim, "an identity store")?;
        // SAFETY: the caller's contract.
        let embeddings = unsafe { input_rows(t.embeddings, t.crop_count, t.dim, "embeddings") }?;
        let quality = if t.quality.is_null() {
            None
        } else {
            // SAFETY: the caller's contract.
            Some(unsafe { input_slice(t.quality, t.crop_count, "quality") }?)
        };
        let assignment = store.observe(&Track {
            camera: t.camera,
            track: t.track,
            time: TimeSpan::new(t.time_start, t.time_end)?,
            embeddings,
            quality,
        })?;
        let c = reid_assignment {
            identity: assignment.identity,
            entry: assignment.entry,
            score: assignment.score.unwrap_or(0.0),
            created: assignment.created as i32,
            matched: assignment.score.is_some() as i32,
        };
        // SAFETY: the caller's contract.
        unsafe { write_optional(out, c) };
        Ok(())
    })
}

/// The global identity of track `track` of `camera` into `*out_identity`.
///
/// Errors: `REID_INVALID_ARGUMENT` (NULL output), `REID_INVALID_HANDLE`, `REID_NOT_FOUND`
/// (never reported), `REID_GALLERY_ERROR`.
///
/// # Safety
/// `store` NULL or live; `out_identity` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_identity_store_identity_of(
    store: *const reid_identity_store,
    camera: i32,
    track: u64,
    out_identity: *mut u64,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let store = unsafe { live(store) }?;
        require_out(out_identity, "out_identity")?;
        let identity = store.identity_of(camera, track)?.ok_or_else(|| {
            Failure::new(
                reid_status::REID_NOT_FOUND,
                format!("no track {track} of camera {camera} was reported"),
            )
        })?;
        // SAFETY: checked non-NULL.
        unsafe { out_identity.write(identity) };
        Ok(())
    })
}

/// Where and when `identity` was seen, in time order: up to `cap` sightings into
/// `out_sightings` and their number into `*out_len`. With a buffer too small, `*out_len`
/// gets the number needed and nothing else is written. An unknown identity has none.
///
/// Errors: `REID_INVALID_ARGUMENT` (`out_len` NULL, `out_sightings` NULL with sightings to
/// write), `REID_INVALID_HANDLE`, `REID_BUFFER_TOO_SMALL`, `REID_GALLERY_ERROR`.
///
/// # Safety
/// `store` NULL or live; `out_sightings` valid for `cap` items; `out_len` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_identity_store_sightings(
    store: *const reid_identity_store,
    identity: u64,
    out_sightings: *mut reid_sighting,
    cap: usize,
    out_len: *mut usize,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let store = unsafe { live(store) }?;
        require_out(out_len, "out_len")?;
        let sightings = store.sightings(identity)?;
        // SAFETY: checked non-NULL.
        unsafe { out_len.write(sightings.len()) };
        if cap < sightings.len() {
            return Err(Failure::new(
                reid_status::REID_BUFFER_TOO_SMALL,
                format!(
                    "{} sightings need {} slots, the buffer holds {cap}",
                    sightings.len(),
                    sightings.len()
                ),
            ));
        }
        // SAFETY: the caller's contract.
        let out = unsafe { output_slice(out_sightings, sightings.len(), "out_sightings") }?;
        for (slot, s) in out.iter_mut().zip(&sightings) {
            *slot = to_c(s);
        }
        Ok(())
    })
}

fn to_c(s: &Sighting) -> reid_sighting {
    reid_sighting {
        camera: s.camera,
        track: s.track,
        time_start: s.time.start,
        time_end: s.time.end,
        entry: s.entry,
    }
}

/// Makes identity `absorbed` part of `kept` (the same person), all at once; `*out_moved`
/// (optional) receives how many reports moved.
///
/// Errors: `REID_INVALID_ARGUMENT` (the same identity twice), `REID_INVALID_HANDLE`,
/// `REID_NOT_FOUND` (either identity unknown), `REID_GALLERY_ERROR`.
///
/// # Safety
/// `store` NULL or live; `out_moved` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_identity_store_merge(
    store: *const reid_identity_store,
    kept: u64,
    absorbed: u64,
    out_moved: *mut usize,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let moved = unsafe { live(store) }?.merge(kept, absorbed)?;
        // SAFETY: the caller's contract.
        unsafe { write_optional(out_moved, moved) };
        Ok(())
    })
}

/// Takes track `track` of `camera` out of its identity (it was someone else): it gets a new
/// identity, written to `*out_identity` (optional).
///
/// Errors: `REID_INVALID_HANDLE`, `REID_NOT_FOUND` (never reported), `REID_GALLERY_ERROR`.
///
/// # Safety
/// `store` NULL or live; `out_identity` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reid_identity_store_split(
    store: *const reid_identity_store,
    camera: i32,
    track: u64,
    out_identity: *mut u64,
) -> reid_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let identity = unsafe { live(store) }?.split(camera, track)?;
        // SAFETY: the caller's contract.
        unsafe { write_optional(out_identity, identity) };
        Ok(())
    })
}
