//! Test support shared by the tests, xtask and the benchmarks (a dev-dependency only: the production
//! binary carries none of it).
#![warn(missing_docs)]

pub mod postgres_cluster;
