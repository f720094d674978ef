//! `dpo`: export users' personal data, follow data policy operations and handle subject rights requests from
//! the command line, against a dpo server or Microsoft Graph itself.

mod commands;
mod download;
mod failure;
mod output;
mod requests;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use std::{path::PathBuf, process::ExitCode};

/// Export users' personal data (GDPR/CCPA data subject requests) and follow the operations.
///
/// Exit codes: 0 success; 1 other failure; 2 bad usage; 3 the service refused the request (4xx);
/// 4 the service failed or could not be reached (5xx, network); 5 the export ended `failed` or timed out;
/// 6 a downloaded export does not match its manifest.
#[derive(Parser)]
#[command(name = "dpo", version, about, long_about)]
pub struct Cli {
    /// Base URL of the API, including the version root (e.g. https://graph.microsoft.com/v1.0).
    #[arg(long, global = true, env = "DPO_BASE_URL", default_value = "http://127.0.0.1:8080/v1.0")]
    pub base_url: String,
    /// Bearer token sent with every request (for a local server: `dpo-server token --user me --admin`).
    #[arg(long, global = true, env = "DPO_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Output for people (table) or for scripts (json).
    #[arg(long, short, global = true, env = "DPO_OUTPUT", value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns.
    Table,
    /// JSON, one document.
    Json,
}

/// The commands.
#[derive(Subcommand)]
pub enum Command {
    /// Start an export of a user's data (POST /users/{user}/exportPersonalData).
    Export {
        /// The user's id or userPrincipalName.
        user: String,
        /// Where to export: an Azure Storage container SAS URL, or a local folder (a file:// URL for the
        /// server's own disk).
        #[arg(long)]
        to: String,
        /// Wait until the export finishes, with a progress bar.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// Show one operation.
    Get {
        /// The operation id.
        id: String,
    },
    /// List operations.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Count operations (GET /dataPolicyOperations/$count).
    Count {
        /// OData $filter.
        #[arg(long)]
        filter: Option<String>,
        /// $search term (in userId or storageLocation).
        #[arg(long)]
        search: Option<String>,
    },
    /// Delete an operation (a running export stops).
    Delete {
        /// The operation id.
        id: String,
        /// Only if the operation still has this ETag.
        #[arg(long)]
        if_match: Option<String>,
    },
    /// Download a finished export and verify every file against its manifest's SHA-256.
    Download {
        /// The operation id.
        id: String,
        /// Folder to download into (created).
        #[arg(long)]
        to: PathBuf,
        /// The storage location with its SAS (the service shows it redacted); defaults to the operation's
        /// own location when that is a local folder.
        #[arg(long)]
        from: Option<String>,
    },
    /// Subject rights requests (GDPR/CCPA data subject requests of any person, customers included), as
    /// Graph's /security/subjectRightsRequests; needs SubjectRightsRequest.Read.All or .ReadWrite.All.
    Requests {
        #[command(subcommand)]
        command: requests::RequestCommand,
    },
    /// Read the audit trail: who exported whose data, when and where to (GET /auditLogs/directoryAudits;
    /// needs AuditLog.Read.All).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// How a list is asked for: the OData options and whether to follow every page.
#[derive(clap::Args)]
pub struct ListArgs {
    /// OData $filter, e.g. "status eq 'running'".
    #[arg(long)]
    pub filter: Option<String>,
    /// OData $orderby keys, e.g. "submittedDateTime desc" (repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    pub orderby: Vec<String>,
    /// Page size (OData $top): this many a page, up to the service's maximum.
    #[arg(long)]
    pub top: Option<u64>,
    /// Follow @odata.nextLink until the end instead of showing one page.
    #[arg(long)]
    pub all: bool,
}

impl ListArgs {
    /// The OData options of the list.
    pub fn options(&self) -> dpo_client::ListOptions {
        dpo_client::ListOptions {
            filter: self.filter.clone(),
            orderby: self.orderby.clone(),
            top: self.top,
            ..Default::default()
        }
    }
}

/// The audit trail's commands.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// List audit events, newest first.
    List {
        /// OData $filter, e.g. "targetResources/any(t: t/id eq 'alice')" or
        /// "activityDateTime ge 2026-01-01T00:00:00Z and result eq 'failure'".
        #[arg(long)]
        filter: Option<String>,
        /// Oldest first instead.
        #[arg(long)]
        oldest_first: bool,
        /// Page size (OData $top).
        #[arg(long)]
        top: Option<u64>,
        /// Follow @odata.nextLink until the end instead of showing one page.
        #[arg(long)]
        all: bool,
    },
    /// Show one audit event.
    Get {
        /// The event's id.
        id: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "dpo", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
