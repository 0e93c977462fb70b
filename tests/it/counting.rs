//! What an analysis counts: every comment of the input counted once, the account's own
//! comments never part of its audience, records of other accounts set aside, the same input
//! always the same snapshot, and a coverage funnel that adds up. Expected counts are worked
//! out here from what each input holds, independently of the importer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::helpers::{TestDb, run_cli};

/// A signed CDN link that expired long ago (`oe` in 2020).
fn expired_link(who: &str) -> String {
    format!(
        "https://scontent-ams2-1.cdninstagram.com/v/t51.2885-19/{who}_n.jpg?stp=dst-jpg_s150x150&oe=5F000000"
    )
}

/// Instagram's default avatar, recognised from its link.
fn default_avatar_link(who: &str) -> String {
    format!(
        "https://scontent-ams2-1.cdninstagram.com/v/t51.2885-19/44884218_{who}_n.jpg?ig_cache_key=YW5vbnltb3VzX3Byb2ZpbGVfcGlj&oe=5F000000"
    )
}

fn write_temp(db: &TestDb, name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}-{name}", db.name));
    std::fs::write(&path, text).expect("write fixture");
    path
}

/// `analyze --import FILE... --account HANDLE --json`: (exit code, snapshot, stderr).
async fn analyze(db: &TestDb, handle: &str, files: &[&Path]) -> (i32, Value, String) {
    let mut args =
        vec!["analyze".to_owned(), "--account".into(), handle.into(), "--json".into(), "--import".into()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = run_cli(db, &args, &[]).await;
    (code, serde_json::from_str(&out).unwrap_or(Value::Null), err)
}

/// The snapshot without what differs between two databases and two runs.
fn comparable(mut snapshot: Value) -> String {
    for key in ["analysis_id", "account_id", "generated_at"] {
        snapshot.as_object_mut().map(|o| o.remove(key));
    }
    serde_json::to_string(&snapshot).expect("json")
}

fn n(v: &Value) -> usize {
    usize::try_from(v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))).unwrap_or(usize::MAX)
}

/// Asserts the funnel's identities.
fn assert_adds_up(s: &Value) {
    let f = &s["sample"]["funnel"];
    let c = &f["comments"];
    let aside: usize = c["set_aside"].as_object().expect("set_aside").values().map(n).sum();
    assert_eq!(n(&c["in_input"]) + n(&c["stored_earlier"]), aside + n(&c["analysed"]), "comments: {c}");
    let p = &f["commenters"];
    let missing: BTreeMap<&str, usize> =
        p["not_classified"].as_object().expect("reasons").iter().map(|(k, v)| (k.as_str(), n(v))).collect();
    assert_eq!(n(&p["unique"]), n(&p["classified"]) + missing.values().sum::<usize>(), "commenters: {p}");
    assert_eq!(n(&p["with_picture"]), n(&p["unique"]) - missing["no_picture"]);
    assert_eq!(
        n(&p["picture_available"]),
        n(&p["with_picture"])
            - missing["private"]
            - missing["expired"]
            - missing["unreadable"]
            - missing["failed"]
            - missing["pending"]
    );
    assert_eq!(n(&p["classified"]), n(&p["picture_available"]) - missing["unclassified"]);
    assert_eq!(n(&s["sample"]["comments"]), n(&c["analysed"]));
    assert_eq!(n(&s["sample"]["unique_commenters"]), n(&p["unique"]));
    assert_eq!(n(&p["gender_given"]), n(&s["audience"]["gender"]["n"]));
    assert_eq!(n(&p["age_given"]), n(&s["audience"]["age_brackets"]["n"]));
}

// ---------------------------------------------------------------------------------------------
// Generated inputs: a brand's posts with the brand's own replies, collaboration posts, posts of
// another account, repeated and unreadable comments, a post known only from comments, and
// commenters with an expired link, Instagram's default avatar or no picture.

/// A small deterministic generator (xorshift), so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const SHORTCODE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn shortcode(i: u64) -> String {
    let mut code = String::from("C");
    let mut v = i + 1_000;
    for _ in 0..10 {
        code.push(SHORTCODE[(v % 64) as usize] as char);
        v /= 64;
    }
    code
}

