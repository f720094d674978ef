//! What the tests, xtask and the benchmarks share: starting helper processes and servers ([`process`]),
//! Azurite ([`azurite`]), a throwaway PostgreSQL cluster ([`postgres_cluster`]), test secrets
//! ([`secrets`]) and reading subject rights requests ([`requests`]). A dev-dependency only: the production binary carries none of it.
#![warn(missing_docs)]

pub mod azurite;
pub mod postgres_cluster;
pub mod process;
pub mod requests;
pub mod secrets;

/// A tool `cargo xtask test` installs: the path in `variable`, else `relative` to the checkout.
pub fn tool(variable: &str, relative: &str) -> std::path::PathBuf {
    match std::env::var_os(variable) {
        Some(path) => path.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative),
    }
}
