//! The scrape plan of an analysis, one stage per job: the account's recent posts, then the
//! comments of posts that gained comments since they were last scraped, then (optionally, it
//! costs money) the profiles of commenters not refreshed recently.

use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::intake::Source;
use super::runs::{self, RunOutcome, RunPlan, ScrapeError};
use crate::accounts::{InstagramHandle, TrackedAccount};
use crate::analyses;
use crate::analyses::NEWEST_FIRST;
use crate::clients::apify::ApifyClient;
use crate::config::ApifySettings;
use crate::db::DbPool;
use crate::privacy::PrivacyKey;

/// What a stage needs.
pub struct Scraper<'a> {
    pub pool: &'a DbPool,
    pub apify: &'a ApifyClient,
    pub settings: &'a ApifySettings,
    pub privacy: &'a PrivacyKey,
    pub cancel: CancellationToken,
}

impl Scraper<'_> {
    /// Stage 1: the account's posts (only those newer than the newest stored, when some are).
    ///
    /// # Errors
    /// Apify and database errors.
    pub async fn scrape_posts(
        &self,
        analysis_id: i64,
        account: &TrackedAccount,
    ) -> Result<RunOutcome, ScrapeError> {
        let handle = InstagramHandle::parse(&account.handle).map_err(|e| {
            ScrapeError::Apify(crate::clients::apify::ApifyError::InvalidRequest(e.to_string()))
        })?;
        // Their posts would be dropped when stored: the run is not bought at all.
        let erased = crate::privacy::suppressed_usernames(
            &mut *self.pool.get().await?,
            self.privacy,
            &[handle.as_str()],
        )
        .await?;
        if !erased.is_empty() {
            return Err(ScrapeError::Erased(handle.as_str().to_owned()));
        }
        let mut input = json!({
            "directUrls": [handle.profile_url()],
            "resultsType": "posts",
            "resultsLimit": account.max_posts,
            "addParentData": false,
        });
        if let Some(newest) = self.newest_post_date(account.id).await? {
            input["onlyPostsNewerThan"] = json!(newest.format("%Y-%m-%d").to_string());
        }
        let plan = RunPlan {
            analysis_id,
            purpose: runs::POSTS_PURPOSE,
            actor: &self.settings.posts_actor,
            input,
            max_items: u64::try_from(account.max_posts).unwrap_or(1),
            max_charge_usd: self.settings.max_charge_usd_per_run,
            account,
            source: Source::Account,
        };
        let outcome = runs::run_and_store(self.pool, self.apify, self.privacy, &plan, &self.cancel).await?;
        Ok(outcome)
    }

    async fn newest_post_date(
        &self,
        account_id: i64,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, ScrapeError> {
        #[derive(QueryableByName)]
        struct Newest {
            #[diesel(sql_type = Nullable<Timestamptz>)]
            at: Option<chrono::DateTime<chrono::Utc>>,
        }
        let mut conn = self.pool.get().await?;
        let n: Newest = diesel::sql_query(
            "SELECT max(p.posted_at) AS at FROM posts p
             JOIN tracked_account_posts tap ON tap.post_id = p.id WHERE tap.tracked_account_id = $1",
        )
        .bind::<BigInt, _>(account_id)
        .get_result(&mut conn)
        .await?;
        Ok(n.at)
    }

    /// Stage 2: comments of the account's latest posts that gained comments since their last
    /// comment scrape, in runs of at most `posts_per_comment_run` posts.
    ///
    /// # Errors
    /// Apify and database errors.
    pub async fn scrape_comments(
        &self,
        analysis_id: i64,
        account: &TrackedAccount,
    ) -> Result<Vec<RunOutcome>, ScrapeError> {
        #[derive(QueryableByName)]
        struct Due {
            #[diesel(sql_type = BigInt)]
            id: i64,
            #[diesel(sql_type = Text)]
            url: String,
            #[diesel(sql_type = Nullable<Integer>)]
            comments_count: Option<i32>,
        }
        let mut conn = self.pool.get().await?;
        let due: Vec<Due> = diesel::sql_query(format!(
            "SELECT id, url, comments_count FROM (
                SELECT p.id, coalesce(p.url, 'https://www.instagram.com/p/' || p.short_code || '/') AS url,
                       p.comments_count, p.comments_scraped_count
                FROM posts p JOIN tracked_account_posts tap ON tap.post_id = p.id
                WHERE tap.tracked_account_id = $1 AND (p.url IS NOT NULL OR p.short_code IS NOT NULL)
                ORDER BY {NEWEST_FIRST}
                LIMIT $2
             ) latest
             WHERE comments_scraped_count IS NULL OR coalesce(comments_count, 0) > comments_scraped_count
             ORDER BY id"
        ))
        .bind::<BigInt, _>(account.id)
        .bind::<BigInt, _>(i64::from(account.max_posts))
        .load(&mut conn)
        .await?;
        drop(conn);
        analyses::set_progress(
            &mut *self.pool.get().await?,
            analysis_id,
            &json!({"posts_to_scrape_comments": due.len()}),
        )
        .await?;
        let mut outcomes = Vec::new();
        for chunk in due.chunks(self.settings.posts_per_comment_run.max(1)) {
            let ids: Vec<i64> = chunk.iter().map(|d| d.id).collect();
            let purpose = format!("comments:{}", short_hash(&ids));
            let plan = RunPlan {
                analysis_id,
                purpose: &purpose,
                actor: &self.settings.comments_actor,
                input: json!({
                    "directUrls": chunk.iter().map(|d| d.url.as_str()).collect::<Vec<_>>(),
                    "resultsLimit": account.max_comments_per_post,
                    "includeNestedComments": false,
                    "isNewestComments": false,
                }),
                max_items: (chunk.len() as u64) * u64::try_from(account.max_comments_per_post).unwrap_or(1),
                max_charge_usd: self.settings.max_charge_usd_per_run,
                account,
                source: Source::Account,
            };
            let outcome =
                runs::run_and_store(self.pool, self.apify, self.privacy, &plan, &self.cancel).await?;
            let counts: Vec<i32> = chunk.iter().map(|d| d.comments_count.unwrap_or(0)).collect();
            diesel::sql_query(
                "UPDATE posts p SET comments_scraped_count = c.n, comments_scraped_at = now()
                 FROM unnest($1::bigint[], $2::int[]) AS c(id, n) WHERE p.id = c.id",
            )
            .bind::<Array<BigInt>, _>(&ids)
            .bind::<Array<Integer>, _>(&counts)
            .execute(&mut *self.pool.get().await?)
            .await?;
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// Stage 3 (when `apify.refresh_profiles`): profiles of this account's commenters that were
    /// never refreshed by a profile scrape or not within `profile_refresh_days`.
    ///
    /// The chunks are planned once per analysis and recorded (as runs not started yet), so a
    /// retry works through the same chunks: usernames the actor did not return would otherwise
    /// shift every later chunk and have the same profiles bought again.
    ///
    /// # Errors
    /// Apify and database errors.
    pub async fn scrape_profiles(
        &self,
        analysis_id: i64,
        account: &TrackedAccount,
    ) -> Result<Vec<RunOutcome>, ScrapeError> {
        let planned = self.profile_chunks(analysis_id, account).await?;
        let mut outcomes = Vec::new();
        for chunk in &planned {
            // People erased since the chunk was planned are not asked about.
            let names: Vec<&str> = chunk
                .input
                .get("usernames")
                .and_then(serde_json::Value::as_array)
                .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
                .unwrap_or_default();
            let erased =
                crate::privacy::suppressed_usernames(&mut *self.pool.get().await?, self.privacy, &names)
                    .await?;
            let names: Vec<&str> = names.into_iter().filter(|n| !erased.contains(*n)).collect();
            if names.is_empty() {
                continue;
            }
            let mut input = chunk.input.clone();
            input["usernames"] = json!(names);
            let plan = RunPlan {
                analysis_id,
                purpose: &chunk.purpose,
                actor: &self.settings.profiles_actor,
                input,
                max_items: names.len() as u64,
                max_charge_usd: self.settings.max_charge_usd_per_run,
                account,
                source: Source::CommenterProfiles,
            };
            outcomes
                .push(runs::run_and_store(self.pool, self.apify, self.privacy, &plan, &self.cancel).await?);
        }
        Ok(outcomes)
    }

    /// The analysis's profile chunks: those recorded by an earlier attempt, or planned now and
    /// recorded (under the analysis's row lock, so two attempts plan once).
    async fn profile_chunks(
        &self,
        analysis_id: i64,
        account: &TrackedAccount,
    ) -> Result<Vec<PlannedRun>, ScrapeError> {
        use diesel_async::AsyncConnection;
        let mut conn = self.pool.get().await?;
        let refresh_days = i32::try_from(self.settings.profile_refresh_days).unwrap_or(30);
        let actor = self.settings.profiles_actor.clone();
        Ok(conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                diesel::sql_query("SELECT id FROM analyses WHERE id = $1 FOR NO KEY UPDATE")
                    .bind::<BigInt, _>(analysis_id)
                    .execute(conn)
                    .await?;
                let planned = planned_profile_runs(conn, analysis_id).await?;
                if !planned.is_empty() {
                    return Ok(planned);
                }
                let names = profiles_due(conn, account.id, refresh_days).await?;
                for chunk in names.chunks(500) {
                    let usernames: Vec<&str> = chunk.iter().map(String::as_str).collect();
                    diesel::sql_query(
                        "INSERT INTO apify_runs (analysis_id, purpose, actor, input) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (analysis_id, purpose) DO NOTHING",
                    )
                    .bind::<BigInt, _>(analysis_id)
                    .bind::<Text, _>(format!("profiles:{}", short_hash(&usernames)))
                    .bind::<Text, _>(&actor)
                    .bind::<diesel::sql_types::Jsonb, _>(
                        json!({"usernames": usernames, "includeAboutSection": false}),
                    )
                    .execute(conn)
                    .await?;
                }
                planned_profile_runs(conn, analysis_id).await
            })
            .await?)
    }
}

