//! `audiencelens demo`: the whole product on bundled sample data. Serves the sample profile
//! pictures from a local address (so the real picture fetcher downloads them), imports the
//! sample export for a demo user, runs the analysis, prints the report, then keeps the
//! dashboard and the API running and prints where to sign in and a `curl` that reads the result.

use std::path::PathBuf;

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use super::{analyze, report};
use crate::accounts::{self, InstagramHandle};
use crate::app::{self, AppState, Mode};
use crate::config::Config;
use crate::users::{self, Email, password};

pub const DEMO_EMAIL: &str = "demo@audiencelens.local";
const DEMO_ACCOUNT: &str = "lumen.atelier";

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Folder with `export.json` and `pictures/`.
    #[arg(long, default_value = "scripts/demo-data")]
    data: PathBuf,
    /// Run the analysis and print the report, without starting the API afterwards.
    #[arg(long)]
    no_serve: bool,
}

/// Serves `dir/pictures/NAME.jpg` at `/v/t51.2885-19/NAME.jpg`, like Instagram's CDN.
fn picture_server(dir: PathBuf) -> anyhow::Result<(actix_web::dev::Server, String)> {
    let server = HttpServer::new(move || {
        let dir = dir.clone();
        App::new().route(
            "/v/t51.2885-19/{name}.jpg",
            web::get().to(move |name: web::Path<String>| {
                let dir = dir.clone();
                async move {
                    let file = if name.starts_with("44884218_") {
                        "default-avatar".to_owned()
                    } else {
                        name.into_inner()
                    };
                    if !file.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                        return HttpResponse::NotFound().finish();
                    }
                    match tokio::fs::read(dir.join(format!("{file}.jpg"))).await {
                        Ok(bytes) => HttpResponse::Ok().content_type("image/jpeg").body(bytes),
                        Err(_) => HttpResponse::Forbidden().body("URL signature expired"),
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

pub async fn run(args: DemoArgs, mut config: Config) -> anyhow::Result<()> {
    // One signing secret for the token printed below and the API started afterwards.
    if config.secrets.jwt_secret.is_none() {
        let random: [u8; 32] = rand::random();
        config.secrets.jwt_secret = Some(SecretString::from(hex::encode(random)));
    }
    app::migrate(&config).await?;
    let export = tokio::fs::read_to_string(args.data.join("export.json")).await.with_context(|| {
        format!("reading {}/export.json (run the demo from the project root)", args.data.display())
    })?;
    let (pictures, base) = picture_server(args.data.join("pictures"))?;
    // The sample's pictures come from the demo's own server on this machine.
    config.settings.pictures.allowed_hosts.push("127.0.0.1".to_owned());
    config.settings.pictures.allow_local = true;
    let pictures_handle = pictures.handle();
    tokio::spawn(pictures);
    let sample = std::env::temp_dir().join(format!("audiencelens-demo-{}.json", std::process::id()));
    tokio::fs::write(&sample, export.replace("{{PICTURES}}", &base)).await?;

    let state = AppState::build(config.clone())?;
    let mut conn = state.pool.get().await.context("connecting to the database")?;
    let email = Email::parse(DEMO_EMAIL).map_err(anyhow::Error::msg)?;
    let random: [u8; 9] = rand::random();
    let demo_password = SecretString::from(hex::encode(random));
    let hash = password::hash_password(demo_password.clone()).await?;
    let user_id = if let Some(id) = users::create_user(&mut conn, &email, &hash, false).await? {
        id
    } else {
        let creds = users::credentials(&mut conn, &email).await?.context("demo user vanished")?;
        users::set_password(&mut conn, creds.id, &hash, false).await?;
        creds.id
    };
    let handle = InstagramHandle::parse(DEMO_ACCOUNT)?;
    let account = accounts::find_or_create_account(&mut conn, user_id, &handle).await?;
    // A demo interrupted earlier left its analysis unfinished: this run finishes it.
    let analysis_id = if let Some(running) = analyze::unfinished(&mut conn, account.id).await? {
        eprintln!("demo: finishing analysis {} left unfinished by an earlier run", running.id);
        // The picture server listens on a new port each run: importing the sample again
        // (nothing new is stored) points the pictures still to fetch at this run's server.
        crate::scraping::import::import_file_alone(&mut conn, &state.privacy, &account, &sample, u64::MAX)
            .await
            .map(|_| running.id)
            .map_err(anyhow::Error::from)
    } else {
        let files = std::slice::from_ref(&sample);
        let same = accounts::AccountChanges::default();
        analyze::import_and_start(&state, &mut conn, user_id, &handle, &same, files, "local")
            .await
            .map(|a| a.id)
    };
    let _ = tokio::fs::remove_file(&sample).await;
    let analysis_id = analysis_id?;
    drop(conn);
    let finished = analyze::run_inline(&state, analysis_id).await?;
    pictures_handle.stop(false).await;
    let snapshot = finished.snapshot.with_context(|| {
        format!("the analysis ended {}: {}", finished.status, finished.error.unwrap_or_default())
    })?;
    println!();
    print!("{}", report::render(&serde_json::from_value(snapshot)?));
    if args.no_serve {
        return Ok(());
    }

    let (sid, _) =
        users::sessions::open(&mut *state.pool.get().await?, user_id, users::sessions::Kind::Token).await?;
    let (token, _) = state.tokens.issue(user_id, sid)?;
    let port = config.settings.server.port;
    let host = &config.settings.server.host;
    println!(
        "\nThe dashboard and the API are starting (Ctrl-C to stop).\n\n  Dashboard: http://{host}:{port}/#/accounts/{id}\n           Sign in as {DEMO_EMAIL} with the password {password}\n\n  The same audience from the API:\n           curl -s -H 'Authorization: Bearer {token}' http://{host}:{port}/api/v1/accounts/{id}/audience\n",
        password = demo_password.expose_secret(),
        id = account.id
    );
    app::serve(config, Mode::All, CancellationToken::new()).await
}