/// What an input holds, counted as it is generated.
#[derive(Debug, Default)]
struct Expected {
    read: usize,
    foreign: usize,
    duplicate: usize,
    rejected: usize,
    owner: usize,
    analysed: usize,
    posts: usize,
    commenters: BTreeSet<String>,
}

struct Generated {
    items: Vec<Value>,
    expected: Expected,
    links: BTreeMap<String, Option<String>>,
}

fn fan_link(rng: &mut Rng, fan: &str) -> Option<String> {
    match rng.below(4) {
        0 => None,
        1 => Some(default_avatar_link(fan)),
        _ => Some(expired_link(fan)),
    }
}

fn generate(seed: u64) -> Generated {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let fans: Vec<String> = (0..8).map(|i| format!("fan{i}.{seed}")).collect();
    let mut links: BTreeMap<String, Option<String>> = BTreeMap::new();
    for f in &fans {
        let link = fan_link(&mut rng, f);
        links.insert(f.clone(), link);
    }
    links.insert("brand".into(), Some(expired_link("brand")));
    links.insert("partner".into(), Some(expired_link("partner")));
    let mut e = Expected::default();
    let mut items = Vec::new();
    let mut next_id = seed * 1_000_000;
    let mut comment = |rng: &mut Rng,
                       author: &str,
                       code: &str,
                       e: &mut Expected,
                       authors: &[&str],
                       foreign: bool| {
        next_id += 1;
        let mut c = json!({"id": next_id.to_string(), "text": format!("nice {next_id}"), "ownerUsername": author,
                           "postUrl": format!("https://www.instagram.com/p/{code}/"), "timestamp": "2025-03-01T10:00:00.000Z"});
        if let Some(link) = links.get(author).cloned().flatten() {
            c["ownerProfilePicUrl"] = json!(link);
        }
        e.read += 1;
        if foreign {
            e.foreign += 1;
        } else if authors.contains(&author) {
            e.owner += 1;
        } else {
            e.analysed += 1;
            e.commenters.insert(author.to_owned());
        }
        let _ = rng;
        c
    };
    let posts = 1 + rng.below(5);
    for i in 0..posts {
        let code = shortcode(seed * 100 + i);
        let (owner, coauthors, foreign): (&str, Vec<&str>, bool) = match rng.below(6) {
            0 => ("rival", vec![], true),
            1 => ("partner", vec!["brand"], false),
            2 => ("brand", vec!["partner"], false),
            _ => ("brand", vec![], false),
        };
        let mut authors = vec![owner, "brand"];
        authors.extend(&coauthors);
        let mut latest = Vec::new();
        for _ in 0..rng.below(7) {
            let author = match rng.below(10) {
                0 => "brand",
                1 => "partner",
                k => fans[(k as usize) % fans.len()].as_str(),
            };
            let mut c = comment(&mut rng, author, &code, &mut e, &authors, foreign);
            // The brand answers some comments.
            if rng.chance(30) {
                let reply = comment(&mut rng, "brand", &code, &mut e, &authors, foreign);
                c["replies"] = json!([reply]);
            }
            latest.push(c);
        }
        if rng.chance(30) {
            latest.push(json!({"text": "no id", "ownerUsername": "someone"}));
            e.read += 1;
            e.rejected += 1;
        }
        let mut post = json!({"shortCode": code, "ownerUsername": owner,
                              "url": format!("https://www.instagram.com/p/{code}/"), "latestComments": latest.clone()});
        if rng.chance(50) {
            post["timestamp"] = json!(format!("2025-0{}-0{}T12:00:00.000Z", 1 + i % 9, 1 + rng.below(9)));
        }
        if !coauthors.is_empty() {
            post["coauthorProducers"] =
                json!(coauthors.iter().map(|c| json!({"username": c})).collect::<Vec<_>>());
        }
        if !foreign {
            e.posts += 1;
        }
        items.push(post);
        // Some comments come again as a comment export's records.
        for c in latest.iter().filter(|c| c.get("id").is_some()) {
            if rng.chance(20) {
                let mut again = c.clone();
                again.as_object_mut().map(|o| o.remove("replies"));
                e.read += 1;
                if foreign {
                    e.foreign += 1;
                } else {
                    e.duplicate += 1;
                }
                items.push(again);
            }
        }
    }
    // A post known only from its comments (a comment export names no owner).
    if rng.chance(60) {
        let code = shortcode(seed * 100 + 99);
        e.posts += 1;
        for _ in 0..=rng.below(3) {
            let fan = fans[rng.below(fans.len() as u64) as usize].clone();
            let c = comment(&mut rng, &fan, &code, &mut e, &["brand"], false);
            items.push(c);
        }
    }
    Generated { items, expected: e, links }
}

