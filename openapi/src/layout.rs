//! Where the document's files live, relative to the workspace root.

use std::path::{Path, PathBuf};

/// The files that make up dpo's OpenAPI document.
#[derive(Debug, Clone)]
pub struct SpecLayout {
    root: PathBuf,
}

impl SpecLayout {
    /// The layout of the workspace whose root folder is `workspace_root`.
    pub fn new(workspace_root: impl Into<PathBuf>) -> Self {
        SpecLayout { root: workspace_root.into() }
    }

    /// The layout of the checkout being built, tested or run, found at run time: from the package folder
    /// cargo names in `CARGO_MANIFEST_DIR` (for build scripts, tests and `cargo run`), else from the
    /// current folder. Never from a path compiled into the binary: a target folder shared by several
    /// checkouts (or copied) would then check another checkout's document.
    pub fn of_this_checkout() -> Self {
        let start = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_default();
        SpecLayout::find(&start).unwrap_or_else(|| SpecLayout::new(start))
    }

    /// The layout of the nearest folder at or above `start` that holds `openapi/sources` and a
    /// `Cargo.toml`: the workspace root.
    pub fn find(start: &Path) -> Option<Self> {
        start
            .ancestors()
            .find(|dir| dir.join("Cargo.toml").is_file() && dir.join("openapi").join("sources").is_dir())
            .map(SpecLayout::new)
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder holding the hand-written YAML fragments.
    pub fn sources_dir(&self) -> PathBuf {
        self.root.join("openapi").join("sources")
    }

    /// The bundled document that every build consumes.
    pub fn bundled(&self) -> PathBuf {
        self.root.join("openapi").join("dpo.json")
    }

    /// The reviewed list of accepted differences between the document and the server.
    pub fn allowlist(&self) -> PathBuf {
        self.root.join("openapi").join("drift-allowlist.toml")
    }

    /// Path of `p` relative to the workspace root, for messages.
    pub fn display(&self, p: &Path) -> String {
        p.strip_prefix(&self.root).unwrap_or(p).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_found_from_any_folder_below_it_and_nowhere_else() {
        let dir = std::env::temp_dir().join(format!("dpo-layout-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("openapi/sources")).unwrap();
        std::fs::create_dir_all(dir.join("xtask/src")).unwrap();
        std::fs::write(dir.join("Cargo.toml"), "[workspace]\n").unwrap();
        assert_eq!(SpecLayout::find(&dir.join("xtask/src")).map(|l| l.root), Some(dir.clone()));
        assert_eq!(SpecLayout::find(&dir).map(|l| l.root), Some(dir.clone()));
        assert!(SpecLayout::find(Path::new("/")).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
