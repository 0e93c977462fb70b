//! Gemini over real HTTP against a stub that answers as `generateContent` does: the request's
//! exact shape, errors and retries, odd answers (blocked, cut off, malformed, missing or
//! duplicated indexes, values outside the schema), and the cascade with its ledger and budget
//! on a real database.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audiencelens::cascade::{self, Mode};
use audiencelens::clients::gemini::{self, Answer, Classified, GeminiClient, GeminiError, InlinePicture};
use audiencelens::config::Config;
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::{TestDb, drain_jobs};

const KEY: &str = "AIzaTESTKEY-not-a-real-key";
const ENDPOINT: &str = "/v1beta/models/gemini-2.5-flash-lite:generateContent";

/// What the stub saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    body: Value,
    key: Option<String>,
    images: Vec<Vec<u8>>,
}

/// Answers each request with `answer(request number, images)`; keeps every request.
#[derive(Clone)]
struct Stub {
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Arc<dyn Fn(usize, &[Vec<u8>]) -> ResponseTemplate + Send + Sync>,
}

impl Respond for Stub {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).expect("JSON body");
        let images: Vec<Vec<u8>> = body["contents"][0]["parts"]
            .as_array()
            .expect("parts")
            .iter()
            .filter_map(|p| p.get("inline_data").or_else(|| p.get("inlineData")))
            .map(|d| {
                base64::engine::general_purpose::STANDARD
                    .decode(d["data"].as_str().expect("data"))
                    .expect("b64")
            })
            .collect();
        let key = request.headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let n = {
            let mut seen = self.seen.lock().unwrap();
            seen.push(Seen { body, key, images: images.clone() });
            seen.len() - 1
        };
        (self.answer)(n, &images)
    }
}

async fn start_stub(
    answer: impl Fn(usize, &[Vec<u8>]) -> ResponseTemplate + Send + Sync + 'static,
) -> (MockServer, Stub) {
    let server = MockServer::start().await;
    let stub = Stub { seen: Arc::default(), answer: Arc::new(answer) };
    Mock::given(method("POST")).and(path(ENDPOINT)).respond_with(stub.clone()).mount(&server).await;
    (server, stub)
}

fn vars(server: &MockServer, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = vec![
        ("AUDIENCELENS__GEMINI__BASE_URL".to_owned(), server.uri()),
        ("AUDIENCELENS__GEMINI__RETRY_BASE_MS".to_owned(), "10".to_owned()),
        ("GEMINI_API_KEY".to_owned(), KEY.to_owned()),
    ];
    v.extend(extra.iter().map(|(k, val)| ((*k).to_owned(), (*val).to_owned())));
    v
}

fn client(server: &MockServer, extra: &[(&str, &str)]) -> GeminiClient {
    let config = Config::load_from(None, &vars(server, extra)).expect("config");
    GeminiClient::new(&config.settings.gemini, config.secrets.gemini_api_key.as_ref()).expect("client")
}

/// The usage the stub reports for a request of `n` pictures.
fn usage(n: usize) -> Value {
    let (prompt, out) = (100 * n + 50, 20 * n);
    json!({"promptTokenCount": prompt, "candidatesTokenCount": out, "totalTokenCount": prompt + out,
           "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 50}, {"modality": "IMAGE", "tokenCount": 100 * n}]})
}

fn item(index: usize, gender: &str) -> Value {
    json!({"index": index, "profile_type": "person", "no_person_kind": "none", "gender": gender,
           "age_bracket": "25-34", "confidence": 0.93})
}

/// A 200 answer whose text is `text`, finished for `finish`.
fn answer_text(text: &str, finish: &str, n: usize) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": finish, "index": 0}],
        "usageMetadata": usage(n), "modelVersion": "gemini-2.5-flash-lite", "responseId": "r1"}))
}

/// Everyone is a woman of 25-34 unless the picture's first pixel row says otherwise.
fn labels_for(images: &[Vec<u8>]) -> ResponseTemplate {
    let items: Vec<Value> = (0..images.len()).map(|i| item(i, "female")).collect();
    answer_text(&Value::Array(items).to_string(), "STOP", images.len())
}

fn error(status: u16, code: &str, message: &str, details: &Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(
        json!({"error": {"code": status, "message": message, "status": code, "details": details}}),
    )
}

fn picture(shade: u8) -> InlinePicture {
    InlinePicture::sniff(crate::stubs::jpeg(40, 40, [shade, 100, 200])).expect("jpeg")
}

async fn classify(
    client: &GeminiClient,
    pictures: &[InlinePicture],
) -> (Result<(), GeminiError>, Classified) {
    let mut out = Classified::default();
    let result = client.classify(pictures, &gemini::Unlimited, &mut out).await;
    (result, out)
}

