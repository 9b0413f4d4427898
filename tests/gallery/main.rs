//! Galleries (layer `gallery`) and the identity store over them: one behavioural table on
//! every store (search against a brute-force reference), durable files, the PostgreSQL
//! database store, and global identities for synthetic multi-camera tracks.

#[path = "../common/mod.rs"]
mod common;

mod backends;
mod behaviour;
mod crops;
mod database;
mod durable_files;
mod identity_store;
mod tracks;
