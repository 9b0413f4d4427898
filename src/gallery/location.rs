//! Where a durable gallery lives, from the one string every interface takes (Rust, C, CLI,
//! C++, Python): a file path, `sqlite:PATH`, or a PostgreSQL URL.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A parsed gallery location.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// An SQLite gallery file: a plain path, or `sqlite:PATH` (`sqlite://PATH` too).
    File(PathBuf),
    /// A PostgreSQL database with pgvector (feature `postgres`): a libpq URL,
    /// `postgres://user[:password]@host[:port]/database`, among whose parameters (`sslmode`,
    /// `connect_timeout`, `application_name`, …) reid reads two of its own: `gallery=NAME`
    /// names the gallery inside the database (a schema of its own; default `reid_gallery`),
    /// and `ef_search=N` (1–1000) makes searches approximate, through the HNSW index with
    /// `N` candidates per query (exact without it).
    Database(String),
}

impl Location {
    /// Reads a location. Anything that is not a `postgres://`, `postgresql://` or `sqlite:`
    /// URL is a file path.
    pub fn parse(location: &Path) -> Result<Location> {
        let Some(text) = location.to_str() else {
            return Ok(Location::File(location.to_path_buf()));
        };
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Location::Database(text.to_string()));
        }
        match text.strip_prefix("sqlite:") {
            Some(rest) => {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Err(Error::InvalidInput(
                        "`sqlite:` names no file (sqlite:PATH)".into(),
                    ));
                }
                Ok(Location::File(PathBuf::from(path)))
            }
            None => Ok(Location::File(location.to_path_buf())),
        }
    }

    /// An error about the gallery at this location (a database's password left out).
    pub(crate) fn error(&self, reason: String) -> Error {
        match self {
            Location::File(path) => Error::GalleryFile {
                path: path.clone(),
                reason,
            },
            Location::Database(url) => Error::GalleryDatabase {
                location: redacted(url),
                reason,
            },
        }
    }
}

/// A database URL without its password, fit for messages and logs.
pub(crate) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_by_their_prefix() {
        let parse = |s: &str| Location::parse(Path::new(s)).unwrap();
        assert_eq!(parse("a/g.db"), Location::File("a/g.db".into()));
        assert_eq!(parse("sqlite:a/g.db"), Location::File("a/g.db".into()));
        assert_eq!(
            parse("sqlite:///abs/g.db"),
            Location::File("/abs/g.db".into())
        );
        assert_eq!(
            parse("postgres://u@h/db"),
            Location::Database("postgres://u@h/db".into())
        );
        assert_eq!(
            parse("postgresql://h/db"),
            Location::Database("postgresql://h/db".into())
        );
        assert!(Location::parse(Path::new("sqlite:")).is_err());
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redacted("postgres://me:s3cret@db.local:5432/reid?gallery=g"),
            "postgres://me@db.local:5432/reid?gallery=g"
        );
        assert_eq!(redacted("postgres://h/db"), "postgres://h/db");
        let message = Location::Database("postgresql://a:b@h/d".into())
            .error("x".into())
            .to_string();
        assert!(!message.contains(":b@"), "{message}");
    }
}
