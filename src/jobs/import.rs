//! An analysis of imported files: the files taken in and the analysis started in one
//! transaction, under the account's lock. Either every file is imported and the analysis is
//! queued, or nothing is written at all (a file that is not an export, an account already
//! being analysed, files with no comment to analyse).

use std::path::PathBuf;

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::fetch_pictures::FetchPictures;
use super::pipeline;
use crate::accounts::TrackedAccount;
use crate::analyses::{self, Analysis, Scope};
use crate::config::Config;
use crate::insights::funnel::plural;
use crate::privacy::PrivacyKey;
use crate::queue;
use crate::scraping::import::{self, FileReport, ImportError};
use crate::scraping::intake::Intake;
use crate::scraping::store::{ForAnalysis, StoreStats};

/// What an import-and-start did.
#[derive(Debug)]
pub struct Imported {
    pub analysis: Analysis,
    pub files: Vec<FileReport>,
    pub intake: Intake,
    pub stats: StoreStats,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportStartError {
    #[error(transparent)]
    Import(#[from] ImportError),
    /// Another analysis of the account is unfinished.
    #[error("analysis {} of the account is still {}", .0.id, .0.status)]
    Running(Box<Analysis>),
    /// Nothing in the files is a comment on the account's posts by someone else.
    #[error("{0}")]
    NothingToAnalyse(String),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("{0}")]
    Job(#[from] serde_json::Error),
}

/// Imports `files` for `account` and starts an analysis of exactly what they hold (every post
/// of the files, whatever the account's `max_posts`), from the picture stage.
pub async fn import_and_start(
    conn: &mut AsyncPgConnection,
    config: &Config,
    privacy: &PrivacyKey,
    account: &TrackedAccount,
    files: &[PathBuf],
    classifier: &str,
) -> Result<Imported, ImportStartError> {
    conn.transaction::<_, ImportStartError, _>(async |conn| {
        if let Some(running) = pipeline::lock_for_start(conn, account.id).await? {
            return Err(ImportStartError::Running(Box::new(running)));
        }
        let analysis = analyses::create_scoped_analysis(conn, account.id, classifier, Scope::Input).await?;
        let input = ForAnalysis { id: analysis.id, covers_input_posts: true };
        let mut reports = Vec::new();
        let (mut intake, mut stats) = (Intake::default(), StoreStats::default());
        for file in files {
            let max = config.settings.import.max_file_bytes;
            let report = import::import_file(conn, privacy, account, file, Some(input), max).await?;
            intake += report.intake.clone();
            stats += report.stats;
            reports.push(report);
        }
        let (on_posts, analysable) = covered_comments(conn, analysis.id, account.id).await?;
        if analysable == 0 {
            return Err(ImportStartError::NothingToAnalyse(nothing_to_analyse(
                account, &intake, &stats, on_posts,
            )));
        }
        let job = pipeline::stage_job(
            config,
            &FetchPictures { analysis_id: analysis.id },
            analysis.id,
            analysable,
        )?;
        queue::enqueue_one(conn, job).await?;
        let mut progress = serde_json::to_value(&intake)?;
        progress["posts_found"] = (stats.posts_new + stats.posts_seen_before).into();
        progress["comments_stored"] = stats.comments_new.into();
        progress["commenters_new"] = stats.commenters_new.into();
        analyses::set_progress(conn, analysis.id, &progress).await?;
        let analysis = analyses::get_analysis(conn, analysis.id).await?;
        Ok(Imported { analysis, files: reports, intake, stats })
    })
    .await
}

/// Comments stored on the posts the analysis covers, and those of them by others than the
/// account and the posts' authors (what it can analyse).
async fn covered_comments(
    conn: &mut AsyncPgConnection,
    analysis_id: i64,
    account_id: i64,
) -> diesel::QueryResult<(i64, i64)> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        on_posts: i64,
        #[diesel(sql_type = BigInt)]
        analysable: i64,
    }
    let n: N = diesel::sql_query(
        "SELECT (SELECT count(*) FROM comments c JOIN analysis_posts ap ON ap.post_id = c.post_id AND ap.analysis_id = $1)
                    AS on_posts,
                (SELECT count(*) FROM audience_comments a
                 JOIN analysis_posts ap ON ap.post_id = a.post_id AND ap.analysis_id = $1
                 WHERE a.tracked_account_id = $2) AS analysable",
    )
    .bind::<BigInt, _>(analysis_id)
    .bind::<BigInt, _>(account_id)
    .get_result(conn)
    .await?;
    Ok((n.on_posts, n.analysable))
}

/// Why files gave nothing to analyse, and what to do about it.
fn nothing_to_analyse(
    account: &TrackedAccount,
    intake: &Intake,
    stats: &StoreStats,
    on_posts: i64,
) -> String {
    let handle = &account.handle;
    let posts = stats.posts_new + stats.posts_seen_before;
    let why = if intake.comments_read == 0 {
        format!(
            "the files hold {} but no comments, and an audience is made of the people who comment. Export \
             the comments too (apify/instagram-comment-scraper on the posts, or a posts export with \
             latestComments) and import that file",
            plural(posts, "post"),
        )
    } else if intake.comments_foreign == intake.comments_read {
        format!(
            "all {} are on posts of other accounts ({}). Import them for those accounts (--account)",
            plural(intake.comments_read, "comment"),
            owners(intake),
        )
    } else {
        let own = usize::try_from(on_posts).unwrap_or(0);
        let elsewhere = intake.comments_kept.saturating_sub(own);
        format!(
            "of {} in the files, none is by someone other than @{handle} on its posts ({} by the account \
             itself or a co-author, {} on other accounts' posts, {} unreadable, {} repeated, {} by people \
             erased at their request, {} already stored under other posts)",
            plural(intake.comments_read, "comment"),
            own,
            intake.comments_foreign,
            intake.comments_rejected,
            intake.comments_duplicate,
            intake.comments_suppressed,
            elsewhere,
        )
    };
    format!("nothing to analyse for @{handle}: {why}; nothing was imported")
}

fn owners(intake: &Intake) -> String {
    if intake.foreign_owners.is_empty() {
        return "owners not named".to_owned();
    }
    let named: Vec<String> = intake.foreign_owners.iter().map(|o| format!("@{o}")).collect();
    named.join(", ")
}
