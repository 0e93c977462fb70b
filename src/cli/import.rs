//! `audiencelens import`: Apify export files into the database.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::accounts::{self, InstagramHandle};
use crate::app::AppState;
use crate::config::Config;
use crate::scraping::import::{self, FileReport};
use crate::users;

/// Rejections printed per file; all of them go to `--report`.
const SHOWN_REJECTIONS: usize = 5;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Apify dataset exports: JSON array, JSON lines or CSV, from the post, comment, profile,
    /// reel, mention or hashtag scrapers (mixed files are fine).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The tracked account the data belongs to (created if needed).
    #[arg(long, value_name = "HANDLE")]
    account: InstagramHandle,
    /// Owner of the account (default: the first admin).
    #[arg(long, value_name = "EMAIL")]
    user: Option<String>,
    /// Write every rejected item (file, position, reason) as JSON lines to this file.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Print the per-file results as JSON lines instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: ImportArgs, config: Config) -> anyhow::Result<()> {
    let state = AppState::build(config)?;
    let mut conn = state.pool.get().await.context("connecting to the database")?;
    let user_id = match &args.user {
        Some(email) => {
            users::find_by_email(&mut conn, email).await?.with_context(|| format!("no user {email}"))?
        }
        None => users::default_owner(&mut conn).await?,
    };
    let account = accounts::find_or_create_account(&mut conn, user_id, &args.account).await?;
    let mut report = match &args.report {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let mut failed = Vec::new();
    let mut totals = crate::scraping::store::StoreStats::default();
    let mut rejected_total = 0;
    for file in &args.files {
        match import::import_file(&mut conn, &state.privacy, &account, file).await {
            Ok(r) => {
                print_file(&r, args.json)?;
                if let Some(out) = report.as_mut() {
                    for item in &r.rejected {
                        writeln!(out, "{}", serde_json::to_string(item)?)?;
                    }
                }
                totals += r.stats;
                rejected_total += r.rejected.len();
            }
            Err(error) => {
                eprintln!("error: {error}");
                failed.push(file.display().to_string());
            }
        }
    }
    if let Some(mut out) = report {
        out.flush()?;
    }
    if !args.json && args.files.len() > 1 {
        println!(
            "total for @{}: {} posts, {} comments, {} commenters new; {} comments already stored; {} items rejected",
            account.handle,
            totals.posts_new,
            totals.comments_new,
            totals.commenters_new,
            totals.comments_seen_before,
            rejected_total
        );
    }
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} of {} files not imported: {}", failed.len(), args.files.len(), failed.join(", "))
    }
}

fn print_file(r: &FileReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    let s = &r.stats;
    println!("{} ({:?}, {} items):", r.file.display(), r.format, r.items);
    println!("  posts       {:>7} new, {:>7} already stored", s.posts_new, s.posts_seen_before);
    println!(
        "  comments    {:>7} new, {:>7} already stored (skipped)",
        s.comments_new, s.comments_seen_before
    );
    println!("  commenters  {:>7} new, {:>7} already known", s.commenters_new, s.commenters_seen_before);
    println!("  pictures    {:>7} to fetch or marked default", s.pictures_new);
    if s.suppressed > 0 {
        println!("  suppressed  {:>7} (people who asked to be erased)", s.suppressed);
    }
    println!("  rejected    {:>7}", r.rejected.len());
    for item in r.rejected.iter().take(SHOWN_REJECTIONS) {
        println!("    item {}: {}", item.position, item.reason);
    }
    if r.rejected.len() > SHOWN_REJECTIONS {
        println!("    ... {} more (all of them with --report FILE)", r.rejected.len() - SHOWN_REJECTIONS);
    }
    Ok(())
}
