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

    /// The layout of this checkout (this crate lives in `<root>/openapi`).
    pub fn of_this_checkout() -> Self {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        SpecLayout::new(here.parent().unwrap_or(here))
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
