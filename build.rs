//! The drift gate on every build and test run: the bundled document must be current, and the server's API
//! traits must say what `openapi/dpo.json` says (modulo the reviewed `openapi/drift-allowlist.toml`).
//! `cargo xtask check` runs the same check and `cargo xtask diff` shows every difference.

use dpo_openapi::{allowlist::AllowList, bundle, drift, layout::SpecLayout};

fn main() {
    let layout = SpecLayout::of_this_checkout();
    println!("cargo::rerun-if-changed={}", layout.sources_dir().display());
    println!("cargo::rerun-if-changed={}", layout.bundled().display());
    println!("cargo::rerun-if-changed={}", layout.allowlist().display());
    if let Err(problem) = gate(&layout) {
        for line in problem.lines() {
            println!("cargo::error={line}");
        }
    }
}

fn gate(layout: &SpecLayout) -> Result<(), String> {
    if !bundle::bundled_is_fresh(layout).map_err(|e| e.to_string())? {
        return Err(
            "openapi/dpo.json is stale: it differs from bundling openapi/sources. Run `cargo xtask bundle`.".into()
        );
    }
    let spec = bundle::read_document(&layout.bundled()).map_err(|e| e.to_string())?;
    let server = dpo_api::document::openapi_document().map_err(|e| e.to_string())?;
    let allowlist = AllowList::load(&layout.allowlist()).map_err(|e| e.to_string())?;
    let report = drift::check(&spec, &server, &allowlist);
    if report.is_clean() { Ok(()) } else { Err(report.to_string()) }
}