/// The commenters' funnel as expected from their links.
fn expected_people(g: &Generated) -> (usize, usize, usize, usize) {
    let (mut none, mut avatar, mut expired) = (0, 0, 0);
    for who in &g.expected.commenters {
        match g.links.get(who).cloned().flatten() {
            None => none += 1,
            Some(l) if l.contains("ig_cache_key") => avatar += 1,
            Some(_) => expired += 1,
        }
    }
    (g.expected.commenters.len(), none, avatar, expired)
}

#[tokio::test]
async fn generated_inputs_are_counted_exactly_and_their_funnels_add_up() {
    let db = TestDb::new().await;
    let state = audiencelens::app::AppState::build(db.config(&[])).expect("state");
    for seed in 1..=12_u64 {
        let input = generate(seed);
        if input.expected.analysed == 0 {
            continue;
        }
        let handle = format!("brand{seed}");
        let text =
            serde_json::to_string(&input.items).expect("json").replace("\"brand\"", &format!("\"{handle}\""));
        let file = write_temp(&db, &format!("gen-{seed}.json"), &text);
        let mut conn = state.pool.get().await.expect("conn");
        let owner = audiencelens::users::default_owner(&mut conn).await.expect("owner");
        let account = audiencelens::accounts::find_or_create_account(
            &mut conn,
            owner,
            &audiencelens::accounts::InstagramHandle::parse(&handle).expect("handle"),
        )
        .await
        .expect("account");
        let imported = audiencelens::jobs::import::import_and_start(
            &mut conn,
            &state.config,
            &state.privacy,
            &account,
            std::slice::from_ref(&file),
            "local",
        )
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        drop(conn);
        let _ = std::fs::remove_file(&file);
        crate::helpers::drain_jobs(&state, std::time::Duration::from_mins(1)).await;
        let mut conn = state.pool.get().await.expect("conn");
        let analysis =
            audiencelens::analyses::get_analysis(&mut conn, imported.analysis.id).await.expect("analysis");
        assert_eq!(analysis.status, "succeeded", "seed {seed}: {:?}", analysis.error);
        let snap = analysis.snapshot.expect("snapshot");
        assert_adds_up(&snap);
        let e = &input.expected;
        let c = &snap["sample"]["funnel"]["comments"];
        let got = (
            n(&c["in_input"]),
            n(&c["set_aside"]["foreign"]),
            n(&c["set_aside"]["duplicate"]),
            n(&c["set_aside"]["rejected"]),
            n(&c["set_aside"]["owner"]),
            n(&c["analysed"]),
            n(&c["stored_earlier"]),
        );
        assert_eq!(
            got,
            (e.read, e.foreign, e.duplicate, e.rejected, e.owner, e.analysed, 0),
            "seed {seed}: {c}"
        );
        assert_eq!(n(&snap["sample"]["posts_covered"]), e.posts, "seed {seed}");
        let p = &snap["sample"]["funnel"]["commenters"];
        let (unique, none, avatar, expired) = expected_people(&input);
        let got = (
            n(&p["unique"]),
            n(&p["not_classified"]["no_picture"]),
            n(&p["recognised_from_link"]),
            n(&p["not_classified"]["expired"]),
            n(&p["classified"]),
        );
        assert_eq!(got, (unique, none, avatar, expired, avatar), "seed {seed}: {p}");
    }
}

// ---------------------------------------------------------------------------------------------
// Each rule on a fixture of its own, through the command a user runs.

