//! Privacy by construction: keyed pseudonyms of commenters, erasure that sticks (a suppression
//! list checked before anything is stored), access requests, retention, and the audit log.
//!
//! Owns: `suppressions`, `audit_log`; erasure and purge of commenter data.
//! Uses: `db`, `scraping::items`.

pub mod erase;
pub mod retention;

use std::collections::HashSet;

use diesel::QueryResult;
use diesel::QueryableByName;
use diesel::sql_types::{Array, Bytea, Jsonb, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::scraping::items::Records;

/// Used only in dev mode when `AUDIENCELENS_PRIVACY_KEY` is unset, so suppressions survive
/// restarts; production refuses to start without a real key.
/// The key of dev mode when none is set: public, so production refuses it.
pub const DEV_KEY: &str = "audiencelens-dev-privacy-key-not-for-production";

/// The keyed hash behind pseudonyms and the suppression list. Without the key, a pseudonym
/// cannot be turned back into a handle, nor a handle tested against the list.
#[derive(Clone)]
pub struct PrivacyKey(SecretString);

impl std::fmt::Debug for PrivacyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivacyKey(..)")
    }
}

impl PrivacyKey {
    #[must_use]
    pub fn new(secret: Option<&SecretString>) -> Self {
        Self(secret.cloned().unwrap_or_else(|| SecretString::from(DEV_KEY)))
    }

    fn mac(&self, kind: &str, value: &str) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(kind.as_bytes());
        mac.update(b"\0");
        mac.update(value.trim().to_ascii_lowercase().trim_start_matches('@').as_bytes());
        mac.finalize().into_bytes().into()
    }

    #[must_use]
    pub fn username_hash(&self, username: &str) -> [u8; 32] {
        self.mac("username", username)
    }

    #[must_use]
    pub fn user_id_hash(&self, id: &str) -> [u8; 32] {
        self.mac("user_id", id)
    }

    /// A stable pseudonym for exports: `p_` and 16 hex digits of the keyed hash.
    #[must_use]
    pub fn pseudonym(&self, username: &str) -> String {
        format!("p_{}", hex::encode(&self.username_hash(username)[..8]))
    }
}

/// Adds a person to the suppression list (by username, and by id when known).
pub async fn suppress(
    conn: &mut AsyncPgConnection,
    key: &PrivacyKey,
    username: &str,
    user_ids: &[String],
) -> QueryResult<()> {
    let mut kinds = vec!["username"];
    let mut hashes = vec![key.username_hash(username).to_vec()];
    for id in user_ids {
        kinds.push("user_id");
        hashes.push(key.user_id_hash(id).to_vec());
    }
    diesel::sql_query(
        "INSERT INTO suppressions (kind, key_hash) SELECT * FROM unnest($1::text[], $2::bytea[]) ON CONFLICT DO NOTHING",
    )
    .bind::<Array<Text>, _>(&kinds)
    .bind::<Array<Bytea>, _>(&hashes)
    .execute(conn)
    .await?;
    Ok(())
}

/// The advisory lock that keeps an erasure and the writers of data about people apart.
const ERASURE_LOCK: i64 = 0x6175_6469_656e_6365;

/// Taken by an erasure, in its transaction: it waits for every writer holding
/// [`hold_off_erasure`] to commit, and they wait for it, so nothing read before the erasure
/// is written after it.
pub async fn lock_for_erasure(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    erasure_lock(conn, "pg_advisory_xact_lock").await
}

/// Taken, in its transaction, by everything that stores data about a person read before the
/// transaction began (scraped records, fetched pictures, classification results): the writer
/// then re-checks, under the lock, that the person is still there or not suppressed. Shared, so
/// writers do not wait for one another. Outside a transaction it would protect nothing.
pub async fn hold_off_erasure(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    erasure_lock(conn, "pg_advisory_xact_lock_shared").await
}