#[tokio::test]
async fn the_request_has_the_documented_shape() {
    let (server, stub) = start_stub(|_, images| labels_for(images)).await;
    let client = client(&server, &[]);
    let mut png = Vec::new();
    image::RgbImage::from_pixel(30, 30, image::Rgb([1, 2, 3]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let pictures = vec![picture(10), InlinePicture::sniff(png.clone()).expect("png")];
    let (result, out) = classify(&client, &pictures).await;
    result.expect("classified");
    assert!(out.answers.iter().all(|a| matches!(a, Answer::Label(_))), "{:?}", out.answers);
    let seen = stub.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.key.as_deref(), Some(KEY));
    assert_eq!(request.images, vec![pictures[0].bytes.clone(), png]);
    let body = &request.body;
    assert_eq!(body["systemInstruction"]["parts"][0]["text"], gemini::SYSTEM_INSTRUCTION);
    let parts = body["contents"][0]["parts"].as_array().unwrap();
    assert_eq!(body["contents"][0]["role"], "user");
    assert_eq!(parts[0]["text"], "Image 0:");
    assert_eq!(parts[1]["inline_data"]["mime_type"], "image/jpeg");
    assert_eq!(parts[2]["text"], "Image 1:");
    assert_eq!(parts[3]["inline_data"]["mime_type"], "image/png");
    assert!(parts[4]["text"].as_str().unwrap().contains("0 to 1"));
    let generation = &body["generationConfig"];
    assert_eq!(generation["temperature"], 0);
    assert_eq!(generation["responseMimeType"], "application/json");
    assert_eq!(generation["responseJsonSchema"], gemini::response_schema());
    assert!(generation.get("responseSchema").is_none(), "one schema form only");
    assert_eq!(generation["mediaResolution"], "MEDIA_RESOLUTION_LOW");
    assert_eq!(generation["thinkingConfig"], json!({"thinkingBudget": 0}));
    assert_eq!(generation["maxOutputTokens"], 48 * 2 + 16);
    // The ledger record: the stub's tokens at the configured price ($0.10 / $0.40 per million).
    assert_eq!(out.requests.len(), 1);
    let r = &out.requests[0];
    assert_eq!((r.usage.prompt_tokens, r.usage.candidates_tokens, r.usage.total_tokens), (250, 40, 290));
    assert_eq!(r.cost_nano_usd, 250 * 100 + 40 * 400);
    assert_eq!(r.outcome, "ok");
}

#[tokio::test]
async fn errors_are_typed_and_say_what_to_do() {
    let cases: Vec<(ResponseTemplate, fn(&GeminiError) -> bool, &str)> = vec![
        (
            error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                &json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]),
            ),
            |e| matches!(e, GeminiError::InvalidKey(_)),
            "GEMINI_API_KEY",
        ),
        (
            error(400, "FAILED_PRECONDITION", "User location is not supported for the API use.", &json!([])),
            |e| matches!(e, GeminiError::FailedPrecondition(_)),
            "billing",
        ),
        (
            error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers.", &json!([])),
            |e| matches!(e, GeminiError::PermissionDenied(_)),
            "enabled",
        ),
        (
            error(
                404,
                "NOT_FOUND",
                "models/gemini-2.5-flash-lite is not found for API version v1beta",
                &json!([]),
            ),
            |e| matches!(e, GeminiError::ModelNotFound { .. }),
            "gemini.model",
        ),
    ];
    for (response, kind, advice) in cases {
        let response = Arc::new(response);
        let (server, stub) = start_stub(move |_, _| (*response).clone()).await;
        let (result, out) = classify(&client(&server, &[]), &[picture(1), picture(2)]).await;
        let e = result.expect_err("an error");
        assert!(kind(&e), "{e:?}");
        assert!(e.is_fatal());
        assert!(e.to_string().contains(advice), "{e}");
        assert!(!e.to_string().contains(KEY), "never the key: {e}");
        assert_eq!(stub.seen.lock().unwrap().len(), 1, "not retried: {e}");
        assert!(out.requests.is_empty(), "nothing billed");
    }
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    // 500 then 503 then an answer: retried.
    let (server, stub) = start_stub(|n, images| match n {
        0 => error(500, "INTERNAL", "An internal error has occurred.", &json!([])),
        1 => error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.", &json!([])),
        _ => labels_for(images),
    })
    .await;
    let (result, out) = classify(&client(&server, &[]), &[picture(1)]).await;
    result.expect("retried");
    assert!(matches!(out.answers[0], Answer::Label(_)));
    assert_eq!(stub.seen.lock().unwrap().len(), 3);
    // Always 503: given up after max_retries, an outage (not fatal).
    let (server, stub) = start_stub(|_, _| error(503, "UNAVAILABLE", "overloaded", &json!([]))).await;
    let (result, _) =
        classify(&client(&server, &[("AUDIENCELENS__GEMINI__MAX_RETRIES", "2")]), &[picture(1)]).await;
    let e = result.expect_err("gave up");
    assert!(matches!(e, GeminiError::Server { status: 503, .. }) && e.is_outage() && !e.is_fatal(), "{e:?}");
    assert_eq!(stub.seen.lock().unwrap().len(), 3, "one try and two retries");
}

#[tokio::test]
async fn a_429_waits_the_retry_delay_it_names() {
    let quota = json!([
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
         "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                         "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}
    ]);
    let (server, stub) = start_stub(move |n, images| {
        if n == 0 {
            error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", &quota)
        } else {
            labels_for(images)
        }
    })
    .await;
    let started = Instant::now();
    let (result, _) = classify(&client(&server, &[]), &[picture(1)]).await;
    result.expect("answered after the wait");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1500), "the named delay is honoured: {waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    assert_eq!(stub.seen.lock().unwrap().len(), 2);
}

/// The picture the stub treats as the troublemaker.
fn culprit() -> InlinePicture {
    picture(250)
}

