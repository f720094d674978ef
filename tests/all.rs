//! The package's suites in one test binary: each links the whole server, so one binary instead of one per
//! suite saves a link of it per suite. A suite is a module; `cargo test --test all -- <suite>::` runs one.

mod auth;
mod common;
mod directory_audits;
mod drift;
mod erasure;
mod export;
mod graph_sdk;
mod hardening;
mod odata;
mod roundtrip;
mod semantics;
mod subject_rights;
mod wire;
