//! `audiencelens bench api`: demographics reads under load. A scratch database gets an account
//! with N commenters (classified pictures, comments over many posts), the aggregate stage builds
//! its snapshot, then C concurrent connections read `GET /api/v1/accounts/{id}/audience` from
//! the real server for a while. Reports requests/s and latency percentiles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use diesel::sql_types::{Array, BigInt, Bytea, Jsonb, Text};
use diesel_async::RunQueryDsl;
use rand::{RngExt, SeedableRng};

use crate::accounts::{self, InstagramHandle};
use crate::analyses;
use crate::app::AppState;
use crate::config::Config;
use crate::db::{self, admin};
use crate::insights::aggregate;
use crate::vision::result::{AgeEstimate, Bracket, BracketProbs, Gender, GenderEstimate};
use crate::vision::{PictureResult, ProfileType};

#[derive(Debug, Clone, clap::Args)]
pub struct ApiBenchArgs {
    /// Unique commenters of the account.
    #[arg(long, default_value_t = 100_000)]
    pub(super) commenters: usize,
    /// Posts their comments spread over.
    #[arg(long, default_value_t = 100)]
    pub(super) posts: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    pub(super) connections: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    pub(super) seconds: u64,
}

fn result(rng: &mut rand::rngs::StdRng) -> PictureResult {
    let kind = rng.random_range(0..100);
    let profile_type = match kind {
        0..60 => ProfileType::Person,
        60..65 => ProfileType::Group,
        65..90 => ProfileType::NoPerson,
        _ => ProfileType::DefaultAvatar,
    };
    let face = matches!(profile_type, ProfileType::Person | ProfileType::Group);
    let bracket = Bracket::ALL[rng.random_range(0..7)];
    let mut probs = [0.02f32; 7];
    probs[bracket.index()] = 0.88;
    let p_male: f32 = rng.random();
    PictureResult {
        model: crate::vision::MODEL_NAME.into(),
        profile_type,
        face_count: u32::from(face),
        face: None,
        gender: face.then_some(GenderEstimate {
            label: Some(if p_male > 0.5 { Gender::Male } else { Gender::Female }),
            p_male,
            abstain: None,
        }),
        age: face.then_some(AgeEstimate {
            years: 30.0,
            bracket,
            brackets: BracketProbs(probs),
            raw_expected: 30.0,
        }),
        abstain: None,
        no_person_kind: None,
    }
}

/// Fills the scratch database: posts, commenters, one comment each (a tenth comment twice),
/// fetched pictures and their classifications.
pub(super) async fn fill(state: &AppState, account_id: i64, args: &ApiBenchArgs) -> anyhow::Result<()> {
    let mut conn = state.pool.get().await?;
    diesel::sql_query(
        "INSERT INTO posts (ig_post_id, short_code, owner_username, url, posted_at, comments_count)
         SELECT 3800000000000000000 + g, 'P' || g, 'bench.account', 'https://www.instagram.com/p/P' || g || '/',
                now() - make_interval(hours => g::int), 1000 FROM generate_series(1, $1) g",
    )
    .bind::<BigInt, _>(args.posts as i64)
    .execute(&mut conn)
    .await?;
    diesel::sql_query("INSERT INTO tracked_account_posts SELECT $1, id FROM posts")
        .bind::<BigInt, _>(account_id)
        .execute(&mut conn)
        .await?;
    diesel::sql_query(
        "INSERT INTO ig_profiles (ig_user_id, username, is_private, is_verified)
         SELECT (60000000 + g)::text, 'person_' || g, g % 7 = 0, g % 50 = 0 FROM generate_series(1, $1) g",
    )
    .bind::<BigInt, _>(args.commenters as i64)
    .execute(&mut conn)
    .await?;
    diesel::sql_query(
        "INSERT INTO comments (ig_comment_id, post_id, ig_profile_id, body, commented_at)
         SELECT 'c' || pr.id || '-' || k, (SELECT min(id) FROM posts) + (pr.id % $1), pr.id, 'nice', now()
         FROM ig_profiles pr, generate_series(1, 2) k WHERE k = 1 OR pr.id % 10 = 0",
    )
    .bind::<BigInt, _>(args.posts as i64)
    .execute(&mut conn)
    .await?;
    diesel::sql_query(
        "INSERT INTO profile_pictures (ig_profile_id, source_url, source_path, fetch_status, content_sha256)
         SELECT id, 'https://cdn.example/' || id || '.jpg', 'https://cdn.example/' || id || '.jpg', 'fetched',
                sha256(id::text::bytea) FROM ig_profiles",
    )
    .execute(&mut conn)
    .await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let ids: Vec<i64> = (1..=args.commenters as i64).collect();
    for chunk in ids.chunks(10_000) {
        let results: Vec<PictureResult> = chunk.iter().map(|_| result(&mut rng)).collect();
        let details: Vec<serde_json::Value> =
            results.iter().map(|r| serde_json::to_value(r).unwrap_or_default()).collect();
        let types: Vec<&str> = results.iter().map(|r| r.profile_type.label()).collect();
        let keys: Vec<Vec<u8>> = chunk.iter().map(|id| id.to_string().into_bytes()).collect();
        diesel::sql_query(
            "INSERT INTO classifications (content_sha256, model_version, source_model, profile_type, details)
             SELECT sha256(k), $4, 'local', t, d FROM unnest($1::bytea[], $2::text[], $3::jsonb[]) AS u(k, t, d)",
        )
        .bind::<Array<Bytea>, _>(&keys)
        .bind::<Array<Text>, _>(&types)
        .bind::<Array<Jsonb>, _>(&details)
        .bind::<Text, _>(crate::vision::MODEL_NAME)
        .execute(&mut conn)
        .await?;
    }
    Ok(())
}

