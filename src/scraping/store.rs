//! Writing normalised records: upserts keyed by Instagram ids, in a few set-based statements
//! per batch, so storing the same data twice changes nothing and 100,000 comments cost a
//! handful of round trips. The caller owns the transaction.

use std::collections::HashMap;

use diesel::QueryResult;
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use super::items::{CommentRecord, PostRecord, ProfileRecord, Records};
use crate::profiles::picture_url;

/// What a batch changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    pub posts_new: usize,
    pub posts_seen_before: usize,
    pub comments_new: usize,
    pub comments_seen_before: usize,
    pub commenters_new: usize,
    pub commenters_seen_before: usize,
    pub pictures_new: usize,
    /// Items about people who asked to be erased, dropped before storage.
    pub suppressed: usize,
    /// Comments an analysis's input had already delivered (in an earlier file or run).
    pub comments_repeated: usize,
}

impl std::ops::AddAssign for StoreStats {
    fn add_assign(&mut self, o: Self) {
        self.posts_new += o.posts_new;
        self.posts_seen_before += o.posts_seen_before;
        self.comments_new += o.comments_new;
        self.comments_seen_before += o.comments_seen_before;
        self.commenters_new += o.commenters_new;
        self.commenters_seen_before += o.commenters_seen_before;
        self.pictures_new += o.pictures_new;
        self.suppressed += o.suppressed;
        self.comments_repeated += o.comments_repeated;
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct KeyedId {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Bool)]
    inserted: bool,
}

/// The analysis a batch is the input of.
#[derive(Debug, Clone, Copy)]
pub struct ForAnalysis {
    pub id: i64,
    /// The input's posts are the ones the analysis covers (an import).
    pub covers_input_posts: bool,
}

/// Stores `records`, attributing their posts to `account_id` when given and recording them as
/// the input of `analysis` when given.
pub async fn store_records(
    conn: &mut AsyncPgConnection,
    account_id: Option<i64>,
    analysis: Option<ForAnalysis>,
    records: &Records,
) -> QueryResult<StoreStats> {
    let mut stats = StoreStats::default();
    let posts = merge_posts(records);
    let post_ids = upsert_posts(conn, &posts, &mut stats).await?;
    let mut ids: Vec<i64> = post_ids.values().copied().collect();
    ids.sort_unstable();
    if let Some(account) = account_id {
        link_posts(conn, account, &ids).await?;
    }
    if let Some(a) = analysis.filter(|a| a.covers_input_posts) {
        cover_posts(conn, a.id, &ids).await?;
    }
    let (profiles, aliases) = merge_profiles(records);
    let mut profile_ids = upsert_profiles(conn, &profiles, &mut stats).await?;
    for (alias, canonical) in aliases {
        if let Some(id) = profile_ids.get(&canonical).copied() {
            profile_ids.insert(alias, id);
        }
    }
    stats.pictures_new = upsert_pictures(conn, &profiles, &profile_ids).await?;
    insert_comments(conn, records, &post_ids, &profile_ids, &mut stats).await?;
    if let Some(a) = analysis {
        stats.comments_repeated = record_input_comments(conn, a.id, records).await?;
    }
    Ok(stats)
}

#[derive(QueryableByName)]
struct Key {
    #[diesel(sql_type = Text)]
    key: String,
}