/// Takes [`ERASURE_LOCK`] with `function` (exclusive or shared, until the transaction ends).
async fn erasure_lock(conn: &mut AsyncPgConnection, function: &str) -> QueryResult<()> {
    diesel::sql_query(format!("SELECT {function}($1)"))
        .bind::<diesel::sql_types::BigInt, _>(ERASURE_LOCK)
        .execute(conn)
        .await
        .map(drop)
}

/// Which of the keyed hashes `candidates` are on the suppression list.
async fn suppressed_hashes(
    conn: &mut AsyncPgConnection,
    candidates: &[Vec<u8>],
) -> QueryResult<HashSet<Vec<u8>>> {
    #[derive(QueryableByName)]
    struct Hit {
        #[diesel(sql_type = Bytea)]
        key_hash: Vec<u8>,
    }
    if candidates.is_empty() {
        return Ok(HashSet::new());
    }
    let hits: Vec<Hit> = diesel::sql_query("SELECT key_hash FROM suppressions WHERE key_hash = ANY($1)")
        .bind::<Array<Bytea>, _>(candidates)
        .load(conn)
        .await?;
    Ok(hits.into_iter().map(|h| h.key_hash).collect())
}

/// Which of `usernames` belong to erased people (to leave out of requests to third parties).
pub async fn suppressed_usernames(
    conn: &mut AsyncPgConnection,
    key: &PrivacyKey,
    usernames: &[&str],
) -> QueryResult<HashSet<String>> {
    let hashes: Vec<Vec<u8>> = usernames.iter().map(|u| key.username_hash(u).to_vec()).collect();
    let hits = suppressed_hashes(conn, &hashes).await?;
    Ok(usernames
        .iter()
        .zip(&hashes)
        .filter(|(_, h)| hits.contains(*h))
        .map(|(u, _)| (*u).to_owned())
        .collect())
}

/// Removes every item by or about a suppressed person from `records`: their comments and
/// profiles, the posts they own and the comments on those posts (what an erasure deletes);
/// returns how many items were dropped. Call it in the transaction that stores `records`: it
/// holds off erasures until that transaction ends, so a person erased meanwhile is either
/// suppressed here or erased after the records are stored.
pub async fn drop_suppressed(
    conn: &mut AsyncPgConnection,
    key: &PrivacyKey,
    records: &mut Records,
) -> QueryResult<usize> {
    hold_off_erasure(conn).await?;
    let people = records.comments.iter().map(|c| &c.author).chain(records.profiles.iter());
    let mut candidates: Vec<Vec<u8>> = Vec::new();
    for p in people {
        candidates.push(key.username_hash(&p.username).to_vec());
        if let Some(id) = &p.ig_user_id {
            candidates.push(key.user_id_hash(id).to_vec());
        }
    }
    for post in &records.posts {
        candidates.extend(post.owner_username.as_deref().map(|u| key.username_hash(u).to_vec()));
        candidates.extend(post.owner_ig_id.as_deref().map(|id| key.user_id_hash(id).to_vec()));
    }
    for body in records.comments.iter().filter_map(|c| c.body.as_deref()) {
        candidates.extend(mentions(body).map(|(_, handle)| key.username_hash(handle).to_vec()));
    }
    let hits = suppressed_hashes(conn, &candidates).await?;
    if hits.is_empty() {
        return Ok(0);
    }
    let is_hit = |username: Option<&str>, id: Option<&str>| {
        username.is_some_and(|u| hits.contains(key.username_hash(u).as_slice()))
            || id.is_some_and(|id| hits.contains(key.user_id_hash(id).as_slice()))
    };
    let suppressed =
        |p: &crate::scraping::items::ProfileRecord| is_hit(Some(&p.username), p.ig_user_id.as_deref());
    let before = records.posts.len() + records.comments.len() + records.profiles.len();
    let erased_posts: HashSet<String> = records
        .posts
        .iter()
        .filter(|p| is_hit(p.owner_username.as_deref(), p.owner_ig_id.as_deref()))
        .map(|p| p.ig_post_id.clone())
        .collect();
    records.posts.retain(|p| !erased_posts.contains(&p.ig_post_id));
    records.comments.retain(|c| !suppressed(&c.author) && !erased_posts.contains(&c.ig_post_id));
    records.profiles.retain(|p| !suppressed(p));
    // Others' comments keep their text, with the erased person's handle redacted (as the
    // erasure did to the comments stored before it).
    for comment in &mut records.comments {
        if let Some(body) = comment.body.as_deref() {
            let redacted = redact_mentions(body, |handle| is_hit(Some(handle), None));
            if redacted != body {
                comment.body = Some(redacted);
            }
        }
    }
    Ok(before - records.posts.len() - records.comments.len() - records.profiles.len())
}