pub async fn run(args: ApiBenchArgs, mut config: Config) -> anyhow::Result<()> {
    let base = config.database_url();
    let name = format!("audiencelens_bench_api_{}", std::process::id());
    admin::drop_database(&base, &name).await?;
    admin::create_database(&base, &name, None).await?;
    let url = admin::url_for_database(&base, &name);
    config.settings.database.url = secrecy::ExposeSecret::expose_secret(&url).to_owned();
    config.secrets.database_password = None;
    config.settings.server.port = 0;
    config.settings.server.rate_limit_per_ip_per_minute = u32::MAX;
    config.settings.server.rate_limit_per_user_per_minute = u32::MAX;
    config.settings.database.pool_size = args.connections + 4;
    let result = run_in(&args, config).await;
    admin::drop_database(&base, &name).await?;
    result
}

async fn run_in(args: &ApiBenchArgs, config: Config) -> anyhow::Result<()> {
    db::run_migrations(&config.database_url()).await?;
    let state = AppState::build(config)?;
    let mut conn = state.pool.get().await?;
    let owner = crate::users::default_owner(&mut conn).await?;
    let account =
        accounts::find_or_create_account(&mut conn, owner, &InstagramHandle::parse("bench.account")?).await?;
    let account = accounts::update_user_account(
        &mut conn,
        owner,
        account.id,
        &accounts::AccountChanges { max_posts: Some(args.posts as i32), ..Default::default() },
    )
    .await?
    .context("account")?;
    let started = Instant::now();
    fill(&state, account.id, args).await?;
    let analysis = analyses::create_analysis(&mut conn, account.id, "local").await?;
    let calibration = crate::vision::calibration::Calibration::shipped().ok();
    let snapshot =
        aggregate::build_snapshot(&mut conn, &analysis, &account, calibration.as_slice(), None).await?;
    aggregate::store_snapshot(&mut conn, analysis.id, account.id, &snapshot).await?;
    drop(conn);
    let size = serde_json::to_vec(&snapshot)?.len();
    println!(
        "api benchmark: {} commenters on {} posts; data and snapshot ({:.0} KB) built in {:.1} s",
        snapshot.sample.unique_commenters,
        args.posts,
        size as f64 / 1024.0,
        started.elapsed().as_secs_f64()
    );
    let (server, addrs) = crate::http::serve(state.clone())?;
    let handle = server.handle();
    tokio::spawn(server);
    let (sid, _) = crate::users::sessions::open(
        &mut *state.pool.get().await?,
        owner,
        crate::users::sessions::Kind::Token,
    )
    .await?;
    let (token, _) = state.tokens.issue(owner, sid)?;
    let url = format!("http://{}/api/v1/accounts/{}/audience", addrs[0], account.id);
    println!("  {} connections for {} s on GET {url}", args.connections, args.seconds);
    println!(
        "  (the same with wrk: wrk -t2 -c{} -d{}s -H 'Authorization: Bearer <token>' {url})",
        args.connections, args.seconds
    );
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let token = Arc::new(token);
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (url, token) = (url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let client = crate::clients::http_client().pool_max_idle_per_host(1).build()?;
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let t = Instant::now();
                match client.get(&url).bearer_auth(token.as_str()).send().await {
                    Ok(r) if r.status().is_success() => {
                        r.bytes().await?;
                        latencies.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            anyhow::Ok((latencies, errors))
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await??;
        all.extend(l);
        errors += e;
    }
    handle.stop(true).await;
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 - 1.0) * p).round() as usize).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "  {} requests, {} errors: {:.0} requests/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all.len(),
        errors,
        all.len() as f64 / args.seconds as f64,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}
