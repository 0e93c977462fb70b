//! `classify_pictures` and `aggregate_audience`: the last stages of an analysis.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::JobEnv;
use super::pipeline::{self, load_active, stage_failed};
use crate::analyses::{self, Stage};
use crate::cascade::ledger::{self, Owner};
use crate::cascade::{Budget, Classifiers, Mode, Session, Totals};
use crate::insights::classify::ClassifyError;
use crate::insights::{aggregate, classify};
use crate::queue::{Job, JobContext, JobError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassifyPictures {
    pub analysis_id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AggregateAudience {
    pub analysis_id: i64,
}

impl Job for ClassifyPictures {
    const KIND: &'static str = "classify_pictures";
    const QUEUE: &'static str = "classify";
    const MAX_ATTEMPTS: Option<i32> = Some(5);
    const TIMEOUT: Option<Duration> = Some(Duration::from_hours(3));
    type Context = JobEnv;

    async fn run(self, env: JobEnv, job: JobContext) -> Result<(), JobError> {
        let Some((analysis, account)) = load_active(&env, self.analysis_id).await? else { return Ok(()) };
        let analysis_id = self.analysis_id;
        // An attempt whose job was handed on stops at its next lease renewal and lets go: wait
        // for that rather than spending this job's attempts.
        let patience = Duration::from_secs(2 * env.config.settings.queue.lease_secs);
        let started = tokio::time::Instant::now();
        let _stage_lock = loop {
            if let Some(lock) = pipeline::lock_stage(&env.pool, analysis_id).await? {
                break lock;
            }
            if started.elapsed() >= patience {
                return Err(JobError::Retryable(anyhow::anyhow!(
                    "another attempt is still classifying this analysis's pictures; this one tries again later"
                )));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        if !analyses::enter_stage(&mut *env.pool.get().await?, analysis_id, Stage::Classify).await? {
            tracing::info!(analysis_id = %analysis_id, stage = "classify", "analysis already past this stage: this run of its job does nothing");
            return Ok(());
        }
        let mode = Mode::parse(&analysis.classifier).unwrap_or(Mode::Local);
        // Missing model files or a missing key do not appear by retrying.
        let gemini = if mode.uses_gemini() {
            match env.clients.gemini() {
                Ok(client) => Some(client.clone()),
                Err(e) => return Err(stage_failed(&env, analysis_id, &job, e.into(), true).await),
            }
        } else {
            None
        };
        let local = match env.classifier().await {
            Ok(c) => Some(c),
            Err(e) => return Err(stage_failed(&env, analysis_id, &job, e, true).await),
        };
        let settings = &env.config.settings.gemini;
        let classifiers = Classifiers { mode, local, gemini, rules: settings.cascade.clone() };
        // The budget counts what earlier attempts of this analysis already spent. An account's
        // own budget covers the whole analysis: Gemini gets what the Apify runs left of it.
        let spent = ledger::spent_nano_usd(&mut *env.pool.get().await?, analysis_id).await?;
        let other_nano = (analysis.cost_micro_usd.saturating_mul(1000) - spent).max(0);
        let limit = match account.budget_micro_usd {
            Some(budget) => (budget.saturating_mul(1000) - other_nano).max(0),
            None => settings.default_budget_micro_usd().saturating_mul(1000),
        };
        let session = Session::new(Budget::new(limit, spent), settings.expected_prompt_tokens_per_picture);
        let owner = Owner { user_id: account.user_id, tracked_account_id: account.id, analysis_id };
        // Counts of earlier attempts of this stage are added to, not replaced.
        let prior = analysis.progress.get("gemini").cloned().unwrap_or_else(|| json!({}));
        let earlier = |key: &str| analysis.progress.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0);
        let before = (earlier("pictures_classified"), earlier("pictures_unreadable"));
        if mode.uses_gemini() {
            let counts = json!({"gemini": gemini_progress(&prior, &Totals::default(), limit)});
            analyses::set_progress(&mut *env.pool.get().await?, analysis_id, &counts).await?;
        }
        let pool = env.pool.clone();
        let result = classify::classify_account_pictures(&env.pool, &classifiers, &session, owner, |r| {
            let pool = pool.clone();
            let prior = prior.clone();
            async move {
                let mut counts = json!({
                    "pictures_classified": before.0 + r.classified as u64,
                    "pictures_unreadable": before.1 + r.unreadable as u64,
                });
                if mode.uses_gemini() {
                    counts["gemini"] = gemini_progress(&prior, &r.gemini, limit);
                }
                analyses::set_progress(&mut *pool.get().await?, analysis_id, &counts).await?;
                Ok(())
            }
        })
        .await;
        match result {
            Ok(_) => {}
            Err(ClassifyError::Gemini(e)) => {
                return Err(stage_failed(&env, analysis_id, &job, e.into(), true).await);
            }
            Err(ClassifyError::Other(e)) => return Err(stage_failed(&env, analysis_id, &job, e, false).await),
        }
        let mut conn = env.pool.get().await?;
        crate::insights::funnel::record_progress(&mut conn, analysis_id).await?;
        pipeline::after_classify(&mut conn, &env.config, analysis_id).await?;
        Ok(())
    }
}

/// Gemini's progress counts: `prior` (earlier attempts) plus `now`.
fn gemini_progress(prior: &serde_json::Value, now: &Totals, limit_nano_usd: i64) -> serde_json::Value {
    let n = |key: &str| prior.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0) as usize;
    let usd = prior.get("cost_usd").and_then(serde_json::Value::as_f64).unwrap_or(0.0);
    json!({
        "sent": n("sent") + now.sent_to_gemini,
        "labelled": n("labelled") + now.gemini_labelled,
        "abstained": n("abstained") + now.gemini_abstained,
        "over_budget": n("over_budget") + now.over_budget,
        "unavailable": n("unavailable") + now.gemini_unavailable,
        "unsupported": n("unsupported") + now.unsupported,
        "requests": n("requests") + now.requests,
        "cost_usd": usd + now.cost_nano_usd as f64 / 1e9,
        "budget_usd": limit_nano_usd as f64 / 1e9,
    })
}

impl Job for AggregateAudience {
    const KIND: &'static str = "aggregate_audience";
    const QUEUE: &'static str = "classify";
    const MAX_ATTEMPTS: Option<i32> = Some(5);
    const TIMEOUT: Option<Duration> = Some(Duration::from_mins(30));
    type Context = JobEnv;

    async fn run(self, env: JobEnv, job: JobContext) -> Result<(), JobError> {
        let Some((analysis, account)) = load_active(&env, self.analysis_id).await? else { return Ok(()) };
        let mut conn = env.pool.get().await?;
        if !analyses::enter_stage(&mut conn, analysis.id, Stage::Aggregate).await? {
            tracing::info!(analysis_id = %analysis.id, stage = "aggregate", "analysis already past this stage: this run of its job does nothing");
            return Ok(());
        }
        let calibrations = crate::cascade::calibrations(&env.config);
        let cascade_system = crate::cascade::cascade_model(&env.config);
        let analysis = analyses::get_analysis(&mut conn, analysis.id).await?;
        let snapshot = match aggregate::build_snapshot(
            &mut conn,
            &analysis,
            &account,
            &calibrations,
            Some(&cascade_system),
        )
        .await
        {
            Ok(s) => s,
            Err(e) => return Err(stage_failed(&env, analysis.id, &job, e.into(), false).await),
        };
        aggregate::store_snapshot(&mut conn, analysis.id, account.id, &snapshot).await?;
        tracing::info!(
            analysis_id = analysis.id,
            commenters = snapshot.sample.unique_commenters,
            "audience snapshot stored"
        );
        Ok(())
    }
}
