//! Uploads of Apify export files (the dashboard's way in for users without an Apify token):
//! each file streamed to a temporary file under `import.max_file_bytes`, then imported and the
//! analysis started in one transaction by the same code as `analyze --import`.

// utoipa's `path` macro re-emits a local `IntoParams` type with its module path.
#![allow(unused_qualifications)]

use std::path::{Path, PathBuf};

use actix_multipart::Multipart;
use actix_web::{HttpResponse, post, web};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;
use utoipa::{IntoParams, ToSchema};

use super::analyses::AnalysisView;
use super::auth::AuthUser;
use super::error::ApiError;
use crate::accounts;
use crate::app::AppState;
use crate::jobs::import::{self, ImportStartError};
use crate::scraping::import::{FileReport, ImportError};

#[derive(Debug, Deserialize, IntoParams)]
pub struct UploadQuery {
    /// local (default), gemini or cascade.
    pub classifier: Option<String>,
}

/// What one uploaded file held and what became of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadedFile {
    /// The name the browser gave.
    pub name: String,
    #[schema(value_type = Object)]
    #[serde(flatten)]
    pub report: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadResult {
    pub analysis: AnalysisView,
    pub files: Vec<UploadedFile>,
}

/// A temporary folder of this request's files, deleted when dropped.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Imports Apify export files (`multipart/form-data`, one part per file: JSON array, JSON
/// lines or CSV, each at most `import.max_file_bytes`, at most `import.max_files` of them) for
/// one of the caller's accounts and starts an analysis of exactly what they hold, without
/// scraping. All or nothing: a file that is not an export, files with no comment to analyse,
/// or an analysis of the account still running leave nothing stored.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/imports", params(("id" = i64, Path), UploadQuery),
    request_body(content = String, content_type = "multipart/form-data", description = "one part per file"),
    responses((status = 201, body = UploadResult), (status = 400), (status = 404), (status = 409), (status = 413)),
    security(("bearer" = [])), tag = "analyses")]
#[post("/accounts/{id}/imports")]
pub async fn upload(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    query: web::Query<UploadQuery>,
    mut form: Multipart,
) -> Result<HttpResponse, ApiError> {
    let classifier = super::analyses::classifier_choice(&state, query.into_inner().classifier)?;
    let account = accounts::get_user_account(&mut *state.pool.get().await?, user.id, *id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such account".into()))?;
    let settings = &state.config.settings.import;
    let staging = Staging(std::env::temp_dir().join(format!("audiencelens-upload-{}", uuid::Uuid::new_v4())));
    tokio::fs::create_dir_all(&staging.0).await.map_err(anyhow::Error::from)?;
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    while let Some(part) = form.next().await {
        let mut part = part.map_err(|e| ApiError::BadRequest(format!("reading the upload: {e}")))?;
        let Some(name) = part.content_disposition().and_then(|d| d.get_filename()).map(clean_name) else {
            continue; // a field that is not a file
        };
        if files.len() == settings.max_files {
            return Err(ApiError::PayloadTooLarge(format!(
                "at most {} files per upload (import.max_files)",
                settings.max_files
            )));
        }
        let path = staging.0.join(format!("{}", files.len()));
        let mut out = tokio::fs::File::create(&path).await.map_err(anyhow::Error::from)?;
        let mut size: u64 = 0;
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading {name}: {e}")))?;
            size += chunk.len() as u64;
            if size > settings.max_file_bytes {
                return Err(ApiError::PayloadTooLarge(format!(
                    "{name} is larger than {} bytes (import.max_file_bytes)",
                    settings.max_file_bytes
                )));
            }
            out.write_all(&chunk).await.map_err(anyhow::Error::from)?;
        }
        out.flush().await.map_err(anyhow::Error::from)?;
        files.push((name, path));
    }
    if files.is_empty() {
        return Err(ApiError::BadRequest(
            "no file in the upload: send each export as a multipart file part".into(),
        ));
    }
    let paths: Vec<PathBuf> = files.iter().map(|(_, p)| p.clone()).collect();
    let named = |e: String| name_files(&e, &files);
    let mut conn = state.pool.get().await?;
    let imported =
        import::import_and_start(&mut conn, &state.config, &state.privacy, &account, &paths, &classifier)
            .await
            .map_err(|e| match e {
                ImportStartError::Running(a) => ApiError::Conflict(format!(
                    "analysis {} of this account is still {}: wait for it or cancel it",
                    a.id, a.status
                )),
                ImportStartError::NothingToAnalyse(why) => ApiError::BadRequest(why),
                ImportStartError::Import(ImportError::Database { source, .. })
                | ImportStartError::Database(source) => ApiError::from(source),
                ImportStartError::Import(ImportError::TooLarge { .. }) => {
                    ApiError::PayloadTooLarge(named(e.to_string()))
                }
                ImportStartError::Import(other) => ApiError::BadRequest(named(other.to_string())),
                ImportStartError::Job(e) => ApiError::Internal(e.into()),
            })?;
    let files = imported
        .files
        .iter()
        .zip(&files)
        .map(|(report, (name, _))| report_for(report, name))
        .collect::<Result<_, ApiError>>()?;
    Ok(HttpResponse::Created().json(UploadResult { analysis: imported.analysis.into(), files }))
}

/// A file's report under the name the browser gave (the temporary path is nobody's business).
fn report_for(report: &FileReport, name: &str) -> Result<UploadedFile, ApiError> {
    let mut value = serde_json::to_value(report).map_err(anyhow::Error::from)?;
    if let Some(o) = value.as_object_mut() {
        o.remove("file");
        if let Some(rejected) = o.get_mut("rejected").and_then(serde_json::Value::as_array_mut) {
            for r in rejected {
                if let Some(r) = r.as_object_mut() {
                    r.insert("file".into(), name.into());
                }
            }
        }
    }
    Ok(UploadedFile { name: name.to_owned(), report: value })
}

/// A message naming temporary files by the names the browser gave.
fn name_files(message: &str, files: &[(String, PathBuf)]) -> String {
    files.iter().fold(message.to_owned(), |m, (name, path)| m.replace(&path.display().to_string(), name))
}

/// The last path component of a browser's file name, printable, at most 200 characters.
fn clean_name(name: &str) -> String {
    let base = Path::new(name).file_name().and_then(|n| n.to_str()).unwrap_or(name);
    let clean: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.is_empty() { "upload".to_owned() } else { clean }
}
