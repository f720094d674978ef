//! The published JSON Schema of the export manifest (`openapi/manifest.schema.json`) is the one the
//! `Manifest` type derives: a change to the type fails here until `cargo xtask bundle` writes it anew.

#[test]
fn the_published_manifest_schema_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/manifest.schema.json");
    let published: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("openapi/manifest.schema.json exists")).unwrap();
    let derived = serde_json::to_value(dpo_client::manifest::Manifest::schema()).unwrap();
    assert_eq!(published, derived, "openapi/manifest.schema.json is stale: run `cargo xtask bundle`");
}
