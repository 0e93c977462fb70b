//! Erasure on request and access requests: everything held about one Instagram user, across
//! all tenants. Erasure deletes it, adds the person to the suppression list and records an
//! audit entry, in one transaction. Snapshots hold no personal data and are not rewritten.

use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bytea, Jsonb, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::json;

use super::{AuditAction, PrivacyKey, audit, suppress};

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ErasureReport {
    pub profiles: usize,
    pub comments: usize,
    pub pictures: usize,
    pub picture_blobs: usize,
    pub classifications: usize,
    pub posts: usize,
    /// Other people's comments that mentioned the handle, now redacted.
    pub mentions_redacted: usize,
    /// Recorded Apify profile-run inputs that named them, their name now removed.
    pub run_inputs_redacted: usize,
}

#[derive(QueryableByName)]
struct Person {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    ig_user_id: Option<String>,
}

async fn find_people(conn: &mut AsyncPgConnection, handle: &str) -> diesel::QueryResult<Vec<Person>> {
    diesel::sql_query(
        "SELECT id, ig_user_id FROM ig_profiles WHERE lower(username) = $1
            OR ig_user_id IN (SELECT ig_user_id FROM ig_profiles WHERE lower(username) = $1 AND ig_user_id IS NOT NULL)",
    )
    .bind::<Text, _>(handle)
    .load(conn)
    .await
}

#[derive(QueryableByName)]
struct Hash {
    #[diesel(sql_type = Bytea)]
    content_sha256: Vec<u8>,
}

fn normalise(handle: &str) -> String {
    handle.trim().trim_start_matches('@').to_ascii_lowercase()
}

/// Erases `handle` everywhere; `actor` is recorded in the audit log.
pub async fn erase(
    conn: &mut AsyncPgConnection,
    key: &PrivacyKey,
    handle: &str,
    actor: &str,
) -> diesel::QueryResult<ErasureReport> {
    let handle = normalise(handle);
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        // Writers that read about this person before now finish first; later ones see the
        // erasure and its suppression.
        super::lock_for_erasure(conn).await?;
        let people = find_people(conn, &handle).await?;
        let ids: Vec<i64> = people.iter().map(|p| p.id).collect();
        let user_ids: Vec<String> = people.iter().filter_map(|p| p.ig_user_id.clone()).collect();
        let hashes: Vec<Vec<u8>> = diesel::sql_query(
            "SELECT DISTINCT content_sha256 FROM profile_pictures WHERE ig_profile_id = ANY($1) AND content_sha256 IS NOT NULL",
        )
        .bind::<Array<BigInt>, _>(&ids)
        .load::<Hash>(conn)
        .await?
        .into_iter()
        .map(|h| h.content_sha256)
        .collect();
        let count = |sql: &'static str| diesel::sql_query(sql).bind::<Array<BigInt>, _>(ids.clone());
        let mut report = ErasureReport {
            comments: count("DELETE FROM comments WHERE ig_profile_id = ANY($1)").execute(conn).await?,
            pictures: count("DELETE FROM profile_pictures WHERE ig_profile_id = ANY($1)").execute(conn).await?,
            profiles: count("DELETE FROM ig_profiles WHERE id = ANY($1)").execute(conn).await?,
            ..ErasureReport::default()
        };
        // Pictures are shared by hash (the same default avatar...): only unreferenced ones go.
        report.picture_blobs = diesel::sql_query(
            "DELETE FROM picture_blobs b WHERE content_sha256 = ANY($1)
               AND NOT EXISTS (SELECT 1 FROM profile_pictures p WHERE p.content_sha256 = b.content_sha256)",
        )
        .bind::<Array<Bytea>, _>(&hashes)
        .execute(conn)
        .await?;
        report.classifications = diesel::sql_query(
            "DELETE FROM classifications c WHERE content_sha256 = ANY($1)
               AND NOT EXISTS (SELECT 1 FROM profile_pictures p WHERE p.content_sha256 = c.content_sha256)",
        )
        .bind::<Array<Bytea>, _>(&hashes)
        .execute(conn)
        .await?;
        report.posts = diesel::sql_query("DELETE FROM posts WHERE lower(owner_username) = $1")
            .bind::<Text, _>(&handle)
            .execute(conn)
            .await?;
        report.mentions_redacted = diesel::sql_query(
            "UPDATE comments SET body = regexp_replace(body, '@' || $1 || '(?!\\.*[A-Za-z0-9_])', '@[erased]', 'gi')
             WHERE body ~* ('@' || $1 || '(?!\\.*[A-Za-z0-9_])')",
        )
        .bind::<Text, _>(regex_escape(&handle))
        .execute(conn)
        .await?;
        // A profile run's recorded input lists the usernames it asked about.
        report.run_inputs_redacted = diesel::sql_query(
            "UPDATE apify_runs SET input = jsonb_set(input, '{usernames}', COALESCE(
                 (SELECT jsonb_agg(u) FROM jsonb_array_elements(input->'usernames') u
                  WHERE lower(u #>> '{}') <> $1), '[]'::jsonb))
             WHERE jsonb_typeof(input->'usernames') = 'array'
               AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(input->'usernames') u WHERE lower(u) = $1)",
        )
        .bind::<Text, _>(&handle)
        .execute(conn)
        .await?;
        suppress(conn, key, &handle, &user_ids).await?;
        let details = serde_json::to_value(&report).unwrap_or_default();
        audit(conn, actor, AuditAction::Erase, Some(&key.username_hash(&handle)), &details).await?;
        Ok(report)
    })
    .await
}

