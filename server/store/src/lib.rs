//! dpo's own store: the SQLite ([`sqlite`]) and PostgreSQL ([`postgres`]) adapters of the ports
//! `dpo-domain` defines, their statements ([`statements`]), the read cache ([`cached`]), SQLite's group commit
//! ([`group_commit`]) and the migrations of both (`migrations/`). Nothing here knows HTTP or the export.
//!
//! Persistence, one trait per concern: [`Operations`] (the entities), [`JobQueue`] (exports claimed under
//! a lease, every later write fenced by the claim's attempt), [`Directory`] (users and their activity
//! records) and [`ExportLedger`] (objects an export has written whole). A backend implements the four;
//! [`Stores`] holds them, so a wrapper such as the read cache ([`cached`]) wraps only what it must.
//!
//! The traits are synchronous, as SQLite is; [`blocking`] is the one hop from async code to the blocking
//! pool. A store whose driver is asynchronous (PostgreSQL) also offers the calls of the request path as
//! futures ([`AsyncOperations`], [`AsyncDirectory`]), which async code awaits without that hop. Every
//! statement comes from [`statements`] (sea-query), built once for every dialect.
//!
//! The records, the traits and their errors are `dpo-domain`'s ([`dpo_domain::store`], re-exported here,
//! so that `dpo_store::OperationRecord` and the adapters are found in one place).
#![warn(missing_docs)]

pub use dpo_domain::store::*;

pub use dpo_domain::blocking;
pub use dpo_domain::requests;
pub mod cached;
pub mod decode;
pub mod failure;
pub mod group_commit;
pub mod postgres;
pub mod sqlite;
pub mod statements;
pub mod timing;
