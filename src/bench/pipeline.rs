//! `audiencelens bench pipeline`: a whole analysis, every stage, on a generated account. An
//! export of N comments by N commenters (one post) whose profile pictures are served by a
//! local server (real pictures from a folder, each served under its own link with a unique
//! trailer, so no two are the same file and nothing is reused by hash) is imported into a
//! scratch database and analysed by the same worker `analyze` runs: import → fetch pictures →
//! classify → aggregate. Prints each stage's time and throughput and the whole run's, and, in
//! the same run, the raw classifier on the same pictures (one thread, times the threads the
//! classify stage uses), so the classify stage's share of the raw speed is a ratio measured
//! side by side.
//!
//! Owns: the experiment. Uses: `jobs::import`, `cli::analyze::run_inline`, `vision`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use secrecy::ExposeSecret as _;
use serde_json::json;

use crate::accounts::{self, InstagramHandle};
use crate::app::AppState;
use crate::config::Config;
use crate::db::{self, admin};
use crate::vision::Classifier;

#[derive(Debug, clap::Args)]
pub struct PipelineBenchArgs {
    /// Commenters (one comment each, each with a picture of their own).
    #[arg(long, default_value_t = 10_000)]
    commenters: usize,
    /// Folder of JPEG pictures served as the commenters' profile pictures, in turn (default:
    /// ../shared/data/faces when present, else the demo's sample pictures).
    #[arg(long)]
    pictures: Option<PathBuf>,
    /// Pictures timed through the raw classifier on one thread for the comparison.
    #[arg(long, default_value_t = 1000)]
    raw_sample: usize,
}

/// Up to 2,000 JPEG files of `dir`, sorted by name.
fn read_pictures(dir: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x.eq_ignore_ascii_case("jpg") || x.eq_ignore_ascii_case("jpeg"))
        })
        .collect();
    paths.sort();
    paths.truncate(2_000);
    let pictures: Vec<Vec<u8>> = paths.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    anyhow::ensure!(!pictures.is_empty(), "no JPEG pictures in {}", dir.display());
    Ok(pictures)
}

/// Picture `i`: file `i mod n`, then bytes after the JPEG's end that make it a file of its own
/// (decoders stop at the end-of-image marker).
fn picture(pictures: &[Vec<u8>], i: usize) -> Vec<u8> {
    let mut bytes = pictures[i % pictures.len()].clone();
    bytes.extend_from_slice(format!("audiencelens-bench-{i}").as_bytes());
    bytes
}

