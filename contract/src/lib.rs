//! What dpo's server, its clients and its tests agree on, in one crate that depends on no other part of
//! dpo: the rules for storage locations ([`location`]), the export's manifest ([`manifest`]), and how
//! secrets are taken out of text that is shown or logged ([`redact`]), and how a `Retry-After` is read
//! ([`retry_after`]). The client re-exports them, so
//! that `dpo_client::location` and the rest keep their paths.
#![warn(missing_docs)]

pub mod location;
pub mod manifest;
pub mod redact;
pub mod retry_after;
