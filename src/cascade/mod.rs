//! The three classifiers a user can choose: `local` (the on-device model), `gemini` (Gemini for
//! every picture, the local model for those Gemini could not label) and `cascade` (the local
//! model first, Gemini only for the pictures it is unsure of). Gemini's spending is bounded by a
//! budget that is reserved before each request, so the cap holds even with requests in flight.
//!
//! Owns: the choice of pictures for Gemini, the budget, the per-picture outcome. Uses:
//! `vision`, `clients::gemini`.

pub mod ledger;

use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;
use serde::Serialize;

use crate::clients::gemini::{
    Answer, Classified, GeminiClient, GeminiError, InlinePicture, NOT_SENT, OVER_BUDGET, REFUSED,
    RequestRecord, Spend, Usage,
};
use crate::config::CascadeSettings;
use crate::vision::calibration::Calibration;
use crate::vision::result::Abstain;
use crate::vision::{Classifier, Gender, PictureError, PictureResult, ProfileType};

/// The calibrations an audience estimate can use: the shipped one of the local model, and
/// Gemini's when `gemini.calibration` names a file (a file that cannot be read is reported and
/// left out: shares are then reported uncorrected).
#[must_use]
pub fn calibrations(config: &crate::config::Config) -> Vec<Calibration> {
    let mut out = Vec::new();
    match Calibration::shipped() {
        Ok(c) => out.push(c),
        Err(e) => tracing::warn!(error = %e, "no local calibration: local shares are reported uncorrected"),
    }
    let path = config.settings.gemini.calibration.trim();
    if !path.is_empty() {
        match Calibration::load(std::path::Path::new(path)) {
            Ok(c) => out.push(c),
            Err(e) => {
                tracing::warn!(error = %e, "Gemini calibration not loaded: its shares are reported uncorrected");
            }
        }
    }
    out
}

/// The name of the cascade as one classifier: its two models, the prompt and the rules that
/// choose what Gemini sees. A calibration measured on the cascade's final answers
/// (`calibrate --classifier cascade`) carries it.
#[must_use]
pub fn cascade_model(config: &crate::config::Config) -> String {
    let local = crate::vision::LabelSettings::from(&config.settings.vision).model_version();
    let g = &config.settings.gemini;
    let r = &g.cascade;
    format!(
        "cascade/{local}+gemini/{}/{}/rules:{}:{}:{}:{}",
        g.model,
        crate::clients::gemini::PROMPT_VERSION,
        r.min_gender_confidence,
        r.min_age_confidence,
        u8::from(r.send_groups),
        u8::from(r.send_no_person)
    )
}

/// With a calibration of the cascade as a whole (`system`), the cascade's results are read as
/// that one classifier's: their model is set to it, so the estimate corrects all of them with
/// it. Without one, they keep their own models.
pub fn as_system(results: &mut [PictureResult], system: Option<&str>, calibrations: &[Calibration]) {
    if let Some(name) = system.filter(|name| calibrations.iter().any(|c| c.model == *name)) {
        for r in results {
            name.clone_into(&mut r.model);
        }
    }
}

/// The calibration of the model behind most of `results`, if there is one.
#[must_use]
pub fn pick_calibration<'a>(
    results: &[PictureResult],
    calibrations: &'a [Calibration],
) -> Option<&'a Calibration> {
    let mut models: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for r in results {
        *models.entry(r.model.as_str()).or_default() += 1;
    }
    let dominant = models.into_iter().max_by_key(|(_, n)| *n).map(|(m, _)| m)?;
    calibrations.iter().find(|c| c.model == dominant)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Local,
    Gemini,
    Cascade,
}

impl Mode {
    /// Parses an analysis's `classifier` column.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "local" => Some(Self::Local),
            "gemini" => Some(Self::Gemini),
            "cascade" => Some(Self::Cascade),
            _ => None,
        }
    }

    #[must_use]
    pub fn uses_gemini(self) -> bool {
        self != Self::Local
    }
}

