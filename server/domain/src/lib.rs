//! dpo's domain: what the server's edge, its store adapters and its export engine agree on, below all of
//! them. [`odata`] parses and checks query options; [`store`] holds the records dpo keeps and the traits
//! (ports) a store implements, with their errors; [`audit`] the audit trail's vocabulary and the check of
//! its hash chain; [`directory`] the rules of users' attributes; [`metric_names`] the names of the
//! metrics recorded; [`requests`] subject rights requests as stored; [`blocking`] the one hop from async code to the store's synchronous traits.
//!
//! Nothing here knows HTTP (dropshot's server), SQL drivers or object stores: Cargo keeps it so, as this
//! crate does not depend on them.
#![warn(missing_docs)]

pub mod audit;
pub mod blocking;
pub mod directory;
pub mod metric_names;
pub mod odata;
pub mod request_stages;
pub mod requests;
pub mod store;