#[tokio::test]
async fn a_request_blocked_as_a_whole_is_split_until_the_culprit_is_alone() {
    let bad = culprit().bytes;
    for blocked in ["prompt", "candidate", "refused"] {
        let bad = bad.clone();
        let (server, stub) = start_stub(move |_, images| {
            if !images.contains(&bad) {
                return labels_for(images);
            }
            match blocked {
                "prompt" => ResponseTemplate::new(200)
                    .set_body_json(json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": usage(images.len())})),
                "candidate" => ResponseTemplate::new(200).set_body_json(json!({
                    "candidates": [{"finishReason": "SAFETY", "index": 0}], "usageMetadata": usage(images.len())})),
                _ => error(400, "INVALID_ARGUMENT", "Unable to process input image.", &json!([])),
            }
        })
        .await;
        let pictures = vec![picture(1), picture(2), culprit(), picture(3)];
        let (result, out) = classify(&client(&server, &[]), &pictures).await;
        result.expect("no error for the batch");
        for (i, answer) in out.answers.iter().enumerate() {
            if i == 2 {
                assert!(
                    matches!(answer, Answer::Abstain(r) if r.contains("SAFETY") || r.contains("refused")),
                    "{blocked}: {answer:?}"
                );
            } else {
                assert!(matches!(answer, Answer::Label(_)), "{blocked}: the rest is kept: {answer:?}");
            }
        }
        // 4 → 2 + 2 → the clean half answers, the other splits into 1 + 1.
        let sizes: Vec<usize> = stub.seen.lock().unwrap().iter().map(|s| s.images.len()).collect();
        assert_eq!(sizes, vec![4, 2, 2, 1, 1], "{blocked}");
        // A refused request (HTTP 400) reports no tokens and is not billed.
        let billed = if blocked == "refused" { 2 } else { 5 };
        assert_eq!(out.requests.len(), billed, "{blocked}: every answered request is in the ledger");
    }
}

#[tokio::test]
async fn odd_answers_cost_only_the_pictures_they_concern() {
    // One answer with everything wrong that can be wrong per item.
    let (server, _stub) = start_stub(|_, images| {
        let mut items = vec![
            item(0, "female"),
            item(1, "robot"),
            item(2, "male"),
            item(2, "female"),
            // 3 missing
            json!({"index": 4, "profile_type": "alien", "gender": "male", "age_bracket": "25-34", "confidence": 0.5}),
            json!({"index": 5, "profile_type": "no_person", "no_person_kind": "pet", "gender": "unknown",
                   "age_bracket": "unknown", "confidence": 0.99}),
            json!({"index": 6, "profile_type": "person", "gender": "male", "age_bracket": "99-120", "confidence": 0.5}),
            json!({"index": 42, "profile_type": "person", "gender": "male", "age_bracket": "18-24", "confidence": 0.5}),
        ];
        items.truncate(8);
        answer_text(&Value::Array(items).to_string(), "STOP", images.len())
    })
    .await;
    let pictures: Vec<InlinePicture> = (0..7).map(picture).collect();
    let (result, out) = classify(&client(&server, &[]), &pictures).await;
    result.expect("kept");
    let reason = |i: usize| match &out.answers[i] {
        Answer::Abstain(r) => r.clone(),
        Answer::Label(l) => format!("label {l:?}"),
    };
    assert!(matches!(out.answers[0], Answer::Label(_)));
    assert!(reason(1).contains("invalid gender") && reason(1).contains("robot"), "{}", reason(1));
    assert!(reason(2).contains("twice"), "{}", reason(2));
    assert!(reason(3).contains("missing"), "{}", reason(3));
    assert!(reason(4).contains("profile_type"), "{}", reason(4));
    match &out.answers[5] {
        Answer::Label(l) => {
            assert_eq!(l.no_person_kind, Some(audiencelens::vision::result::NoPersonKind::Pet));
        }
        other @ Answer::Abstain(_) => panic!("{other:?}"),
    }
    assert!(reason(6).contains("age_bracket"), "{}", reason(6));
    assert_eq!(out.requests.len(), 1, "nothing re-sent for per-picture problems");
}

#[tokio::test]
async fn truncated_and_malformed_answers() {
    // MAX_TOKENS: the complete entries are kept, the rest asked again.
    let (server, stub) = start_stub(|n, images| {
        if n == 0 {
            let full = Value::Array((0..images.len()).map(|i| item(i, "male")).collect()).to_string();
            let cut = &full[..full.find("\"index\":2").unwrap() + 4];
            answer_text(cut, "MAX_TOKENS", images.len())
        } else {
            labels_for(images)
        }
    })
    .await;
    let pictures: Vec<InlinePicture> = (0..4).map(picture).collect();
    let (result, out) = classify(&client(&server, &[]), &pictures).await;
    result.expect("kept");
    assert!(out.answers.iter().all(|a| matches!(a, Answer::Label(_))), "{:?}", out.answers);
    let seen = stub.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].images,
        vec![pictures[2].bytes.clone(), pictures[3].bytes.clone()],
        "only the cut-off ones"
    );
    assert_eq!(out.requests[0].outcome, "finish:MAX_TOKENS");

    // Not JSON at all, every time: each picture ends up alone and abstains; nothing crashes.
    let (server, stub) =
        start_stub(|_, images| answer_text("[{\"index\": 0, \"gend", "STOP", images.len())).await;
    let (result, out) = classify(&client(&server, &[]), &pictures[..2]).await;
    result.expect("no error");
    assert!(
        out.answers.iter().all(|a| matches!(a, Answer::Abstain(r) if r.contains("not valid JSON"))),
        "{:?}",
        out.answers
    );
    assert_eq!(stub.seen.lock().unwrap().len(), 3, "2 → 1 + 1");
    // A body that is not Gemini's JSON.
    let (server, _) =
        start_stub(|_, _| ResponseTemplate::new(200).set_body_string("<html>proxy error</html>")).await;
    let (result, out) = classify(&client(&server, &[]), &pictures[..1]).await;
    result.expect("no error");
    assert!(
        matches!(&out.answers[0], Answer::Abstain(r) if r.contains("not Gemini's JSON")),
        "{:?}",
        out.answers
    );
}

#[test]
fn without_a_key_the_message_says_how_to_set_one() {
    let config = Config::load_from(None, &[]).expect("config");
    let e = GeminiClient::new(&config.settings.gemini, None).expect_err("no key");
    assert!(e.to_string().contains("GEMINI_API_KEY"), "{e}");
}

#[test]
fn the_prompt_and_schema_ask_for_no_special_category() {
    let text = format!("{} {}", gemini::SYSTEM_INSTRUCTION, gemini::response_schema());
    assert_eq!(crate::privacy::forbidden_in(&text), Vec::<String>::new());
    // The properties are exactly these.
    let schema = gemini::response_schema();
    let properties: BTreeSet<&str> =
        schema["items"]["properties"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        properties,
        BTreeSet::from(["index", "profile_type", "no_person_kind", "gender", "age_bracket", "confidence"])
    );
}

fn demo_pictures() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/demo-data/pictures");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("demo pictures").flatten().map(|e| e.path()).collect();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect()
}

/// An account whose commenters' pictures are `pictures`, fetched and waiting to be classified;
/// returns the account's id.
async fn account_with_pictures(
    db: &TestDb,
    pictures: &[(String, Vec<u8>)],
    budget_micro_usd: Option<i64>,
) -> i64 {
    db.execute("INSERT INTO users (email, password_hash) VALUES ('g@example.com', '!')").await;
    db.execute(&format!(
        "INSERT INTO tracked_accounts (user_id, handle, budget_micro_usd) SELECT id, 'cascade.brand', {} FROM users",
        budget_micro_usd.map_or("NULL".into(), |b| b.to_string())
    ))
    .await;
    db.execute("INSERT INTO posts (ig_post_id, owner_username) VALUES ('P1', 'cascade.brand')").await;
    db.execute("INSERT INTO tracked_account_posts (tracked_account_id, post_id) SELECT t.id, p.id FROM tracked_accounts t, posts p").await;
    for (i, (name, bytes)) in pictures.iter().enumerate() {
        let hash = hex::encode(Sha256::digest(bytes));
        let data = hex::encode(bytes);
        db.execute(&format!(
            "WITH p AS (INSERT INTO ig_profiles (ig_user_id, username) VALUES ('{id}', 'fan{i}') RETURNING id)
             , c AS (INSERT INTO comments (ig_comment_id, post_id, ig_profile_id) SELECT 'C{i}', (SELECT id FROM posts), id FROM p)
             INSERT INTO profile_pictures (ig_profile_id, source_url, source_path, content_sha256, fetch_status)
             SELECT id, 'https://cdn.example/{name}', 'https://cdn.example/{name}', '\\x{hash}', 'fetched' FROM p",
            id = 7_000 + i
        ))
        .await;
        db.execute(&format!(
            "INSERT INTO picture_blobs (content_sha256, bytes) VALUES ('\\x{hash}', '\\x{data}') ON CONFLICT DO NOTHING"
        ))
        .await;
    }
    db.count("SELECT id AS n FROM tracked_accounts").await
}