#[tokio::test]
async fn the_accounts_own_replies_and_its_co_authors_are_not_its_audience() {
    let db = TestDb::new().await;
    let items = json!([
        {"shortCode": "DAAAAAAAAAA", "ownerUsername": "lumen.atelier", "url": "https://www.instagram.com/p/DAAAAAAAAAA/",
         "timestamp": "2025-02-01T10:00:00.000Z",
         "latestComments": [
            {"id": "101", "text": "love it", "ownerUsername": "ada.fan", "ownerProfilePicUrl": default_avatar_link("ada"),
             "replies": [{"id": "102", "text": "thank you!", "ownerUsername": "lumen.atelier"}]},
            {"id": "103", "text": "where to buy?", "ownerUsername": "bo.fan"},
            {"id": "104", "text": "link in bio", "ownerUsername": "lumen.atelier"}]},
        {"shortCode": "DBBBBBBBBBB", "ownerUsername": "north.studio", "url": "https://www.instagram.com/p/DBBBBBBBBBB/",
         "coauthorProducers": [{"username": "lumen.atelier", "id": "77"}],
         "latestComments": [
            {"id": "105", "text": "great collab", "ownerUsername": "bo.fan"},
            {"id": "106", "text": "so proud of this", "ownerUsername": "north.studio"}]}
    ]);
    let file = write_temp(&db, "owner.json", &items.to_string());
    let (code, s, err) = analyze(&db, "lumen.atelier", &[&file]).await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, 0, "{err}");
    assert_adds_up(&s);
    let c = &s["sample"]["funnel"]["comments"];
    assert_eq!((n(&c["in_input"]), n(&c["set_aside"]["owner"]), n(&c["analysed"])), (6, 3, 3), "{c}");
    assert_eq!(
        n(&s["sample"]["unique_commenters"]),
        2,
        "ada.fan and bo.fan, not the account or its co-author"
    );
    assert_eq!(n(&s["sample"]["posts_covered"]), 2, "the collaboration post is the account's too");
    // The report says why, in words.
    let path = write_temp(&db, "owner2.json", &items.to_string());
    let (code, out, err) = run_cli(
        &db,
        &["analyze", "--account", "lumen.atelier", "--import", &path.display().to_string()],
        &[],
    )
    .await;
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("3 set aside (3 by @lumen.atelier itself or a co-author); 3 analysed"), "{out}");
    assert!(out.contains("Posts       2 posts: every post of the input"), "{out}");
}

#[tokio::test]
async fn a_comment_export_without_post_dates_gives_one_snapshot_whatever_the_row_order() {
    let mut rows = Vec::new();
    for i in 0..24_u64 {
        let code = shortcode(i % 7);
        rows.push(json!({"id": (5_000 + i).to_string(), "text": format!("c{i}"), "ownerUsername": format!("p{}.fan", i % 11),
                         "postUrl": format!("https://www.instagram.com/p/{code}/"),
                         "ownerProfilePicUrl": if i % 3 == 0 { default_avatar_link("x") } else { expired_link("y") }}));
    }
    let mut snapshots = Vec::new();
    for order in 0..3_u64 {
        let mut rng = Rng(order + 7);
        let mut shuffled = rows.clone();
        for i in (1..shuffled.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            shuffled.swap(i, j);
        }
        // Only the posts setting of the account would have made a silent cut: 7 posts, 3 allowed.
        let db = TestDb::new().await;
        let text = shuffled.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        let file = write_temp(&db, "comments.jsonl", &text);
        let (code, s, err) = run_cli_analyze_with_posts(&db, "jp.studio", &file, "3").await;
        let _ = std::fs::remove_file(&file);
        assert_eq!(code, 0, "{err}");
        assert_adds_up(&s);
        assert_eq!(n(&s["sample"]["posts_covered"]), 7, "every post of the file, whatever --posts says");
        assert_eq!(n(&s["sample"]["comments"]), 24);
        assert_eq!(n(&s["sample"]["funnel"]["comments"]["posts_without_owner"]), 7);
        assert!(err.contains("posts whose owner the file does not name"), "the warning is printed: {err}");
        snapshots.push(comparable(s));
    }
    assert_eq!(snapshots[0], snapshots[1]);
    assert_eq!(snapshots[0], snapshots[2]);
}

async fn run_cli_analyze_with_posts(
    db: &TestDb,
    handle: &str,
    file: &Path,
    posts: &str,
) -> (i32, Value, String) {
    let file = file.display().to_string();
    let (code, out, err) =
        run_cli(db, &["analyze", "--account", handle, "--posts", posts, "--json", "--import", &file], &[])
            .await;
    (code, serde_json::from_str(&out).unwrap_or(Value::Null), err)
}