/// Why a local result goes to Gemini under the cascade, or `None` when it is good enough.
#[must_use]
pub fn needs_gemini(local: &PictureResult, rules: &CascadeSettings) -> Option<&'static str> {
    match local.profile_type {
        ProfileType::DefaultAvatar => return None,
        ProfileType::NoPerson => return rules.send_no_person.then_some("no_person"),
        ProfileType::Group if rules.send_groups => return Some("group"),
        ProfileType::Person | ProfileType::Group => {}
    }
    if local.abstain == Some(Abstain::FaceTooSmall) {
        return Some("face_too_small");
    }
    let Some(gender) = local.gender else { return Some("no_gender") };
    match gender.label {
        None => return Some("gender_low_confidence"),
        Some(label) => {
            let p = if label == Gender::Male { gender.p_male } else { 1.0 - gender.p_male };
            if p < rules.min_gender_confidence {
                return Some("gender_below_threshold");
            }
        }
    }
    if rules.min_age_confidence > 0.0 {
        let top = local.age.map_or(0.0, |a| a.brackets.0.iter().copied().fold(0.0, f32::max));
        if top < rules.min_age_confidence {
            return Some("age_below_threshold");
        }
    }
    None
}

/// How sure the local result is (lower goes to Gemini first when the budget is short).
#[must_use]
pub fn local_confidence(local: &PictureResult) -> f32 {
    local
        .gender
        .and_then(|g| g.label.map(|l| if l == Gender::Male { g.p_male } else { 1.0 - g.p_male }))
        .unwrap_or(0.0)
}

/// A spending cap in nano-dollars: a request reserves its worst case before it is sent and
/// settles at its real cost when it comes back.
#[derive(Debug)]
pub struct Budget {
    state: Mutex<BudgetState>,
    /// Woken whenever a reservation settles.
    settled: tokio::sync::Notify,
}

#[derive(Debug, Clone, Copy)]
struct BudgetState {
    limit: i64,
    spent: i64,
    reserved: i64,
}

impl Budget {
    /// A cap of `limit_nano_usd` of which `spent_nano_usd` is already used.
    #[must_use]
    pub fn new(limit_nano_usd: i64, spent_nano_usd: i64) -> Self {
        Self {
            state: Mutex::new(BudgetState { limit: limit_nano_usd, spent: spent_nano_usd, reserved: 0 }),
            settled: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BudgetState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves `amount` when it fits under the cap. While other reservations are
    /// outstanding it waits for them to settle (their real cost is usually far below their
    /// worst case); it gives up only when nothing is outstanding and it still does not fit.
    pub async fn reserve(&self, amount: i64) -> bool {
        self.reserve_with(|| amount).await.is_some()
    }

    /// As [`Budget::reserve`], with the amount computed afresh at each try (a worst case that
    /// grows as answers come back); returns the amount reserved.
    pub async fn reserve_with(&self, amount: impl Fn() -> i64) -> Option<i64> {
        loop {
            // Registered before the check, so a settle in between is not missed.
            let settled = self.settled.notified();
            {
                let amount = amount();
                let mut s = self.lock();
                if s.spent + s.reserved + amount <= s.limit {
                    s.reserved += amount;
                    return Some(amount);
                }
                if s.reserved == 0 {
                    return None;
                }
            }
            settled.await;
        }
    }

    pub fn settle(&self, reserved: i64, cost: i64) {
        {
            let mut s = self.lock();
            s.reserved -= reserved;
            s.spent += cost;
        }
        self.settled.notify_waiters();
    }

    #[must_use]
    pub fn spent_nano_usd(&self) -> i64 {
        self.lock().spent
    }

    #[must_use]
    pub fn limit_nano_usd(&self) -> i64 {
        self.lock().limit
    }
}

/// What happened to one picture.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The local model's result, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<PictureResult>,
    /// Gemini's result, when it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gemini: Option<PictureResult>,
    /// Why the picture went to Gemini (cascade) or `all` (gemini).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_because: Option<&'static str>,
    /// Why Gemini gave no labels for a picture it was asked about, or why it was not asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gemini_abstain: Option<String>,
    /// Share of the requests' cost, nano-dollars.
    pub cost_nano_usd: i64,
    /// The picture could not be read at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Outcome {
    /// A picture that could not be classified at all.
    #[must_use]
    pub fn failed(error: String) -> Self {
        Self {
            local: None,
            gemini: None,
            sent_because: None,
            gemini_abstain: None,
            cost_nano_usd: 0,
            error: Some(error),
        }
    }

    /// The best available result: Gemini's, else the local one.
    #[must_use]
    pub fn best(&self) -> Option<&PictureResult> {
        self.gemini.as_ref().or(self.local.as_ref())
    }
}

/// Totals of one run, for reports and progress.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub pictures: usize,
    pub sent_to_gemini: usize,
    pub gemini_labelled: usize,
    pub gemini_abstained: usize,
    /// Pictures that would have gone to Gemini but the budget was reached.
    pub over_budget: usize,
    /// Pictures that would have gone to Gemini but it was unavailable (quota, outage), or
    /// whose bytes were gone by their turn.
    pub gemini_unavailable: usize,
    /// Pictures that would have gone to Gemini but are in a format it does not take.
    pub unsupported: usize,
    pub requests: usize,
    pub usage: Usage,
    pub cost_nano_usd: i64,
}