#[derive(Debug, PartialEq, diesel::QueryableByName)]
struct Ledger {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    requests: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    prompt: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    output: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    nano: i64,
}

async fn ledger(db: &TestDb) -> Ledger {
    use diesel_async::RunQueryDsl;
    diesel::sql_query(
        "SELECT count(*)::bigint AS requests, coalesce(sum(prompt_tokens), 0)::bigint AS prompt,
                coalesce(sum(candidates_tokens), 0)::bigint AS output, coalesce(sum(cost_nano_usd), 0)::bigint AS nano
         FROM gemini_requests",
    )
    .get_result(&mut db.conn().await)
    .await
    .expect("ledger")
}

/// Runs a cascade analysis of the account over what is stored and returns it.
async fn analyse(
    db: &TestDb,
    state: &audiencelens::app::AppState,
    account_id: i64,
) -> audiencelens::analyses::Analysis {
    analyse_as(db, state, account_id, "cascade").await
}

/// Runs an analysis with `classifier` of the account over what is stored and returns it.
async fn analyse_as(
    db: &TestDb,
    state: &audiencelens::app::AppState,
    account_id: i64,
    classifier: &str,
) -> audiencelens::analyses::Analysis {
    use audiencelens::jobs::classify::ClassifyPictures;
    let mut conn = db.conn().await;
    let analysis =
        audiencelens::analyses::create_analysis(&mut conn, account_id, classifier).await.expect("analysis");
    audiencelens::queue::enqueue_one(
        &mut conn,
        audiencelens::jobs::new_job(&state.config, &ClassifyPictures { analysis_id: analysis.id }).unwrap(),
    )
    .await
    .expect("enqueue");
    drop(conn);
    drain_jobs(state, Duration::from_mins(2)).await;
    audiencelens::analyses::get_analysis(&mut *db.conn().await, analysis.id).await.expect("analysis")
}

/// The test database's configuration with the stub, the model files and `extra`.
fn cascade_config(db: &TestDb, server: &MockServer, extra: &[(&str, &str)]) -> Config {
    let mut all = vars(server, extra);
    let models = concat!(env!("CARGO_MANIFEST_DIR"), "/models");
    all.push(("AUDIENCELENS__VISION__MODELS_DIR".into(), models.into()));
    all.push(("AUDIENCELENS__VISION__ONNXRUNTIME_LIBRARY".into(), format!("{models}/libonnxruntime.so")));
    let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    db.config(&refs)
}

/// A cascade analysis, against `server`, of an account whose commenters' pictures are
/// `pictures` (with its own budget, if given): the database, the state and the analysis done.
async fn cascade_analysis(
    server: &MockServer,
    extra: &[(&str, &str)],
    pictures: &[(String, Vec<u8>)],
    budget_micro_usd: Option<i64>,
) -> (TestDb, audiencelens::app::AppState, audiencelens::analyses::Analysis) {
    let db = TestDb::new().await;
    let state = audiencelens::app::AppState::build(cascade_config(&db, server, extra)).expect("state");
    let account = account_with_pictures(&db, pictures, budget_micro_usd).await;
    let analysis = analyse(&db, &state, account).await;
    (db, state, analysis)
}

/// The local model is needed (scripts/test fetches it): fail, naming the fix, without it.
fn models_present() -> bool {
    let ok = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/blazeface.onnx").exists();
    assert!(ok, "the model files are missing: run scripts/fetch-models.sh");
    ok
}

#[tokio::test]
async fn the_cascade_sends_only_unsure_pictures_and_the_ledger_matches() {
    if !models_present() {
        return;
    }
    let pictures = demo_pictures();
    let (server, stub) = start_stub(|_, images| labels_for(images)).await;
    let db = TestDb::new().await;
    let extra = [
        ("AUDIENCELENS__GEMINI__BATCH_SIZE", "3"),
        ("AUDIENCELENS__GEMINI__CASCADE__SEND_NO_PERSON", "true"),
    ];
    let config = cascade_config(&db, &server, &extra);
    // Which pictures the local model is unsure of, by the same rules.
    let local = audiencelens::vision::Classifier::load(&config.settings.vision).expect("models");
    let unsure: BTreeSet<String> = pictures
        .iter()
        .filter(|(_, bytes)| {
            let r = local.classify(bytes).expect("demo pictures are readable");
            cascade::needs_gemini(&r, &config.settings.gemini.cascade).is_some()
        })
        .map(|(_, bytes)| hex::encode(Sha256::digest(bytes)))
        .collect();
    assert!(!unsure.is_empty() && unsure.len() < pictures.len(), "a mixed set: {unsure:?}");
    let state = audiencelens::app::AppState::build(config).expect("state");
    let account = account_with_pictures(&db, &pictures, None).await;
    let analysis = analyse(&db, &state, account).await;
    assert_eq!(analysis.status, "succeeded", "{:?}", analysis.error);

    let seen = stub.seen.lock().unwrap().clone();
    let sent: BTreeSet<String> =
        seen.iter().flat_map(|s| &s.images).map(|b| hex::encode(Sha256::digest(b))).collect();
    assert_eq!(sent, unsure, "exactly the unsure pictures, each once");
    assert_eq!(seen.iter().map(|s| s.images.len()).sum::<usize>(), unsure.len());
    assert!(seen.iter().all(|s| s.images.len() <= 3), "batch size");

    // The ledger holds what the stub reported, priced at $0.10 / $0.40 per million tokens.
    let prompt: i64 = seen.iter().map(|s| 100 * s.images.len() as i64 + 50).sum();
    let output: i64 = seen.iter().map(|s| 20 * s.images.len() as i64).sum();
    let want = Ledger { requests: seen.len() as i64, prompt, output, nano: prompt * 100 + output * 400 };
    assert_eq!(ledger(&db).await, want);
    assert_eq!(analysis.cost_micro_usd, want.nano / 1000);
    let user_id = db.count("SELECT id AS n FROM users").await;
    let usage = cascade::ledger::usage(&mut *db.conn().await, user_id, 10).await.expect("usage");
    assert_eq!(usage.total.cost_nano_usd, want.nano);
    assert_eq!(usage.accounts.len(), 1);
    assert_eq!(usage.analyses[0].analysis_id, analysis.id);

    // Both results are stored with their source; the estimate used Gemini's where it had one.
    assert_eq!(
        db.count("SELECT count(*) AS n FROM classifications WHERE source_model = 'local'").await,
        pictures.len() as i64 - duplicates(&pictures)
    );
    assert_eq!(
        db.count("SELECT count(*) AS n FROM classifications WHERE source_model = 'gemini'").await,
        unsure.len() as i64
    );
    assert_eq!(db.count("SELECT count(*) AS n FROM picture_blobs").await, 0, "bytes deleted");
    let snapshot = analysis.snapshot.expect("snapshot");
    assert_eq!(snapshot["cost"]["gemini"]["sent"], unsure.len());
    assert_eq!(snapshot["cost"]["gemini"]["over_budget"], 0);
    assert!(
        (snapshot["cost"]["total_usd"].as_f64().unwrap() - (want.nano / 1000) as f64 / 1e6).abs() < 1e-12
    );
}

