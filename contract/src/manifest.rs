//! The manifest of an export (`<storage location>/<operation id>/manifest.json`): one type for its writer
//! (the server) and its readers (`dpo download`, the demo, the tests), versioned by `formatVersion`. Its
//! JSON Schema is published beside the OpenAPI document, in `openapi/manifest.schema.json`
//! (`cargo xtask bundle` writes it; a test fails while it is stale).
//!
//! The server writes the manifest last. An export is whole when its manifest exists and says `complete`;
//! one whose configured source failed has a manifest too, saying `failed`, which source and why, and
//! listing what was written before as it is (the failing file marked `partial`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Component, Path};

/// The format this crate writes and the newest it reads. Version 2 added [`Manifest::sources`] and each
/// object's source and row count; version 3 the export's [`Manifest::status`], failed sources and
/// partial objects; version 4 sources that do not apply to the person ([`SourceOutcome::NotApplicable`]).
pub const FORMAT_VERSION: u32 = 4;

/// What an export holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Version of this format. Manifests written before the field existed are version 1.
    #[serde(default = "first_version")]
    pub format_version: u32,
    /// The data policy operation that made the export.
    pub operation_id: String,
    /// The user whose data it is.
    pub user_id: String,
    /// When the export was finished (RFC 3339, UTC, milliseconds).
    pub exported_date_time: String,
    /// Whether the export holds everything (`complete`) or stopped at a failed source (`failed`, the
    /// operation's status too). Before version 3 only complete exports had a manifest.
    #[serde(default)]
    pub status: ExportStatus,
    /// Every object of the export but the manifest itself, in the order written.
    pub objects: Vec<ManifestObject>,
    /// What each source of the person's data held, in the order read (none in version 1).
    #[serde(default)]
    pub sources: Vec<ManifestSource>,
}

fn first_version() -> u32 {
    1
}

/// One object of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ManifestObject {
    /// Path relative to the export's folder, `/`-separated, never leaving it.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    /// The source it came from (a name of [`Manifest::sources`]; absent in version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// How many rows or records it holds, for files of rows (`.jsonl`, `.csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Whether it holds only part of what its source had: written until the source failed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// How an export ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ExportStatus {
    /// Every source was read whole.
    #[default]
    Complete,
    /// A source failed: the export holds what was read before, and no source after it.
    Failed,
}

/// One source of the person's data and what the export found there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSource {
    /// Its name: its folder (or file) in the export.
    pub name: String,
    /// What it is: `profile`, `drive` and `activity` (dpo's own), or `sql`, `objects` or `http` (a
    /// configured source).
    pub kind: String,
    /// Where it was read, secrets redacted (a configured source's database, prefix or URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// What was asked of it: a configured source's queries, each one file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<ManifestQuery>,
    /// How reading it ended.
    pub outcome: SourceOutcome,
    /// Why it failed, for a failed source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Objects it wrote.
    pub objects: u64,
    /// Bytes it wrote.
    pub bytes: u64,
    /// Rows or records it wrote, for sources of rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

/// A query a source ran for the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ManifestQuery {
    /// Its name.
    pub name: String,
    /// Its text, with the person's identities as named parameters (`:mail`), never their values.
    pub sql: String,
    /// The file it wrote.
    pub path: String,
}

/// How reading a source ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SourceOutcome {
    /// It held data of the person, all written.
    Complete,
    /// It held nothing of the person (not an error).
    Empty,
    /// Reading it failed after its retries: what it wrote is listed, the last file as partial.
    Failed,
    /// Not read, because a source before it failed.
    Skipped,
    /// Not read, because it is not about this person: a built-in source (profile, drive, activity) for a
    /// person a request names who is not a user of the directory, or a source whose every query (prefix,
    /// URL) names an identity the request does not give. `reason` says which.
    NotApplicable,
}

/// Why a manifest, or the export it describes, is not right.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON of a manifest.
    #[error("manifest.json is not a manifest: {0}")]
    Malformed(#[from] serde_json::Error),
    /// Written by a newer dpo than this reader.
    #[error("manifest.json has format version {0}; this reader knows versions up to {FORMAT_VERSION}")]
    TooNew(u32),
    /// A path that would leave the export's folder, or is empty.
    #[error("manifest.json names an unsafe path {0:?}")]
    UnsafePath(String),
    /// An object could not be read.
    #[error("{path}: {source}")]
    Unreadable {
        /// The object.
        path: String,
        /// What reading it said.
        #[source]
        source: std::io::Error,
    },
    /// An object's size or SHA-256 differs from the manifest's.
    #[error("{0}: size or SHA-256 does not match the manifest")]
    Mismatch(String),
}

