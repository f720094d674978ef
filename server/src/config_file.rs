//! The config file (`--config dpo.toml`, env `DPO_CONFIG`): every flag of a command, as TOML keys named
//! like the flags (`export-workers = 4`, or `export_workers`), below the command line and the environment:
//! flags > env > file > defaults.
//!
//! The file is not a second parser of settings. Each key becomes the flag it names, added to the command
//! line only where neither the command line nor the environment gave the setting, and clap parses the
//! whole again: a value is checked by the same rules wherever it comes from, and a wrong one is reported
//! with the file's line.

use clap::{ArgMatches, Command, parser::ValueSource};
use std::{collections::BTreeMap, ffi::OsString, path::Path, path::PathBuf};
use toml::Spanned;

/// The long name of the flag that names the config file.
pub const CONFIG_FLAG: &str = "config";

/// Why a config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// It cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// It is not TOML (the cause names the line and column).
    #[error("{}: {source}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A key or its value is wrong.
    #[error("{}, line {line}: {key}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line of the key.
        line: usize,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// One setting of the file: the flag it stands for, its arguments, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSetting {
    /// The flag's id in the clap command (its long name with `_`).
    pub id: String,
    /// The arguments it adds: the flag, then its values.
    pub args: Vec<OsString>,
    /// Its line in the file.
    pub line: usize,
    /// The key as written.
    pub key: String,
}

/// A config file read and matched against the flags of `command`.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// The file.
    pub path: PathBuf,
    /// Its settings, in the file's order.
    pub settings: Vec<FileSetting>,
}

impl ConfigFile {
    /// Reads `path` as settings of `command`: every key must name one of its flags (never `config`),
    /// with a value of the flag's kind (a string, number or boolean; an array for a flag that takes many).
    pub fn load(path: &Path, command: &Command) -> Result<ConfigFile, ConfigFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigFileError::Read { path: path.to_path_buf(), source })?;
        Self::parse(path, &text, command)
    }

    /// [`ConfigFile::load`] of `text`, read from `path`.
    pub fn parse(path: &Path, text: &str, command: &Command) -> Result<ConfigFile, ConfigFileError> {
        let table: BTreeMap<Spanned<String>, Spanned<toml::Value>> = toml::from_str(text)
            .map_err(|source| ConfigFileError::Syntax { path: path.to_path_buf(), source: Box::new(source) })?;
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        // Built, each argument's action is known (the derive leaves most to clap's defaults).
        let mut command = command.clone();
        command.build();
        let mut entries: Vec<_> = table.into_iter().collect();
        entries.sort_by_key(|(key, _)| key.span().start);
        let mut settings = Vec::new();
        for (key, value) in entries {
            let line = line_of(key.span().start);
            let invalid = |reason: String| ConfigFileError::Invalid {
                path: path.to_path_buf(),
                line,
                key: key.get_ref().clone(),
                reason,
            };
            let long = key.get_ref().replace('_', "-");
            let arg = command
                .get_arguments()
                .find(|a| a.get_long() == Some(long.as_str()) && long != CONFIG_FLAG)
                .ok_or_else(|| invalid(format!("no such setting of `{}`", command.get_name())))?;
            let flag = OsString::from(format!("--{long}"));
            let takes_values = arg.get_action().takes_values();
            let args = match value.get_ref() {
                toml::Value::Boolean(on) if !takes_values => {
                    if *on {
                        vec![flag]
                    } else {
                        Vec::new()
                    }
                }
                toml::Value::Boolean(_) => return Err(invalid("expects a value, not true or false".into())),
                _ if !takes_values => return Err(invalid("is a switch: write true or false".into())),
                toml::Value::Array(items) => {
                    if !matches!(arg.get_action(), clap::ArgAction::Append) {
                        return Err(invalid("takes one value, not a list".into()));
                    }
                    let mut args = Vec::new();
                    for item in items {
                        args.push(flag.clone());
                        args.push(scalar(item).map_err(invalid)?);
                    }
                    args
                }
                other => vec![flag, scalar(other).map_err(invalid)?],
            };
            settings.push(FileSetting { id: arg.get_id().to_string(), args, line, key: key.get_ref().clone() });
        }
        Ok(ConfigFile { path: path.to_path_buf(), settings })
    }

    /// The file's settings that neither the command line nor the environment gave, where `matches`
    /// parsed the command line: those that apply.
    pub fn below<'a>(&'a self, matches: &'a ArgMatches) -> impl Iterator<Item = &'a FileSetting> + 'a {
        self.settings.iter().filter(|s| {
            !matches!(matches.value_source(&s.id), Some(ValueSource::CommandLine | ValueSource::EnvVariable))
        })
    }

    /// The arguments to add to a command line that `matches` parsed: those of [`ConfigFile::below`].
    pub fn args_below(&self, matches: &ArgMatches) -> Vec<OsString> {
        self.below(matches).flat_map(|s| s.args.iter().cloned()).collect()
    }

    /// The setting whose arguments clap refuses on their own, said with its line: which of the added
    /// arguments a failed parse of `base` plus [`ConfigFile::args_below`] was about.
    pub fn culprit(&self, command: &Command, base: &[OsString], matches: &ArgMatches) -> Option<ConfigFileError> {
        self.below(matches).find_map(|s| {
            let argv: Vec<OsString> = base.iter().chain(&s.args).cloned().collect();
            let error = command.clone().try_get_matches_from(argv).err()?;
            Some(ConfigFileError::Invalid {
                path: self.path.clone(),
                line: s.line,
                key: s.key.clone(),
                reason: first_line(&error.to_string()),
            })
        })
    }
}

