//! `audiencelens import`: the project's fixtures, hostile files, and (when present) the real
//! exports in ../shared/data/apify.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::helpers::{TestDb, run_cli};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apify").join(name).display().to_string()
}

/// Imports `files` with `--json`; returns the exit code, the per-file reports and stderr.
async fn import(db: &TestDb, files: &[&str], extra: &[&str]) -> (i32, Vec<Value>, String) {
    import_for(db, "lumen.atelier", files, extra).await
}

async fn import_for(db: &TestDb, account: &str, files: &[&str], extra: &[&str]) -> (i32, Vec<Value>, String) {
    let mut args = vec!["import", "--account", account, "--json"];
    args.extend_from_slice(extra);
    args.extend_from_slice(files);
    let (code, out, err) = run_cli(db, &args, &[]).await;
    let reports = out.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    (code, reports, err)
}

#[tokio::test]
async fn the_project_fixtures_import_and_a_second_import_changes_nothing() {
    let db = TestDb::new().await;
    let files = [fixture("posts.json"), fixture("comments.jsonl"), fixture("reels.csv")];
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let (code, reports, err) = import(&db, &files, &[]).await;
    assert_eq!(code, 0, "{err}");
    let n = |r: &Value, k: &str| r[k].as_u64().unwrap_or(u64::MAX);
    assert_eq!(
        (n(&reports[0], "posts_new"), n(&reports[0], "comments_new"), n(&reports[0], "commenters_new")),
        (3, 9, 3)
    );
    assert_eq!(
        (
            n(&reports[1], "comments_new"),
            n(&reports[1], "commenters_new"),
            n(&reports[1], "commenters_seen_before")
        ),
        (4, 3, 1)
    );
    assert_eq!((n(&reports[2], "posts_new"), n(&reports[2], "comments_new")), (1, 2));
    assert_eq!(reports[2]["format"], "csv");
    assert_eq!(
        db.count("SELECT count(*) AS n FROM comments WHERE parent_comment_id IS NOT NULL").await,
        3,
        "replies linked"
    );
    assert_eq!(db.count("SELECT count(*) AS n FROM comments WHERE body LIKE '%\nsecond line'").await, 1);
    assert_eq!(
        db.count("SELECT count(*) AS n FROM profile_pictures WHERE fetch_status = 'default_avatar'").await,
        1
    );
    assert_eq!(
        db.count("SELECT count(*) AS n FROM profile_pictures WHERE url_expires_at = '2026-09-16T22:23:55Z'")
            .await,
        db.count("SELECT count(*) AS n FROM profile_pictures WHERE fetch_status = 'pending'").await,
        "expiry parsed from oe"
    );
    assert_eq!(db.count("SELECT count(*) AS n FROM tracked_account_posts").await, 4);

    let before = counts(&db).await;
    let (code, reports, _) = import(&db, &files, &[]).await;
    assert_eq!(code, 0);
    assert!(
        reports
            .iter()
            .all(|r| n(r, "posts_new") == 0 && n(r, "comments_new") == 0 && n(r, "commenters_new") == 0)
    );
    assert_eq!(n(&reports[1], "comments_seen_before"), 4);
    assert_eq!(before, counts(&db).await);

    // The same pictures through another CDN host: the links are refreshed, no row is added.
    let moved = std::env::temp_dir().join(format!("{}-other-host.jsonl", db.name));
    let text = std::fs::read_to_string(fixture("comments.jsonl")).expect("fixture");
    std::fs::write(
        &moved,
        text.replace("scontent-fra5-1.cdninstagram.example", "instagram.fcgk9-1.fna.fbcdn.example"),
    )
    .expect("write");
    let (code, _, err) = import(&db, &[&moved.display().to_string()], &[]).await;
    let _ = std::fs::remove_file(&moved);
    assert_eq!(code, 0, "{err}");
    assert_eq!(before, counts(&db).await, "one row per picture file, whatever the host");
    assert!(
        db.count(
            "SELECT count(*) AS n FROM profile_pictures WHERE source_url LIKE 'https://instagram.fcgk9-1.%'"
        )
        .await
            > 0,
        "links refreshed"
    );
}

async fn counts(db: &TestDb) -> Vec<i64> {
    let mut v = Vec::new();
    for t in ["posts", "comments", "ig_profiles", "profile_pictures", "tracked_account_posts"] {
        v.push(db.count(&format!("SELECT count(*) AS n FROM {t}")).await);
    }
    v
}

