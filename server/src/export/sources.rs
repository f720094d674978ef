//! A user's data, as the export reads it: the profile (the directory entry), the drive (a folder tree per
//! user under the server's drives folder, `<drives>/<tenant>/<user>/`, like OneDrive), and the activity
//! records (in the store).

use super::ExportError;
use std::path::{Path, PathBuf};

/// A file of a user's drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveFile {
    /// Path inside the drive, with `/` separators (kept in the export).
    pub relative: String,
    /// Where it is on disk.
    pub absolute: PathBuf,
    /// Its size when listed.
    pub size: u64,
}

/// The folder name of a user's drive: the id itself when it is a plain name, otherwise `x-<hex of the id>`
/// so that no id can name a path outside the drives folder.
pub fn drive_folder_name(user_id: &str) -> String {
    let plain = !user_id.is_empty()
        && !user_id.starts_with('.')
        && user_id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if plain { user_id.to_string() } else { format!("x-{}", hex::encode(user_id)) }
}

/// The drive folder of `user_id` of `tenant` under `drives_root`: `<drives>/<tenant>/<user>`.
pub fn drive_dir(drives_root: &Path, tenant: &str, user_id: &str) -> PathBuf {
    drives_root.join(drive_folder_name(tenant)).join(drive_folder_name(user_id))
}

/// Every regular file of the user's drive, sorted by path. Symbolic links are skipped, so a drive cannot
/// reach files outside itself. A user without a drive folder has an empty drive.
pub fn drive_files(drives_root: &Path, tenant: &str, user_id: &str) -> Result<Vec<DriveFile>, ExportError> {
    let root = drive_dir(drives_root, tenant, user_id);
    if !root.exists() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(&root).follow_links(false).sort_by_file_name() {
        let entry = entry.map_err(|e| ExportError::Source(format!("listing the drive: {e}")))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry
            .path()
            .strip_prefix(&root)
            .map_err(|e| ExportError::Source(e.to_string()))?
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let size = entry.metadata().map_err(|e| ExportError::Source(format!("{relative}: {e}")))?.len();
        files.push(DriveFile { relative, absolute: entry.path().to_path_buf(), size });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_user_ids_cannot_escape_the_drives_folder() {
        assert_eq!(drive_folder_name("alice@contoso.com"), "alice@contoso.com");
        assert_eq!(drive_folder_name(".."), "x-2e2e");
        assert_eq!(drive_folder_name("a/../../etc"), format!("x-{}", hex::encode("a/../../etc")));
    }

    #[test]
    fn files_are_listed_with_relative_paths_and_links_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let drive = drive_dir(dir.path(), "t1", "u1");
        std::fs::create_dir_all(drive.join("Documents/Taxes")).unwrap();
        std::fs::write(drive.join("Documents/Taxes/2025.pdf"), b"pdf").unwrap();
        std::fs::write(drive.join("notes.txt"), b"hello").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/hostname", drive.join("escape")).unwrap();
        let files = drive_files(dir.path(), "t1", "u1").unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(names, ["Documents/Taxes/2025.pdf", "notes.txt"]);
        assert_eq!(files[1].size, 5);
        assert!(drive_files(dir.path(), "t1", "nobody").unwrap().is_empty());
        assert!(drive_files(dir.path(), "t2", "u1").unwrap().is_empty(), "another tenant's drive is another folder");
    }
}
