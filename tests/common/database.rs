//! The test database (`REID_POSTGRES_URL`, which scripts/setup-postgres.sh prints; `.ci/run`
//! starts one and sets `REID_REQUIRE_POSTGRES`, which turns a missing database into a failure
//! instead of a skip), and galleries of their own in it.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The database server's URL, or `None` (with a message) when none is given.
pub fn database_url() -> Option<String> {
    match std::env::var("REID_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("REID_REQUIRE_POSTGRES").is_err(),
                "REID_REQUIRE_POSTGRES is set but REID_POSTGRES_URL names no database"
            );
            eprintln!(
                "skipped the database backend: no REID_POSTGRES_URL (scripts/setup-postgres.sh \
                 start prints one)"
            );
            None
        }
    }
}

/// A gallery location of its own in the test database: a schema named after this process and
/// a counter (the caller drops it: [`drop_schema`]).
pub fn database_location(url: &str) -> (String, String) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let schema = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let sep = if url.contains('?') { '&' } else { '?' };
    (format!("{url}{sep}gallery={schema}"), schema)
}

/// Drops a test gallery's schema.
pub fn drop_schema(url: &str, schema: &str) {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("test database");
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .expect("drop a test gallery");
}
