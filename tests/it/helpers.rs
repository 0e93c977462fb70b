//! Test scaffolding: a fresh database per test (cloned from a template migrated once), worker
//! processes of the real binary, and polling helpers with deadlines.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use audiencelens::config::Config;
use audiencelens::db::{self, DbPool, admin};
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use secrecy::{ExposeSecret, SecretString};

/// The server tests create their databases on (trust auth on the CI machine).
pub fn server_url() -> SecretString {
    SecretString::from(
        std::env::var("AUDIENCELENS_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
    )
}

/// Name of the template for the current migrations: their content decides it, so a changed
/// migration gets a new template and stale ones are never used.
fn template_name() -> String {
    let mut hasher = DefaultHasher::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut entries: Vec<_> = walk(&dir);
    entries.sort();
    for path in entries {
        path.hash(&mut hasher);
        std::fs::read(&path).unwrap_or_default().hash(&mut hasher);
    }
    format!("audiencelens_test_tpl_{:016x}", hasher.finish())
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
        }
    }
    out
}

/// Makes sure the template exists, under an advisory lock so parallel test processes agree.
async fn ensure_template(server: &SecretString) -> String {
    let name = template_name();
    let admin_url = admin::url_for_database(server, "postgres");
    let mut conn =
        AsyncPgConnection::establish(admin_url.expose_secret()).await.expect("connect to postgres");
    diesel::sql_query("SELECT pg_advisory_lock(727274)").execute(&mut conn).await.expect("lock");
    if !admin::database_exists(server, &name).await.expect("query") {
        let building = format!("{name}_building");
        admin::drop_database(server, &building).await.expect("drop stale");
        admin::create_database(server, &building, None).await.expect("create template");
        db::run_migrations(&admin::url_for_database(server, &building)).await.expect("migrate template");
        diesel::sql_query(format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("rename template");
    }
    diesel::sql_query("SELECT pg_advisory_unlock(727274)").execute(&mut conn).await.expect("unlock");
    name
}

/// A database of this test's own, dropped when the value is.
pub struct TestDb {
    pub name: String,
    pub url: SecretString,
    pub pool: DbPool,
    server: SecretString,
}

impl TestDb {
    pub async fn new() -> Self {
        let server = server_url();
        let template = ensure_template(&server).await;
        let name = format!("audiencelens_test_{}", uuid::Uuid::new_v4().simple());
        admin::create_database(&server, &name, Some(&template)).await.expect("create test database");
        let url = admin::url_for_database(&server, &name);
        let pool = db::connect_pool(&url, 16, Duration::from_secs(10)).expect("pool");
        Self { name, url, pool, server }
    }

    /// Configuration pointing at this database, with `vars` as extra environment overrides.
    pub fn config(&self, vars: &[(&str, &str)]) -> Config {
        // Stub servers listen on 127.0.0.1: the picture fetcher may use them here.
        let mut all = vec![
            ("AUDIENCELENS__DATABASE__URL".to_owned(), self.url.expose_secret().to_owned()),
            ("AUDIENCELENS__PICTURES__ALLOWED_HOSTS".to_owned(), "127.0.0.1".to_owned()),
            ("AUDIENCELENS__PICTURES__ALLOW_LOCAL".to_owned(), "true".to_owned()),
        ];
        all.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Config::load_from(None, &all).expect("test configuration")
    }

    pub async fn conn(&self) -> db::DbConn {
        self.pool.get().await.expect("connection")
    }

    /// `SELECT count(*)`-style query returning one bigint column named `n`.
    pub async fn count(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = self.conn().await;
        let n: N =
            diesel::sql_query(sql).get_result(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        n.n
    }

    pub async fn execute(&self, sql: &str) {
        let mut conn = self.conn().await;
        diesel::sql_query(sql).execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// A post of account `account` (tracked as `handle`) commented by `{handle}.fan`, whose
    /// picture is fetched and not yet classified: its bytes (`hash`, hex) are held for the
    /// account's analysis.
    pub async fn held_picture(&self, account: i64, handle: &str, hash: &str) {
        self.execute(&format!(
            "WITH p AS (INSERT INTO posts (ig_post_id, owner_username) VALUES ('{handle}-post', '{handle}') RETURNING id),
                  l AS (INSERT INTO tracked_account_posts (tracked_account_id, post_id) SELECT {account}, id FROM p),
                  f AS (INSERT INTO ig_profiles (ig_user_id, username) VALUES ('{handle}-fan', '{handle}.fan') RETURNING id),
                  c AS (INSERT INTO comments (ig_comment_id, post_id, ig_profile_id) SELECT '{handle}-c', p.id, f.id FROM p, f)
             INSERT INTO profile_pictures (ig_profile_id, source_url, source_path, content_sha256, fetch_status)
             SELECT id, 'https://cdn.example/{handle}.fan', '/{handle}.fan', '\\x{hash}', 'fetched' FROM f"
        ))
        .await;
        self.execute(&format!(
            "INSERT INTO picture_blobs (content_sha256, bytes) VALUES ('\\x{hash}', '\\xffd8ff')"
        ))
        .await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                let _ = rt.block_on(admin::drop_database(&server, &name));
            }
        })
        .join();
    }
}