#[tokio::test]
async fn a_picture_gemini_already_answered_is_not_paid_for_again() {
    if !models_present() {
        return;
    }
    let pictures: Vec<(String, Vec<u8>)> = demo_pictures().into_iter().take(4).collect();
    let (server, stub) = start_stub(|_, images| labels_for(images)).await;
    let db = TestDb::new().await;
    let state = audiencelens::app::AppState::build(cascade_config(&db, &server, &[])).expect("state");
    let account = account_with_pictures(&db, &pictures, None).await;
    let first = analyse_as(&db, &state, account, "gemini").await;
    assert_eq!(first.status, "succeeded", "{:?}", first.error);
    let sent = |stub: &Stub| stub.seen.lock().unwrap().iter().map(|s| s.images.len()).sum::<usize>();
    let unique = pictures.len() - duplicates(&pictures) as usize;
    assert_eq!(sent(&stub), unique);
    assert_eq!(db.count("SELECT count(*) AS n FROM picture_blobs").await, 0);

    // The same pictures fetched again (another profile, a later scrape): held, already answered.
    for (_, bytes) in &pictures {
        db.execute(&format!(
            "INSERT INTO picture_blobs (content_sha256, bytes) VALUES ('\\x{}', '\\x{}') ON CONFLICT DO NOTHING",
            hex::encode(Sha256::digest(bytes)),
            hex::encode(bytes)
        ))
        .await;
    }
    let second = analyse_as(&db, &state, account, "gemini").await;
    assert_eq!(second.status, "succeeded", "{:?}", second.error);
    assert_eq!(sent(&stub), unique, "nothing sent twice");
    assert_eq!(db.count("SELECT count(*) AS n FROM picture_blobs").await, 0, "bytes released");
}

fn duplicates(pictures: &[(String, Vec<u8>)]) -> i64 {
    let unique: BTreeSet<&Vec<u8>> = pictures.iter().map(|(_, b)| b).collect();
    (pictures.len() - unique.len()) as i64
}

#[tokio::test]
async fn the_budget_cap_holds_and_the_report_says_so() {
    if !models_present() {
        return;
    }
    let pictures = demo_pictures();
    // Every other two-picture request is blocked as a whole: the splits that follow spend
    // money too, and must stay inside the budget.
    let (server, stub) = start_stub(|n, images| {
        if images.len() == 2 && n % 2 == 0 {
            ResponseTemplate::new(200)
                .set_body_json(json!({"promptFeedback": {"blockReason": "OTHER"}, "usageMetadata": usage(2)}))
        } else {
            labels_for(images)
        }
    })
    .await;
    let extra = [
        ("AUDIENCELENS__GEMINI__BATCH_SIZE", "2"),
        ("AUDIENCELENS__GEMINI__CONCURRENCY", "2"),
        ("AUDIENCELENS__GEMINI__CASCADE__SEND_NO_PERSON", "true"),
        ("AUDIENCELENS__GEMINI__CASCADE__MIN_GENDER_CONFIDENCE", "1.0"),
    ];
    // 180 micro-dollars: room for some requests, not all.
    let budget_micro = 180;
    let (db, state, analysis) = cascade_analysis(&server, &extra, &pictures, Some(budget_micro)).await;
    assert_eq!(analysis.status, "succeeded", "{:?}", analysis.error);
    let spent = ledger(&db).await;
    assert!(spent.nano <= budget_micro * 1000, "the cap holds: {spent:?}");
    assert!(spent.requests > 0);
    // ...and Gemini stopped only when one more picture's worst case no longer fitted.
    let per_picture = stub
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| (100 * s.images.len() + 50) as f64 / s.images.len() as f64)
        .fold(120.0, f64::max);
    let client = client(&server, &[]);
    let one_more = client.cost_bound_nano_usd(1, per_picture.max(f64::from(client.image_tokens_bound())));
    assert!(budget_micro * 1000 - spent.nano < one_more, "{spent:?}, one more picture: {one_more}");
    let gemini = &analysis.snapshot.as_ref().expect("snapshot")["cost"]["gemini"];
    let asked = gemini["sent"].as_u64().unwrap();
    let over = gemini["over_budget"].as_u64().unwrap();
    assert!(asked > 0 && over > 0, "{gemini}");
    // Pictures sent, counted once however often a split re-sent them: every one answered, or
    // left over budget after its blocked request was split.
    let distinct: BTreeSet<Vec<u8>> =
        stub.seen.lock().unwrap().iter().flat_map(|s| s.images.clone()).collect();
    assert!(asked as usize <= distinct.len() && distinct.len() <= (asked + over) as usize, "{gemini}");
    assert!(stub.seen.lock().unwrap().len() > distinct.len() / 2, "splits happened");
    assert!(gemini["notes"][0].as_str().unwrap().contains("budget"), "{gemini}");
    // Every picture still has a result: the local one where Gemini was not asked.
    assert_eq!(db.count("SELECT count(*) AS n FROM picture_blobs").await, 0);
    assert_eq!(
        analysis.snapshot.as_ref().unwrap()["sample"]["funnel"]["commenters"]["classified"],
        pictures.len()
    );
    // A second analysis starts with a budget of its own, and pays nothing for pictures done.
    let before = stub.seen.lock().unwrap().len();
    let account = db.count("SELECT id AS n FROM tracked_accounts").await;
    let again = analyse(&db, &state, account).await;
    assert_eq!(again.status, "succeeded");
    assert_eq!(stub.seen.lock().unwrap().len(), before, "nothing left to send");
    assert_eq!(Mode::parse(&again.classifier), Some(Mode::Cascade));
}

