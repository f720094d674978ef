//! `sources check` and `sources preview`: a sources file tried against its sources, before a server uses it.

use crate::{cli::DirectoryArgs, stores::open_directory};
use anyhow::{Context, bail};
use dpo_server::sources::{
    self, Identities, NamedPerson, Sources,
    tools::{Checked, ErasePlan, ErasePreviewed, Previewed},
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

/// Whom a preview is for.
pub(crate) enum Person {
    /// A user of the directory, by id or userPrincipalName.
    User(String),
    /// A person as a subject rights request names them.
    Named(NamedPerson),
}

pub(crate) async fn preview(
    path: &std::path::Path,
    person: &Person,
    directory: &DirectoryArgs,
    erase: bool,
) -> anyhow::Result<()> {
    let sources = Sources::load(path)?;
    let (store, name) = open_directory(directory)?;
    let (who, shown) = match person {
        Person::User(user) => {
            let found =
                store.find_user(&directory.tenant, user)?.with_context(|| format!("user {user} is not in {name}"))?;
            (Identities::of(&found), found.id)
        }
        Person::Named(named) => {
            let user = store.find_user_by_email(&directory.tenant, &named.email)?;
            match &user {
                Some(user) => println!("{} is the user {} of {name}", named.email, user.id),
                None => println!("{} is not a user of {name}: only what the request gives binds", named.email),
            }
            (Identities::of_person(named, user.as_ref()), named.email.clone())
        }
    };
    if erase {
        return preview_erase(&sources, &who, &shown).await;
    }
    let previewed = sources::tools::preview(&sources, &who).await;
    let failed = previewed.iter().filter(|p| p.outcome.is_err()).count();
    for Previewed { path, outcome, skipped } in &previewed {
        if let Some(reason) = skipped {
            println!("{path}: {reason}");
            continue;
        }
        match outcome {
            Ok((objects, bytes)) if path.ends_with('/') => println!("{path}: {objects} objects, {bytes} bytes"),
            Ok((rows, bytes)) => println!("{path}: {rows} rows, {bytes} bytes"),
            Err(e) => println!("{path}: {e}"),
        }
    }
    if failed > 0 {
        bail!("{failed} of {} queries failed: an export of {shown} would fail", previewed.len());
    }
    Ok(())
}

/// What erasing `who`'s data would do, each step found without changing anything.
async fn preview_erase(sources: &Sources, who: &Identities, shown: &str) -> anyhow::Result<()> {
    let previewed = sources::tools::preview_erase(sources, who).await;
    if previewed.is_empty() {
        println!("{}: no source erases anything", sources.path.display());
        return Ok(());
    }
    let mut failed = 0;
    for ErasePreviewed { what, outcome, skipped, .. } in &previewed {
        if let Some(reason) = skipped {
            println!("{what}: {reason}");
            continue;
        }
        match outcome {
            Ok(ErasePlan::Rows { changed, max_rows }) if changed > max_rows => {
                failed += 1;
                println!(
                    "{what}: would change {changed} rows, over its max_rows of {max_rows}: a request stops before erasing"
                )
            }
            Ok(ErasePlan::Rows { changed, max_rows }) => {
                println!("{what}: would change {changed} rows (max_rows {max_rows}; rolled back)")
            }
            Ok(ErasePlan::Kept { rows, reason }) => println!("{what}: {rows} rows kept ({reason})"),
            Ok(ErasePlan::Objects(n)) => println!("{what}: {n} objects would be deleted"),
            Ok(ErasePlan::Request(request)) => println!("{what}: would send {request}"),
            Err(e) => {
                failed += 1;
                println!("{what}: {e}")
            }
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} steps could not be told or are over their limit: erasing {shown}'s data would stop",
            previewed.len()
        );
    }
    Ok(())
}
