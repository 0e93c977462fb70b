//! Command-line interface: argument definitions and the handlers of operator commands.
//!
//! Owns: what each subcommand does. Uses: `app` for the roles, domain modules for the rest.

pub(crate) mod analyze;
mod calibrate;
mod classify;
mod demo;
mod fit_brackets;
mod import;
mod jobs;
mod privacy;
mod report;
mod user;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::app::{self, Mode};
use crate::bench;
use crate::config::Config;

/// AudienceLens: who comments on an Instagram account — gender, age bracket and profile type of
/// its commenters, with sample sizes, coverage and confidence intervals.
#[derive(Debug, Parser)]
#[command(name = "audiencelens", version, propagate_version = true)]
pub struct Cli {
    /// Configuration file (TOML). Without it the embedded defaults apply; environment variables
    /// `AUDIENCELENS__SECTION__KEY` override either.
    #[arg(long, global = true, env = "AUDIENCELENS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: HTTP API, background workers and cron, or one of them.
    Serve {
        /// Which roles this process runs. Scale out with more `worker` copies on one database.
        #[arg(long, value_enum, default_value_t = Mode::All)]
        mode: Mode,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Run one analysis now (scraping through Apify, or from export files) and print the audience.
    Analyze(analyze::AnalyzeArgs),
    /// The whole product on bundled sample data: import, pictures, classification, report, API.
    Demo(demo::DemoArgs),
    /// Import Apify dataset exports (JSON, JSON lines, CSV) for a tracked account.
    Import(import::ImportArgs),
    /// Inspect and steer background jobs.
    Jobs {
        #[command(subcommand)]
        command: jobs::JobsCommand,
    },
    /// Manage users of AudienceLens.
    User {
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// Data-subject requests: erase or export what is held about an Instagram user.
    Privacy {
        #[command(subcommand)]
        command: privacy::PrivacyCommand,
    },
    /// Classify profile pictures (local model, Gemini or the cascade): one JSON line per picture.
    /// Exits non-zero when none of the pictures could be classified.
    Classify(classify::ClassifyArgs),
    /// Measure a classifier's errors (local or Gemini) on a labelled set and write a calibration
    /// file.
    Calibrate(calibrate::CalibrateArgs),
    /// Fit the local classifier's age rule (bracket cuts, per-bracket probabilities) on faces
    /// with exact ages, cross-validated, and write it as the file the binary ships.
    FitBrackets(fit_brackets::FitBracketsArgs),
    /// Benchmarks that ship with the product.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

/// Runs the parsed command.
///
/// # Errors
/// Whatever stopped the command, for `main` to print.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { mode } => app::serve(config, mode, CancellationToken::new()).await,
        Command::Migrate => {
            let applied = app::migrate(&config).await?;
            if applied.is_empty() {
                println!("database schema is up to date");
            } else {
                println!("applied migrations: {}", applied.join(", "));
            }
            Ok(())
        }
        Command::Analyze(args) => analyze::run(args, config).await,
        Command::Demo(args) => demo::run(args, config).await,
        Command::Import(args) => import::run(args, config).await,
        Command::Jobs { command } => jobs::run(command, config).await,
        Command::Privacy { command } => privacy::run(command, config).await,
        Command::User { command } => user::run(command, config).await,
        Command::Classify(args) => classify::run(args, config).await,
        Command::Calibrate(args) => calibrate::run(args, config).await,
        Command::FitBrackets(args) => fit_brackets::run(args, config).await,
        Command::Bench { command } => bench::run(command, config).await,
    }
}