/// Drops the comments whose id is stored with another post, author or text (the stored one
/// stays; nothing of the other is stored); returns how many. The same author under a new
/// username (same user id) and a text missing on either side are no conflict.
pub async fn drop_conflicting(conn: &mut AsyncPgConnection, records: &mut Records) -> QueryResult<usize> {
    if records.comments.is_empty() {
        return Ok(0);
    }
    let c = &records.comments;
    let rows: Vec<Key> = diesel::sql_query(
        "SELECT i.id AS key
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS i(id, post, author, author_id, body)
         JOIN comments c ON c.ig_comment_id = i.id
         JOIN posts p ON p.id = c.post_id
         JOIN ig_profiles pr ON pr.id = c.ig_profile_id
         WHERE p.ig_post_id <> i.post
            OR (lower(pr.username) <> i.author AND NOT coalesce(pr.ig_user_id = i.author_id, false))
            OR c.body <> i.body",
    )
    .bind::<Array<Text>, _>(c.iter().map(|c| c.ig_comment_id.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(c.iter().map(|c| c.ig_post_id.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(c.iter().map(|c| c.author.username.to_ascii_lowercase()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(c.iter().map(|c| c.author.ig_user_id.as_deref()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(c.iter().map(|c| c.body.as_deref()).collect::<Vec<_>>())
    .load(conn)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let conflicting: std::collections::HashSet<String> = rows.into_iter().map(|r| r.key).collect();
    let before = records.comments.len();
    records.comments.retain(|c| !conflicting.contains(&c.ig_comment_id));
    Ok(before - records.comments.len())
}

/// Records `posts` as covered by the analysis.
pub async fn cover_posts(conn: &mut AsyncPgConnection, analysis_id: i64, posts: &[i64]) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO analysis_posts (analysis_id, post_id) SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING",
    )
    .bind::<BigInt, _>(analysis_id)
    .bind::<Array<BigInt>, _>(posts)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the batch's comments as the analysis's input; returns how many it already had.
async fn record_input_comments(
    conn: &mut AsyncPgConnection,
    analysis_id: i64,
    records: &Records,
) -> QueryResult<usize> {
    let mut ids: Vec<&str> = records.comments.iter().map(|c| c.ig_comment_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(0);
    }
    let n: Count = diesel::sql_query(
        "WITH ins AS (
            INSERT INTO analysis_comments (analysis_id, comment_id)
            SELECT $1, id FROM comments WHERE ig_comment_id = ANY($2)
            ON CONFLICT DO NOTHING RETURNING 1
         ) SELECT count(*) AS n FROM ins",
    )
    .bind::<BigInt, _>(analysis_id)
    .bind::<Array<Text>, _>(&ids)
    .get_result(conn)
    .await?;
    Ok(ids.len().saturating_sub(n.n as usize))
}

/// One record per post id, in id order (rows are numbered in a repeatable order); posts only
/// referred to by comments get a bare row, with the address the comments gave.
fn merge_posts(records: &Records) -> Vec<PostRecord> {
    let mut by_id: HashMap<&str, PostRecord> = HashMap::new();
    for p in &records.posts {
        by_id.entry(&p.ig_post_id).and_modify(|e| merge_post(e, p)).or_insert_with(|| p.clone());
    }
    for c in &records.comments {
        let post = by_id
            .entry(&c.ig_post_id)
            .or_insert_with(|| PostRecord::bare(c.ig_post_id.clone(), c.post_url.clone()));
        if post.url.is_none() {
            post.url.clone_from(&c.post_url);
        }
    }
    let mut posts: Vec<PostRecord> = by_id.into_values().collect();
    posts.sort_by(|a, b| a.ig_post_id.cmp(&b.ig_post_id));
    posts
}

fn merge_post(into: &mut PostRecord, from: &PostRecord) {
    macro_rules! fill {
        ($($f:ident),*) => { $( if into.$f.is_none() { into.$f.clone_from(&from.$f); } )* };
    }
    fill!(short_code, owner_username, owner_ig_id, url, post_type, posted_at, comments_count, likes_count);
    for c in &from.coauthors {
        if !into.coauthors.contains(c) {
            into.coauthors.push(c.clone());
        }
    }
}

/// One record per person (keyed by username within a batch): each field from the first
/// record that gives it, the records taken in a canonical order so that the rows of a file in
/// any order give the same person; the picture is the link that expires last (the newest).
/// Also the usernames that turned out to be another record's.
fn merge_profiles(records: &Records) -> (Vec<ProfileRecord>, HashMap<String, String>) {
    let mut all: Vec<&ProfileRecord> =
        records.profiles.iter().chain(records.comments.iter().map(|c| &c.author)).collect();
    all.sort_by(|a, b| profile_order(a, b));
    let mut by_name: HashMap<String, ProfileRecord> = HashMap::new();
    for p in all {
        by_name
            .entry(p.username.to_ascii_lowercase())
            .and_modify(|e| {
                macro_rules! fill {
                    ($($f:ident),*) => { $( if e.$f.is_none() { e.$f.clone_from(&p.$f); } )* };
                }
                fill!(ig_user_id, full_name, is_private, is_verified, is_business, followers_count);
                if newer_picture(p.profile_pic_url.as_deref(), e.profile_pic_url.as_deref()) {
                    e.profile_pic_url.clone_from(&p.profile_pic_url);
                }
            })
            .or_insert_with(|| ProfileRecord { username: p.username.to_ascii_lowercase(), ..p.clone() });
    }
    // One user id under two usernames (renamed between two sources): keep one record and let
    // the other name point at it.
    let mut by_id: HashMap<String, String> = HashMap::new();
    let mut aliases = HashMap::new();
    let mut merged: Vec<ProfileRecord> = by_name.into_values().collect();
    merged.sort_by(|a, b| a.username.cmp(&b.username));
    merged.retain(|p| match &p.ig_user_id {
        Some(id) => {
            if let Some(kept) = by_id.get(id) {
                aliases.insert(p.username.clone(), kept.clone());
                false
            } else {
                by_id.insert(id.clone(), p.username.clone());
                true
            }
        }
        None => true,
    });
    (merged, aliases)
}

/// A total order on a person's records (see [`merge_profiles`]).
fn profile_order(a: &ProfileRecord, b: &ProfileRecord) -> std::cmp::Ordering {
    a.username
        .to_ascii_lowercase()
        .cmp(&b.username.to_ascii_lowercase())
        .then_with(|| a.ig_user_id.cmp(&b.ig_user_id))
        .then_with(|| a.full_name.cmp(&b.full_name))
        .then_with(|| {
            (a.is_private, a.is_verified, a.is_business).cmp(&(b.is_private, b.is_verified, b.is_business))
        })
        .then_with(|| a.followers_count.cmp(&b.followers_count))
        .then_with(|| a.profile_pic_url.cmp(&b.profile_pic_url))
}

/// Whether picture link `a` is newer than `b`: it expires later (its `oe`), then by text.
fn newer_picture(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (picture_url::expires_at(a), a) > (picture_url::expires_at(b), b),
        (Some(_), None) => true,
        _ => false,
    }
}

async fn upsert_posts(
    conn: &mut AsyncPgConnection,
    posts: &[PostRecord],
    stats: &mut StoreStats,
) -> QueryResult<HashMap<String, i64>> {
    if posts.is_empty() {
        return Ok(HashMap::new());
    }
    let col = |f: fn(&PostRecord) -> Option<String>| posts.iter().map(f).collect::<Vec<_>>();
    let ids: Vec<&str> = posts.iter().map(|p| p.ig_post_id.as_str()).collect();
    let rows: Vec<KeyedId> = diesel::sql_query(
        "INSERT INTO posts AS p (ig_post_id, short_code, owner_username, owner_ig_id, url, post_type, posted_at,
                            comments_count, likes_count, coauthors)
         SELECT i.id, i.code, i.owner, i.owner_id, i.url, i.type, i.at, i.comments, i.likes,
                coalesce(string_to_array(i.coauthors, ' '), '{}')
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::timestamptz[], $8::int[], $9::int[], $10::text[])
              AS i(id, code, owner, owner_id, url, type, at, comments, likes, coauthors)
         ON CONFLICT (ig_post_id) DO UPDATE SET
            coauthors = ARRAY(SELECT DISTINCT unnest(p.coauthors || excluded.coauthors) ORDER BY 1),
            short_code = coalesce(excluded.short_code, p.short_code),
            owner_username = coalesce(excluded.owner_username, p.owner_username),
            owner_ig_id = coalesce(excluded.owner_ig_id, p.owner_ig_id),
            url = coalesce(excluded.url, p.url),
            post_type = coalesce(excluded.post_type, p.post_type),
            posted_at = coalesce(excluded.posted_at, p.posted_at),
            comments_count = coalesce(excluded.comments_count, p.comments_count),
            likes_count = coalesce(excluded.likes_count, p.likes_count),
            last_seen_at = now()
         RETURNING id, ig_post_id AS key, (xmax = 0) AS inserted",
    )
    .bind::<Array<Text>, _>(&ids)
    .bind::<Array<Nullable<Text>>, _>(col(|p| p.short_code.clone()))
    .bind::<Array<Nullable<Text>>, _>(col(|p| p.owner_username.as_deref().map(str::to_ascii_lowercase)))
    .bind::<Array<Nullable<Text>>, _>(col(|p| p.owner_ig_id.clone()))
    .bind::<Array<Nullable<Text>>, _>(col(|p| p.url.clone()))
    .bind::<Array<Nullable<Text>>, _>(col(|p| p.post_type.clone()))
    .bind::<Array<Nullable<Timestamptz>>, _>(posts.iter().map(|p| p.posted_at).collect::<Vec<_>>())
    .bind::<Array<Nullable<Integer>>, _>(posts.iter().map(|p| p.comments_count).collect::<Vec<_>>())
    .bind::<Array<Nullable<Integer>>, _>(posts.iter().map(|p| p.likes_count).collect::<Vec<_>>())
    // Usernames hold no spaces: a list per post travels as one space-separated string.
    .bind::<Array<Nullable<Text>>, _>(
        posts.iter().map(|p| (!p.coauthors.is_empty()).then(|| p.coauthors.join(" "))).collect::<Vec<_>>(),
    )
    .load(conn)
    .await?;
    Ok(count_and_map(rows, &mut stats.posts_new, &mut stats.posts_seen_before))
}

fn count_and_map(rows: Vec<KeyedId>, new: &mut usize, seen: &mut usize) -> HashMap<String, i64> {
    rows.into_iter()
        .map(|r| {
            if r.inserted {
                *new += 1;
            } else {
                *seen += 1;
            }
            (r.key, r.id)
        })
        .collect()
}

async fn link_posts(conn: &mut AsyncPgConnection, account_id: i64, post_ids: &[i64]) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO tracked_account_posts (tracked_account_id, post_id)
         SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Array<BigInt>, _>(post_ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// Upserts people; returns username → row id.
async fn upsert_profiles(
    conn: &mut AsyncPgConnection,
    profiles: &[ProfileRecord],
    stats: &mut StoreStats,
) -> QueryResult<HashMap<String, i64>> {
    if profiles.is_empty() {
        return Ok(HashMap::new());
    }
    let names: Vec<&str> = profiles.iter().map(|p| p.username.as_str()).collect();
    let ids: Vec<Option<&str>> = profiles.iter().map(|p| p.ig_user_id.as_deref()).collect();
    // A person first seen without an id (some exports lack it) gets it once a source gives it.
    diesel::sql_query(
        "UPDATE ig_profiles p SET ig_user_id = u.id
         FROM unnest($1::text[], $2::text[]) AS u(username, id)
         WHERE u.id IS NOT NULL AND p.ig_user_id IS NULL AND lower(p.username) = u.username
           AND NOT EXISTS (SELECT 1 FROM ig_profiles q WHERE q.ig_user_id = u.id)",
    )
    .bind::<Array<Text>, _>(&names)
    .bind::<Array<Nullable<Text>>, _>(&ids)
    .execute(conn)
    .await?;
    let pics: Vec<Option<&str>> = profiles.iter().map(|p| p.profile_pic_url.as_deref()).collect();
    let expiry: Vec<_> = pics.iter().map(|u| u.and_then(picture_url::expires_at)).collect();
    let flag = |f: fn(&ProfileRecord) -> Option<bool>| profiles.iter().map(f).collect::<Vec<_>>();
    let rows: Vec<KeyedId> = diesel::sql_query(
        "WITH input AS (
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::bool[], $6::bool[],
                                 $7::text[], $8::timestamptz[])
                   AS t(username, ig_user_id, full_name, is_private, is_verified, is_business, pic, pic_expires)
         ), with_id AS (
            INSERT INTO ig_profiles AS p (ig_user_id, username, full_name, is_private, is_verified, is_business,
                                          profile_pic_url, profile_pic_expires_at)
            SELECT ig_user_id, username, full_name, is_private, is_verified, is_business, pic, pic_expires
            FROM input WHERE ig_user_id IS NOT NULL
            ON CONFLICT (ig_user_id) DO UPDATE SET
                username = excluded.username,
                full_name = coalesce(excluded.full_name, p.full_name),
                is_private = coalesce(excluded.is_private, p.is_private),
                is_verified = coalesce(excluded.is_verified, p.is_verified),
                is_business = coalesce(excluded.is_business, p.is_business),
                profile_pic_url = coalesce(excluded.profile_pic_url, p.profile_pic_url),
                profile_pic_expires_at = coalesce(excluded.profile_pic_expires_at, p.profile_pic_expires_at),
                refreshed_at = now()
            RETURNING id, username AS key, (xmax = 0) AS inserted
         ), without_id AS (
            INSERT INTO ig_profiles AS p (username, full_name, is_private, is_verified, is_business,
                                          profile_pic_url, profile_pic_expires_at)
            SELECT username, full_name, is_private, is_verified, is_business, pic, pic_expires
            FROM input i WHERE ig_user_id IS NULL
              AND NOT EXISTS (SELECT 1 FROM ig_profiles q WHERE lower(q.username) = i.username AND q.ig_user_id IS NOT NULL)
            ON CONFLICT (lower(username)) WHERE ig_user_id IS NULL DO UPDATE SET
                full_name = coalesce(excluded.full_name, p.full_name),
                is_private = coalesce(excluded.is_private, p.is_private),
                is_verified = coalesce(excluded.is_verified, p.is_verified),
                is_business = coalesce(excluded.is_business, p.is_business),
                profile_pic_url = coalesce(excluded.profile_pic_url, p.profile_pic_url),
                profile_pic_expires_at = coalesce(excluded.profile_pic_expires_at, p.profile_pic_expires_at),
                refreshed_at = now()
            RETURNING id, username AS key, (xmax = 0) AS inserted
         ), known_by_name AS (
            -- Id-less mentions of people already stored with an id: the most recently seen one.
            SELECT DISTINCT ON (lower(q.username)) q.id, lower(q.username) AS key, false AS inserted
            FROM input i JOIN ig_profiles q ON lower(q.username) = i.username AND q.ig_user_id IS NOT NULL
            WHERE i.ig_user_id IS NULL
            ORDER BY lower(q.username), q.refreshed_at DESC
         )
         SELECT * FROM with_id UNION ALL SELECT * FROM without_id UNION ALL SELECT * FROM known_by_name",
    )
    .bind::<Array<Text>, _>(&names)
    .bind::<Array<Nullable<Text>>, _>(&ids)
    .bind::<Array<Nullable<Text>>, _>(profiles.iter().map(|p| p.full_name.as_deref()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Bool>>, _>(flag(|p| p.is_private))
    .bind::<Array<Nullable<Bool>>, _>(flag(|p| p.is_verified))
    .bind::<Array<Nullable<Bool>>, _>(flag(|p| p.is_business))
    .bind::<Array<Nullable<Text>>, _>(&pics)
    .bind::<Array<Nullable<Timestamptz>>, _>(&expiry)
    .load(conn)
    .await?;
    Ok(count_and_map(rows, &mut stats.commenters_new, &mut stats.commenters_seen_before))
}

/// Records each person's current picture (one row per file; a new signature for the same
/// file refreshes the link and gives a failed or expired fetch another chance). Instagram's
/// default avatar is marked as such and never downloaded.
async fn upsert_pictures(
    conn: &mut AsyncPgConnection,
    profiles: &[ProfileRecord],
    profile_ids: &HashMap<String, i64>,
) -> QueryResult<usize> {
    let mut owners = Vec::new();
    let mut urls = Vec::new();
    for p in profiles {
        if let (Some(url), Some(id)) = (p.profile_pic_url.as_deref(), profile_ids.get(&p.username))
            && (url.starts_with("http://") || url.starts_with("https://"))
        {
            owners.push(*id);
            urls.push(url);
        }
    }
    if owners.is_empty() {
        return Ok(0);
    }
    let paths: Vec<&str> = urls.iter().map(|u| picture_url::file_path(u)).collect();
    let expiry: Vec<_> = urls.iter().map(|u| picture_url::expires_at(u)).collect();
    let status: Vec<&str> = urls
        .iter()
        .map(|u| if picture_url::is_default_avatar(u) { "default_avatar" } else { "pending" })
        .collect();
    let n: Count = diesel::sql_query(
        "WITH up AS (
            INSERT INTO profile_pictures AS pp (ig_profile_id, source_url, source_path, url_expires_at, fetch_status)
            SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])
            ON CONFLICT (ig_profile_id, source_path) DO UPDATE SET
                source_url = excluded.source_url,
                url_expires_at = excluded.url_expires_at,
                fetch_status = CASE WHEN pp.fetch_status IN ('expired', 'failed') THEN 'pending' ELSE pp.fetch_status END,
                fetch_error = CASE WHEN pp.fetch_status IN ('expired', 'failed') THEN NULL ELSE pp.fetch_error END
            WHERE pp.source_url IS DISTINCT FROM excluded.source_url
            RETURNING (xmax = 0) AS inserted
         )
         SELECT count(*) FILTER (WHERE inserted) AS n FROM up",
    )
    .bind::<Array<BigInt>, _>(&owners)
    .bind::<Array<Text>, _>(&urls)
    .bind::<Array<Text>, _>(&paths)
    .bind::<Array<Nullable<Timestamptz>>, _>(&expiry)
    .bind::<Array<Text>, _>(&status)
    .get_result(conn)
    .await?;
    Ok(n.n as usize)
}

/// Inserts comments not stored yet (a stored comment is never re-inserted), then links
/// replies to their parents.
async fn insert_comments(
    conn: &mut AsyncPgConnection,
    records: &Records,
    post_ids: &HashMap<String, i64>,
    profile_ids: &HashMap<String, i64>,
    stats: &mut StoreStats,
) -> QueryResult<()> {
    let mut seen = std::collections::HashSet::new();
    let comments: Vec<&CommentRecord> = records
        .comments
        .iter()
        .filter(|c| seen.insert(c.ig_comment_id.as_str()))
        .filter(|c| {
            post_ids.contains_key(&c.ig_post_id)
                && profile_ids.contains_key(&c.author.username.to_ascii_lowercase())
        })
        .collect();
    if comments.is_empty() {
        return Ok(());
    }
    let n: Count = diesel::sql_query(
        "WITH ins AS (
            INSERT INTO comments (ig_comment_id, post_id, ig_profile_id, body, commented_at, likes_count)
            SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::timestamptz[], $6::int[])
            ON CONFLICT (ig_comment_id) DO NOTHING
            RETURNING 1
         ) SELECT count(*) AS n FROM ins",
    )
    .bind::<Array<Text>, _>(comments.iter().map(|c| c.ig_comment_id.as_str()).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(comments.iter().map(|c| post_ids[&c.ig_post_id]).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(comments.iter().map(|c| profile_ids[&c.author.username.to_ascii_lowercase()]).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(comments.iter().map(|c| c.body.as_deref()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Timestamptz>>, _>(comments.iter().map(|c| c.commented_at).collect::<Vec<_>>())
    .bind::<Array<Nullable<Integer>>, _>(comments.iter().map(|c| c.likes_count).collect::<Vec<_>>())
    .get_result(conn)
    .await?;
    stats.comments_new = n.n as usize;
    stats.comments_seen_before = comments.len() - stats.comments_new;

    let (children, parents): (Vec<&str>, Vec<&str>) = comments
        .iter()
        .filter_map(|c| Some((c.ig_comment_id.as_str(), c.parent_ig_comment_id.as_deref()?)))
        .unzip();
    if !children.is_empty() {
        diesel::sql_query(
            "UPDATE comments c SET parent_comment_id = p.id
             FROM unnest($1::text[], $2::text[]) AS r(child, parent)
             JOIN comments p ON p.ig_comment_id = r.parent
             WHERE c.ig_comment_id = r.child AND c.parent_comment_id IS NULL",
        )
        .bind::<Array<Text>, _>(&children)
        .bind::<Array<Text>, _>(&parents)
        .execute(conn)
        .await?;
    }
    Ok(())
}
