//! Database locations in a build without the `postgres` feature: a clear error.

use super::Store;
use super::location::Location;
use crate::distance::Metric;
use crate::error::Result;

fn unavailable(url: &str) -> crate::error::Error {
    Location::Database(url.to_string())
        .error("this build of reid has no database galleries (cargo feature `postgres`)".into())
}

pub(crate) fn create(url: &str, _dim: usize, _metric: Metric) -> Result<Box<dyn Store>> {
    Err(unavailable(url))
}

pub(crate) fn open(url: &str) -> Result<(Box<dyn Store>, usize, Metric)> {
    Err(unavailable(url))
}
