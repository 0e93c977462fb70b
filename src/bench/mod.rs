//! Benchmarks that ship in the binary, so anyone can measure on their own machine:
//! `audiencelens bench queue|import|api|dashboard|pipeline|vision|audience|cascade`. The database ones create and drop their
//! own scratch database.

mod api;
mod audience;
mod cascade;
mod dashboard;
mod import;
mod pipeline;
mod queue;
mod vision;
mod vision_eval;
mod vision_prep;

use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Queue throughput and pickup latency with no-op jobs, unbatched and batched, side by side.
    Queue(queue::QueueBenchArgs),
    /// Demographics reads under concurrent load against the real server.
    Api(api::ApiBenchArgs),
    /// Import speed: a generated export of N comments through `import`'s code path.
    Import(import::ImportBenchArgs),
    /// The server side of the dashboard's browser benchmark (`scripts/bench-dashboard`): a
    /// scratch database with a large account and two exports, served until stdin closes.
    Dashboard(dashboard::DashboardBenchArgs),
    /// The local classifier: throughput on one thread and all cores, accuracy with labels,
    /// side by side with the Python reference (--reference).
    Vision(vision::VisionBenchArgs),
    /// A whole analysis of a generated account of N commenters (import, fetch pictures from a
    /// local server, classify, aggregate) on a scratch database, beside the raw classifier.
    Pipeline(pipeline::PipelineBenchArgs),
    /// Corrected audience shares against the truth on random audiences drawn from a labelled
    /// set, with the calibration cross-validated.
    Audience(audience::AudienceBenchArgs),
    /// The share of pictures the cascade would send to Gemini (local classifier, default
    /// rules) and the estimated Gemini cost per 1,000 pictures. Sends nothing.
    Cascade(cascade::CascadeBenchArgs),
}

/// Runs a benchmark.
///
/// # Errors
/// Database errors.
pub async fn run(command: BenchCommand, config: Config) -> anyhow::Result<()> {
    match command {
        BenchCommand::Queue(args) => queue::run(args, config).await,
        BenchCommand::Import(args) => import::run(args, config).await,
        BenchCommand::Api(args) => api::run(args, config).await,
        BenchCommand::Dashboard(args) => dashboard::run(args, config).await,
        BenchCommand::Pipeline(args) => pipeline::run(args, config).await,
        BenchCommand::Audience(args) => tokio::task::spawn_blocking(move || audience::run(&args, &config))
            .await
            .map_err(anyhow::Error::from)?,
        BenchCommand::Cascade(args) => tokio::task::spawn_blocking(move || cascade::run(&args, &config))
            .await
            .map_err(anyhow::Error::from)?,
        BenchCommand::Vision(args) => tokio::task::spawn_blocking(move || vision::run(&args, &config))
            .await
            .map_err(anyhow::Error::from)?,
    }
}

/// The 1-, 5- and 15-minute load averages (`/proc/loadavg`), or `unknown`.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "unknown".to_owned(), |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}