/// A `audiencelens` process of the real binary, killed when dropped.
pub struct Process {
    pub child: tokio::process::Child,
    pub log: std::path::PathBuf,
}

impl Process {
    /// Starts `audiencelens <args>` against `db` with extra environment `vars`; its log goes to
    /// a file printed when a test fails.
    pub fn start(db: &TestDb, args: &[&str], vars: &[(&str, &str)]) -> Self {
        let log = std::env::temp_dir().join(format!("{}-{}.log", db.name, uuid::Uuid::new_v4().simple()));
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_audiencelens"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AUDIENCELENS__DATABASE__URL", db.url.expose_secret())
            .env("AUDIENCELENS__LOG__FILTER", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn audiencelens");
        Self { child, log }
    }

    pub fn pid(&self) -> i32 {
        self.child.id().map(|p| p as i32).expect("running")
    }

    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{signal} failed");
    }

    /// Waits for exit; `None` on timeout.
    pub async fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait()).await.ok().and_then(Result::ok)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Polls `check` until it returns true or `timeout` passes (then panics with `what`).
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < timeout, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `audiencelens <args>` to completion; returns (exit code, stdout, stderr).
pub async fn run_cli(db: &TestDb, args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_audiencelens"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AUDIENCELENS__DATABASE__URL", db.url.expose_secret())
        .env("AUDIENCELENS__LOG__FILTER", "warn");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("run audiencelens");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the real job kinds in-process until none of their jobs is queued or running (failed
/// jobs stay failed), like a worker that stops when the queue is empty.
pub async fn drain_jobs(state: &audiencelens::app::AppState, timeout: Duration) {
    use audiencelens::queue::{Worker, WorkerOptions};
    let mut options = WorkerOptions::from_settings(&state.config.settings);
    options.poll_interval = Duration::from_millis(20);
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = Worker {
        id: uuid::Uuid::new_v4(),
        database_url: state.config.database_url(),
        registry: std::sync::Arc::new(state.registry()),
        options,
        metrics: state.metrics.clone(),
    };
    let kinds: Vec<String> = state.registry().kinds().iter().map(|k| (*k).to_owned()).collect();
    let handle = tokio::spawn(worker.run(stop.clone()));
    let started = Instant::now();
    let mut idle = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut conn = state.pool.get().await.expect("conn");
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let busy: N = diesel::sql_query(
            "SELECT count(*) AS n FROM jobs WHERE status IN ('queued', 'running') AND kind = ANY($1)",
        )
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(&kinds)
        .get_result(&mut conn)
        .await
        .expect("count");
        idle = if busy.n == 0 { idle + 1 } else { 0 };
        if idle >= 3 {
            break;
        }
        assert!(started.elapsed() < timeout, "jobs still pending after {timeout:?}");
    }
    stop.cancel();
    handle.await.expect("join").expect("worker");
}