#[tokio::test]
async fn a_mixed_file_keeps_every_valid_item_and_reports_the_rest() {
    let db = TestDb::new().await;
    let report = std::env::temp_dir().join(format!("{}-report.jsonl", db.name));
    let report_arg = report.display().to_string();
    let (code, reports, err) = import(&db, &[&fixture("mixed.jsonl")], &["--report", &report_arg]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(reports[0]["comments_new"], 2);
    let rejected = reports[0]["rejected"].as_array().expect("list");
    let reasons: Vec<&str> = rejected.iter().map(|r| r["reason"].as_str().unwrap_or("")).collect();
    assert_eq!(rejected.len(), 4, "{reasons:?}");
    assert!(reasons[0].starts_with("not an Instagram item"));
    assert_eq!(reasons[1], "not a JSON object");
    assert_eq!(reasons[2], "comment without id");
    assert_eq!(reasons[3], "not a JSON object");
    let lines = std::fs::read_to_string(&report).expect("report file");
    assert_eq!(lines.lines().count(), 4);
    let _ = std::fs::remove_file(report);
    // The numeric id and the capitalised username were normalised.
    assert_eq!(
        db.count("SELECT count(*) AS n FROM comments WHERE ig_comment_id = '18200000000000002'").await,
        1
    );
    assert_eq!(
        db.count("SELECT count(*) AS n FROM ig_profiles WHERE username = 'northwind.runner'").await,
        1
    );
}

#[tokio::test]
async fn analyze_refuses_an_account_whose_analysis_is_unfinished_and_imports_nothing() {
    use audiencelens::accounts::{self, InstagramHandle};
    use audiencelens::jobs::pipeline::{self, Begin};
    let db = TestDb::new().await;
    let (code, _, err) = import(&db, &[&fixture("posts.json")], &[]).await;
    assert_eq!(code, 0, "{err}");
    // An analysis left queued: no worker runs here, so it stays unfinished.
    let config = db.config(&[]);
    let mut conn = db.conn().await;
    let owner = audiencelens::users::default_owner(&mut conn).await.expect("owner");
    let handle = InstagramHandle::parse("lumen.atelier").expect("handle");
    let account = accounts::find_or_create_account(&mut conn, owner, &handle).await.expect("account");
    let first = pipeline::start_unless_running(&mut conn, &config, &account, "local", Begin::StoredData)
        .await
        .expect("start")
        .expect("the account was idle");
    let again = pipeline::start_unless_running(&mut conn, &config, &account, "local", Begin::Scrape).await;
    assert_eq!(
        again.expect("query").map(|a| a.id).map_err(|a| a.id),
        Err(first.id),
        "the unfinished analysis is returned"
    );
    drop(conn);

    let stored = db.count("SELECT count(*) AS n FROM comments").await;
    let comments = fixture("comments.jsonl");
    let (code, _, err) =
        run_cli(&db, &["analyze", "--account", "lumen.atelier", "--import", &comments], &[]).await;
    assert_ne!(code, 0);
    assert!(err.contains(&format!("analysis {} of @lumen.atelier is still queued", first.id)), "{err}");
    let job = db.count("SELECT id AS n FROM jobs WHERE dedupe_key LIKE 'analysis:%'").await;
    assert!(
        err.contains(&format!("its job: {job}")) && err.contains("--resume"),
        "what to do is said: {err}"
    );
    assert_eq!(db.count("SELECT count(*) AS n FROM comments").await, stored, "nothing imported");
    let (code, _, err) = run_cli(&db, &["analyze", "lumen.atelier"], &[]).await;
    assert_ne!(code, 0);
    assert!(err.contains("one analysis per account"), "{err}");
    // Refused before the account is changed.
    let (code, _, err) = run_cli(&db, &["analyze", "lumen.atelier", "--posts", "3"], &[]).await;
    assert_ne!(code, 0, "{err}");
    assert_eq!(db.count("SELECT count(*) AS n FROM tracked_accounts WHERE max_posts = 3").await, 0);
    assert_eq!(db.count("SELECT count(*) AS n FROM analyses").await, 1, "nothing else started");
    let (code, _, err) =
        run_cli(&db, &["analyze", "--account", "lumen.atelier", "--resume", "--import", &comments], &[])
            .await;
    assert_eq!(code, 2, "resume works on what is stored, imports nothing: {err}");
    assert!(err.contains("cannot be used with"), "refused as a conflict, not for a missing flag: {err}");
    let (code, _, err) = run_cli(&db, &["analyze", "someone.else", "--resume"], &[]).await;
    assert_ne!(code, 0);
    assert!(err.contains("@someone.else has no unfinished analysis to resume"), "{err}");
    assert_eq!(
        db.count("SELECT count(*) AS n FROM tracked_accounts WHERE handle = 'someone.else'").await,
        0,
        "a resume of an untracked handle tracks nothing"
    );

    // Resumed, the analysis is worked here; when its stage job ends without ending it (here:
    // the stage was already past, so the job does nothing), it is failed, not waited for.
    db.execute(&format!("UPDATE analyses SET stage = 'done' WHERE id = {}", first.id)).await;
    let resumed = run_cli(&db, &["analyze", "lumen.atelier", "--resume"], &[]);
    let (code, _, err) = tokio::time::timeout(std::time::Duration::from_mins(1), resumed)
        .await
        .expect("not waited for forever");
    assert_ne!(code, 0);
    assert!(err.contains(&format!("analysis {} ended failed", first.id)), "{err}");
}

#[tokio::test]
async fn a_file_that_is_not_an_export_fails_and_writes_nothing() {
    let db = TestDb::new().await;
    let (code, _, err) = import(&db, &[&fixture("not-an-export.html")], &[]).await;
    assert_ne!(code, 0);
    assert!(err.contains("not an Apify export"), "{err}");
    let dir = std::env::temp_dir();
    let json_without_items = dir.join(format!("{}-noitems.json", db.name));
    std::fs::write(&json_without_items, r#"[{"a": 1}, {"b": 2}]"#).expect("write");
    let (code, _, err) = import(&db, &[&json_without_items.display().to_string()], &[]).await;
    assert_ne!(code, 0);
    assert!(err.contains("no Instagram posts, comments or profiles found"), "{err}");
    let _ = std::fs::remove_file(json_without_items);
    assert_eq!(db.count("SELECT count(*) AS n FROM posts").await, 0);
    assert_eq!(db.count("SELECT count(*) AS n FROM comments").await, 0);
}

#[tokio::test]
async fn hostile_files_give_counted_rejections() {
    let db = TestDb::new().await;
    let dir = std::env::temp_dir();
    let valid = r#"{"id": "1", "text": "fine", "ownerUsername": "quiet.harbor", "postUrl": "https://www.instagram.com/p/DMsI5LsyOvL/"}"#;
    let mut files: Vec<PathBuf> = Vec::new();
    let mut write = |name: &str, bytes: Vec<u8>| {
        let path = dir.join(format!("{}-{name}", db.name));
        std::fs::write(&path, bytes).expect("write");
        files.push(path);
    };
    // A truncated JSON array: damaged, so nothing of it is kept, with where and how much.
    write("truncated.json", format!("[{valid}, {}", &valid[..40]).into_bytes());
    // Wrong types everywhere: ids as objects, counts as arrays.
    write("types.jsonl", br#"{"id": {"x": 1}, "text": 5, "ownerUsername": ["a"], "postUrl": 7}"#.to_vec());
    // One line of 100 MB, then a valid item: the line is skipped unread, the item kept.
    let mut big = b"{\"text\": \"".to_vec();
    big.resize(100 * 1024 * 1024, b'a');
    big.extend_from_slice(b"\"}\n");
    big.extend_from_slice(valid.replace("\"1\"", "\"2\"").as_bytes());
    write("huge-line.jsonl", big);
    // CSV whose second row is not UTF-8: damaged, named by its line.
    let mut csv =
        b"id,text,ownerUsername,postUrl\n3,ok,quiet.harbor,https://www.instagram.com/p/DMsI5LsyOvL/\n4,"
            .to_vec();
    csv.extend_from_slice(&[0xC3, 0x28, 0xFF]);
    csv.extend_from_slice(b",someone,https://www.instagram.com/p/DMsI5LsyOvL/\n");
    write("latin1.csv", csv);
    // JSON nested 100,000 deep, then a valid item.
    write("deep.json", format!("[{}{}, {valid}]", "[".repeat(100_000), "]".repeat(100_000)).into_bytes());
    let args: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = import(&db, &args[..1], &[]).await;
    assert_ne!(code, 0, "a damaged file is refused");
    assert!(err.contains("damaged at line 1 (byte"), "{err}");
    assert!(err.contains("cut off") && err.contains("1 items before that point"), "{err}");
    assert_eq!(db.count("SELECT count(*) AS n FROM comments").await, 0, "nothing of it kept");
    assert_eq!(db.count("SELECT count(*) AS n FROM tracked_accounts").await, 0, "not even the account");
    let (code, _, err) = import(&db, &args[1..2], &[]).await;
    assert_ne!(code, 0, "nothing usable");
    assert!(err.contains("no Instagram posts"), "{err}");
    let (code, _, err) = import(&db, &args[3..4], &[]).await;
    assert_ne!(code, 0, "a CSV row that is not UTF-8 damages the file");
    assert!(err.contains("damaged at line 3") && err.contains("not UTF-8"), "{err}");
    assert_eq!(db.count("SELECT count(*) AS n FROM comments").await, 0);
    assert_eq!(db.count("SELECT count(*) AS n FROM tracked_accounts").await, 0);
    let (code, reports, err) = import(&db, &[args[2], args[4]], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        reports[0]["rejected"][0]["reason"].as_str().unwrap_or("").contains("larger than"),
        "{:?}",
        reports[0]
    );
    assert_eq!(reports[0]["comments_new"], 1);
    assert!(reports[1]["rejected"][0]["reason"].as_str().unwrap_or("").contains("nested deeper"));
    assert_eq!(reports[1]["comments_new"], 1);
    for f in files {
        let _ = std::fs::remove_file(f);
    }
}

#[tokio::test]
async fn conflicting_repeats_are_counted_and_store_nothing_of_their_own() {
    let db = TestDb::new().await;
    let comment = |id: &str, author: &str, text: &str| {
        format!(
            r#"{{"id": "{id}", "text": "{text}", "ownerUsername": "{author}", "ownerProfilePicUrl": "https://scontent.cdninstagram.com/v/{author}.jpg", "postUrl": "https://www.instagram.com/p/DMsI5LsyOvL/"}}"#
        )
    };
    let dir = std::env::temp_dir();
    let first = dir.join(format!("{}-first.jsonl", db.name));
    let second = dir.join(format!("{}-second.jsonl", db.name));
    // In one file: id 1 twice with another author and text; id 2 twice, the same.
    std::fs::write(
        &first,
        [
            comment("1", "ana", "hello"),
            comment("1", "intruder", "spam"),
            comment("2", "bo", "hi"),
            comment("2", "bo", "hi"),
        ]
        .join("\n"),
    )
    .expect("write");
    // In a later file: id 1 once more with other text, and a new comment.
    std::fs::write(&second, [comment("1", "ana", "changed"), comment("3", "cy", "new")].join("\n"))
        .expect("write");
    let (code, reports, err) = import(&db, &[&first.display().to_string()], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (reports[0]["comments_new"].as_u64(), reports[0]["intake"]["comments_duplicate"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(reports[0]["intake"]["comments_conflicting"], 1);
    let (code, reports, err) = import(&db, &[&second.display().to_string()], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (reports[0]["comments_new"].as_u64(), reports[0]["intake"]["comments_conflicting"].as_u64()),
        (Some(1), Some(1))
    );
    let (code, text, err) =
        run_cli(&db, &["import", "--account", "lumen.atelier", &second.display().to_string()], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("1 conflicting"), "{text}");
    assert_eq!(
        db.count("SELECT count(*) AS n FROM comments WHERE body = 'hello'").await,
        1,
        "the first one stays"
    );
    assert_eq!(db.count("SELECT count(*) AS n FROM comments WHERE body IN ('spam', 'changed')").await, 0);
    assert_eq!(
        db.count("SELECT count(*) AS n FROM ig_profiles WHERE username = 'intruder'").await,
        0,
        "nothing of a record that was not kept"
    );
    let _ = std::fs::remove_file(first);
    let _ = std::fs::remove_file(second);
}

/// The real exports in ../shared (skipped when that folder is absent).
#[tokio::test]
async fn the_shared_apify_exports_import_with_sensible_counts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/apify");
    if !dir.is_dir() {
        eprintln!("skipped: {} is absent", dir.display());
        return;
    }
    let db = TestDb::new().await;
    // file prefix -> account it is imported for -> (posts new, comments new, commenters new,
    // rejected), or the error a file of other accounts' posts gets.
    let expected: &[(&str, &str, Result<(u64, u64, u64, usize), &str>)] = &[
        // A hashtag export: one post of the account's, two of other accounts set aside.
        ("Jillian-ignited", "mansoor_ka_achar", Ok((1, 0, 0, 0))),
        ("Sebitian", "humansofny", Ok((12, 55, 22, 0))),
        ("adiind", "tinker_verse", Ok((6, 0, 0, 0))),
        ("natashaa27", "olectraofficial", Ok((25, 58, 45, 0))),
        ("txtit_ChatServer__dataset_instagram-scraper_detail", "humansofny", Ok((12, 0, 0, 0))),
        // Posts that mention the account are other accounts' posts.
        (
            "txtit_ChatServer__dataset_instagram-scraper_mentions",
            "humansofny",
            Err("nothing in it belongs to @humansofny"),
        ),
        ("txtit_ChatServer__dataset_instagram-scraper_posts_copy", "humansofny", Ok((120, 830, 594, 0))),
    ];
    for (prefix, account, want) in expected {
        let file = std::fs::read_dir(&dir)
            .expect("dir")
            .flatten()
            .map(|e| e.path())
            .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix)))
            .unwrap_or_else(|| panic!("no file {prefix}*"));
        let (code, reports, err) = import_for(&db, account, &[&file.display().to_string()], &[]).await;
        match want {
            Err(message) => {
                assert_ne!(code, 0, "{prefix}");
                assert!(err.contains(message), "{prefix}: {err}");
            }
            Ok((posts, comments, commenters, rejected)) => {
                assert_eq!(code, 0, "{prefix}: {err}");
                let r = &reports[0];
                let got = (
                    r["posts_new"].as_u64().unwrap_or(0),
                    r["comments_new"].as_u64().unwrap_or(0),
                    r["commenters_new"].as_u64().unwrap_or(0),
                    r["rejected"].as_array().map_or(0, Vec::len),
                );
                assert_eq!(got, (*posts, *comments, *commenters, *rejected), "{prefix}");
            }
        }
    }
    // posts_copy's default-avatar links (35 comments by 20 people) are recognised without a
    // download: one picture row per person.
    assert_eq!(
        db.count("SELECT count(*) AS n FROM profile_pictures WHERE fetch_status = 'default_avatar'").await,
        20
    );
}

#[tokio::test]
async fn a_file_taken_in_by_parts_is_judged_as_a_whole() {
    // More records than one part holds (10,000): a profile first, whose comments come later;
    // comments first, whose post (another account's) comes last; a repeat across parts.
    let db = TestDb::new().await;
    let comment = |id: usize, author: &str, code: &str| {
        format!(
            r#"{{"id": "{id}", "text": "nice", "ownerUsername": "{author}", "postUrl": "https://www.instagram.com/p/{code}/"}}"#
        )
    };
    let mut lines = vec![
        r#"{"username": "late.fan", "fullName": "Late Fan", "followersCount": 12, "profilePicUrl": "https://scontent.cdninstagram.com/v/late.jpg"}"#.to_owned(),
        r#"{"username": "stranger", "followersCount": 5}"#.to_owned(),
    ];
    for i in 0..300 {
        lines.push(comment(1_000_000 + i, &format!("visitor{}", i % 50), "DRRRRRRRRRR"));
    }
    for i in 0..12_000 {
        lines.push(comment(i, &format!("fan{}", i % 4000), "DLLLLLLLLLL"));
    }
    lines.push(comment(5, "fan5", "DLLLLLLLLLL"));
    lines.push(comment(20_000, "late.fan", "DLLLLLLLLLL"));
    lines.push(r#"{"shortCode": "DRRRRRRRRRR", "ownerUsername": "rival", "url": "https://www.instagram.com/p/DRRRRRRRRRR/"}"#.to_owned());
    let file = std::env::temp_dir().join(format!("{}-parts.jsonl", db.name));
    std::fs::write(&file, lines.join("\n")).expect("write");
    let (code, reports, err) = import(&db, &[&file.display().to_string()], &[]).await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, 0, "{err}");
    let r = &reports[0];
    assert_eq!(r["comments_new"], 12_001, "{r}");
    let i = &r["intake"];
    assert_eq!(
        (i["comments_read"].as_u64(), i["comments_foreign"].as_u64(), i["comments_duplicate"].as_u64()),
        (Some(12_302), Some(300), Some(1)),
        "{i}"
    );
    assert_eq!((i["posts_foreign"].as_u64(), i["posts_without_owner"].as_u64()), (Some(1), Some(1)), "{i}");
    assert_eq!(i["profiles_foreign"], 1, "the stranger goes; the fan whose comment comes last stays: {i}");
    assert_eq!(db.count("SELECT count(*) AS n FROM ig_profiles WHERE full_name = 'Late Fan'").await, 1);
    assert_eq!(db.count("SELECT count(*) AS n FROM ig_profiles WHERE username LIKE 'visitor%'").await, 0);
}