#[tokio::test]
async fn profiles_and_posts_of_other_accounts_are_set_aside() {
    let db = TestDb::new().await;
    let post = |code: &str, owner: &str, fan: &str, id: u64| {
        json!({"shortCode": code, "ownerUsername": owner, "url": format!("https://www.instagram.com/p/{code}/"),
               "latestComments": [{"id": id.to_string(), "text": "🔥", "ownerUsername": fan}]})
    };
    let items = json!([
        {"username": "nike", "followersCount": 300_000_000, "profilePicUrl": expired_link("nike"),
         "latestPosts": [post("DCCCCCCCCCC", "nike", "sam.runs", 201), post("DDDDDDDDDDD", "nike", "kim.runs", 202)]},
        {"username": "adidas", "followersCount": 20_000_000, "profilePicUrl": expired_link("adidas"),
         "latestPosts": [post("DEEEEEEEEEE", "adidas", "sam.runs", 203)]},
        {"username": "puma", "followersCount": 10_000_000, "profilePicUrl": expired_link("puma"),
         "latestPosts": [post("DFFFFFFFFFF", "puma", "lee.runs", 204)]}
    ]);
    let file = write_temp(&db, "brands.json", &items.to_string());
    let (code, s, err) = analyze(&db, "nike", &[&file]).await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, 0, "{err}");
    assert_adds_up(&s);
    let c = &s["sample"]["funnel"]["comments"];
    assert_eq!((n(&c["in_input"]), n(&c["set_aside"]["foreign"]), n(&c["analysed"])), (4, 2, 2), "{c}");
    assert_eq!((n(&c["posts_foreign"]), n(&c["profiles_foreign"])), (2, 2), "{c}");
    assert_eq!(n(&s["sample"]["posts_covered"]), 2);
    assert_eq!(n(&s["sample"]["unique_commenters"]), 2, "the brands are not commenters");
    assert!(err.contains("posts of other accounts (@adidas, @puma)"), "{err}");
    assert_eq!(
        db.count("SELECT count(*) AS n FROM ig_profiles WHERE username IN ('adidas', 'puma')").await,
        0
    );
    assert_eq!(db.count("SELECT count(*) AS n FROM posts").await, 2, "nothing of the others is stored");
}

#[tokio::test]
async fn a_gif_comment_in_a_csv_export_is_a_comment() {
    let db = TestDb::new().await;
    let csv = "\u{feff}id,postUrl,ownerUsername,text,media/url,timestamp\n\
               301,https://www.instagram.com/p/DGGGGGGGGGG/,gif.fan,,https://media.example/x.gif,2025-01-01T10:00:00.000Z\n\
               302,https://www.instagram.com/p/DGGGGGGGGGG/,word.fan,hello,,2025-01-01T10:01:00.000Z\n";
    let file = write_temp(&db, "gif.csv", csv);
    let (code, s, err) = analyze(&db, "gif.studio", &[&file]).await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, 0, "{err}");
    assert_eq!(n(&s["sample"]["funnel"]["comments"]["in_input"]), 2, "{err}");
    assert_eq!(n(&s["sample"]["comments"]), 2);
    assert!(!err.contains("not an Instagram item"), "{err}");
}

#[tokio::test]
async fn mostly_expired_pictures_give_no_confident_share() {
    let db = TestDb::new().await;
    let mut comments = Vec::new();
    for i in 0..17_u64 {
        let link = if i < 2 { default_avatar_link(&format!("a{i}")) } else { expired_link(&format!("e{i}")) };
        comments.push(json!({"id": (400 + i).to_string(), "text": "ok", "ownerUsername": format!("old{i}.fan"),
                             "ownerProfilePicUrl": link, "postUrl": "https://www.instagram.com/p/DHHHHHHHHHH/"}));
    }
    let file = write_temp(&db, "old.json", &Value::Array(comments).to_string());
    let (code, s, err) = analyze(&db, "old.studio", &[&file]).await;
    assert_eq!(code, 0, "{err}");
    assert_adds_up(&s);
    let p = &s["sample"]["funnel"]["commenters"];
    assert_eq!(
        (n(&p["classified"]), n(&p["recognised_from_link"]), n(&p["not_classified"]["expired"])),
        (2, 2, 15)
    );
    assert_eq!(s["audience"]["profile_types"], json!([]), "no share from a biased sample: {}", s["audience"]);
    let why = s["audience"]["profile_types_no_estimate"].as_str().unwrap_or_default();
    assert!(why.contains("none of the other 15 pictures could be downloaded"), "{why}");
    assert_eq!(s["audience"]["gender"]["raw"], json!([]));
    // The report says so in words, and says what to do about the expired links.
    let (code, out, err) =
        run_cli(&db, &["analyze", "--account", "old.studio2", "--import", &file.display().to_string()], &[])
            .await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Profile types: no estimate"), "{out}");
    assert!(out.contains("Gender: no estimate: none of the 2 classified pictures shows a person"), "{out}");
    assert!(out.contains("15 picture links had expired") && out.contains("export it anew"), "{out}");
    assert!(!out.contains("Corrected"), "nothing was corrected: {out}");
    assert!(!out.contains("0.0% [0.0-100.0]"), "{out}");
    assert!(out.contains("Posts       1 post: every post of the input"), "singular: {out}");
}

