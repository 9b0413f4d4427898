//! A cross-camera identity store for trackers: each camera's tracker reports its tracks (a
//! few crops' embeddings and when the track was seen), and the store gives each track a
//! global identity — the identity of the most similar earlier tracks, if they are similar
//! enough and the camera topology allows it, or a new one.
//!
//! The store is a cosine [`Gallery`] (in memory, a file, or a PostgreSQL database, so several
//! processes can share one) whose entries are track segments: one entry per report, holding
//! the track's aggregated embedding (the quality-weighted mean of its unit-length crop
//! embeddings), its camera, its time span, the tag `camera:track` and the global identity.
//! Merging and splitting identities relabel entries; "where was X seen" lists them.

mod config;

use std::path::Path;
use std::sync::RwLock;

pub use config::{CameraLink, MAX_CANDIDATES, MatchingConfig};

use crate::calibration::Calibration;
use crate::distance::Metric;
use crate::error::{Error, Result};
use crate::gallery::Location;
use crate::gallery::{
    Entry, Gallery, NewEntry, SearchOptions, TimeSpan, check_camera, check_finite, direction_norm,
};

/// The gallery setting that holds the store's [`MatchingConfig`] (JSON); its presence marks a
/// gallery as an identity store.
const CONFIG_KEY: &str = "identity_store.config";
/// The gallery setting counting the identities given out.
const IDENTITY_COUNTER: &str = "identity_store.identities";
/// The most crops one report may aggregate.
pub const MAX_CROPS: usize = 10_000;

/// One report of a tracker: a track of camera `camera` (its id `track`, unique on that
/// camera), seen during `time`, with the embeddings of some of its crops.
#[derive(Debug, Clone, PartialEq)]
pub struct Track<'a> {
    /// The camera.
    pub camera: i32,
    /// The tracker's id of the track on that camera.
    pub track: u64,
    /// When the track was seen (this report's part of it).
    pub time: TimeSpan,
    /// `n × dim` values: `n` crops' embeddings (each is normalized before averaging).
    pub embeddings: &'a [f32],
    /// Optional weights of the `n` crops (detector confidence, sharpness; at least 0, not
    /// all 0); `None` weighs them equally.
    pub quality: Option<&'a [f32]>,
}

/// What the store made of a report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assignment {
    /// The global identity of the track.
    pub identity: u64,
    /// Whether the identity was created for this track.
    pub created: bool,
    /// The similarity to the identity joined (`None` for a new identity, or a track already
    /// known: its earlier reports decided).
    pub score: Option<f32>,
    /// The gallery entry holding this report.
    pub entry: u64,
}

/// Where and when an identity was seen: one report of one track.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    /// The camera.
    pub camera: i32,
    /// The tracker's id of the track.
    pub track: u64,
    /// When.
    pub time: TimeSpan,
    /// The gallery entry holding the report.
    pub entry: u64,
}

/// Global identities for the tracks of many cameras (see the module documentation).
#[derive(Debug)]
pub struct IdentityStore {
    gallery: Gallery,
    /// Replaced as a whole by [`IdentityStore::configure`] while reports may be arriving.
    config: RwLock<MatchingConfig>,
}

impl IdentityStore {
    /// A store in memory for `dim`-dimensional embeddings.
    pub fn new(dim: usize, config: MatchingConfig) -> Result<Self> {
        config.validate()?;
        let gallery = Gallery::new(dim, Metric::Cosine)?;
        gallery.set_setting(CONFIG_KEY, &to_json(&config)?)?;
        Ok(Self {
            gallery,
            config: RwLock::new(config),
        })
    }

    /// Creates a durable store at `location` (a file path, `sqlite:PATH`, or `postgres://…`
    /// as for [`Gallery::create`]).
    pub fn create(location: impl AsRef<Path>, dim: usize, config: MatchingConfig) -> Result<Self> {
        config.validate()?;
        let gallery = Gallery::create(location, dim, Metric::Cosine)?;
        gallery.set_setting(CONFIG_KEY, &to_json(&config)?)?;
        Ok(Self {
            gallery,
            config: RwLock::new(config),
        })
    }

    /// Opens a durable store with the configuration it was created (or last configured) with.
    pub fn open(location: impl AsRef<Path>) -> Result<Self> {
        let gallery = Gallery::open(location.as_ref())?;
        let stored = gallery.setting(CONFIG_KEY)?.ok_or_else(|| {
            Location::parse(location.as_ref())
                .map(|l| l.error("a gallery, not an identity store".into()))
                .unwrap_or_else(|e| e)
        })?;
        let config: MatchingConfig = serde_json::from_str(&stored)
            .map_err(|e| Error::InvalidInput(format!("corrupt identity store settings: {e}")))?;
        config.validate()?;
        Ok(Self {
            gallery,
            config: RwLock::new(config),
        })
    }

