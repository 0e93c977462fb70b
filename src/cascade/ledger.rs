//! The cost ledger: one row per Gemini request with its token counts and cost, and the sums
//! per analysis, tracked account and user. An analysis's `cost_micro_usd` grows with each
//! request recorded for it.
//!
//! Owns: `gemini_requests`. Uses: `db`.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;

use crate::clients::gemini::RequestRecord;

/// Whom a request is billed to.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub user_id: i64,
    pub tracked_account_id: i64,
    pub analysis_id: i64,
}

/// Records `requests` and adds their cost to the analysis, in one transaction.
pub async fn record(
    conn: &mut AsyncPgConnection,
    owner: Owner,
    requests: &[RequestRecord],
) -> diesel::QueryResult<()> {
    if requests.is_empty() {
        return Ok(());
    }
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        let before = spent_nano_usd(conn, owner.analysis_id).await?;
        let mut nano = 0;
        for r in requests {
            diesel::sql_query(
                "INSERT INTO gemini_requests (user_id, tracked_account_id, analysis_id, model, pictures, prompt_tokens,
                     candidates_tokens, thoughts_tokens, total_tokens, cost_nano_usd, outcome)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind::<BigInt, _>(owner.user_id)
            .bind::<BigInt, _>(owner.tracked_account_id)
            .bind::<BigInt, _>(owner.analysis_id)
            .bind::<Text, _>(&r.model)
            .bind::<Integer, _>(r.pictures as i32)
            .bind::<BigInt, _>(r.usage.prompt_tokens.max(0))
            .bind::<BigInt, _>(r.usage.candidates_tokens.max(0))
            .bind::<BigInt, _>(r.usage.thoughts_tokens.max(0))
            .bind::<BigInt, _>(r.usage.total_tokens.max(0))
            .bind::<BigInt, _>(r.cost_nano_usd.max(0))
            .bind::<Text, _>(&r.outcome)
            .execute(conn)
            .await?;
            nano += r.cost_nano_usd.max(0);
        }
        // The analysis's cost grows by whole micro-dollars of the ledger's running total, so
        // rounding never accumulates.
        let added_micro = (before + nano) / 1000 - before / 1000;
        diesel::sql_query("UPDATE analyses SET cost_micro_usd = cost_micro_usd + $2 WHERE id = $1")
            .bind::<BigInt, _>(owner.analysis_id)
            .bind::<BigInt, _>(added_micro)
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
}

#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// Nano-dollars recorded for the analysis so far.
pub async fn spent_nano_usd(conn: &mut AsyncPgConnection, analysis_id: i64) -> diesel::QueryResult<i64> {
    let row: Total = diesel::sql_query(
        "SELECT coalesce(sum(cost_nano_usd), 0)::bigint AS total FROM gemini_requests WHERE analysis_id = $1",
    )
    .bind::<BigInt, _>(analysis_id)
    .get_result(conn)
    .await?;
    Ok(row.total)
}

/// Requests, tokens and cost summed over some rows of the ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, QueryableByName, ToSchema)]
pub struct Sum {
    #[diesel(sql_type = BigInt)]
    pub requests: i64,
    #[diesel(sql_type = BigInt)]
    pub pictures: i64,
    #[diesel(sql_type = BigInt)]
    pub prompt_tokens: i64,
    #[diesel(sql_type = BigInt)]
    pub candidates_tokens: i64,
    #[diesel(sql_type = BigInt)]
    pub thoughts_tokens: i64,
    #[diesel(sql_type = BigInt)]
    pub total_tokens: i64,
    #[diesel(sql_type = BigInt)]
    pub cost_nano_usd: i64,
}

const SUMS: &str = "count(*)::bigint AS requests, coalesce(sum(pictures), 0)::bigint AS pictures,
    coalesce(sum(prompt_tokens), 0)::bigint AS prompt_tokens,
    coalesce(sum(candidates_tokens), 0)::bigint AS candidates_tokens,
    coalesce(sum(thoughts_tokens), 0)::bigint AS thoughts_tokens,
    coalesce(sum(total_tokens), 0)::bigint AS total_tokens,
    coalesce(sum(cost_nano_usd), 0)::bigint AS cost_nano_usd";

#[derive(Debug, Clone, Serialize, QueryableByName, ToSchema)]
pub struct AccountSum {
    #[diesel(sql_type = BigInt)]
    pub tracked_account_id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub handle: Option<String>,
    #[diesel(embed)]
    #[serde(flatten)]
    pub sum: Sum,
}

#[derive(Debug, Clone, Serialize, QueryableByName, ToSchema)]
pub struct AnalysisSum {
    #[diesel(sql_type = BigInt)]
    pub analysis_id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub tracked_account_id: Option<i64>,
    #[diesel(embed)]
    #[serde(flatten)]
    pub sum: Sum,
}

/// A user's Gemini spending: in all, per tracked account, per analysis (latest first).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageReport {
    pub total: Sum,
    pub accounts: Vec<AccountSum>,
    pub analyses: Vec<AnalysisSum>,
}

/// The user's ledger sums (`analyses_limit` most recent analyses).
pub async fn usage(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    analyses_limit: i64,
) -> diesel::QueryResult<UsageReport> {
    let total: Sum = diesel::sql_query(format!("SELECT {SUMS} FROM gemini_requests WHERE user_id = $1"))
        .bind::<BigInt, _>(user_id)
        .get_result(conn)
        .await?;
    let accounts: Vec<AccountSum> = diesel::sql_query(format!(
        "SELECT g.tracked_account_id, t.handle, {SUMS} FROM gemini_requests g
         LEFT JOIN tracked_accounts t ON t.id = g.tracked_account_id
         WHERE g.user_id = $1 AND g.tracked_account_id IS NOT NULL
         GROUP BY g.tracked_account_id, t.handle ORDER BY g.tracked_account_id"
    ))
    .bind::<BigInt, _>(user_id)
    .load(conn)
    .await?;
    let analyses: Vec<AnalysisSum> = diesel::sql_query(format!(
        "SELECT g.analysis_id, max(g.tracked_account_id) AS tracked_account_id, {SUMS} FROM gemini_requests g
         WHERE g.user_id = $1 AND g.analysis_id IS NOT NULL
         GROUP BY g.analysis_id ORDER BY g.analysis_id DESC LIMIT $2"
    ))
    .bind::<BigInt, _>(user_id)
    .bind::<BigInt, _>(analyses_limit)
    .load(conn)
    .await?;
    Ok(UsageReport { total, accounts, analyses })
}
