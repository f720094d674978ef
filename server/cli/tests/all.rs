//! The suites that drive the `dpo-server` binary, in one test binary: one link instead of one per suite. A
//! suite is a module; `cargo test -p dpo-server-cli --test all -- <suite>::` runs one.

mod admin;
mod audit;
mod common;
mod config;
mod connections;
mod crash;
mod demo;
mod drives;
mod erasure;
mod keys;
mod logs;
mod replicas;
mod shutdown;
mod sources;