impl Manifest {
    /// Reads a manifest, refusing newer formats and paths that leave the export's folder.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = serde_json::from_slice(bytes)?;
        if manifest.format_version > FORMAT_VERSION {
            return Err(ManifestError::TooNew(manifest.format_version));
        }
        for object in &manifest.objects {
            object.relative_path()?;
        }
        Ok(manifest)
    }

    /// The manifest as it is written: pretty JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let mut json = Vec::new();
        // A struct of strings and numbers always serialises, and a Vec takes every write.
        let _ = self.write_json(&mut json);
        json
    }

    /// Writes the manifest as it is written (pretty JSON) to `out` as it goes: one of 100,000 files is
    /// tens of megabytes.
    pub fn write_json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(out, self).map_err(std::io::Error::from)
    }

    /// Checks every object in `folder` (a local copy of the export) against the manifest and returns
    /// the bytes checked. Blocking: reads every file.
    pub fn verify_folder(&self, folder: &Path) -> Result<u64, ManifestError> {
        let mut total = 0;
        for object in &self.objects {
            let path = folder.join(object.relative_path()?);
            let unreadable = |source| ManifestError::Unreadable { path: object.path.clone(), source };
            let mut file = std::fs::File::open(&path).map_err(unreadable)?;
            let mut hasher = Sha256::new();
            let size = std::io::copy(&mut file, &mut hasher).map_err(unreadable)?;
            object.check(size, &hex::encode(hasher.finalize()))?;
            total += size;
        }
        Ok(total)
    }

    /// The JSON Schema of the format.
    pub fn schema() -> schemars::schema::RootSchema {
        schemars::schema_for!(Manifest)
    }
}

impl ManifestObject {
    /// The path, checked to stay inside the export's folder.
    pub fn relative_path(&self) -> Result<&Path, ManifestError> {
        let path = Path::new(&self.path);
        let normal = path.components().all(|c| matches!(c, Component::Normal(_)));
        if self.path.is_empty() || !normal || self.path.contains('\\') {
            return Err(ManifestError::UnsafePath(self.path.clone()));
        }
        Ok(path)
    }

    /// Whether content of `size` bytes with SHA-256 `sha256` (hex) is this object.
    pub fn check(&self, size: u64, sha256: &str) -> Result<(), ManifestError> {
        if size == self.size && sha256.eq_ignore_ascii_case(&self.sha256) {
            Ok(())
        } else {
            Err(ManifestError::Mismatch(self.path.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(paths: &[&str]) -> Vec<u8> {
        let objects: Vec<_> = paths.iter().map(|p| serde_json::json!({"path": p, "size": 1, "sha256": "00"})).collect();
        serde_json::to_vec(&serde_json::json!({
            "operationId": "op", "userId": "u", "exportedDateTime": "2026-01-01T00:00:00.000Z", "objects": objects
        }))
        .unwrap()
    }

    #[test]
    fn manifests_without_a_version_are_the_first_and_newer_ones_are_refused() {
        assert_eq!(Manifest::parse(&manifest(&["drive/a.txt"])).unwrap().format_version, 1);
        let mut newer: serde_json::Value = serde_json::from_slice(&manifest(&[])).unwrap();
        newer["formatVersion"] = 99.into();
        let refused = Manifest::parse(&serde_json::to_vec(&newer).unwrap()).unwrap_err();
        assert!(matches!(refused, ManifestError::TooNew(99)), "{refused}");
    }

    #[test]
    fn paths_that_leave_the_folder_are_refused() {
        for bad in ["../etc/passwd", "/etc/passwd", "drive/../../x", "", "a\\..\\b", "./a"] {
            let refused = Manifest::parse(&manifest(&[bad])).unwrap_err();
            assert!(matches!(refused, ManifestError::UnsafePath(_)), "{bad:?}: {refused}");
        }
    }

    #[test]
    fn a_folder_verifies_only_when_every_object_matches() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("drive")).unwrap();
        std::fs::write(dir.path().join("drive/a.txt"), b"hello").unwrap();
        let object = ManifestObject {
            path: "drive/a.txt".into(),
            size: 5,
            sha256: hex::encode(Sha256::digest(b"hello")),
            source: Some("drive".into()),
            rows: None,
            partial: false,
        };
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            operation_id: "op".into(),
            user_id: "u".into(),
            exported_date_time: "2026-01-01T00:00:00.000Z".into(),
            status: ExportStatus::Complete,
            objects: vec![object],
            sources: Vec::new(),
        };
        assert_eq!(manifest.verify_folder(dir.path()).unwrap(), 5);
        assert_eq!(Manifest::parse(&manifest.to_json()).unwrap(), manifest);
        std::fs::write(dir.path().join("drive/a.txt"), b"HELLO").unwrap();
        assert!(matches!(manifest.verify_folder(dir.path()), Err(ManifestError::Mismatch(_))));
        std::fs::remove_file(dir.path().join("drive/a.txt")).unwrap();
        assert!(matches!(manifest.verify_folder(dir.path()), Err(ManifestError::Unreadable { .. })));
    }
}
