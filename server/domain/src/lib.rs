//! dpo's domain: what the server's edge, its store adapters and its export engine agree on, below all of
//! them. [`odata`] parses and checks query options; [`store`] holds the records dpo keeps and the traits
//! (ports) a store implements, with their errors; [`audit`] the audit trail's vocabulary and the check of
//! its hash chain; [`metric_names`] the names of the metrics recorded.
//!
//! Nothing here knows HTTP (dropshot's server), SQL drivers or object stores: Cargo keeps it so, as this
//! crate does not depend on them.
#![warn(missing_docs)]

pub mod audit;
pub mod metric_names;
pub mod odata;
pub mod store;