/// A TOML scalar as a flag's value.
fn scalar(value: &toml::Value) -> Result<OsString, String> {
    match value {
        toml::Value::String(s) => Ok(s.into()),
        toml::Value::Integer(n) => Ok(n.to_string().into()),
        toml::Value::Float(x) => Ok(x.to_string().into()),
        toml::Value::Boolean(b) => Ok(b.to_string().into()),
        toml::Value::Datetime(d) => Ok(d.to_string().into()),
        toml::Value::Array(_) | toml::Value::Table(_) => Err("expects a string, number or boolean".into()),
    }
}

/// clap's message without its `error: ` prefix and usage lines.
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string()
}

/// A setting's value as it may be shown: every secret in it masked (a URL's password, a `password=` of a
/// connection string, a `client_secret`, `token` or key in a query: [`dpo_contract::redact::redact_secrets`]),
/// and the whole value when it looks like a URL but does not parse, since its parts cannot be told apart.
pub fn masked(value: &str) -> String {
    if value.contains("://") && url::Url::parse(value).is_err() {
        return dpo_contract::redact::REDACTED.to_string();
    }
    dpo_contract::redact::redact_secrets(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction};

    fn command() -> Command {
        Command::new("serve")
            .arg(Arg::new("config").long("config"))
            .arg(Arg::new("bind").long("bind").default_value("127.0.0.1:8080"))
            .arg(Arg::new("workers").long("export-workers").value_parser(clap::value_parser!(u32)).default_value("2"))
            .arg(Arg::new("no_admin").long("no-admin").action(ArgAction::SetTrue))
            .arg(Arg::new("hosts").long("storage-host").action(ArgAction::Append))
    }

    fn parse(text: &str) -> Result<ConfigFile, ConfigFileError> {
        ConfigFile::parse(Path::new("dpo.toml"), text, &command())
    }

    #[test]
    fn keys_become_the_flags_they_name() {
        let file = parse("bind = \"0.0.0.0:80\"\nexport_workers = 4\nno-admin = true\nstorage-host = [\"a\", \"b\"]\n")
            .expect("a good file");
        let args: Vec<Vec<OsString>> = file.settings.iter().map(|s| s.args.clone()).collect();
        let os = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            args,
            vec![
                os(&["--bind", "0.0.0.0:80"]),
                os(&["--export-workers", "4"]),
                os(&["--no-admin"]),
                os(&["--storage-host", "a", "--storage-host", "b"])
            ]
        );
        assert!(parse("no-admin = false\n").expect("false is no flag").settings[0].args.is_empty());
    }

    #[test]
    fn a_wrong_key_or_value_names_its_line() {
        let wrong = |text: &str| match parse(text) {
            Err(ConfigFileError::Invalid { line, key, reason, .. }) => (line, key, reason),
            other => panic!("{other:?}"),
        };
        assert_eq!(wrong("bind = \"x\"\n\nbnid = 1\n").0, 3);
        assert!(wrong("bnid = 1\n").2.contains("no such setting"));
        assert!(wrong("config = \"other.toml\"\n").2.contains("no such setting"), "no file names another");
        assert!(wrong("no-admin = \"yes\"\n").2.contains("switch"));
        assert!(wrong("bind = [\"a\", \"b\"]\n").2.contains("one value"));
        assert!(wrong("bind = true\n").2.contains("expects a value"));
        assert!(matches!(parse("bind = \n"), Err(ConfigFileError::Syntax { .. })));
    }

    #[test]
    fn flags_and_the_environment_stay_above_the_file() {
        let file = parse("bind = \"0.0.0.0:80\"\nexport-workers = 4\n").expect("a good file");
        let base: Vec<OsString> = ["serve", "--export-workers", "3"].iter().map(OsString::from).collect();
        let matches = command().get_matches_from(&base);
        let added = file.args_below(&matches);
        assert_eq!(added, vec![OsString::from("--bind"), OsString::from("0.0.0.0:80")]);
        let all = command().get_matches_from(base.iter().chain(&added));
        assert_eq!(all.get_one::<u32>("workers"), Some(&3));
        assert_eq!(all.get_one::<String>("bind").map(String::as_str), Some("0.0.0.0:80"));
    }

    #[test]
    fn a_value_clap_refuses_is_blamed_on_its_line() {
        let file = parse("bind = \"0.0.0.0:80\"\nexport-workers = -1\n").expect("TOML of the right shape");
        let base: Vec<OsString> = vec!["serve".into()];
        let matches = command().get_matches_from(&base);
        let culprit = file.culprit(&command(), &base, &matches).expect("one setting is wrong");
        let message = culprit.to_string();
        assert!(message.starts_with("dpo.toml, line 2: export-workers: "), "{message}");
        assert!(message.contains("-1"), "{message}");
    }

    #[test]
    fn secrets_are_masked() {
        assert_eq!(masked("postgres://dpo:s3cret@db/dpo"), "postgres://dpo:REDACTED@db/dpo");
        assert_eq!(masked("postgres://db/dpo?password=s3cret"), "postgres://db/dpo?password=REDACTED");
        assert_eq!(masked("host=db password=s3cret"), "host=db password=REDACTED");
        assert_eq!(masked("postgres://dpo:s3cr[et@db:port/dpo"), "REDACTED", "unparseable: all of it");
        assert_eq!(
            masked("https://idp.example/keys?client_secret=s3cret"),
            "https://idp.example/keys?client_secret=REDACTED"
        );
        assert_eq!(masked("postgres://dpo@db/dpo"), "postgres://dpo@db/dpo");
        assert_eq!(masked("127.0.0.1:1"), "127.0.0.1:1");
        assert_eq!(masked("/etc/dpo/key.pem"), "/etc/dpo/key.pem");
    }
}
