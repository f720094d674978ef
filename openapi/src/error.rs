//! Errors of the OpenAPI tooling.

use std::path::PathBuf;

/// Everything that can go wrong while bundling, checking or generating from the document.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A source fragment is not valid YAML.
    #[error("{path}: not valid YAML: {source}")]
    Yaml {
        /// The fragment.
        path: PathBuf,
        /// The parser's complaint.
        source: serde_yaml::Error,
    },
    /// A JSON document could not be parsed or converted.
    #[error("{what}: {source}")]
    Json {
        /// What was being read.
        what: String,
        /// The parser's complaint.
        source: serde_json::Error,
    },
    /// Two source fragments define the same key with different values.
    #[error("{key} is defined twice: in {first} and again in {second}; keep it in one fragment")]
    Conflict {
        /// JSON-pointer-like location of the key.
        key: String,
        /// The fragment that defined it first.
        first: String,
        /// The fragment that defined it again.
        second: String,
    },
    /// The document breaks a rule the bundle enforces (version, dangling `$ref`, ...).
    #[error("invalid OpenAPI document:\n{0}")]
    Invalid(String),
    /// The allow-list file is malformed.
    #[error("{path}: {message}")]
    AllowList {
        /// The allow-list file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// progenitor rejected the document or panicked on it.
    #[error("progenitor could not generate the client from the bundled document: {0}")]
    Codegen(String),
}

impl SpecError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SpecError::Io { path: path.into(), source }
    }
}