    /// The embedding dimension.
    pub fn dim(&self) -> usize {
        self.gallery.dim()
    }

    /// How tracks are matched.
    pub fn config(&self) -> MatchingConfig {
        self.read_config().clone()
    }

    fn read_config(&self) -> std::sync::RwLockReadGuard<'_, MatchingConfig> {
        // Replaced whole under the lock: a panic elsewhere cannot leave it half-written.
        self.config.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the matching configuration (durably); it applies to later reports.
    pub fn configure(&self, config: MatchingConfig) -> Result<()> {
        config.validate()?;
        let mut current = self.config.write().unwrap_or_else(|p| p.into_inner());
        self.gallery.set_setting(CONFIG_KEY, &to_json(&config)?)?;
        *current = config;
        Ok(())
    }

    /// The gallery of track segments underneath (for searches of one's own, exports and
    /// model fingerprints).
    pub fn gallery(&self) -> &Gallery {
        &self.gallery
    }

    /// Finds and keeps the threshold for `target_far` from labelled embeddings (as
    /// [`Gallery::calibrate`]), used when the configuration sets no threshold.
    pub fn calibrate(
        &self,
        vectors: &[f32],
        identities: &[u64],
        target_far: f64,
    ) -> Result<Calibration> {
        self.gallery.calibrate(vectors, identities, target_far)
    }

    /// Gives the track of `report` its global identity and keeps the report. A track already
    /// reported keeps its identity; a new one joins the most similar identity that passes the
    /// threshold and the topology, or gets a new identity.
    pub fn observe(&self, report: &Track) -> Result<Assignment> {
        check_track_id(report.track)?;
        check_camera(report.camera)?;
        report.time.check()?;
        let vector = self.aggregate(report)?;
        let tag = track_tag(report.camera, report.track);
        let known = self.gallery.entries_tagged(&tag)?;
        let (identity, created, score) = match known.first() {
            Some(earlier) => (earlier.identity, false, None),
            None => match self.best_identity(&vector, report)? {
                Some((identity, score)) => (identity, false, Some(score)),
                None => (self.gallery.increment(IDENTITY_COUNTER)?, true, None),
            },
        };
        let entry = self.gallery.add(
            NewEntry::new(identity, report.camera, vector)
                .with_tag(tag)
                .with_time(report.time),
        )?;
        Ok(Assignment {
            identity,
            created,
            score,
            entry,
        })
    }

    /// The quality-weighted mean of the report's unit-length crop embeddings.
    fn aggregate(&self, report: &Track) -> Result<Vec<f32>> {
        let dim = self.dim();
        let n = report.embeddings.len() / dim;
        if n == 0 || n * dim != report.embeddings.len() {
            return Err(Error::InvalidInput(format!(
                "{} values are not one or more {dim}-d embeddings",
                report.embeddings.len()
            )));
        }
        if n > MAX_CROPS {
            return Err(Error::InvalidInput(format!(
                "{n} crops in one report: at most {MAX_CROPS}"
            )));
        }
        let weights = match report.quality {
            None => vec![1.0; n],
            Some(q) if q.len() != n => {
                return Err(Error::InvalidInput(format!(
                    "{} quality weights for {n} crops",
                    q.len()
                )));
            }
            Some(q) => {
                if q.iter().any(|w| !(w.is_finite() && *w >= 0.0)) || q.iter().all(|w| *w == 0.0) {
                    return Err(Error::InvalidInput(
                        "quality weights must be finite, at least 0, and not all 0".into(),
                    ));
                }
                q.to_vec()
            }
        };
        // In f64: the sum of many crops; each crop's direction counts, not its length.
        let mut sum = vec![0.0f64; dim];
        for (crop, &w) in report.embeddings.chunks(dim).zip(&weights) {
            check_finite(crop)?;
            let norm = direction_norm(crop)?;
            for (s, &v) in sum.iter_mut().zip(crop) {
                *s += w as f64 * v as f64 / norm;
            }
        }
        Ok(sum.into_iter().map(|v| v as f32).collect())
    }

