//! `dpo-server demo`, the README's main command: demo data, a real export to a local folder, verified.

use std::process::Command;

#[test]
fn the_demo_exports_a_user_and_says_where_the_files_and_manifest_are() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_dpo-server")).args(["demo", "--state-dir"]).arg(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("3 users") && stdout.contains("9000 activity records"), "{stdout}");
    assert!(stdout.contains("a SQLite shop database of 41 orders"), "{stdout}");
    assert!(stdout.contains("complete, 10 objects verified"), "{stdout}");
    assert!(stdout.contains("  shop: 1 objects, ") && stdout.contains(", 12 rows"), "{stdout}");
    let manifest = stdout.lines().find_map(|l| l.strip_prefix("manifest: ")).expect("the manifest's path").trim();
    let files = stdout.lines().find_map(|l| l.strip_prefix("files:    ")).expect("the files' folder").trim();
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    assert_eq!(manifest["userId"], "adele");
    assert!(std::path::Path::new(files).join("drive/Videos/Demo.mp4").exists());
    // The shop's orders of the person exported, and only hers.
    let orders = std::fs::read_to_string(std::path::Path::new(files).join("shop/orders.jsonl")).unwrap();
    assert_eq!(orders.lines().count(), 12);
    let first: serde_json::Value = serde_json::from_str(orders.lines().next().unwrap()).unwrap();
    assert!(first["total"].is_number() && first["item"].is_string(), "{first}");
    // A subject rights request for a customer in no directory, run to its report; its zip holds her orders.
    assert!(
        stdout.contains("Jordan Rivera <jordan.rivera@fabrikam.example>, a customer in no directory: report done"),
        "{stdout}"
    );
    assert!(stdout.contains("profile (profile): not applicable"), "{stdout}");
    assert!(stdout.contains("shop (sql): complete; 1 objects") && stdout.contains("5 rows"), "{stdout}");
    let zip = stdout.lines().find_map(|l| l.strip_prefix("zip:      ")).expect("the zip's path").trim();
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).expect("a zip");
    let mut orders = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("shop/orders.jsonl").unwrap(), &mut orders).unwrap();
    assert_eq!(orders.lines().count(), 5, "{orders}");
    let mut page = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("index.html").unwrap(), &mut page).unwrap();
    assert!(page.contains("Hello Jordan Rivera,"), "{page}");
    let report = stdout.lines().find_map(|l| l.strip_prefix("report:   ")).expect("the report's path").trim();
    assert!(std::fs::read_to_string(report).unwrap().contains("manifest.json SHA-256: "));
    // Running it again reuses the demo data and exports again.
    let again =
        Command::new(env!("CARGO_BIN_EXE_dpo-server")).args(["demo", "--state-dir"]).arg(&dir).output().unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("9000 activity records"), "no duplicate records");
}