impl Totals {
    pub fn add(&mut self, other: &Self) {
        self.pictures += other.pictures;
        self.sent_to_gemini += other.sent_to_gemini;
        self.gemini_labelled += other.gemini_labelled;
        self.gemini_abstained += other.gemini_abstained;
        self.over_budget += other.over_budget;
        self.gemini_unavailable += other.gemini_unavailable;
        self.unsupported += other.unsupported;
        self.requests += other.requests;
        self.usage.add(&other.usage);
        self.cost_nano_usd += other.cost_nano_usd;
    }
}

/// The classifiers of a run.
#[derive(Clone)]
pub struct Classifiers {
    pub mode: Mode,
    /// Needed for local and cascade; for gemini, the fallback (absent: no fallback).
    pub local: Option<Arc<Classifier>>,
    /// Needed for gemini and cascade.
    pub gemini: Option<GeminiClient>,
    pub rules: CascadeSettings,
}

/// One run's results: outcomes in input order, the requests made, the totals, and a fatal
/// Gemini error if one stopped Gemini (the outcomes are complete regardless).
pub struct RunResult {
    pub outcomes: Vec<Outcome>,
    pub requests: Vec<RequestRecord>,
    pub totals: Totals,
    pub fatal: Option<GeminiError>,
}

/// Running state over several calls of [`Classifiers::run`] (an analysis or a CLI run).
#[derive(Debug)]
pub struct Session {
    pub budget: Budget,
    /// The largest prompt tokens per picture seen so far, for the next reservation.
    prompt_tokens_per_picture: Mutex<f64>,
    /// Set after a fatal error or an outage: Gemini is not asked again in this session.
    stopped: Mutex<Option<String>>,
}

impl Session {
    #[must_use]
    pub fn new(budget: Budget, expected_prompt_tokens_per_picture: u32) -> Self {
        Self {
            budget,
            prompt_tokens_per_picture: Mutex::new(f64::from(expected_prompt_tokens_per_picture)),
            stopped: Mutex::new(None),
        }
    }

    fn stopped(&self) -> Option<String> {
        self.stopped.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn stop(&self, why: String) {
        self.stopped.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(why);
    }

    fn per_picture(&self) -> f64 {
        *self.prompt_tokens_per_picture.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn observe(&self, record: &RequestRecord) {
        if record.pictures > 0 && record.usage.prompt_tokens > 0 {
            let seen = record.usage.prompt_tokens as f64 / record.pictures as f64;
            let mut p =
                self.prompt_tokens_per_picture.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *p = p.max(seen);
        }
    }
}

/// The session's budget as seen by one Gemini client.
struct SessionSpend<'a> {
    session: &'a Session,
    client: &'a GeminiClient,
}

impl Spend for SessionSpend<'_> {
    async fn reserve(&self, pictures: usize) -> Option<i64> {
        let prior = f64::from(self.client.image_tokens_bound());
        self.session
            .budget
            .reserve_with(|| self.client.cost_bound_nano_usd(pictures, self.session.per_picture().max(prior)))
            .await
    }