#[tokio::test]
async fn files_with_nothing_to_analyse_are_refused_and_leave_nothing_behind() {
    let db = TestDb::new().await;
    let profile = json!([{"username": "solo.maker", "followersCount": 12, "profilePicUrl": expired_link("solo"),
                          "latestPosts": [{"shortCode": "DIIIIIIIIII", "ownerUsername": "solo.maker", "commentsCount": 3}]}]);
    let file = write_temp(&db, "profile.json", &profile.to_string());
    let (code, _, err) = analyze(&db, "solo.maker", &[&file]).await;
    let _ = std::fs::remove_file(&file);
    assert_ne!(code, 0);
    assert!(err.contains("no comments") && err.contains("comment-scraper"), "{err}");
    assert_eq!(db.count("SELECT count(*) AS n FROM tracked_accounts").await, 0, "not even the account");
    assert_eq!(db.count("SELECT count(*) AS n FROM posts").await, 0);
    assert_eq!(db.count("SELECT count(*) AS n FROM analyses").await, 0);
}

// ---------------------------------------------------------------------------------------------
// The development set's real exports.

/// Comments in a JSON export, as (author, post owner, post co-authors): posts' embedded
/// comments and their replies, and comment records.
/// A comment as a file holds it: its id, its author, and its post's owner and co-authors.
struct FileComment {
    id: String,
    author: String,
    owner: Option<String>,
    coauthors: Vec<String>,
}

fn json_comments(v: &Value) -> Vec<FileComment> {
    fn walk(c: &Value, owner: Option<&str>, co: &[String], out: &mut Vec<FileComment>) {
        out.push(FileComment {
            id: c["id"].as_str().map_or_else(|| c["id"].to_string(), str::to_owned),
            author: c["ownerUsername"].as_str().unwrap_or_default().to_ascii_lowercase(),
            owner: owner.map(str::to_ascii_lowercase),
            coauthors: co.to_vec(),
        });
        for r in c["replies"].as_array().into_iter().flatten() {
            walk(r, owner, co, out);
        }
    }
    let mut out = Vec::new();
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    for item in items {
        let mut posts: Vec<&Value> = vec![item];
        posts.extend(item["latestPosts"].as_array().into_iter().flatten());
        for post in posts {
            let owner = post["ownerUsername"].as_str().or_else(|| item["username"].as_str());
            let co: Vec<String> = post["coauthorProducers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["username"].as_str().map(str::to_ascii_lowercase))
                .collect();
            for c in post["latestComments"].as_array().into_iter().flatten() {
                walk(c, owner, &co, &mut out);
            }
        }
        if item.get("postUrl").is_some() {
            walk(item, None, &[], &mut out);
        }
    }
    out
}

/// A JSON export's items (a JSON lines file gives one per line).
fn json_values(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("read");
    if path.extension().is_some_and(|x| x.eq_ignore_ascii_case("jsonl")) {
        return text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("line"))
            .collect();
    }
    match serde_json::from_str(&text).expect("json") {
        Value::Array(a) => a,
        other => vec![other],
    }
}

/// How many posts of the file each owner has (profiles count as their own posts' owner).
fn post_owners(path: &Path) -> BTreeMap<String, usize> {
    let mut owners: BTreeMap<String, usize> = BTreeMap::new();
    if path.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv")) {
        let mut reader = csv::Reader::from_path(path).expect("csv");
        let headers = reader.headers().expect("headers").clone();
        let at = headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == "ownerUsername")
            .expect("owner column");
        for row in reader.records() {
            *owners.entry(row.expect("row")[at].to_ascii_lowercase()).or_default() += 1;
        }
        return owners;
    }
    let values = json_values(path);
    for item in values.iter().filter(|i| i.get("postUrl").is_none()) {
        if let Some(o) = item["username"].as_str().or_else(|| item["ownerUsername"].as_str()) {
            *owners.entry(o.to_ascii_lowercase()).or_default() += 1;
        }
    }
    owners
}

