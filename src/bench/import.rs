//! `audiencelens bench import`: a synthetic comment-scraper export of N comments by N/2
//! people on N/500 posts, written to a temporary file, then imported with the same code as
//! `audiencelens import` into a scratch database. Reports parse and store time.

use std::time::Instant;

use serde_json::json;

use crate::accounts::{self, InstagramHandle};
use crate::config::Config;
use crate::db::{self, admin};
use crate::scraping::import;

#[derive(Debug, clap::Args)]
pub struct ImportBenchArgs {
    /// Comments in the generated export.
    #[arg(long, default_value_t = 100_000)]
    comments: usize,
}

/// A comment-scraper export of `comments` comments, its ids (comments, posts, people) shifted
/// by `offset` so that two exports share nothing.
pub(super) fn export(comments: usize, offset: u64) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let shortcode = |mut id: u64| {
        let mut out = Vec::new();
        while id > 0 {
            out.push(ALPHABET[(id % 64) as usize]);
            id /= 64;
        }
        out.reverse();
        String::from_utf8(out).unwrap_or_default()
    };
    let people = (comments / 2).max(1);
    let posts = (comments / 500).max(1);
    let items: Vec<serde_json::Value> = (0..comments)
        .map(|i| {
            let code = shortcode(3_400_000_000_000_000_000 + offset + (i % posts) as u64);
            let person = offset as usize + i % people;
            json!({
                "id": (17_000_000_000_000_000u64 + offset + i as u64).to_string(),
                "postUrl": format!("https://www.instagram.com/p/{code}/"),
                "text": format!("comment number {i} with a little text to parse"),
                "ownerUsername": format!("person_{person}"),
                "ownerProfilePicUrl": format!("https://scontent.cdninstagram.com/v/t51.2885-19/{person}_n.jpg?stp=dst-jpg_s150x150_tt6&oh=00_AQ&oe=6AAB16FB"),
                "timestamp": "2026-11-20T10:00:00.000Z", "likesCount": i % 7,
                "owner": {"id": (50_000_000 + person).to_string(), "username": format!("person_{person}"), "is_verified": false},
            })
        })
        .collect();
    serde_json::to_vec(&items).unwrap_or_default()
}

pub async fn run(args: ImportBenchArgs, config: Config) -> anyhow::Result<()> {
    let bytes = export(args.comments, 0);
    let file = std::env::temp_dir().join(format!("audiencelens-bench-import-{}.json", std::process::id()));
    std::fs::write(&file, &bytes)?;
    println!("import benchmark: {} comments, {:.1} MB export", args.comments, bytes.len() as f64 / 1e6);
    let parse_started = Instant::now();
    import::parse_file(&file, &bytes)?;
    let parse_secs = parse_started.elapsed().as_secs_f64();
    drop(bytes);

    let base = config.database_url();
    let name = format!("audiencelens_bench_import_{}", std::process::id());
    admin::drop_database(&base, &name).await?;
    admin::create_database(&base, &name, None).await?;
    let url = admin::url_for_database(&base, &name);
    let result = async {
        db::run_migrations(&url).await?;
        let pool = db::connect_pool(&url, 2, std::time::Duration::from_secs(10))?;
        let mut conn = pool.get().await?;
        let owner = crate::users::default_owner(&mut conn).await?;
        let account = accounts::find_or_create_account(&mut conn, owner, &InstagramHandle::parse("bench.account")?).await?;
        let started = Instant::now();
        let privacy = crate::privacy::PrivacyKey::new(None);
        let report = import::import_file_alone(&mut conn, &privacy, &account, &file, u64::MAX).await?;
        let total = started.elapsed().as_secs_f64();
        println!(
            "  stored {} comments, {} commenters, {} posts, {} pictures",
            report.stats.comments_new, report.stats.commenters_new, report.stats.posts_new, report.stats.pictures_new
        );
        println!("  parse only: {parse_secs:.2} s; whole import (read, parse, store, commit): {total:.2} s = {:.0} comments/s", args.comments as f64 / total);
        let started = Instant::now();
        let again = import::import_file_alone(&mut conn, &privacy, &account, &file, u64::MAX).await?;
        println!(
            "  the same file again: {:.2} s, {} new comments (idempotent)",
            started.elapsed().as_secs_f64(),
            again.stats.comments_new
        );
        anyhow::Ok(())
    }
    .await;
    let _ = std::fs::remove_file(&file);
    admin::drop_database(&base, &name).await?;
    result
}
