#![allow(clippy::all, missing_docs)]
include!(concat!(env!("OUT_DIR"), "/generated.rs"));
