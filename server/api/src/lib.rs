//! The dpo HTTP interface, as the dropshot server implements it: the API traits ([`api`]), the wire types
//! ([`model`], [`params`], [`error`]), the response types dropshot lacks ([`responses`]), and the OpenAPI
//! document derived from all of that without running a server ([`document`]).
//!
//! This crate holds no behaviour: the server crate implements [`DataPolicyOperationsApi`]. Every type here
//! is shaped to match `openapi/dpo.json`; the drift check (`cargo xtask check`, and the workspace build
//! script) fails when they part.
#![warn(missing_docs)]

pub mod api;
pub mod directory_audit;
pub mod document;
pub mod error;
pub mod extract;
pub mod params;
pub mod responses;

pub use api::{CountApi, DataPolicyOperationsApi, count_api_mod, data_policy_operations_api_mod};
/// The resources on the wire (`dpo-model`, a crate of its own so that the crates below the server use them
/// without dropshot).
pub use dpo_model as model;
pub use error::GraphError;