/// Runs the binary in the project root (where models/ is) with a clean environment, without
/// blocking the runtime the stub answers on.
async fn audiencelens(args: &[&str], vars: &[(String, String)]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_audiencelens"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AUDIENCELENS__LOG__FILTER", "warn")
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .await
        .expect("run audiencelens");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn classify_with_gemini_prints_sources_and_the_cost() {
    if !models_present() {
        return;
    }
    let (server, stub) = start_stub(|_, images| labels_for(images)).await;
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo-data/pictures");
    let pictures = demo_pictures().len();
    for (classifier, all_sent) in [("gemini", true), ("cascade", false)] {
        let before = stub.seen.lock().unwrap().iter().map(|s| s.images.len()).sum::<usize>();
        let (code, stdout, stderr) =
            audiencelens(&["classify", folder, "--summary", "--classifier", classifier], &vars(&server, &[]))
                .await;
        assert_eq!(code, 0, "{classifier}: {stderr}");
        let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
        assert_eq!(lines.len(), pictures + 1, "{stdout}");
        let sent = stub.seen.lock().unwrap().iter().map(|s| s.images.len()).sum::<usize>() - before;
        let from_gemini = lines.iter().filter(|l| l["source"] == "gemini").count();
        assert_eq!(from_gemini, sent, "{classifier}: every picture Gemini labelled says so");
        if all_sent {
            // The default avatar, too: Gemini gets every picture.
            assert_eq!(sent, pictures, "{classifier}");
        } else {
            assert!(sent < pictures, "{classifier}: only the unsure ones");
            assert!(lines.iter().any(|l| l["source"] == "local"));
        }
        let cost = lines[pictures]["cost"]["total_usd"].as_f64().expect("cost");
        assert!(cost > 0.0 || sent == 0, "{classifier}: {}", lines[pictures]);
        assert!(stderr.contains("Gemini:") && stderr.contains("cost $"), "{classifier}: {stderr}");
    }
    // Without a key: how to set one, and nothing sent.
    let mut no_key = vars(&server, &[]);
    no_key.retain(|(k, _)| k != "GEMINI_API_KEY");
    let before = stub.seen.lock().unwrap().len();
    let (code, _, stderr) = audiencelens(&["classify", folder, "--classifier", "cascade"], &no_key).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("GEMINI_API_KEY"), "{stderr}");
    assert_eq!(stub.seen.lock().unwrap().len(), before);
}

#[tokio::test]
async fn gemini_calibration_is_measured_and_then_used() {
    let (server, stub) = start_stub(|_, images| labels_for(images)).await;
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo-data/pictures");
    let files: Vec<String> = demo_pictures().into_iter().map(|(name, _)| name).collect();
    let scratch = std::env::temp_dir().join(format!("audiencelens-gemini-cal-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let labels = scratch.join("labels.csv");
    let mut csv = String::from("file,gender,age_exact\n");
    for (i, f) in files.iter().enumerate() {
        let gender = if i % 2 == 0 { "female" } else { "male" };
        writeln!(csv, "{f},{gender},{}", 20 + i).unwrap();
    }
    std::fs::write(&labels, csv).unwrap();
    let out = scratch.join("gemini.json");
    let args = [
        "calibrate",
        "--classifier",
        "gemini",
        "--images",
        folder,
        "--labels",
        labels.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let (code, _, stderr) = audiencelens(&args, &vars(&server, &[])).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("cost $"), "{stderr}");
    assert_eq!(stub.seen.lock().unwrap().iter().map(|s| s.images.len()).sum::<usize>(), files.len());
    let calibration: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(calibration["model"], "gemini/gemini-2.5-flash-lite/p1");
    // The stub calls everyone female: every true male is a female answer.
    let males = files.len() / 2;
    assert_eq!(calibration["gender"]["counts"][1], json!([males, 0, 0]), "{calibration}");
    // Configured, the file corrects Gemini's shares.
    let mut with_file = vars(&server, &[]);
    with_file.push(("AUDIENCELENS__GEMINI__CALIBRATION".into(), out.to_str().unwrap().into()));
    let (code, stdout, stderr) =
        audiencelens(&["classify", folder, "--summary", "--classifier", "gemini"], &with_file).await;
    assert_eq!(code, 0, "{stderr}");
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["summary"]["calibration"]["model"], "gemini/gemini-2.5-flash-lite/p1", "{summary}");

    // The cascade calibrated as one classifier: its final answers, whichever model gave them.
    models_present();
    let cascade_file = scratch.join("cascade.json");
    let mut args = args.to_vec();
    args[2] = "cascade";
    args[8] = cascade_file.to_str().unwrap();
    let (code, _, stderr) = audiencelens(&args, &vars(&server, &[])).await;
    assert_eq!(code, 0, "{stderr}");
    let calibration: Value = serde_json::from_str(&std::fs::read_to_string(&cascade_file).unwrap()).unwrap();
    let name = calibration["model"].as_str().unwrap().to_owned();
    assert!(
        name.starts_with("cascade/local-") && name.contains("+gemini/gemini-2.5-flash-lite/p1/rules:"),
        "{name}"
    );
    let mut with_file = vars(&server, &[]);
    with_file.push(("AUDIENCELENS__GEMINI__CALIBRATION".into(), cascade_file.to_str().unwrap().into()));
    let (code, stdout, stderr) =
        audiencelens(&["classify", folder, "--summary", "--classifier", "cascade"], &with_file).await;
    assert_eq!(code, 0, "{stderr}");
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["summary"]["calibration"]["model"], name.as_str(), "{summary}");
    assert_eq!(summary["summary"]["model"], name.as_str(), "read as one classifier");
    std::fs::remove_dir_all(&scratch).ok();
}

