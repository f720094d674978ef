//! The dpo server: serves the data policy operations API described by `dpo-api`.
//!
//! A request flows top to bottom: [`handlers`] (parse, call the domain, shape the wire answer) →
//! [`operations`] (the rules of data policy operations, with [`odata`] for query options) → [`store`]
//! (persistence). Nothing below
//! [`handlers`] knows about HTTP.
#![warn(missing_docs)]

pub mod admin;
pub mod audit_trail;
pub mod auth;
pub mod config;
pub mod config_file;
pub mod connection_guard;
pub mod demo;
pub mod directory_audits;
pub mod endpoint_names;
pub mod fallbacks;
pub mod handlers;
pub mod import;
pub mod logging;
pub mod operations;
pub mod request_metrics;
pub mod request_wire;
pub mod retention;
pub mod routes;
pub mod server;
pub mod subject_rights;
pub mod throttle;
pub mod tls;
pub mod wire;

pub use config::ServerConfig;
pub use dpo_domain::odata;
pub use dpo_export as export;
pub use dpo_export::sources;
pub use dpo_store as store;
pub use server::{RunningServer, start};
