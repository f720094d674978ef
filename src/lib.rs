//! dpo: a self-hostable, spec-first implementation of the Microsoft Graph data policy operations API.
//!
//! This root crate carries the workspace's build-time drift gate (`build.rs`) and its end-to-end tests
//! (`tests/`). The parts live in their own crates: `dpo-api` (the HTTP interface), `dpo-server` (the
//! service), `dpo-client` (the generated client) and `dpo-openapi` (the document tooling).

pub use dpo_client as client;
