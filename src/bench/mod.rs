//! Benchmarks that ship in the binary, so anyone can measure on their own machine:
//! `audiencelens bench queue|import`. Each creates and drops its own scratch database.

mod import;
mod queue;

use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Queue throughput and pickup latency with no-op jobs, unbatched and batched, side by side.
    Queue(queue::QueueBenchArgs),
    /// Import speed: a generated export of N comments through `import`'s code path.
    Import(import::ImportBenchArgs),
}

/// Runs a benchmark.
///
/// # Errors
/// Database errors.
pub async fn run(command: BenchCommand, config: Config) -> anyhow::Result<()> {
    match command {
        BenchCommand::Queue(args) => queue::run(args, config).await,
        BenchCommand::Import(args) => import::run(args, config).await,
    }
}
