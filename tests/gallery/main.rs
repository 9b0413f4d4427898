//! Galleries (layer `gallery`): one behavioural table on every store (search against a
//! brute-force reference), durable files, and the PostgreSQL database store.

#[path = "../common/mod.rs"]
mod common;

mod backends;
mod behaviour;
mod database;
mod durable_files;
