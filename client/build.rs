//! Generates the typed client from the bundled OpenAPI document with progenitor.

use dpo_openapi::{bundle::read_document, codegen::generate_client, layout::SpecLayout};
use std::path::PathBuf;

fn main() {
    let layout = SpecLayout::of_this_checkout();
    let bundled = layout.bundled();
    println!("cargo::rerun-if-changed={}", bundled.display());
    let result = read_document(&bundled).and_then(|document| generate_client(&document));
    match result {
        Ok(source) => {
            let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("generated.rs");
            std::fs::write(&out, source).expect("OUT_DIR is writable");
        }
        Err(e) => {
            for line in e.to_string().lines() {
                println!("cargo::error={line}");
            }
            println!("cargo::error=(the client is generated from {})", layout.display(&bundled));
        }
    }
}