/// Handles are letters, digits, `.` and `_`: only the dot needs escaping in a pattern.
fn regex_escape(handle: &str) -> String {
    handle.replace('.', "\\.")
}

/// Everything held about `handle` (an access request), recorded in the audit log.
pub async fn access_export(
    conn: &mut AsyncPgConnection,
    key: &PrivacyKey,
    handle: &str,
    actor: &str,
) -> diesel::QueryResult<serde_json::Value> {
    #[derive(QueryableByName)]
    struct Out {
        #[diesel(sql_type = Jsonb)]
        data: serde_json::Value,
    }
    let handle = normalise(handle);
    let people = find_people(conn, &handle).await?;
    let ids: Vec<i64> = people.iter().map(|p| p.id).collect();
    let out: Out = diesel::sql_query(
        "SELECT jsonb_build_object(
            'profiles', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'instagram_user_id', ig_user_id, 'username', username, 'full_name', full_name,
                'is_private', is_private, 'is_verified', is_verified, 'is_business', is_business,
                'profile_picture_url', profile_pic_url, 'collected_at', collected_at, 'refreshed_at', refreshed_at))
                FROM ig_profiles WHERE id = ANY($1)), '[]'),
            'comments', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'instagram_comment_id', c.ig_comment_id, 'post', p.url, 'text', c.body,
                'commented_at', c.commented_at, 'collected_at', c.collected_at) ORDER BY c.id)
                FROM comments c JOIN posts p ON p.id = c.post_id WHERE c.ig_profile_id = ANY($1)), '[]'),
            'pictures', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'source', source_path, 'status', fetch_status, 'fetched_at', fetched_at,
                'sha256', encode(content_sha256, 'hex'),
                'bytes_held', EXISTS (SELECT 1 FROM picture_blobs b WHERE b.content_sha256 = pp.content_sha256)))
                FROM profile_pictures pp WHERE ig_profile_id = ANY($1)), '[]'),
            'classifications', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'sha256', encode(c.content_sha256, 'hex'), 'model', c.model_version, 'source', c.source_model,
                'profile_type', c.profile_type, 'gender', c.gender, 'gender_probability', c.gender_prob,
                'age_estimate', c.age_estimate, 'created_at', c.created_at))
                FROM classifications c WHERE c.content_sha256 IN (
                    SELECT content_sha256 FROM profile_pictures WHERE ig_profile_id = ANY($1))), '[]')
         ) AS data",
    )
    .bind::<Array<BigInt>, _>(&ids)
    .get_result(conn)
    .await?;
    let mut data = out.data;
    data["handle"] = json!(handle);
    data["suppressed"] = json!(is_suppressed(conn, key, &handle).await?);
    let details = json!({"profiles": ids.len()});
    audit(conn, actor, AuditAction::AccessExport, Some(&key.username_hash(&handle)), &details).await?;
    Ok(data)
}

async fn is_suppressed(
    conn: &mut AsyncPgConnection,
    key: &PrivacyKey,
    handle: &str,
) -> diesel::QueryResult<bool> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let n: N =
        diesel::sql_query("SELECT count(*) AS n FROM suppressions WHERE kind = 'username' AND key_hash = $1")
            .bind::<Bytea, _>(key.username_hash(handle).to_vec())
            .get_result(conn)
            .await?;
    Ok(n.n > 0)
}
