//! `audiencelens analyze`: one analysis run inline (this process works its jobs) with progress
//! on stderr, then the audience as a table or JSON.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use diesel_async::AsyncConnection as _;
use tokio_util::sync::CancellationToken;

use super::report;
use crate::accounts::{self, AccountChanges, InstagramHandle};
use crate::analyses::{self, Analysis};
use crate::app::AppState;
use crate::cascade::Mode;
use crate::clients::gemini::GeminiError;
use crate::config::Config;
use crate::jobs::pipeline;
use crate::queue::{Worker, WorkerOptions};
use crate::scraping::import;
use crate::users;

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// The Instagram account to analyse (scraped through Apify unless --import is given).
    #[arg(value_name = "HANDLE", required_unless_present = "account")]
    handle: Option<InstagramHandle>,
    /// Analyse data from Apify export files instead of scraping.
    #[arg(long = "import", value_name = "FILE", requires = "account", num_args = 1..)]
    import: Vec<PathBuf>,
    /// The account the imported files belong to.
    #[arg(long, value_name = "HANDLE")]
    account: Option<InstagramHandle>,
    /// Posts to cover (saved on the account).
    #[arg(long, value_name = "N")]
    posts: Option<i32>,
    /// Comments to fetch per post (saved on the account).
    #[arg(long, value_name = "M")]
    comments_per_post: Option<i32>,
    /// local: the on-device model; gemini: Gemini for every picture; cascade: Gemini only for
    /// the pictures the local model is unsure of (both need `GEMINI_API_KEY`).
    #[arg(long, value_enum, default_value = "local")]
    classifier: Mode,
    /// Owner of the account (default: the first admin).
    #[arg(long, value_name = "EMAIL")]
    user: Option<String>,
    /// Print the snapshot as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Finish the account's unfinished analysis in this process (one left by an interrupted
    /// run, say) instead of starting one.
    #[arg(long, conflicts_with_all = ["import", "posts", "comments_per_post", "classifier"])]
    resume: bool,
}

pub async fn run(args: AnalyzeArgs, config: Config) -> anyhow::Result<()> {
    if args.classifier.uses_gemini() && config.secrets.gemini_api_key.is_none() {
        return Err(GeminiError::MissingKey.into());
    }
    let classifier = match args.classifier {
        Mode::Local => "local",
        Mode::Gemini => "gemini",
        Mode::Cascade => "cascade",
    };
    let handle = args.account.clone().or(args.handle.clone()).context("give a HANDLE or --account")?;
    let state = AppState::build(config)?;
    let mut conn = state.pool.get().await.context("connecting to the database")?;
    let user_id = match &args.user {
        Some(email) => {
            users::find_by_email(&mut conn, email).await?.with_context(|| format!("no user {email}"))?
        }
        None => users::default_owner(&mut conn).await?,
    };
    // A resume changes nothing: an account that is not tracked is not created for it.
    let mut account = if args.resume {
        accounts::find_user_account_by_handle(&mut conn, user_id, &handle)
            .await?
            .with_context(|| format!("@{handle} has no unfinished analysis to resume (it is not tracked)"))?
    } else {
        accounts::find_or_create_account(&mut conn, user_id, &handle).await?
    };
    // One analysis per account: checked before anything about the account changes.
    let unfinished = unfinished(&mut conn, account.id).await?;
    let analysis_id = match (unfinished, args.resume) {
        (Some(running), true) => {
            // The resumed analysis keeps the classifier it was started with.
            if Mode::parse(&running.classifier).is_some_and(Mode::uses_gemini)
                && state.config.secrets.gemini_api_key.is_none()
            {
                return Err(anyhow::Error::from(GeminiError::MissingKey)
                    .context(format!("analysis {} classifies with {}", running.id, running.classifier)));
            }
            eprintln!("resuming analysis {} of @{} (stage {})", running.id, account.handle, running.stage);
            running.id
        }
        (None, true) => anyhow::bail!("@{} has no unfinished analysis to resume", account.handle),
        (Some(running), false) => return Err(still_running(&mut conn, &running, &account).await),
        (None, false) => {
            let changes = AccountChanges {
                max_posts: args.posts,
                max_comments_per_post: args.comments_per_post,
                ..AccountChanges::default()
            };
            accounts::validate_changes(&changes).map_err(anyhow::Error::msg)?;
            if args.posts.is_some() || args.comments_per_post.is_some() {
                account = accounts::update_user_account(&mut conn, user_id, account.id, &changes)
                    .await?
                    .context("account vanished")?;
            }
            if args.import.is_empty() {
                let started = pipeline::start_unless_running(
                    &mut conn,
                    &state.config,
                    &account,
                    classifier,
                    pipeline::Begin::Scrape,
                )
                .await?;
                match started {
                    Ok(a) => a.id,
                    Err(running) => return Err(still_running(&mut conn, &running, &account).await),
                }
            } else {
                import_and_start(&state, &mut conn, &account, &args.import, classifier).await?.id
            }
        }
    };
    drop(conn);
    let finished = run_inline(&state, analysis_id).await?;
    if finished.status != "succeeded" {
        anyhow::bail!(
            "analysis {} ended {}: {}",
            finished.id,
            finished.status,
            finished.error.as_deref().unwrap_or("no reason recorded")
        );
    }
    let snapshot = finished.snapshot.context("the analysis has no result")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&snapshot)?);
    } else {
        print!("{}", report::render(&serde_json::from_value(snapshot)?));
    }
    Ok(())
}

/// The account's unfinished analysis, if any, after failing one that nothing carries on
/// ([`pipeline::lock_for_start`]).
///
/// # Errors
/// Database errors.
pub async fn unfinished(
    conn: &mut diesel_async::AsyncPgConnection,
    account_id: i64,
) -> diesel::QueryResult<Option<Analysis>> {
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        pipeline::lock_for_start(conn, account_id).await
    })
    .await
}

