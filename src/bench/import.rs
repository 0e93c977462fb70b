//! `audiencelens bench import`: a synthetic comment-scraper export of N comments by N/2
//! people on N/500 posts, written to a temporary file, then imported with the same code as
//! `audiencelens import` into a scratch database. Reports parse and store time, throughput and
//! the process's peak memory (the import streams: it must not grow with the file;
//! `--comments 1100000` writes about 500 MB).

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

/// Writes a comment-scraper export of `comments` comments to `out` (a JSON array, one item at
/// a time), its ids (comments, posts, people) shifted by `offset` so that two exports share
/// nothing.
pub(super) fn write_export(
    out: &mut impl std::io::Write,
    comments: usize,
    offset: u64,
) -> std::io::Result<()> {
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
    out.write_all(b"[")?;
    for i in 0..comments {
        let code = shortcode(3_400_000_000_000_000_000 + offset + (i % posts) as u64);
        let person = offset as usize + i % people;
        let item = json!({
            "id": (17_000_000_000_000_000u64 + offset + i as u64).to_string(),
            "postUrl": format!("https://www.instagram.com/p/{code}/"),
            "text": format!("comment number {i} with a little text to parse"),
            "ownerUsername": format!("person_{person}"),
            "ownerProfilePicUrl": format!("https://scontent.cdninstagram.com/v/t51.2885-19/{person}_n.jpg?stp=dst-jpg_s150x150_tt6&oh=00_AQ&oe=6AAB16FB"),
            "timestamp": "2026-11-20T10:00:00.000Z", "likesCount": i % 7,
            "owner": {"id": (50_000_000 + person).to_string(), "username": format!("person_{person}"), "is_verified": false},
        });
        if i > 0 {
            out.write_all(b",\n")?;
        }
        serde_json::to_writer(&mut *out, &item)?;
    }
    out.write_all(b"]\n")
}

/// [`write_export`] into memory.
pub(super) fn export(comments: usize, offset: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = write_export(&mut out, comments, offset);
    out
}

/// The process's peak resident memory so far (Linux `VmHWM`), in bytes.
#[must_use]
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub async fn run(args: ImportBenchArgs, config: Config) -> anyhow::Result<()> {
    let file = std::env::temp_dir().join(format!("audiencelens-bench-import-{}.json", std::process::id()));
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
        write_export(&mut out, args.comments, 0)?;
        std::io::Write::flush(&mut out)?;
    }
    let size = std::fs::metadata(&file)?.len();
    println!("import benchmark: {} comments, {:.1} MB export", args.comments, size as f64 / 1e6);
    let rss_before = peak_rss();
    let parse_started = Instant::now();
    let surveyed = import::survey(&file);
    let parse_secs = parse_started.elapsed().as_secs_f64();
    if let Err(e) = surveyed {
        let _ = std::fs::remove_file(&file);
        return Err(e.into());
    }
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
        println!("  reading once (parse only): {parse_secs:.2} s; whole import (two readings, store, commit): {total:.2} s = {:.0} comments/s, {:.1} MB/s", args.comments as f64 / total, size as f64 / 1e6 / total);
        let mb = |b: Option<u64>| b.map_or_else(|| "unknown".to_owned(), |b| format!("{:.0} MB", b as f64 / 1e6));
        println!("  peak resident memory: {} before the import, {} after it (the file: {:.0} MB)", mb(rss_before), mb(peak_rss()), size as f64 / 1e6);
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