/// The `@handle` mentions in `text`, with their byte offsets: `@` and the handle characters
/// after it (letters, digits, `.`, `_`), a trailing `.` being the sentence's, not the handle's.
fn mentions(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.match_indices('@').filter_map(move |(at, _)| {
        let rest = &text[at + 1..];
        let len =
            rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_')).unwrap_or(rest.len());
        let handle = rest[..len].trim_end_matches('.');
        (!handle.is_empty()).then_some((at, handle))
    })
}

/// `text` with every mention of a handle `erased` says yes to replaced by `@[erased]`.
fn redact_mentions(text: &str, erased: impl Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (at, handle) in mentions(text) {
        if at >= copied && erased(handle) {
            out.push_str(&text[copied..at]);
            out.push_str("@[erased]");
            copied = at + 1 + handle.len();
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// What an audit entry records.
#[derive(Debug, Clone, Copy)]
pub enum AuditAction {
    Erase,
    AccessExport,
    AudienceExport,
}

impl AuditAction {
    fn as_str(self) -> &'static str {
        match self {
            Self::Erase => "erase",
            Self::AccessExport => "access_export",
            Self::AudienceExport => "audience_export",
        }
    }
}

/// Records who did what to whose data (the person only as a keyed hash).
pub async fn audit(
    conn: &mut AsyncPgConnection,
    actor: &str,
    action: AuditAction,
    subject_hash: Option<&[u8]>,
    details: &serde_json::Value,
) -> QueryResult<()> {
    diesel::sql_query("INSERT INTO audit_log (actor, action, subject_hash, details) VALUES ($1, $2, $3, $4)")
        .bind::<Text, _>(actor)
        .bind::<Text, _>(action.as_str())
        .bind::<Nullable<Bytea>, _>(subject_hash)
        .bind::<Jsonb, _>(details)
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_keyed_and_case_insensitive() {
        let a = PrivacyKey::new(Some(&SecretString::from("one key of sufficient length here")));
        let b = PrivacyKey::new(Some(&SecretString::from("another key of sufficient length!")));
        assert_eq!(a.pseudonym("Quiet.Harbor"), a.pseudonym("@quiet.harbor"));
        assert_ne!(a.pseudonym("quiet.harbor"), b.pseudonym("quiet.harbor"));
        assert_ne!(a.username_hash("123"), a.user_id_hash("123"), "kinds are separated");
        assert!(a.pseudonym("x").starts_with("p_") && a.pseudonym("x").len() == 18);
    }

    #[test]
    fn mentions_of_an_erased_handle_are_redacted_whole() {
        let erased = |h: &str| h.eq_ignore_ascii_case("juniper.reads");
        assert_eq!(redact_mentions("@Juniper.Reads same!", erased), "@[erased] same!");
        assert_eq!(redact_mentions("thanks @juniper.reads.", erased), "thanks @[erased].");
        assert_eq!(
            redact_mentions("@juniper.readsmore and @juniper.reads_x stay", erased),
            "@juniper.readsmore and @juniper.reads_x stay"
        );
        assert_eq!(redact_mentions("a@juniper.reads, @@juniper.reads", erased), "a@[erased], @@[erased]");
        assert_eq!(redact_mentions("no mention @ here, é @", erased), "no mention @ here, é @");
        let found: Vec<&str> = mentions("hi @a.b_c. and @x").map(|(_, h)| h).collect();
        assert_eq!(found, ["a.b_c", "x"]);
    }
}