/// One recorded run of a stage planned in chunks.
#[derive(QueryableByName)]
struct PlannedRun {
    #[diesel(sql_type = Text)]
    purpose: String,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    input: serde_json::Value,
}

async fn planned_profile_runs(
    conn: &mut diesel_async::AsyncPgConnection,
    analysis_id: i64,
) -> diesel::QueryResult<Vec<PlannedRun>> {
    diesel::sql_query(
        "SELECT purpose, input FROM apify_runs WHERE analysis_id = $1 AND purpose LIKE 'profiles:%' ORDER BY id",
    )
    .bind::<BigInt, _>(analysis_id)
    .load(conn)
    .await
}

/// Usernames of the account's commenters whose profile is unknown or older than `refresh_days`.
async fn profiles_due(
    conn: &mut diesel_async::AsyncPgConnection,
    account_id: i64,
    refresh_days: i32,
) -> diesel::QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        username: String,
    }
    let names: Vec<Name> = diesel::sql_query(
        "SELECT DISTINCT pr.username FROM ig_profiles pr
         JOIN audience_comments a ON a.ig_profile_id = pr.id
         WHERE a.tracked_account_id = $1
           AND (pr.is_private IS NULL OR pr.refreshed_at < now() - make_interval(days => $2))
         ORDER BY pr.username",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Integer, _>(refresh_days)
    .load(conn)
    .await?;
    Ok(names.into_iter().map(|n| n.username).collect())
}

/// A stable short name for a chunk of work (the same chunk gets the same name on a retry).
fn short_hash<T: std::fmt::Debug>(value: &T) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{value:?}").as_bytes());
    hex::encode(&digest[..8])
}