#[tokio::test]
async fn the_whole_flow_through_the_api_with_gemini() {
    use crate::api::Api;
    use crate::stubs::{APIFY_TOKEN, ApifyStub};

    let db = TestDb::new().await;
    let apify = ApifyStub::start().await;
    let cdn = MockServer::start().await;
    let (gemini, stub) = start_stub(|_, images| labels_for(images)).await;
    let apify_url = apify.url();
    let gemini_url = gemini.uri();
    let api = Api::start(
        &db,
        &[
            ("AUDIENCELENS__APIFY__BASE_URL", apify_url.as_str()),
            ("AUDIENCELENS__APIFY__POLL_PAUSE_MS", "5"),
            ("APIFY_TOKEN", APIFY_TOKEN),
            ("AUDIENCELENS__GEMINI__BASE_URL", gemini_url.as_str()),
            ("GEMINI_API_KEY", KEY),
            ("AUDIENCELENS__VISION__MODELS_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/models")),
            (
                "AUDIENCELENS__VISION__ONNXRUNTIME_LIBRARY",
                concat!(env!("CARGO_MANIFEST_DIR"), "/models/libonnxruntime.so"),
            ),
        ],
    );
    crate::api::twelve_fans(&apify, &cdn, "g.brand").await;

    let token = api.user("gemini@example.com").await;
    let t = Some(token.as_str());
    let account = api.account(t, "g.brand").await;
    let started = api
        .call(
            "POST",
            &format!("/api/v1/accounts/{account}/analyses"),
            t,
            Some(&json!({"classifier": "gemini"})),
        )
        .await;
    assert_eq!(started.status, 202, "{:?}", started.body);
    let analysis = started.body["id"].as_i64().expect("id");
    drain_jobs(&api.state, Duration::from_mins(1)).await;

    let status = api.call("GET", &format!("/api/v1/analyses/{analysis}"), t, None).await;
    assert_eq!(status.body["status"], "succeeded", "{:?}", status.body);
    // Four distinct pictures, one request; the stub calls each a woman of 25-34.
    let seen = stub.seen.lock().unwrap().clone();
    assert_eq!(seen.iter().map(|s| s.images.len()).collect::<Vec<_>>(), vec![4]);
    let nano = (100 * 4 + 50) * 100 + (20 * 4) * 400;
    assert_eq!(status.body["progress"]["gemini"]["sent"], 4);
    // The analysis's cost is Apify's runs plus Gemini's requests.
    assert!(
        (status.body["progress"]["gemini"]["cost_usd"].as_f64().unwrap() - f64::from(nano) / 1e9).abs()
            < 1e-12,
        "{:?}",
        status.body
    );
    let audience = api.call("GET", &format!("/api/v1/accounts/{account}/audience"), t, None).await.body;
    assert_eq!(audience["classifier"], "gemini");
    assert_eq!(audience["model"], "gemini/gemini-2.5-flash-lite/p1");
    assert_eq!(audience["audience"]["gender"]["n"], 12, "{}", audience["audience"]["gender"]);
    let female = audience["audience"]["gender"]["raw"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["class"] == "female")
        .map(|r| r["share"].as_f64().unwrap());
    assert_eq!(female, Some(1.0));
    assert_eq!(audience["cost"]["gemini"]["labelled"], 4);
    let page =
        api.call("GET", &format!("/api/v1/accounts/{account}/commenters?limit=50"), t, None).await.body;
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 12);
    assert!(items.iter().all(|c| c["source"] == "gemini"), "{page}");
    let usage = api.call("GET", "/api/v1/usage", t, None).await.body;
    assert_eq!(usage["total"]["requests"], 1);
    assert_eq!(usage["total"]["cost_nano_usd"], nano);
    assert_eq!(usage["accounts"][0]["handle"], "g.brand");
    assert_eq!(usage["analyses"][0]["analysis_id"], analysis);
    // Another user's usage is their own.
    let other = api.user("other@example.com").await;
    let theirs = api.call("GET", "/api/v1/usage", Some(other.as_str()), None).await.body;
    assert_eq!(theirs["total"]["requests"], 0);
    assert_eq!(theirs["accounts"], json!([]));
}

#[tokio::test]
async fn an_outage_leaves_the_local_results_and_the_report_says_so() {
    models_present();
    let pictures = demo_pictures();
    let (server, stub) = start_stub(|_, _| {
        error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.", &json!([]))
    })
    .await;
    let extra = [
        ("AUDIENCELENS__GEMINI__MAX_RETRIES", "1"),
        ("AUDIENCELENS__GEMINI__CASCADE__SEND_NO_PERSON", "true"),
    ];
    let (db, _, analysis) = cascade_analysis(&server, &extra, &pictures, None).await;
    assert_eq!(analysis.status, "succeeded", "{:?}", analysis.error);
    // One chunk tried (and retried once); the rest not asked once Gemini was found down.
    assert_eq!(stub.seen.lock().unwrap().len(), 2);
    let snapshot = analysis.snapshot.expect("snapshot");
    let gemini = &snapshot["cost"]["gemini"];
    assert_eq!(gemini["sent"], 0, "{gemini}");
    assert_eq!(gemini["over_budget"], 0, "{gemini}");
    assert!(gemini["unavailable"].as_u64().unwrap() > 0, "{gemini}");
    assert!(gemini["notes"][0].as_str().unwrap().contains("unavailable"), "{gemini}");
    assert_eq!(db.count("SELECT count(*) AS n FROM classifications WHERE source_model = 'gemini'").await, 0);
    assert_eq!(
        snapshot["sample"]["funnel"]["commenters"]["classified"],
        pictures.len(),
        "every picture keeps its local result"
    );
    assert_eq!(ledger(&db).await.requests, 0, "HTTP errors are not billed");
}

#[tokio::test]
async fn a_setting_gemini_refuses_stops_the_analysis_with_the_reason() {
    models_present();
    let pictures = demo_pictures();
    let (server, stub) = start_stub(|_, _| {
        error(400, "INVALID_ARGUMENT", "Thinking level is not supported for this model.", &json!([]))
    })
    .await;
    let extra = [
        ("AUDIENCELENS__GEMINI__BATCH_SIZE", "4"),
        ("AUDIENCELENS__GEMINI__CASCADE__SEND_NO_PERSON", "true"),
    ];
    let (db, _, analysis) = cascade_analysis(&server, &extra, &pictures, None).await;
    assert_eq!(analysis.status, "failed");
    let error = analysis.error.expect("reason");
    assert!(error.contains("refuses every picture") && error.contains("gemini.model"), "{error}");
    // The chunks in flight (gemini.concurrency = 2) narrowed down to single pictures, then
    // nothing more.
    let sizes: Vec<usize> = stub.seen.lock().unwrap().iter().map(|s| s.images.len()).collect();
    assert_eq!(sizes.first(), Some(&4));
    assert!(sizes.len() <= 2 * 7, "{sizes:?}");
    // The pictures keep their local result; none of their bytes is kept.
    assert_eq!(db.count("SELECT count(*) AS n FROM picture_blobs").await, 0);
    assert!(db.count("SELECT count(*) AS n FROM classifications WHERE source_model = 'local'").await > 0);
}

