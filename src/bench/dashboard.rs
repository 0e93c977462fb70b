//! `audiencelens bench dashboard`: the server side of the dashboard's browser benchmark
//! (`scripts/bench-dashboard` drives Chromium against it). A scratch database gets an account of
//! N commenters with its snapshot (as `bench api` builds it), a user who owns it, two more
//! accounts and two generated exports of the same size that share nothing; the real server
//! runs (API only: no worker competes with an upload) until standard input closes. One JSON
//! line on standard output says where everything is.

use std::io::Read as _;

use anyhow::Context as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;

use super::api::{ApiBenchArgs, fill};
use crate::accounts::{self, InstagramHandle};
use crate::analyses;
use crate::app::AppState;
use crate::config::Config;
use crate::db::{self, admin};
use crate::insights::aggregate;
use crate::users::{self, Email, password};

#[derive(Debug, clap::Args)]
pub struct DashboardBenchArgs {
    /// Unique commenters of the account whose report is loaded.
    #[arg(long, default_value_t = 100_000)]
    commenters: usize,
    /// Comments in each generated export (100,000 make about 42 MB).
    #[arg(long, default_value_t = 100_000)]
    export_comments: usize,
}

pub async fn run(args: DashboardBenchArgs, mut config: Config) -> anyhow::Result<()> {
    let base = config.database_url();
    let name = format!("audiencelens_bench_dashboard_{}", std::process::id());
    admin::drop_database(&base, &name).await?;
    admin::create_database(&base, &name, None).await?;
    let url = admin::url_for_database(&base, &name);
    config.settings.database.url = url.expose_secret().to_owned();
    config.secrets.database_password = None;
    config.settings.server.port = 0;
    config.settings.server.rate_limit_per_ip_per_minute = u32::MAX;
    config.settings.server.rate_limit_per_user_per_minute = u32::MAX;
    config.settings.server.login_attempts_per_minute = u32::MAX;
    let dir = std::env::temp_dir().join(format!("audiencelens-bench-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run_in(&args, config, &dir, url.expose_secret()).await;
    let _ = std::fs::remove_dir_all(&dir);
    admin::drop_database(&base, &name).await?;
    result
}

async fn run_in(
    args: &DashboardBenchArgs,
    config: Config,
    dir: &std::path::Path,
    url: &str,
) -> anyhow::Result<()> {
    db::run_migrations(&config.database_url()).await?;
    let state = AppState::build(config)?;
    let mut conn = state.pool.get().await?;
    let email = Email::parse("bench@example.com").map_err(anyhow::Error::msg)?;
    let random: [u8; 12] = rand::random();
    let secret = hex::encode(random);
    let hash = password::hash_password(SecretString::from(secret.clone())).await?;
    let owner = users::create_user(&mut conn, &email, &hash, true).await?.context("bench user")?;
    let handle = |h: &str| InstagramHandle::parse(h);
    let report = accounts::find_or_create_account(&mut conn, owner, &handle("bench.account")?).await?;
    let fill_args = ApiBenchArgs { commenters: args.commenters, posts: 100, connections: 1, seconds: 0 };
    let report = accounts::update_user_account(
        &mut conn,
        owner,
        report.id,
        &accounts::AccountChanges { max_posts: Some(100), ..Default::default() },
    )
    .await?
    .context("account")?;
    fill(&state, report.id, &fill_args).await?;
    let analysis = analyses::create_analysis(&mut conn, report.id, "local").await?;
    let calibration = crate::vision::calibration::Calibration::shipped().ok();
    let snapshot =
        aggregate::build_snapshot(&mut conn, &analysis, &report, calibration.as_slice(), None).await?;
    aggregate::store_snapshot(&mut conn, analysis.id, report.id, &snapshot).await?;
    let upload = accounts::find_or_create_account(&mut conn, owner, &handle("upload.target")?).await?;
    let cli = accounts::find_or_create_account(&mut conn, owner, &handle("import.target")?).await?;
    drop(conn);
    let upload_file = dir.join("upload.json");
    let cli_file = dir.join("import.json");
    std::fs::write(&upload_file, super::import::export(args.export_comments, 1_000_000))?;
    std::fs::write(&cli_file, super::import::export(args.export_comments, 2_000_000))?;
    let (server, addrs) = crate::http::serve(state.clone())?;
    let handle = server.handle();
    tokio::spawn(server);
    println!(
        "{}",
        json!({
            "base_url": format!("http://{}", addrs[0]),
            "database_url": url,
            "email": email.as_str(),
            "password": secret,
            "report_account": report.id,
            "commenters": snapshot.sample.unique_commenters,
            "upload_account": upload.id,
            "upload_file": upload_file,
            "import_handle": cli.handle,
            "import_file": cli_file,
            "export_bytes": std::fs::metadata(&upload_file)?.len(),
        })
    );
    // Serve until the driver closes standard input.
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await?;
    handle.stop(true).await;
    Ok(())
}
