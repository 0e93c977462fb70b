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

/// Stores `records`, attributing their posts to `account_id` when given.
pub async fn store_records(
    conn: &mut AsyncPgConnection,
    account_id: Option<i64>,
    records: &Records,
) -> QueryResult<StoreStats> {
    let mut stats = StoreStats::default();
    let posts = merge_posts(records);
    let post_ids = upsert_posts(conn, &posts, &mut stats).await?;
    if let Some(account) = account_id {
        link_posts(conn, account, &post_ids.values().copied().collect::<Vec<_>>()).await?;
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
    Ok(stats)
}

/// One record per post id; posts only referred to by comments get a bare row.
fn merge_posts(records: &Records) -> Vec<PostRecord> {
    let mut by_id: HashMap<&str, PostRecord> = HashMap::new();
    for p in &records.posts {
        by_id.entry(&p.ig_post_id).and_modify(|e| merge_post(e, p)).or_insert_with(|| p.clone());
    }
    for c in &records.comments {
        by_id.entry(&c.ig_post_id).or_insert_with(|| PostRecord {
            ig_post_id: c.ig_post_id.clone(),
            short_code: None,
            owner_username: None,
            owner_ig_id: None,
            url: None,
            post_type: None,
            posted_at: None,
            comments_count: None,
            likes_count: None,
        });
    }
    by_id.into_values().collect()
}

fn merge_post(into: &mut PostRecord, from: &PostRecord) {
    macro_rules! fill {
        ($($f:ident),*) => { $( if into.$f.is_none() { into.$f.clone_from(&from.$f); } )* };
    }
    fill!(short_code, owner_username, owner_ig_id, url, post_type, posted_at, comments_count, likes_count);
}

/// One record per person (keyed by username within a batch), the user id and flags of
/// whichever source gave them; plus usernames that turned out to be another record's.
fn merge_profiles(records: &Records) -> (Vec<ProfileRecord>, HashMap<String, String>) {
    let mut by_name: HashMap<String, ProfileRecord> = HashMap::new();
    let all = records.profiles.iter().chain(records.comments.iter().map(|c| &c.author));
    for p in all {
        by_name
            .entry(p.username.to_ascii_lowercase())
            .and_modify(|e| {
                macro_rules! fill {
                    ($($f:ident),*) => { $( if e.$f.is_none() { e.$f.clone_from(&p.$f); } )* };
                }
                fill!(
                    ig_user_id,
                    full_name,
                    is_private,
                    is_verified,
                    is_business,
                    followers_count,
                    profile_pic_url
                );
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
                            comments_count, likes_count)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                              $7::timestamptz[], $8::int[], $9::int[])
         ON CONFLICT (ig_post_id) DO UPDATE SET
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