/// Comments in a flattened CSV export: `latestComments/N/id` cells (and their replies').
fn csv_comments(path: &Path) -> Vec<FileComment> {
    let mut reader = csv::Reader::from_path(path).expect("csv");
    let headers: Vec<String> = reader
        .headers()
        .expect("headers")
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    let mut out = Vec::new();
    for row in reader.records() {
        let row = row.expect("row");
        let cell = |name: &str| headers.iter().position(|h| h == name).and_then(|i| row.get(i)).unwrap_or("");
        let owner = cell("ownerUsername").to_ascii_lowercase();
        for (i, h) in headers.iter().enumerate() {
            let parts: Vec<&str> = h.split('/').collect();
            let is_id = matches!(
                parts.as_slice(),
                ["latestComments", _, "id"] | ["latestComments", _, "replies", _, "id"]
            );
            if is_id && !row.get(i).unwrap_or("").is_empty() {
                out.push(FileComment {
                    id: row.get(i).unwrap_or_default().to_owned(),
                    author: cell(&h.replace("/id", "/ownerUsername")).to_ascii_lowercase(),
                    owner: Some(owner.clone()),
                    coauthors: Vec::new(),
                });
            }
        }
    }
    out
}

#[tokio::test]
async fn every_comment_of_the_shared_exports_is_analysed_once_and_the_same_way_twice() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/apify");
    if !dir.is_dir() {
        eprintln!("skipped: {} is absent", dir.display());
        return;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x != "md"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 7, "{files:?}");
    for file in &files {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let comments = if file.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv")) {
            csv_comments(file)
        } else {
            json_values(file).iter().flat_map(json_comments).collect()
        };
        // The account: the owner most of the file's posts name, else the file's own name.
        let owners = post_owners(file);
        let handle = owners.iter().max_by_key(|(_, n)| **n).map_or("jp.jppap".to_owned(), |(o, _)| o.clone());
        // Counted as the rules say: other accounts' posts first, then repeats, then the account's own.
        let (mut foreign, mut repeated, mut own, mut analysed) = (0, 0, 0, 0);
        let mut seen = BTreeSet::new();
        for c in &comments {
            if c.owner.as_ref().is_some_and(|o| *o != handle && !c.coauthors.contains(&handle)) {
                foreign += 1;
            } else if !seen.insert(c.id.clone()) {
                repeated += 1;
            } else if c.author == handle
                || c.owner.as_deref() == Some(c.author.as_str())
                || c.coauthors.contains(&c.author)
            {
                own += 1;
            } else {
                analysed += 1;
            }
        }
        let mut runs = Vec::new();
        for _ in 0..2 {
            let db = TestDb::new().await;
            let (code, s, err) = analyze(&db, &handle, &[file]).await;
            if analysed == 0 {
                assert_ne!(code, 0, "{name}: nothing to analyse is an error");
                assert!(
                    err.contains("nothing to analyse") || err.contains("nothing in it belongs"),
                    "{name}: {err}"
                );
                assert_eq!(db.count("SELECT count(*) AS n FROM analyses").await, 0, "{name}");
                runs.push(String::new());
                continue;
            }
            assert_eq!(code, 0, "{name}: {err}");
            assert_adds_up(&s);
            let c = &s["sample"]["funnel"]["comments"];
            assert_eq!(n(&c["in_input"]), comments.len(), "{name}: every comment of the file read: {c}");
            assert_eq!(n(&c["set_aside"]["owner"]), own, "{name}: {c}");
            assert_eq!(n(&c["set_aside"]["foreign"]), foreign, "{name}: {c}");
            assert_eq!(n(&c["set_aside"]["duplicate"]), repeated, "{name}: {c}");
            assert_eq!(n(&c["analysed"]), analysed, "{name}: {c}");
            runs.push(comparable(s));
        }
        assert_eq!(runs[0], runs[1], "{name}: the same file gives the same snapshot on another database");
    }
}