    fn settle(&self, reserved: i64, records: &[RequestRecord]) {
        // What the answers taught about prompt tokens first: waiters woken by the settle
        // reserve with it.
        for r in records {
            self.session.observe(r);
        }
        self.session.budget.settle(reserved, records.iter().map(|r| r.cost_nano_usd).sum());
    }
}

impl Classifiers {
    /// Classifies `pictures` (their bytes) under the mode.
    pub async fn run(&self, pictures: Vec<Vec<u8>>, session: &Session) -> RunResult {
        let count = pictures.len();
        let mut outcomes: Vec<Outcome> =
            (0..count).map(|_| Outcome { error: None, ..Outcome::failed(String::new()) }).collect();
        let pictures: Vec<Arc<Vec<u8>>> = pictures.into_iter().map(Arc::new).collect();
        // The local pass: everything for local and cascade.
        if self.mode != Mode::Gemini {
            self.local_pass(&pictures, (0..count).collect(), &mut outcomes).await;
        }
        self.finish(pictures, outcomes, session).await
    }

    /// The cascade's Gemini step for pictures whose local results are already known (and
    /// stored): `pictures[i]` with `locals[i]`.
    pub async fn run_with_local(
        &self,
        pictures: Vec<Vec<u8>>,
        locals: Vec<PictureResult>,
        session: &Session,
    ) -> RunResult {
        let outcomes: Vec<Outcome> = locals
            .into_iter()
            .map(|l| Outcome { error: None, local: Some(l), ..Outcome::failed(String::new()) })
            .collect();
        self.finish(pictures.into_iter().map(Arc::new).collect(), outcomes, session).await
    }

    /// After the local pass: Gemini for the pictures the mode sends it, then (gemini mode) the
    /// local model for those it did not label.
    async fn finish(
        &self,
        pictures: Vec<Arc<Vec<u8>>>,
        mut outcomes: Vec<Outcome>,
        session: &Session,
    ) -> RunResult {
        let count = pictures.len();
        // Who goes to Gemini, least sure first.
        let mut send: Vec<(usize, &'static str)> = match self.mode {
            Mode::Local => Vec::new(),
            Mode::Gemini => (0..count).map(|i| (i, "all")).collect(),
            Mode::Cascade => outcomes
                .iter()
                .enumerate()
                .filter_map(|(i, o)| {
                    o.local.as_ref().and_then(|l| needs_gemini(l, &self.rules)).map(|why| (i, why))
                })
                .collect(),
        };
        if self.mode == Mode::Cascade {
            send.sort_by(|a, b| {
                let conf = |i: usize| outcomes[i].local.as_ref().map_or(0.0, local_confidence);
                conf(a.0).total_cmp(&conf(b.0))
            });
        }
        let mut totals = Totals { pictures: count, ..Totals::default() };
        let mut requests = Vec::new();
        let mut fatal = None;
        if let Some(gemini) = self.gemini.as_ref().filter(|_| !send.is_empty()) {
            fatal = self
                .gemini_pass(gemini, &pictures, &send, session, &mut outcomes, &mut totals, &mut requests)
                .await;
        }
        // Gemini mode: the local model for what Gemini did not label.
        if self.mode == Mode::Gemini {
            let rest: Vec<usize> = (0..count).filter(|&i| outcomes[i].gemini.is_none()).collect();
            self.local_pass(&pictures, rest, &mut outcomes).await;
        }
        RunResult { outcomes, requests, totals, fatal }
    }

