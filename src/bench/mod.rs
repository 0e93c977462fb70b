//! Benchmarks that ship in the binary, so anyone can measure on their own machine:
//! `audiencelens bench queue`. Each creates and drops its own scratch database.

mod queue;

use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Queue throughput and pickup latency with no-op jobs, unbatched and batched, side by side.
    Queue(queue::QueueBenchArgs),
}

/// Runs a benchmark.
///
/// # Errors
/// Database errors.
pub async fn run(command: BenchCommand, config: Config) -> anyhow::Result<()> {
    match command {
        BenchCommand::Queue(args) => queue::run(args, config).await,
    }
}
