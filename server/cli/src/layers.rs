//! The config file's settings layered below flags and the environment (`--config`), and `config check`,
//! which says where each setting came from.

use crate::cli::{Cli, ServeArgs};
use anyhow::Context;
use dpo_server::config_file::{self, ConfigFile};
use std::path::PathBuf;

/// Where each setting of `serve` came from, for `config check`.
pub(crate) struct Layers {
    /// The final parse of the command line, the file's settings added.
    matches: clap::ArgMatches,
    /// The settings the file gave (those neither a flag nor the environment did).
    from_file: Vec<String>,
}

/// The command line, with the config file's settings added below flags and the environment.
pub(crate) fn parse_cli() -> anyhow::Result<(Cli, Option<Layers>)> {
    use clap::{CommandFactory, FromArgMatches};
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let command = Cli::command();
    let matches = command.clone().get_matches_from(&argv);
    let Some((serve, names)) = serve_flags(&matches) else {
        return Ok((Cli::from_arg_matches(&matches)?, None));
    };
    let serve_command = names
        .iter()
        .try_fold(&command, |parent, name| parent.find_subcommand(name))
        .context("the command taking serve's flags exists")?;
    let Some(path) = serve.get_one::<PathBuf>(config_file::CONFIG_FLAG) else {
        let layers = Layers { matches: serve.clone(), from_file: Vec::new() };
        return Ok((Cli::from_arg_matches(&matches)?, Some(layers)));
    };
    let file = ConfigFile::load(path, serve_command)?;
    let added = file.args_below(serve);
    let from_file = file.below(serve).map(|s| s.id.clone()).collect();
    let full: Vec<std::ffi::OsString> = argv.iter().chain(&added).cloned().collect();
    let all = match command.clone().try_get_matches_from(&full) {
        Ok(all) => all,
        Err(error) => match file.culprit(&command, &argv, serve) {
            Some(culprit) => return Err(culprit.into()),
            None => error.exit(),
        },
    };
    let cli = Cli::from_arg_matches(&all)?;
    let layers = serve_flags(&all).map(|(matches, _)| Layers { matches: matches.clone(), from_file });
    Ok((cli, layers))
}

/// The matches of the command that takes `serve`'s flags (`serve` itself, or `config check`), and the
/// names leading to it.
fn serve_flags(matches: &clap::ArgMatches) -> Option<(&clap::ArgMatches, &'static [&'static str])> {
    match matches.subcommand()? {
        ("serve", serve) => Some((serve, &["serve"])),
        ("config", config) => match config.subcommand()? {
            ("check", check) => Some((check, &["config", "check"])),
            _ => None,
        },
        _ => None,
    }
}

/// `config check`: every setting checked as `serve` checks it at start, then the effective settings.
pub(crate) fn check_config(args: ServeArgs, layers: &Option<Layers>) -> anyhow::Result<()> {
    let config = args.config();
    dpo_server::logging::level(&config.log_level).map_err(|e| anyhow::anyhow!("log-level: {e}"))?;
    config.drives().context("drives-url")?;
    config.requests_store().context("requests-location")?;
    let sources = config.sources().context("sources")?;
    if let Some(tls) = &config.tls {
        dpo_server::tls::server_config(tls).context("tls")?;
    }
    if let Some(path) = &config.auth.jwks_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("jwks-file: {}", path.display()))?;
        dpo_server::auth::keys::from_jwks(&text).with_context(|| format!("jwks-file: {}", path.display()))?;
    }
    if let Some(layers) = layers {
        use clap::parser::ValueSource;
        let command = <ServeArgs as clap::Args>::augment_args(clap::Command::new("serve"));
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            let Some(long) = arg.get_long() else { continue };
            let values: Vec<String> = layers
                .matches
                .get_raw(id)
                .map(|raw| raw.map(|v| config_file::masked(&v.to_string_lossy())).collect())
                .unwrap_or_default();
            let origin = match layers.matches.value_source(id) {
                _ if layers.from_file.iter().any(|f| f == id) => "file",
                Some(ValueSource::CommandLine) => "flag",
                Some(ValueSource::EnvVariable) => "env",
                Some(ValueSource::DefaultValue) => "default",
                _ => "unset",
            };
            let shown = if values.is_empty() { "-".to_string() } else { values.join(",") };
            println!("{long} = {shown}  ({origin})");
        }
    }
    let sources_note = match &config.sources_file {
        Some(path) => format!(", sources file {} ({} sources)", path.display(), sources.sources.len()),
        None => String::new(),
    };
    println!("settings ok{sources_note}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::CommandFactory;
    use clap::Parser;
    use dpo_server::config_file::{self, ConfigFile};
    use std::path::PathBuf;

    /// The README's complete `dpo.toml`: the text of the TOML block that starts with `# dpo.toml`.
    fn readme_example() -> String {
        let readme = include_str!("../../../README.md");
        let start = readme.find("```toml\n# dpo.toml\n").expect("the README has the example") + "```toml\n".len();
        let end = start + readme[start..].find("```").expect("the example ends");
        readme[start..end].to_string()
    }

    #[test]
    fn the_readme_config_example_names_every_serve_flag_and_parses() {
        let command = Cli::command();
        let serve = command.find_subcommand("serve").expect("serve");
        let file = ConfigFile::parse(std::path::Path::new("README.md"), &readme_example(), serve)
            .expect("the README's example is a good config file");
        let named: Vec<&str> = file.settings.iter().map(|s| s.id.as_str()).collect();
        for arg in serve.get_arguments() {
            let id = arg.get_id().as_str();
            if arg.get_long().is_some() && id != config_file::CONFIG_FLAG && id != "help" {
                assert!(named.contains(&id), "the README's dpo.toml lacks {:?}", arg.get_long());
            }
        }
        let argv: Vec<std::ffi::OsString> = ["dpo-server".into(), "serve".into()]
            .into_iter()
            .chain(file.settings.iter().flat_map(|s| s.args.clone()))
            .collect();
        let parsed = Cli::try_parse_from(argv).expect("every value of the example is one serve accepts");
        let Command::Serve(args) = parsed.command else { panic!("serve") };
        let config = args.config();
        assert_eq!(config.export_workers, 2);
        assert_eq!(config.state_dir, PathBuf::from("/var/lib/dpo"));
        assert!(config.admin_bind.is_some() && config.auth.jwks_url.is_some());
    }
}