/// The error for a start refused because `running`, an analysis of `account`, is unfinished:
/// what to do about it, naming its stage job.
async fn still_running(
    conn: &mut diesel_async::AsyncPgConnection,
    running: &Analysis,
    account: &accounts::TrackedAccount,
) -> anyhow::Error {
    let jobs = match pipeline::unfinished_stage_jobs(conn, running.id).await {
        Ok(ids) if !ids.is_empty() => {
            let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
            format!(" (its job: {})", ids.join(", "))
        }
        _ => String::new(),
    };
    anyhow::anyhow!(
        "analysis {} of @{} is still {} (stage {}, created {}): one analysis per account runs at a \
         time. Finish it here with `audiencelens analyze {} --resume`, let a worker finish it, or cancel \
         it with `audiencelens jobs cancel ID`{jobs} or POST /api/v1/analyses/{}/cancel",
        running.id,
        account.handle,
        running.status,
        running.stage,
        running.created_at.format("%Y-%m-%d %H:%M UTC"),
        account.handle,
        running.id
    )
}

/// Imports `files` for `account` and starts an analysis over the stored data (from the
/// picture stage), with the import's counts as its first progress. Callers check [`unfinished`]
/// first, so a refused start imports nothing; the start itself is checked again under the lock.
pub async fn import_and_start(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    account: &accounts::TrackedAccount,
    files: &[PathBuf],
    classifier: &str,
) -> anyhow::Result<Analysis> {
    let mut totals = crate::scraping::store::StoreStats::default();
    for file in files {
        let r = import::import_file(conn, &state.privacy, account, file).await?;
        eprintln!(
            "imported {}: {} posts, {} comments, {} commenters new ({} comments already stored); {} rejected",
            file.display(),
            r.stats.posts_new,
            r.stats.comments_new,
            r.stats.commenters_new,
            r.stats.comments_seen_before,
            r.rejected.len()
        );
        totals += r.stats;
    }
    let started =
        pipeline::start_unless_running(conn, &state.config, account, classifier, pipeline::Begin::StoredData)
            .await?;
    let a = match started {
        Ok(a) => a,
        Err(running) => return Err(still_running(conn, &running, account).await),
    };
    let counts = serde_json::json!({"posts_found": totals.posts_new + totals.posts_seen_before,
        "comments_stored": totals.comments_new, "commenters_new": totals.commenters_new});
    analyses::set_progress(conn, a.id, &counts).await?;
    Ok(a)
}

/// Works every queue in this process until analysis `id` ends; progress goes to stderr.
pub async fn run_inline(state: &AppState, id: i64) -> anyhow::Result<Analysis> {
    let mut options = WorkerOptions::from_settings(&state.config.settings);
    // The pipeline's queues and their `_large` siblings (a big account's stages go there).
    for base in ["scrape", "pictures", "classify"] {
        for queue in [base.to_owned(), format!("{base}_large")] {
            if !options.queues.iter().any(|(q, _)| *q == queue) {
                options.queues.push((queue, 1));
            }
        }
    }
    options.poll_interval = Duration::from_millis(100);
    let stop = CancellationToken::new();
    let worker = Worker {
        id: uuid::Uuid::new_v4(),
        database_url: state.config.database_url(),
        registry: Arc::new(state.registry()),
        options,
        metrics: state.metrics.clone(),
    };
    let handle = tokio::spawn(worker.run(stop.clone()));
    let mut last = String::new();
    let mut ticks = 0_u32;
    let result = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        ticks += 1;
        let mut conn = state.pool.get().await?;
        let mut a = analyses::get_analysis(&mut conn, id).await?;
        // An analysis whose stage job ended without ending it (an operator's cancel, a timeout)
        // is failed with that job's reason rather than waited for forever (as `serve` does).
        if ticks.is_multiple_of(10)
            && matches!(a.status.as_str(), "queued" | "running")
            && pipeline::fail_orphaned(&mut conn, Some(a.tracked_account_id)).await? > 0
        {
            a = analyses::get_analysis(&mut conn, id).await?;
        }
        drop(conn);
        let line = progress_line(&a);
        if line != last {
            eprintln!("{line}");
            last = line;
        }
        if !matches!(a.status.as_str(), "queued" | "running") {
            break a;
        }
        if handle.is_finished() {
            anyhow::bail!("the worker stopped before the analysis finished");
        }
    };
    stop.cancel();
    handle.await??;
    Ok(result)
}

fn progress_line(a: &Analysis) -> String {
    let p = &a.progress;
    let n = |k: &str| p.get(k).and_then(serde_json::Value::as_i64).unwrap_or(0);
    format!(
        "[{}] {}: {} posts, {} comments stored, {} pictures fetched ({} expired, {} rejected), {} classified",
        a.status,
        a.stage,
        n("posts_found"),
        n("comments_stored"),
        n("pictures_fetched"),
        n("pictures_expired"),
        n("pictures_rejected"),
        n("pictures_classified"),
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::{Cli, Command};

    #[test]
    fn import_takes_every_file_named_after_it() {
        let cli = Cli::try_parse_from([
            "audiencelens",
            "analyze",
            "--import",
            "posts.json",
            "comments.jsonl",
            "--account",
            "lumen.atelier",
        ])
        .expect("parses");
        let Command::Analyze(args) = cli.command else { panic!("not analyze: {:?}", cli.command) };
        assert_eq!(args.import.len(), 2, "{:?}", args.import);
        assert!(args.handle.is_none(), "the second file is not read as the handle");
    }
}