#[tokio::test]
async fn analyze_with_gemini_but_no_key_says_how_to_set_one() {
    let db = TestDb::new().await;
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apify/comments.jsonl");
    for classifier in ["gemini", "cascade"] {
        let args = ["analyze", "--import", fixture, "--account", "some.brand", "--classifier", classifier];
        let (code, _, stderr) = crate::helpers::run_cli(&db, &args, &[]).await;
        assert_ne!(code, 0);
        assert!(stderr.contains("GEMINI_API_KEY"), "{classifier}: {stderr}");
    }
    assert_eq!(db.count("SELECT count(*) AS n FROM analyses").await, 0, "nothing started");
    let (code, _, stderr) =
        crate::helpers::run_cli(&db, &["analyze", "x", "--classifier", "magic"], &[]).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("local") && stderr.contains("cascade"), "the choices are listed: {stderr}");
}

#[tokio::test]
async fn an_accounts_budget_covers_apify_first() {
    use crate::api::Api;
    use crate::stubs::{APIFY_TOKEN, ApifyStub};

    let db = TestDb::new().await;
    let apify = ApifyStub::start().await;
    let cdn = MockServer::start().await;
    let (gemini, stub) = start_stub(|_, images| labels_for(images)).await;
    let (apify_url, gemini_url) = (apify.url(), gemini.uri());
    let models = concat!(env!("CARGO_MANIFEST_DIR"), "/models");
    let ort = format!("{models}/libonnxruntime.so");
    let api = Api::start(
        &db,
        &[
            ("AUDIENCELENS__APIFY__BASE_URL", apify_url.as_str()),
            ("AUDIENCELENS__APIFY__POLL_PAUSE_MS", "5"),
            ("APIFY_TOKEN", APIFY_TOKEN),
            ("AUDIENCELENS__GEMINI__BASE_URL", gemini_url.as_str()),
            ("GEMINI_API_KEY", KEY),
            ("AUDIENCELENS__VISION__MODELS_DIR", models),
            ("AUDIENCELENS__VISION__ONNXRUNTIME_LIBRARY", ort.as_str()),
        ],
    );
    crate::api::twelve_fans(&apify, &cdn, "b.brand").await;
    let token = api.user("budget@example.com").await;
    let t = Some(token.as_str());
    // The two Apify runs cost $0.0123 each: a $0.0246 budget leaves nothing for Gemini.
    let body = json!({"handle": "b.brand", "budget_usd": 0.0246});
    let account = api.call("POST", "/api/v1/accounts", t, Some(&body)).await.body["id"].as_i64().expect("id");
    let started = api
        .call(
            "POST",
            &format!("/api/v1/accounts/{account}/analyses"),
            t,
            Some(&json!({"classifier": "gemini"})),
        )
        .await;
    assert_eq!(started.status, 202, "{:?}", started.body);
    drain_jobs(&api.state, Duration::from_mins(1)).await;
    let audience = api.call("GET", &format!("/api/v1/accounts/{account}/audience"), t, None).await.body;
    let g = &audience["cost"]["gemini"];
    assert_eq!((g["sent"].as_u64(), g["over_budget"].as_u64()), (Some(0), Some(4)), "{g}");
    assert!(g["notes"][0].as_str().unwrap().contains("budget"), "{g}");
    assert!(stub.seen.lock().unwrap().is_empty(), "nothing sent");
    assert!((audience["cost"]["total_usd"].as_f64().unwrap() - 0.0246).abs() < 1e-9, "{}", audience["cost"]);
    // Every picture keeps its local result.
    assert_eq!(audience["sample"]["funnel"]["commenters"]["classified"], 12);
}

/// `demo_pictures` in `variants` sizes each (distinct bytes, similar content).
fn many_pictures(variants: u32) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, bytes) in demo_pictures() {
        let picture = image::load_from_memory(&bytes).expect("demo picture").to_rgb8();
        for v in 0..variants {
            let side = 120 + 10 * v;
            let resized =
                image::imageops::resize(&picture, side, side, image::imageops::FilterType::Triangle);
            let mut jpeg = Vec::new();
            resized.write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).expect("encode");
            out.push((format!("{v}-{name}"), jpeg));
        }
    }
    out
}

#[tokio::test]
async fn a_short_budget_goes_to_the_least_sure_pictures_of_the_whole_account() {
    models_present();
    // More pictures than one round of the stage (64), so the order must hold across rounds.
    let pictures = many_pictures(8);
    assert!(pictures.len() > 64);
    let (server, stub) = start_stub(|_, images| labels_for(images)).await;
    let db = TestDb::new().await;
    let extra = [
        ("AUDIENCELENS__GEMINI__BATCH_SIZE", "4"),
        ("AUDIENCELENS__GEMINI__CONCURRENCY", "1"),
        ("AUDIENCELENS__GEMINI__CASCADE__MIN_GENDER_CONFIDENCE", "1.0"),
    ];
    let config = cascade_config(&db, &server, &extra);
    let local = audiencelens::vision::Classifier::load(&config.settings.vision).expect("models");
    let confidence: std::collections::HashMap<Vec<u8>, f32> = pictures
        .iter()
        .filter_map(|(_, bytes)| {
            let r = local.classify(bytes).ok()?;
            cascade::needs_gemini(&r, &config.settings.gemini.cascade)?;
            Some((bytes.clone(), cascade::local_confidence(&r)))
        })
        .collect();
    let state = audiencelens::app::AppState::build(config).expect("state");
    let account = account_with_pictures(&db, &pictures, Some(400)).await;
    let analysis = analyse(&db, &state, account).await;
    assert_eq!(analysis.status, "succeeded", "{:?}", analysis.error);
    let sent: BTreeSet<Vec<u8>> = stub.seen.lock().unwrap().iter().flat_map(|s| s.images.clone()).collect();
    let unsent: Vec<f32> = confidence.iter().filter(|(b, _)| !sent.contains(*b)).map(|(_, c)| *c).collect();
    assert!(!sent.is_empty() && !unsent.is_empty(), "the budget ran out part-way");
    let most_sure_sent = sent.iter().map(|b| confidence[b]).fold(0.0_f32, f32::max);
    let least_sure_unsent = unsent.iter().copied().fold(1.0_f32, f32::min);
    assert!(
        most_sure_sent <= least_sure_unsent,
        "sent up to confidence {most_sure_sent}, but one at {least_sure_unsent} was left"
    );
    assert_eq!(db.count("SELECT count(*) AS n FROM picture_blobs").await, 0, "all bytes deleted");
}
