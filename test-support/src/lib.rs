//! Test support shared by the tests, xtask and the benchmarks (Azurite's development account and its SAS
//! signing; a throwaway PostgreSQL cluster) (a dev-dependency only: the production
//! binary carries none of it).
#![warn(missing_docs)]

pub mod azurite;
pub mod postgres_cluster;
pub mod secrets;
