//! `cargo xtask`: the project's automation. `cargo xtask --help` lists the commands.

mod bench;
mod spec;
mod test;

use clap::{Parser, Subcommand};

/// Project automation for dpo.
#[derive(Parser)]
#[command(name = "cargo xtask", about = "dpo project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bundle openapi/sources/*.yaml into openapi/dpo.json (with --check: only verify it is current).
    Bundle {
        /// Fail instead of writing when openapi/dpo.json is stale.
        #[arg(long)]
        check: bool,
    },
    /// Regenerate every generated artifact: the bundled document and the client (written for reading to
    /// target/generated/client.rs; builds regenerate it in OUT_DIR themselves).
    Generate,
    /// Verify the bundle is current and the server's API matches it (modulo the reviewed allow-list).
    Check,
    /// Print every difference between the document and the server, including the allow-listed ones.
    Diff,
    /// Run everything CI runs: formatting, clippy, the document validator, schemathesis and all tests.
    Test,
    /// Measure dpo against the dropshot ceiling and Prism over loopback; writes BENCHMARKS.md.
    Bench {
        /// Operations in the database.
        #[arg(long, default_value_t = 1_000_000)]
        operations: u64,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Only measure exports, and print instead of writing BENCHMARKS.md.
        #[arg(long)]
        export_only: bool,
        /// Only measure the PostgreSQL rows, and print instead of writing BENCHMARKS.md.
        #[arg(long, conflicts_with = "export_only")]
        postgres_only: bool,
        /// Only measure the PostgreSQL data source, and print instead of writing BENCHMARKS.md.
        #[arg(long, conflicts_with_all = ["export_only", "postgres_only"])]
        sources_only: bool,
        /// Only measure the scaling curve (100,000 to 10,000,000 operations), and print it.
        #[arg(long, conflicts_with_all = ["export_only", "postgres_only", "sources_only"])]
        scale_only: bool,
        /// Only measure the zip of a subject rights request (getFinalAttachment), and print it.
        #[arg(long, conflicts_with_all = ["export_only", "postgres_only", "sources_only", "scale_only"])]
        attachment_only: bool,
        /// Only measure erasure through a PostgreSQL source, and print it.
        #[arg(long, conflicts_with_all = ["export_only", "postgres_only", "sources_only", "scale_only", "attachment_only"])]
        erasure_only: bool,
        /// Only measure the polled GET with every default against the dropshot ceiling, and print it.
        #[arg(long, conflicts_with_all = ["export_only", "postgres_only", "sources_only", "scale_only", "attachment_only", "erasure_only"])]
        get_only: bool,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Bundle { check } => spec::bundle(check),
        Command::Generate => spec::generate(),
        Command::Check => spec::check(),
        Command::Diff => spec::diff(),
        Command::Test => test::run_all(),
        Command::Bench {
            operations,
            seconds,
            export_only,
            postgres_only,
            sources_only,
            scale_only,
            attachment_only,
            erasure_only,
            get_only,
        } => bench::run(
            operations,
            seconds,
            bench::Only::from_flags(
                export_only,
                postgres_only,
                sources_only,
                scale_only,
                attachment_only,
                erasure_only,
                get_only,
            ),
        ),
    }
}
