//! `audiencelens import`: Apify export files into the database.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::accounts::InstagramHandle;
use crate::app::AppState;
use crate::config::Config;
use crate::insights::funnel::plural;
use crate::scraping::import::{self, FileReport};
use crate::scraping::intake::Intake;
use crate::scraping::store::StoreStats;
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
    // The account is created with the first file that imports: a refused file leaves nothing.
    let mut report = match &args.report {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let mut failed = Vec::new();
    let mut totals = StoreStats::default();
    let mut intake = Intake::default();
    for file in &args.files {
        match import::import_file_for(
            &mut conn,
            &state.privacy,
            user_id,
            &args.account,
            file,
            state.config.settings.import.max_file_bytes,
        )
        .await
        {
            Ok((_, r)) => {
                print_file(&r, args.json)?;
                if let Some(out) = report.as_mut() {
                    for item in &r.rejected {
                        writeln!(out, "{}", serde_json::to_string(item)?)?;
                    }
                }
                totals += r.stats;
                intake += r.intake.clone();
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
        println!("{}", intake_summary("all files", &intake, &totals, args.account.as_str()));
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
    } else {
        println!("{}", file_summary(r));
    }
    Ok(())
}

/// What one file held, what of it was stored and what was set aside, with the first few
/// rejected items.
#[must_use]
pub fn file_summary(r: &FileReport) -> String {
    let s = &r.stats;
    let mut out = format!("{} ({}, {}):\n", r.file.display(), r.format.label(), plural(r.items, "item"));
    let _ = writeln!(out, "  posts       {:>7} new, {:>7} already stored", s.posts_new, s.posts_seen_before);
    let _ = writeln!(
        out,
        "  comments    {:>7} new, {:>7} already stored",
        s.comments_new, s.comments_seen_before
    );
    let _ = writeln!(
        out,
        "  commenters  {:>7} new, {:>7} already known",
        s.commenters_new, s.commenters_seen_before
    );
    let _ = writeln!(out, "  pictures    {:>7} to fetch or marked default", s.pictures_new);
    for line in set_aside_lines(&r.intake) {
        let _ = writeln!(out, "  {line}");
    }
    if s.suppressed > 0 {
        let _ = writeln!(out, "  suppressed  {:>7} (people who asked to be erased)", s.suppressed);
    }
    let _ = writeln!(out, "  rejected    {:>7}", r.rejected_total);
    for item in r.rejected.iter().take(SHOWN_REJECTIONS) {
        let _ = writeln!(out, "    item {}: {}", item.position, item.reason);
    }
    if r.rejected_total > SHOWN_REJECTIONS {
        let _ = writeln!(
            out,
            "    ... {} more (the first {} of them with --report FILE)",
            r.rejected_total - SHOWN_REJECTIONS,
            import::LISTED_REJECTIONS
        );
    }
    out.trim_end().to_owned()
}

/// What the intake set aside, a line per reason (none when nothing was).
fn set_aside_lines(i: &Intake) -> Vec<String> {
    let mut lines = Vec::new();
    if i.posts_foreign > 0 {
        let owners: Vec<String> = i.foreign_owners.iter().map(|o| format!("@{o}")).collect();
        lines.push(format!(
            "set aside   {:>7} posts of other accounts ({}), with their {}",
            i.posts_foreign,
            if owners.is_empty() { "owners not named".to_owned() } else { owners.join(", ") },
            plural(i.comments_foreign, "comment")
        ));
    } else if i.comments_foreign > 0 {
        lines.push(format!("set aside   {:>7} comments on other accounts' posts", i.comments_foreign));
    }
    if i.profiles_foreign > 0 {
        lines.push(format!(
            "set aside   {:>7} profiles of other accounts that do not comment here",
            i.profiles_foreign
        ));
    }
    if i.comments_duplicate > 0 {
        lines.push(format!(
            "set aside   {:>7} repeated comments (the same comment twice)",
            i.comments_duplicate
        ));
    }
    if i.comments_conflicting > 0 {
        lines.push(format!(
            "of which    {:>7} conflicting: an id already seen with another post, author or text (the first kept)",
            i.comments_conflicting
        ));
    }
    if i.posts_without_owner > 0 {
        lines.push(format!(
            "warning     {:>7} posts whose owner the file does not name: taken as this account's",
            i.posts_without_owner
        ));
    }
    lines
}

/// The totals over several files.
#[must_use]
pub fn intake_summary(what: &str, i: &Intake, s: &StoreStats, handle: &str) -> String {
    let mut out = format!(
        "{what} for @{handle}: {} read; {} kept ({} new, {} already stored); {} new; {} set aside",
        plural(i.comments_read, "comment"),
        i.comments_kept,
        s.comments_new,
        s.comments_seen_before,
        plural(s.commenters_new, "commenter"),
        i.comments_set_aside()
    );
    for line in set_aside_lines(i) {
        let _ = write!(out, "\n  {line}");
    }
    out
}
