//! The OpenAPI commands: bundle, generate, check and diff.

use anyhow::{Context, bail};
use dpo_openapi::{
    allowlist::AllowList,
    bundle::{self, bundled_is_fresh},
    codegen::generate_client,
    drift,
    layout::SpecLayout,
};

fn layout() -> SpecLayout {
    SpecLayout::of_this_checkout()
}

/// The published JSON Schema of the export manifest, beside the bundled document.
fn manifest_schema_path() -> std::path::PathBuf {
    layout().root().join("openapi/manifest.schema.json")
}

/// The manifest schema as it is published.
fn manifest_schema() -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(&dpo_client::manifest::Manifest::schema())? + "\n")
}

/// Writes (or, with `check_only`, verifies) the bundled document and the manifest's JSON Schema.
pub fn bundle(check_only: bool) -> anyhow::Result<()> {
    let layout = layout();
    if check_only {
        if !bundled_is_fresh(&layout)? {
            bail!("openapi/dpo.json is stale: it differs from bundling openapi/sources. Run `cargo xtask bundle`.");
        }
        let published = std::fs::read_to_string(manifest_schema_path()).unwrap_or_default();
        if published != manifest_schema()? {
            bail!(
                "openapi/manifest.schema.json is stale: it differs from the Manifest type. Run `cargo xtask bundle`."
            );
        }
        println!("openapi/dpo.json and openapi/manifest.schema.json are current");
        return Ok(());
    }
    let document = bundle::bundle(&layout)?;
    std::fs::write(layout.bundled(), bundle::render(&document))
        .with_context(|| format!("writing {}", layout.bundled().display()))?;
    println!("wrote {}", layout.display(&layout.bundled()));
    std::fs::write(manifest_schema_path(), manifest_schema()?).context("writing openapi/manifest.schema.json")?;
    println!("wrote openapi/manifest.schema.json");
    Ok(())
}

/// Regenerates the bundle and the client source.
pub fn generate() -> anyhow::Result<()> {
    bundle(false)?;
    let layout = layout();
    let document = bundle::read_document(&layout.bundled())?;
    let source = generate_client(&document)?;
    let out = layout.root().join("target/generated/client.rs");
    std::fs::create_dir_all(out.parent().context("target dir")?)?;
    std::fs::write(&out, source)?;
    println!("wrote target/generated/client.rs (for reading; client/build.rs generates the one that is compiled)");
    Ok(())
}

fn report() -> anyhow::Result<drift::DriftReport> {
    let layout = layout();
    let spec = bundle::read_document(&layout.bundled())?;
    let server = dpo_api::document::openapi_document()?;
    let allowlist = AllowList::load(&layout.allowlist())?;
    Ok(drift::check(&spec, &server, &allowlist))
}

/// The gate: current bundle, no drift, no stale allow-list entry.
pub fn check() -> anyhow::Result<()> {
    bundle(true)?;
    let report = report()?;
    print!("{report}");
    if !report.is_clean() {
        bail!("`cargo xtask check` failed");
    }
    Ok(())
}

/// Every difference, allowed or not.
pub fn diff() -> anyhow::Result<()> {
    let report = report()?;
    for (difference, reason) in &report.allowed {
        println!("allowed: {difference}\n         because: {reason}");
    }
    print!("{report}");
    Ok(())
}
