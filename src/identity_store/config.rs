//! How an identity store matches tracks: the similarity a track needs to join an identity,
//! how many identities it is compared with, and the camera topology that rules some matches
//! out (nobody is at two places further apart than they can walk in the time between).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::gallery::{Entry, TimeSpan, check_camera};

/// The most candidate identities compared per track.
pub const MAX_CANDIDATES: usize = 1000;

/// Two cameras with their own least transit time (0 for neighbours whose views touch or
/// overlap: a person may be seen by both at once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraLink {
    /// The two cameras (the link goes both ways).
    pub cameras: [i32; 2],
    /// Seconds at least between leaving one and being seen by the other.
    pub min_seconds: f64,
}

/// How tracks are matched to identities. Kept with the store (its gallery's settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchingConfig {
    /// The least cosine similarity between a new track and an identity's best track for the
    /// track to join it; `None` uses the store's calibrated threshold
    /// ([`super::IdentityStore::calibrate`]).
    pub threshold: Option<f32>,
    /// How many of the most similar identities are tried, best first, before a new one is
    /// created.
    pub candidates: usize,
    /// Seconds at least between sightings by two cameras that no link names; 0 lets anyone
    /// be anywhere at any time (no topology).
    pub min_transit_seconds: f64,
    /// Camera pairs with a transit time of their own (neighbours).
    pub links: Vec<CameraLink>,
}

impl Default for MatchingConfig {
    /// The calibrated threshold, the 10 most similar identities, no topology.
    fn default() -> Self {
        Self {
            threshold: None,
            candidates: 10,
            min_transit_seconds: 0.0,
            links: Vec::new(),
        }
    }
}

impl MatchingConfig {
    /// Checks every field; every interface (Rust, C, Python) goes through this.
    pub fn validate(&self) -> Result<()> {
        let invalid = |m: String| Err(Error::InvalidInput(m));
        if let Some(t) = self.threshold
            && !(-1.0..=1.0).contains(&t)
        {
            return invalid(format!(
                "threshold {t}: a cosine similarity between -1 and 1"
            ));
        }
        if !(1..=MAX_CANDIDATES).contains(&self.candidates) {
            return invalid(format!(
                "candidates {}: between 1 and {MAX_CANDIDATES}",
                self.candidates
            ));
        }
        let seconds = |s: f64| s.is_finite() && s >= 0.0;
        if !seconds(self.min_transit_seconds) {
            return invalid(format!(
                "min_transit_seconds {}: finite and at least 0",
                self.min_transit_seconds
            ));
        }
        let mut pairs = std::collections::HashSet::new();
        for link in &self.links {
            let [a, b] = link.cameras;
            check_camera(a)?;
            check_camera(b)?;
            if a == b {
                return invalid(format!("a link from camera {a} to itself"));
            }
            if !seconds(link.min_seconds) {
                return invalid(format!(
                    "link {a}-{b}: min_seconds {} must be finite and at least 0",
                    link.min_seconds
                ));
            }
            if !pairs.insert((a.min(b), a.max(b))) {
                return invalid(format!("cameras {a} and {b} are linked twice"));
            }
        }
        Ok(())
    }

    /// Seconds needed between sightings by cameras `a` and `b` (`a != b`).
    fn transit(&self, a: i32, b: i32) -> f64 {
        self.links
            .iter()
            .find(|l| l.cameras == [a, b] || l.cameras == [b, a])
            .map_or(self.min_transit_seconds, |l| l.min_seconds)
    }

    /// Whether a person seen by `camera` during `time` can also be the one seen in every
    /// sighting of `sightings`: not by the same camera at the same time (two tracks at once
    /// are two people), and not by another camera sooner than the transit time allows.
    /// Sightings without a time rule nothing out.
    pub fn compatible(&self, camera: i32, time: &TimeSpan, sightings: &[Entry]) -> bool {
        sightings.iter().all(|s| match &s.time {
            None => true,
            Some(seen) if s.camera == camera => !seen.overlaps(time),
            Some(seen) => seen.gap(time) >= self.transit(camera, s.camera),
        })
    }
}
