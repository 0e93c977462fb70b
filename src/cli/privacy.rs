//! `audiencelens privacy erase|export HANDLE`: data-subject requests from the command line.

use anyhow::Context as _;
use clap::Subcommand;

use crate::accounts::InstagramHandle;
use crate::app::AppState;
use crate::config::Config;
use crate::privacy::erase;

#[derive(Debug, Subcommand)]
pub enum PrivacyCommand {
    /// Erase everything about an Instagram user, across all tenants, and keep it erased:
    /// later scrapes and imports drop their items.
    Erase {
        /// Their Instagram username.
        handle: InstagramHandle,
    },
    /// Print everything held about an Instagram user, as JSON (an access request).
    Export { handle: InstagramHandle },
}

pub async fn run(command: PrivacyCommand, config: Config) -> anyhow::Result<()> {
    let state = AppState::build(config)?;
    let mut conn = state.pool.get().await.context("connecting to the database")?;
    match command {
        PrivacyCommand::Erase { handle } => {
            let report = erase::erase(&mut conn, &state.privacy, handle.as_str(), "cli").await?;
            println!(
                "erased @{}: {} profile rows, {} comments, {} pictures ({} stored files), {} classifications, {} posts; {} mentions and {} recorded scrape requests redacted; further data about them will be dropped",
                handle,
                report.profiles,
                report.comments,
                report.pictures,
                report.picture_blobs,
                report.classifications,
                report.posts,
                report.mentions_redacted,
                report.run_inputs_redacted
            );
        }
        PrivacyCommand::Export { handle } => {
            let data = erase::access_export(&mut conn, &state.privacy, handle.as_str(), "cli").await?;
            println!("{}", serde_json::to_string_pretty(&data)?);
        }
    }
    Ok(())
}
