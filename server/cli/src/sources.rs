//! `sources check` and `sources preview`: a sources file tried against its sources, before a server uses it.

use crate::{cli::DirectoryArgs, stores::open_directory};
use anyhow::{Context, bail};
use dpo_server::sources::{
    self, Identities, Sources,
    tools::{Checked, Previewed},
};

pub(crate) async fn check(path: &std::path::Path) -> anyhow::Result<()> {
    let sources = Sources::load(path)?;
    let checked = sources::tools::check(&sources).await;
    let failed = checked.iter().filter(|c| c.outcome.is_err()).count();
    for Checked { query, outcome } in &checked {
        match outcome {
            Ok(columns) if columns.is_empty() => println!("{query}: ok"),
            Ok(columns) => println!("{query}: ok ({} columns: {})", columns.len(), columns.join(", ")),
            Err(e) => println!("{query}: {e}"),
        }
    }
    if failed > 0 {
        bail!("{failed} of {} checks failed", checked.len());
    }
    println!("{}: {} sources, {} checks, all ok", path.display(), sources.sources.len(), checked.len());
    Ok(())
}

pub(crate) async fn preview(path: &std::path::Path, user: &str, directory: &DirectoryArgs) -> anyhow::Result<()> {
    let sources = Sources::load(path)?;
    let (store, name) = open_directory(directory)?;
    let found = store.find_user(&directory.tenant, user)?.with_context(|| format!("user {user} is not in {name}"))?;
    let previewed = sources::tools::preview(&sources, &Identities::of(&found)).await;
    let failed = previewed.iter().filter(|p| p.outcome.is_err()).count();
    for Previewed { path, outcome } in &previewed {
        match outcome {
            Ok((objects, bytes)) if path.ends_with('/') => println!("{path}: {objects} objects, {bytes} bytes"),
            Ok((rows, bytes)) => println!("{path}: {rows} rows, {bytes} bytes"),
            Err(e) => println!("{path}: {e}"),
        }
    }
    if failed > 0 {
        bail!("{failed} of {} queries failed: an export of {} would fail", previewed.len(), found.id);
    }
    Ok(())
}