    async fn local_pass(&self, pictures: &[Arc<Vec<u8>>], which: Vec<usize>, outcomes: &mut [Outcome]) {
        let Some(local) = &self.local else {
            for i in which {
                if outcomes[i].gemini.is_none() && outcomes[i].error.is_none() {
                    outcomes[i].error.get_or_insert_with(|| "no classifier gave a result".into());
                }
            }
            return;
        };
        let results: Vec<(usize, Result<PictureResult, PictureError>)> = futures_util::stream::iter(which)
            .map(|i| {
                let local = local.clone();
                let bytes = pictures[i].clone();
                async move { (i, local.classify_async(bytes.to_vec()).await) }
            })
            .buffer_unordered(local.threads().max(1))
            .collect()
            .await;
        for (i, result) in results {
            match result {
                Ok(r) => {
                    outcomes[i].local = Some(r);
                    outcomes[i].error = None;
                }
                Err(e) => {
                    outcomes[i].error = Some(e.to_string());
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn gemini_pass(
        &self,
        gemini: &GeminiClient,
        pictures: &[Arc<Vec<u8>>],
        send: &[(usize, &'static str)],
        session: &Session,
        outcomes: &mut [Outcome],
        totals: &mut Totals,
        requests: &mut Vec<RequestRecord>,
    ) -> Option<GeminiError> {
        // Pictures in a format Gemini does not take are not sent.
        let mut sendable = Vec::with_capacity(send.len());
        for &(i, why) in send {
            outcomes[i].sent_because = Some(why);
            if let Some(p) = InlinePicture::sniff(pictures[i].to_vec()) {
                sendable.push((i, p));
            } else {
                outcomes[i].gemini_abstain = Some("not a JPEG, PNG or WebP picture: not sent".into());
                totals.unsupported += 1;
            }
        }
        let batch = gemini.settings().batch_size.max(1);
        let chunks: Vec<Vec<(usize, InlinePicture)>> = sendable.chunks(batch).map(<[_]>::to_vec).collect();
        let mut fatal = None;
        let mut replies = futures_util::stream::iter(chunks)
            .map(|chunk| async move {
                if let Some(why) = session.stopped() {
                    return (chunk, Err(why));
                }
                let pics: Vec<InlinePicture> = chunk.iter().map(|(_, p)| p.clone()).collect();
                let mut classified = Classified::default();
                let budget = SessionSpend { session, client: gemini };
                let result = gemini.classify(&pics, &budget, &mut classified).await;
                (chunk, Ok((classified, result)))
            })
            .buffer_unordered(gemini.settings().concurrency.max(1));
        while let Some((chunk, reply)) = replies.next().await {
            let (classified, result) = match reply {
                Err(why) => {
                    for (i, _) in &chunk {
                        outcomes[*i].gemini_abstain = Some(format!("Gemini not asked: {why}"));
                        totals.gemini_unavailable += 1;
                    }
                    continue;
                }
                Ok(answered) => answered,
            };
            totals.requests += classified.requests.len();
            let cost: i64 = classified.requests.iter().map(|r| r.cost_nano_usd).sum();
            for r in &classified.requests {
                totals.usage.add(&r.usage);
            }
            totals.cost_nano_usd += cost;
            let answered = classified
                .answers
                .iter()
                .filter(|a| !matches!(a, Answer::Abstain(r) if r == NOT_SENT || r == OVER_BUDGET))
                .count();
            let share = if answered > 0 { cost / answered as i64 } else { 0 };
            for (k, (i, _)) in chunk.iter().enumerate() {
                let outcome = &mut outcomes[*i];
                match classified.answers.get(k) {
                    Some(Answer::Label(label)) => {
                        outcome.gemini = Some(label.to_result(&gemini.model_version()));
                        outcome.cost_nano_usd = share;
                        totals.sent_to_gemini += 1;
                        totals.gemini_labelled += 1;
                    }
                    Some(Answer::Abstain(reason)) if reason == OVER_BUDGET => {
                        outcome.gemini_abstain = Some(reason.clone());
                        totals.over_budget += 1;
                    }
                    Some(Answer::Abstain(reason)) if reason != NOT_SENT => {
                        outcome.gemini_abstain = Some(reason.clone());
                        outcome.cost_nano_usd = share;
                        totals.sent_to_gemini += 1;
                        totals.gemini_abstained += 1;
                    }
                    _ => {
                        let why =
                            result.as_ref().err().map_or_else(|| "no answer".to_owned(), ToString::to_string);
                        outcome.gemini_abstain = Some(format!("Gemini unavailable: {why}"));
                        totals.gemini_unavailable += 1;
                    }
                }
            }
            requests.extend(classified.requests);
            // Every picture of a request refused on its own: the request, not a picture, is
            // wrong (a model or setting the API does not take). Stop rather than pay for more.
            let refused = |a: &Answer| matches!(a, Answer::Abstain(r) if r.starts_with(REFUSED));
            let result = match result {
                Ok(()) if chunk.len() > 1 && classified.answers.iter().all(refused) => {
                    let why = match classified.answers.first() {
                        Some(Answer::Abstain(r)) => r.clone(),
                        _ => String::new(),
                    };
                    Err(GeminiError::RefusesEverything(why))
                }
                other => other,
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "Gemini stopped for this run; remaining pictures keep their local result");
                session.stop(e.to_string());
                if e.is_fatal() && fatal.is_none() {
                    fatal = Some(e);
                }
            }
        }
        fatal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::result::{AgeEstimate, Bracket, BracketProbs, GenderEstimate};

    fn rules() -> CascadeSettings {
        CascadeSettings {
            min_gender_confidence: 0.9,
            min_age_confidence: 0.0,
            send_groups: true,
            send_no_person: false,
        }
    }

    fn person(p_male: f32, label: Option<Gender>) -> PictureResult {
        PictureResult {
            model: "m".into(),
            profile_type: ProfileType::Person,
            face_count: 1,
            face: None,
            gender: Some(GenderEstimate { label, p_male, abstain: None }),
            age: Some(AgeEstimate {
                years: 30.0,
                bracket: Bracket::From25,
                brackets: BracketProbs([0.0, 0.2, 0.4, 0.2, 0.1, 0.1, 0.0]),
                raw_expected: 30.0,
            }),
            abstain: None,
            no_person_kind: None,
        }
    }

    #[test]
    fn only_unsure_results_go_to_gemini() {
        let r = rules();
        assert_eq!(needs_gemini(&person(0.97, Some(Gender::Male)), &r), None);
        assert_eq!(needs_gemini(&person(0.03, Some(Gender::Female)), &r), None);
        assert_eq!(needs_gemini(&person(0.85, Some(Gender::Male)), &r), Some("gender_below_threshold"));
        assert_eq!(needs_gemini(&person(0.6, None), &r), Some("gender_low_confidence"));
        let mut small = person(0.5, None);
        small.gender = None;
        small.abstain = Some(Abstain::FaceTooSmall);
        assert_eq!(needs_gemini(&small, &r), Some("face_too_small"));
        let mut group = person(0.99, Some(Gender::Male));
        group.profile_type = ProfileType::Group;
        assert_eq!(needs_gemini(&group, &r), Some("group"));
        assert_eq!(needs_gemini(&group, &CascadeSettings { send_groups: false, ..r.clone() }), None);
        let mut logo = person(0.5, None);
        logo.profile_type = ProfileType::NoPerson;
        assert_eq!(needs_gemini(&logo, &r), None);
        assert_eq!(
            needs_gemini(&logo, &CascadeSettings { send_no_person: true, ..r.clone() }),
            Some("no_person")
        );
        let mut avatar = logo.clone();
        avatar.profile_type = ProfileType::DefaultAvatar;
        assert_eq!(needs_gemini(&avatar, &CascadeSettings { send_no_person: true, ..r.clone() }), None);
        // Age: the most likely bracket has 0.4.
        let strict = CascadeSettings { min_age_confidence: 0.5, ..r };
        assert_eq!(needs_gemini(&person(0.97, Some(Gender::Male)), &strict), Some("age_below_threshold"));
    }

    #[tokio::test]
    async fn the_budget_reserves_the_worst_case_and_settles_the_real_cost() {
        let budget = Arc::new(Budget::new(1000, 100));
        assert!(budget.reserve(600).await);
        assert!(budget.reserve(300).await);
        // 100 spent + 900 reserved: a third reservation waits for a settle...
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(301).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        // ...and fits once the first one costs far less than its worst case.
        budget.settle(600, 250);
        assert!(waiting.await.unwrap(), "350 spent + 300 + 301 reserved <= 1000");
        budget.settle(300, 300);
        budget.settle(301, 301);
        assert_eq!(budget.spent_nano_usd(), 951);
        // Nothing outstanding and it does not fit: refused at once.
        assert!(!budget.reserve(50).await);
        assert!(budget.reserve(49).await);
    }
}