/// Serves picture `i` at `/v/t51.2885-19/{i}_n.jpg`; returns the server and its base URL.
fn picture_server(pictures: Arc<Vec<Vec<u8>>>) -> anyhow::Result<(actix_web::dev::Server, String)> {
    let server = HttpServer::new(move || {
        let pictures = pictures.clone();
        App::new().route(
            "/v/t51.2885-19/{name}",
            web::get().to(move |name: web::Path<String>| {
                let pictures = pictures.clone();
                async move {
                    match name.strip_suffix("_n.jpg").and_then(|i| i.parse::<usize>().ok()) {
                        Some(i) => HttpResponse::Ok().content_type("image/jpeg").body(picture(&pictures, i)),
                        None => HttpResponse::NotFound().finish(),
                    }
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))?;
    let addr = server.addrs().first().copied().context("picture server address")?;
    Ok((server.run(), format!("http://{addr}")))
}

/// A comment-scraper export: one post, `n` comments by `n` people, pictures at `base`.
fn export(n: usize, base: &str) -> Vec<u8> {
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            json!({
                "id": (18_000_000_000_000_000u64 + i as u64).to_string(),
                "postUrl": "https://www.instagram.com/p/DBenchPipeline/",
                "text": format!("comment {i}"),
                "ownerUsername": format!("commenter_{i}"),
                "ownerProfilePicUrl": format!("{base}/v/t51.2885-19/{i}_n.jpg?stp=dst-jpg_s150x150_tt6&oe=7AAB16FB"),
                "timestamp": "2026-11-20T10:00:00.000Z",
                "owner": {"id": (60_000_000 + i).to_string(), "username": format!("commenter_{i}"), "is_verified": false},
            })
        })
        .collect();
    serde_json::to_vec(&items).unwrap_or_default()
}

/// The raw classifier on `sample` pictures spread evenly over the folder (the mix the classify
/// stage sees): pictures per second on one thread, and the threads a batch uses.
fn raw_classifier(config: &Config, pictures: &[Vec<u8>], sample: usize) -> anyhow::Result<(f64, usize)> {
    let classifier = Classifier::load(&config.settings.vision).context("loading the local classifier")?;
    let sample = sample.clamp(1, pictures.len());
    let sample: Vec<Vec<u8>> = (0..sample).map(|k| picture(pictures, k * pictures.len() / sample)).collect();
    for bytes in sample.iter().take(5) {
        let _ = classifier.classify(bytes);
    }
    let started = Instant::now();
    for bytes in &sample {
        let _ = classifier.classify(bytes);
    }
    Ok((sample.len() as f64 / started.elapsed().as_secs_f64(), classifier.threads()))
}

pub async fn run(args: PipelineBenchArgs, mut config: Config) -> anyhow::Result<()> {
    let dir = args.pictures.clone().unwrap_or_else(|| {
        let shared = PathBuf::from("../shared/data/faces");
        if shared.is_dir() { shared } else { PathBuf::from("scripts/demo-data/pictures") }
    });
    let pictures = Arc::new(read_pictures(&dir)?);
    println!(
        "pipeline benchmark: {} commenters, pictures from {} ({} files, served in turn), load average {}",
        args.commenters,
        dir.display(),
        pictures.len(),
        super::load_average()
    );
    let raw_config = config.clone();
    let raw_pictures = pictures.clone();
    let sample = args.raw_sample;
    let (raw_one, threads) =
        tokio::task::spawn_blocking(move || raw_classifier(&raw_config, &raw_pictures, sample)).await??;

    let base = config.database_url();
    let name = format!("audiencelens_bench_pipeline_{}", std::process::id());
    admin::drop_database(&base, &name).await?;
    admin::create_database(&base, &name, None).await?;
    let url = admin::url_for_database(&base, &name);
    config.settings.database.url = url.expose_secret().to_owned();
    config.secrets.database_password = None;
    // The pictures come from this benchmark's own server on this machine.
    config.settings.pictures.allowed_hosts.push("127.0.0.1".to_owned());
    config.settings.pictures.allow_local = true;
    let (server, picture_base) = picture_server(pictures)?;
    let server_handle = server.handle();
    tokio::spawn(server);
    let file = std::env::temp_dir().join(format!("audiencelens-bench-pipeline-{}.json", std::process::id()));
    let result = async {
        std::fs::write(&file, export(args.commenters, &picture_base))?;
        db::run_migrations(&config.database_url()).await?;
        measure(&args, config, &file, raw_one, threads).await
    }
    .await;
    server_handle.stop(false).await;
    let _ = std::fs::remove_file(&file);
    admin::drop_database(&base, &name).await?;
    result
}

async fn measure(
    args: &PipelineBenchArgs,
    config: Config,
    file: &Path,
    raw_one: f64,
    threads: usize,
) -> anyhow::Result<()> {
    let state = AppState::build(config)?;
    let mut conn = state.pool.get().await?;
    let owner = crate::users::default_owner(&mut conn).await?;
    let account =
        accounts::find_or_create_account(&mut conn, owner, &InstagramHandle::parse("bench.pipeline")?)
            .await?;
    let started = Instant::now();
    let imported = crate::jobs::import::import_and_start(
        &mut conn,
        &state.config,
        &state.privacy,
        &account,
        &[file.to_path_buf()],
        "local",
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let import_secs = started.elapsed().as_secs_f64();
    drop(conn);
    let id = imported.analysis.id;

    // Stage changes, watched while the worker runs the analysis.
    let watch_state = state.clone();
    let watcher = tokio::spawn(async move {
        let mut seen: Vec<(String, Instant)> = Vec::new();
        loop {
            let Ok(mut conn) = watch_state.pool.get().await else { break };
            let Ok(a) = crate::analyses::get_analysis(&mut conn, id).await else { break };
            drop(conn);
            if seen.last().is_none_or(|(stage, _)| *stage != a.stage) {
                seen.push((a.stage.clone(), Instant::now()));
            }
            if !matches!(a.status.as_str(), "queued" | "running") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        seen
    });
    let analysis = crate::cli::analyze::run_inline(&state, id).await?;
    let ended = Instant::now();
    let seen = watcher.await.unwrap_or_default();
    anyhow::ensure!(
        analysis.status == "succeeded",
        "the analysis ended {}: {:?}",
        analysis.status,
        analysis.error
    );
    let classified =
        analysis.progress.get("pictures_classified").and_then(serde_json::Value::as_u64).unwrap_or(0);
    let fetched = analysis.progress.get("pictures_fetched").and_then(serde_json::Value::as_u64).unwrap_or(0);

    let total = ended.duration_since(started).as_secs_f64();
    println!(
        "  import (parse, store, plan): {import_secs:.2} s = {:.0} comments/s",
        args.commenters as f64 / import_secs
    );
    let mut classify_rate = None;
    for (i, (stage, at)) in seen.iter().enumerate() {
        let until = seen.get(i + 1).map_or(ended, |(_, t)| *t);
        let secs = until.duration_since(*at).as_secs_f64();
        let work = match stage.as_str() {
            "fetch_pictures" => Some((fetched, "pictures fetched")),
            "classify" => Some((classified, "pictures classified")),
            _ => None,
        };
        match work {
            Some((n, what)) => {
                let rate = n as f64 / secs.max(1e-9);
                if stage == "classify" {
                    classify_rate = Some(rate);
                }
                println!("  {stage}: {secs:.2} s, {n} {what} = {rate:.1}/s");
            }
            None => println!("  {stage}: {secs:.2} s"),
        }
    }
    let raw_all = raw_one * threads as f64;
    println!(
        "  whole analysis (import to snapshot): {total:.2} s = {:.1} commenters/s",
        args.commenters as f64 / total
    );
    println!(
        "  raw classifier, same run: {raw_one:.1} pictures/s on one thread x {threads} threads = {raw_all:.1}/s"
    );
    if let Some(rate) = classify_rate {
        println!("  classify stage / raw classifier: {:.0} %", 100.0 * rate / raw_all);
    }
    let raw_time = classified.max(1) as f64 / raw_all;
    println!(
        "  whole analysis / raw classification of the same {classified} pictures: {:.2}x",
        total / raw_time
    );
    Ok(())
}
