//! `reid_search_options`: what a gallery search returns (`reid_search_options_default`).

use super::status::{Failure, Outcome};
use crate::gallery::{SearchOptions, TimeSpan};

/// `reid_search_options.flags`: apply `min_score` (a minimum similarity, or for euclidean
/// galleries a maximum distance).
pub const REID_SEARCH_MIN_SCORE: u32 = 1;
/// `reid_search_options.flags`: at most one match (the best) per identity.
pub const REID_SEARCH_GROUP_BY_IDENTITY: u32 = 2;
/// `reid_search_options.flags`: no matches from camera `exclude_camera`.
pub const REID_SEARCH_EXCLUDE_CAMERA: u32 = 4;
/// `reid_search_options.flags`: the gallery's calibrated threshold (`reid_gallery_calibrate`)
/// as the minimum score; not with `REID_SEARCH_MIN_SCORE`.
pub const REID_SEARCH_CALIBRATED: u32 = 8;
/// `reid_search_options.flags`: only entries seen between `time_from` and `time_to` (their
/// time span overlaps the window; entries added without a time are left out).
pub const REID_SEARCH_TIME_WINDOW: u32 = 16;

/// What a search returns. Start from `reid_search_options_default()`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct reid_search_options {
    /// Matches per query (at least 1).
    pub k: usize,
    /// With `REID_SEARCH_MIN_SCORE`: the lowest similarity kept (cosine), or the largest
    /// distance kept (euclidean).
    pub min_score: f32,
    /// Camera left out, with `REID_SEARCH_EXCLUDE_CAMERA`.
    pub exclude_camera: i32,
    /// `REID_SEARCH_*` flags, or-ed.
    pub flags: u32,
    /// Start of the time window, with `REID_SEARCH_TIME_WINDOW` (seconds, the gallery's clock).
    pub time_from: f64,
    /// End of the time window, with `REID_SEARCH_TIME_WINDOW`.
    pub time_to: f64,
}

/// The default search (the library's `SearchOptions::default()`): the 10 best matches, no
/// filters.
#[unsafe(no_mangle)]
pub extern "C" fn reid_search_options_default() -> reid_search_options {
    let defaults = SearchOptions::default();
    let flag = |on: bool, bit: u32| if on { bit } else { 0 };
    reid_search_options {
        k: defaults.k,
        min_score: defaults.min_score.unwrap_or(0.0),
        exclude_camera: defaults.exclude_camera.unwrap_or(0),
        flags: flag(defaults.min_score.is_some(), REID_SEARCH_MIN_SCORE)
            | flag(defaults.group_by_identity, REID_SEARCH_GROUP_BY_IDENTITY)
            | flag(
                defaults.exclude_camera.is_some(),
                REID_SEARCH_EXCLUDE_CAMERA,
            )
            | flag(defaults.calibrated, REID_SEARCH_CALIBRATED)
            | flag(defaults.time_window.is_some(), REID_SEARCH_TIME_WINDOW),
        time_from: defaults.time_window.map_or(0.0, |w| w.start),
        time_to: defaults.time_window.map_or(0.0, |w| w.end),
    }
}

/// The library's options for a caller's `reid_search_options` (NULL: the defaults), checked
/// by the library's own validation.
pub(crate) fn search_options(options: *const reid_search_options) -> Outcome<SearchOptions> {
    let o = if options.is_null() {
        reid_search_options_default()
    } else {
        // SAFETY: non-NULL; the caller's contract.
        unsafe { options.read() }
    };
    let known = REID_SEARCH_MIN_SCORE
        | REID_SEARCH_GROUP_BY_IDENTITY
        | REID_SEARCH_EXCLUDE_CAMERA
        | REID_SEARCH_CALIBRATED
        | REID_SEARCH_TIME_WINDOW;
    if o.flags & !known != 0 {
        return Err(Failure::invalid(format!(
            "unknown search flags {:#x}",
            o.flags
        )));
    }
    let options = SearchOptions {
        k: o.k,
        min_score: (o.flags & REID_SEARCH_MIN_SCORE != 0).then_some(o.min_score),
        group_by_identity: o.flags & REID_SEARCH_GROUP_BY_IDENTITY != 0,
        exclude_camera: (o.flags & REID_SEARCH_EXCLUDE_CAMERA != 0).then_some(o.exclude_camera),
        time_window: (o.flags & REID_SEARCH_TIME_WINDOW != 0).then_some(TimeSpan {
            start: o.time_from,
            end: o.time_to,
        }),
        calibrated: o.flags & REID_SEARCH_CALIBRATED != 0,
    };
    options.validate()?;
    Ok(options)
}