    /// The most similar identity that passes the threshold and whose sightings the topology
    /// allows together with `report`'s, with its similarity.
    fn best_identity(&self, vector: &[f32], report: &Track) -> Result<Option<(u64, f32)>> {
        let config = self.config();
        let threshold = match config.threshold {
            Some(t) => t,
            None => {
                self.gallery
                    .calibration()?
                    .ok_or_else(|| {
                        Error::InvalidInput(
                            "the identity store has neither a threshold nor a calibration \
                             (IdentityStore::calibrate)"
                                .into(),
                        )
                    })?
                    .threshold
            }
        };
        let options = SearchOptions {
            min_score: Some(threshold),
            group_by_identity: true,
            ..SearchOptions::top(config.candidates)
        };
        let matches = self.gallery.search(vector, &options)?;
        // Every candidate's reports in one query (one round trip to a database).
        let candidates: Vec<u64> = matches[0].iter().map(|m| m.identity).collect();
        let mut reports: std::collections::HashMap<u64, Vec<Entry>> = Default::default();
        for e in self.gallery.entries_of_any(&candidates)? {
            reports.entry(e.identity).or_default().push(e);
        }
        Ok(matches[0]
            .iter()
            .find(|m| {
                let sightings = reports.get(&m.identity).map_or(&[][..], |r| r.as_slice());
                config.compatible(report.camera, &report.time, sightings)
            })
            .map(|m| (m.identity, m.score)))
    }

    /// The global identity of track `track` of `camera`, if it was reported.
    pub fn identity_of(&self, camera: i32, track: u64) -> Result<Option<u64>> {
        Ok(self
            .gallery
            .entries_tagged(&track_tag(camera, track))?
            .first()
            .map(|e| e.identity))
    }

    /// Where and when `identity` was seen, in time order (empty for an unknown identity).
    pub fn sightings(&self, identity: u64) -> Result<Vec<Sighting>> {
        let mut out: Vec<Sighting> = self
            .gallery
            .entries_of(identity)?
            .iter()
            .filter_map(sighting)
            .collect();
        out.sort_by(|a, b| {
            a.time
                .start
                .total_cmp(&b.time.start)
                .then(a.entry.cmp(&b.entry))
        });
        Ok(out)
    }

    /// Makes `absorbed` part of `kept` (the same person): every track of `absorbed` takes
    /// `kept`'s identity, all at once. Returns how many reports moved.
    pub fn merge(&self, kept: u64, absorbed: u64) -> Result<usize> {
        if kept == absorbed {
            return Err(Error::InvalidInput(format!(
                "identity {kept} cannot be merged with itself"
            )));
        }
        if self.gallery.entries_of(kept)?.is_empty() {
            return Err(unknown_identity(kept));
        }
        let ids: Vec<u64> = self
            .gallery
            .entries_of(absorbed)?
            .iter()
            .map(|e| e.id)
            .collect();
        if ids.is_empty() {
            return Err(unknown_identity(absorbed));
        }
        self.gallery.relabel(&ids, kept)?;
        Ok(ids.len())
    }

    /// Takes track `track` of `camera` out of its identity (it was someone else): the track
    /// gets a new identity, which is returned.
    pub fn split(&self, camera: i32, track: u64) -> Result<u64> {
        let ids: Vec<u64> = self
            .gallery
            .entries_tagged(&track_tag(camera, track))?
            .iter()
            .map(|e| e.id)
            .collect();
        if ids.is_empty() {
            return Err(Error::NotFound(format!(
                "no track {track} of camera {camera}"
            )));
        }
        let identity = self.gallery.increment(IDENTITY_COUNTER)?;
        self.gallery.relabel(&ids, identity)?;
        Ok(identity)
    }
}

fn to_json(config: &MatchingConfig) -> Result<String> {
    serde_json::to_string(config).map_err(|e| Error::InvalidInput(e.to_string()))
}

/// The tag of a track's reports.
fn track_tag(camera: i32, track: u64) -> String {
    format!("{camera}:{track}")
}

/// A report read back from its entry (entries not written by the store are skipped).
fn sighting(e: &Entry) -> Option<Sighting> {
    let (camera, track) = e.tag.as_deref()?.split_once(':')?;
    Some(Sighting {
        camera: camera.parse().ok()?,
        track: track.parse().ok()?,
        time: e.time?,
        entry: e.id,
    })
}

fn check_track_id(track: u64) -> Result<()> {
    if track > crate::gallery::MAX_LABEL {
        return Err(Error::InvalidInput(format!(
            "track id {track} is not below 2^63"
        )));
    }
    Ok(())
}

fn unknown_identity(identity: u64) -> Error {
    Error::NotFound(format!("no identity {identity} in the store"))
}
