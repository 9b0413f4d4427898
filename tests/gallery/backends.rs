//! The stores the behavioural table runs on: the embedded one in memory and on a file, and a
//! PostgreSQL database with pgvector when one is given (`REID_POSTGRES_URL`, which
//! scripts/setup-postgres.sh prints; `.ci/run` starts one and sets `REID_REQUIRE_POSTGRES`,
//! which turns a missing database into a failure instead of a skip).

use std::ops::Deref;

use reid::eval::Metric;
use reid::gallery::Gallery;

pub use crate::common::database::{database_location, database_url, drop_schema};

/// Where a fresh gallery is made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backend {
    Memory,
    File,
    Database,
}

/// Every backend available here.
pub fn all() -> Vec<Backend> {
    let mut backends = vec![Backend::Memory, Backend::File];
    if database_url().is_some() {
        backends.push(Backend::Database);
    }
    backends
}

/// Where a store can live: nowhere (memory), a file in a temporary folder, or a schema of the
/// test database; the folder or schema is removed when dropped.
pub struct Place {
    /// Where to create and open it (`None` in memory).
    location: Option<String>,
    _dir: Option<tempfile::TempDir>,
    schema: Option<(String, String)>,
}

impl Place {
    /// Where the store can be created and opened again (`None` in memory).
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some((url, schema)) = &self.schema {
            drop_schema(url, schema);
        }
    }
}

/// A new, empty gallery and what it lives in, removed when dropped.
pub struct Fresh {
    pub gallery: Gallery,
    place: Place,
}

impl Backend {
    /// A new place on this backend.
    pub fn place(self) -> Place {
        match self {
            Backend::Memory => Place {
                location: None,
                _dir: None,
                schema: None,
            },
            Backend::File => {
                let dir = tempfile::tempdir().unwrap();
                Place {
                    location: Some(dir.path().join("g.db").display().to_string()),
                    _dir: Some(dir),
                    schema: None,
                }
            }
            Backend::Database => {
                let url = database_url().expect("a database backend needs REID_POSTGRES_URL");
                let (location, schema) = database_location(&url);
                Place {
                    location: Some(location),
                    _dir: None,
                    schema: Some((url, schema)),
                }
            }
        }
    }

    /// An empty gallery on this backend.
    pub fn fresh(self, dim: usize, metric: Metric) -> Fresh {
        let place = self.place();
        let gallery = match place.location() {
            None => Gallery::new(dim, metric),
            Some(location) => Gallery::create(location, dim, metric),
        }
        .unwrap();
        Fresh { gallery, place }
    }
}

impl Fresh {
    /// Where the gallery can be opened again (`None` in memory).
    pub fn location(&self) -> Option<&str> {
        self.place.location()
    }
}

impl Deref for Fresh {
    type Target = Gallery;

    fn deref(&self) -> &Gallery {
        &self.gallery
    }
}
