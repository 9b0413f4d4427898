//! `reid_matching_config`: how an identity store matches tracks
//! (`reid_matching_config_default`).

use super::boundary::input_slice;
use super::status::{Failure, Outcome};
use crate::identity_store::{CameraLink, MatchingConfig};

/// `reid_matching_config.flags`: use `threshold` (otherwise the store's calibrated threshold,
/// `reid_identity_store_calibrate`).
pub const REID_MATCH_THRESHOLD: u32 = 1;

/// Two cameras with their own least transit time (0 for neighbours whose views touch).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct reid_camera_link {
    /// One camera (0 or more).
    pub camera_a: i32,
    /// The other camera.
    pub camera_b: i32,
    /// Seconds at least between a sighting by one and a sighting by the other.
    pub min_seconds: f64,
}

/// How an identity store matches a new track to the identities it knows. Start from
/// `reid_matching_config_default()`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct reid_matching_config {
    /// With `REID_MATCH_THRESHOLD`: the least cosine similarity for a track to join an
    /// identity.
    pub threshold: f32,
    /// `REID_MATCH_*` flags, or-ed.
    pub flags: u32,
    /// How many of the most similar identities are tried before a new one is created.
    pub candidates: usize,
    /// Seconds at least between sightings by two cameras no link names (0: no topology).
    pub min_transit_seconds: f64,
    /// `link_count` camera links (NULL when 0); copied by the call that takes the config.
    pub links: *const reid_camera_link,
    /// Number of `links`.
    pub link_count: usize,
}

/// The default matching (the library's `MatchingConfig::default()`): the calibrated
/// threshold, the 10 most similar identities, no camera topology.
#[unsafe(no_mangle)]
pub extern "C" fn reid_matching_config_default() -> reid_matching_config {
    let defaults = MatchingConfig::default();
    reid_matching_config {
        threshold: defaults.threshold.unwrap_or(0.0),
        flags: if defaults.threshold.is_some() {
            REID_MATCH_THRESHOLD
        } else {
            0
        },
        candidates: defaults.candidates,
        min_transit_seconds: defaults.min_transit_seconds,
        links: std::ptr::null(),
        link_count: 0,
    }
}

/// The library's configuration for a caller's `reid_matching_config` (NULL: the defaults),
/// checked by the library's own validation.
///
/// # Safety
/// `config` NULL or valid, its `links` valid for `link_count` items.
pub(crate) unsafe fn matching_config(
    config: *const reid_matching_config,
) -> Outcome<MatchingConfig> {
    let c = if config.is_null() {
        reid_matching_config_default()
    } else {
        // SAFETY: non-NULL; the caller's contract.
        unsafe { config.read() }
    };
    if c.flags & !REID_MATCH_THRESHOLD != 0 {
        return Err(Failure::invalid(format!(
            "unknown matching flags {:#x}",
            c.flags
        )));
    }
    let links = if c.link_count == 0 {
        &[][..]
    } else {
        // SAFETY: the caller's contract.
        unsafe { input_slice(c.links, c.link_count, "links") }?
    };
    let config = MatchingConfig {
        threshold: (c.flags & REID_MATCH_THRESHOLD != 0).then_some(c.threshold),
        candidates: c.candidates,
        min_transit_seconds: c.min_transit_seconds,
        links: links
            .iter()
            .map(|l| CameraLink {
                cameras: [l.camera_a, l.camera_b],
                min_seconds: l.min_seconds,
            })
            .collect(),
    };
    config.validate()?;
    Ok(config)
}
