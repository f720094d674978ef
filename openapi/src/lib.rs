//! Tooling around dpo's OpenAPI document, the single source of truth of the API.
//!
//! The document is written as YAML fragments in `openapi/sources/`, bundled into `openapi/dpo.json`
//! ([`bundle`]), turned into the typed client by progenitor ([`codegen`]), and compared with the document
//! the dropshot server derives from its API trait ([`drift`], after [`normalize`]), with the reviewed
//! exceptions of [`allowlist`]. build.rs scripts and `cargo xtask` call into this crate; it knows nothing
//! about the server itself.
#![warn(missing_docs)]

pub mod allowlist;
pub mod bundle;
pub mod codegen;
pub mod diff;
pub mod drift;
pub mod error;
pub mod layout;
pub mod normalize;
pub mod refs;

pub use error::SpecError;
