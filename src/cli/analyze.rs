//! `audiencelens analyze`: one analysis run inline (this process works its jobs) with progress
//! on stderr, then the audience as a table or JSON.

use std::fmt::Write as _;
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
use crate::insights::funnel::plural;
use crate::insights::snapshot::Funnel;
use crate::jobs::{self, import::ImportStartError, pipeline};
use crate::queue::{Worker, WorkerOptions};
use crate::users;

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// The Instagram account to analyse (scraped through Apify unless --import is given).
    #[arg(value_name = "HANDLE", required_unless_present = "account")]
    handle: Option<InstagramHandle>,
    /// Analyse Apify export files instead of scraping: every post of the files is covered
    /// (not only the newest --posts), and files with no comment to analyse are refused with
    /// nothing stored.
    #[arg(long = "import", value_name = "FILE", requires = "account", num_args = 1..)]
    import: Vec<PathBuf>,
    /// The account the imported files belong to.
    #[arg(long, value_name = "HANDLE")]
    account: Option<InstagramHandle>,
    /// Posts a scrape covers: the account's newest N (saved on the account).
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
    let changes = AccountChanges {
        max_posts: args.posts,
        max_comments_per_post: args.comments_per_post,
        ..AccountChanges::default()
    };
    accounts::validate_changes(&changes).map_err(anyhow::Error::msg)?;
    let known = accounts::find_user_account_by_handle(&mut conn, user_id, &handle).await?;
    // One analysis per account: checked before anything about the account changes.
    let running = match &known {
        Some(account) => unfinished(&mut conn, account.id).await?.map(|r| (account.clone(), r)),
        None => None,
    };
    let analysis_id = match (known.is_some(), running, args.resume) {
        // A resume changes nothing: an account that is not tracked is not created for it.
        (false, _, true) => {
            anyhow::bail!("@{handle} has no unfinished analysis to resume (it is not tracked)")
        }
        (true, None, true) => anyhow::bail!("@{handle} has no unfinished analysis to resume"),
        (_, Some((_, running)), true) => {
            // The resumed analysis keeps the classifier it was started with.
            if Mode::parse(&running.classifier).is_some_and(Mode::uses_gemini)
                && state.config.secrets.gemini_api_key.is_none()
            {
                return Err(anyhow::Error::from(GeminiError::MissingKey)
                    .context(format!("analysis {} classifies with {}", running.id, running.classifier)));
            }
            eprintln!("resuming analysis {} of @{handle} (stage {})", running.id, running.stage);
            running.id
        }
        (_, Some((account, running)), false) => {
            return Err(still_running(&mut conn, &running, &account).await);
        }
        (_, None, false) if !args.import.is_empty() => {
            import_and_start(&state, &mut conn, user_id, &handle, &changes, &args.import, classifier)
                .await?
                .id
        }
        (_, None, false) => {
            let mut account = accounts::find_or_create_account(&mut conn, user_id, &handle).await?;
            if args.posts.is_some() || args.comments_per_post.is_some() {
                account = accounts::update_user_account(&mut conn, user_id, account.id, &changes)
                    .await?
                    .context("account vanished")?;
            }
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

/// Imports `files` for the user's account `handle` (created if new, with `changes` applied)
/// and starts an analysis of exactly what they hold, in one transaction: a refused import
/// (not an export, nothing to analyse, the account busy) leaves nothing behind, not even the
/// account. Prints what each file held and what was set aside.
pub async fn import_and_start(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    user_id: i64,
    handle: &InstagramHandle,
    changes: &AccountChanges,
    files: &[PathBuf],
    classifier: &str,
) -> anyhow::Result<Analysis> {
    let outcome = conn
        .transaction::<_, anyhow::Error, _>(async |conn| {
            let mut account = accounts::find_or_create_account(conn, user_id, handle).await?;
            if changes.max_posts.is_some() || changes.max_comments_per_post.is_some() {
                account = accounts::update_user_account(conn, user_id, account.id, changes)
                    .await?
                    .context("account vanished")?;
            }
            match jobs::import::import_and_start(
                conn,
                &state.config,
                &state.privacy,
                &account,
                files,
                classifier,
            )
            .await
            {
                Ok(imported) => Ok(Ok(imported)),
                Err(ImportStartError::Running(running)) => Ok(Err((running, account))),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
    let imported = match outcome {
        Ok(imported) => imported,
        Err((running, account)) => return Err(still_running(conn, &running, &account).await),
    };
    for r in &imported.files {
        eprintln!("{}", super::import::file_summary(r));
    }
    if imported.files.len() > 1 {
        eprintln!(
            "{}",
            super::import::intake_summary("all files", &imported.intake, &imported.stats, handle.as_str())
        );
    }
    Ok(imported.analysis)
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

/// A line of progress: the stage and its work so far, then the coverage funnel (the same
/// numbers the report gives) once the pictures stage has counted it.
fn progress_line(a: &Analysis) -> String {
    let p = &a.progress;
    let n = |k: &str| p.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0) as usize;
    let work = match a.stage.as_str() {
        "scrape" => format!(
            "{} found, {} read",
            plural(n("posts_found"), "post"),
            plural(n("comments_read"), "comment")
        ),
        "fetch_pictures" => {
            let done =
                n("pictures_fetched") + n("pictures_expired") + n("pictures_rejected") + n("pictures_failed");
            format!("{} tried so far", plural(done, "picture download"))
        }
        "classify" => format!("{} classified so far", plural(n("pictures_classified"), "picture")),
        _ => String::new(),
    };
    let mut line = format!("[{}] {}", a.status, a.stage);
    if !work.is_empty() {
        let _ = write!(line, ": {work}");
    }
    if let Some(funnel) = p.get("funnel").and_then(|f| serde_json::from_value::<Funnel>(f.clone()).ok()) {
        let c = &funnel.commenters;
        let _ = write!(
            line,
            " | {} analysed; {} commenters, {} with a picture link, {} available, {} classified",
            plural(funnel.comments.analysed, "comment"),
            c.unique,
            c.with_picture,
            c.picture_available,
            c.classified
        );
    }
    line
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
