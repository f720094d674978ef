//! `cargo xtask check` checks the checkout it runs in, whichever checkout built the binary.

use std::{path::Path, process::Command};

/// Copies what the spec gate reads from this checkout into `to`.
fn copy_spec(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("openapi/sources")).unwrap();
    std::fs::create_dir_all(to.join("xtask")).unwrap();
    std::fs::copy(from.join("Cargo.toml"), to.join("Cargo.toml")).unwrap();
    for file in ["openapi/dpo.json", "openapi/manifest.schema.json", "openapi/drift-allowlist.toml"] {
        std::fs::copy(from.join(file), to.join(file)).unwrap();
    }
    for entry in std::fs::read_dir(from.join("openapi/sources")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join("openapi/sources").join(entry.file_name())).unwrap();
    }
}

fn check_in(checkout: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("check")
        .current_dir(checkout)
        .env("CARGO_MANIFEST_DIR", checkout.join("xtask"))
        .output()
        .expect("xtask runs")
}

#[test]
fn the_gate_reads_the_document_of_the_checkout_it_runs_in() {
    let this = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let other = tempfile::tempdir().unwrap();
    copy_spec(this, other.path());
    let out = check_in(other.path());
    assert!(out.status.success(), "an unchanged copy passes: {}", String::from_utf8_lossy(&out.stderr));

    // The other checkout's document drifts; this checkout's does not. The gate run there must fail.
    let bundled = other.path().join("openapi/dpo.json");
    let text = std::fs::read_to_string(&bundled).unwrap();
    std::fs::write(&bundled, text.replacen("Invoke action exportPersonalData", "Invoke action altered", 1)).unwrap();
    let out = check_in(other.path());
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "the altered copy must fail the gate: {said}");
    assert!(said.contains("openapi/dpo.json is stale"), "{said}");

    // Without cargo's variable, the folder it runs in decides.
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("check")
        .current_dir(other.path().join("openapi"))
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .expect("xtask runs");
    assert!(!out.status.success(), "run below the altered copy, the gate checks it");
}
