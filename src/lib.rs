//! newsriver: polls the feeds listed in a TOML file, stores their entries in
//! SQLite and republishes one merged feed in which every entry names its source.
//!
//! The modules follow one entry through the daemon:
//! `config` → `scheduler` → `fetch` → `parse` → `identity` → `store` → `publish` → `server`.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

pub mod access;
pub mod admin;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod discover;
pub mod feed_list;
pub mod fetch;
pub mod filter;
pub mod identity;
pub mod model;
pub mod opml;
pub mod parse;
pub mod publish;
pub mod reload;
pub mod sanitize;
pub mod scheduler;
pub mod search;
pub mod server;
pub mod status;
pub mod store;
pub mod telemetry;
pub mod websub;

pub use config::{Config, ConfigError};
pub use daemon::{poll_once, run};
pub use store::Store;
