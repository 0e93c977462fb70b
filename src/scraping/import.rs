//! `audiencelens import`: Apify export files into the database, with counts and the reason
//! for every item not used. Each file is one transaction: a file that is not an export at all
//! writes nothing; in a mixed file every valid item is kept.

use std::path::{Path, PathBuf};

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::Serialize;

use super::export::{self, ExportError, Format};
use super::items::{self, Records, Rejection};
use super::store::{self, StoreStats};
use crate::accounts::{self, TrackedAccount};
use crate::privacy::{self, PrivacyKey};

/// One item not used, and why.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedItem {
    pub file: PathBuf,
    pub position: usize,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub file: PathBuf,
    pub format: Format,
    pub items: usize,
    #[serde(flatten)]
    pub stats: StoreStats,
    pub rejected: Vec<RejectedItem>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: cannot read: {source}")]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{file}: {source}")]
    NotAnExport { file: PathBuf, source: ExportError },
    #[error(
        "{file}: no Instagram posts, comments or profiles found among {items} items (first problem: {first})"
    )]
    NothingUsable { file: PathBuf, items: usize, first: String },
    #[error("{file}: database: {source}")]
    Database { file: PathBuf, source: diesel::result::Error },
    #[error("{file}: not imported: @{handle} was erased at their request, and their account takes no data")]
    Erased { file: PathBuf, handle: String },
}

/// Parses a whole export into records and rejections (no database involved).
///
/// # Errors
/// When the file is not an export, or holds nothing usable.
pub fn parse_file(
    file: &Path,
    bytes: &[u8],
) -> Result<(Format, usize, Records, Vec<RejectedItem>), ImportError> {
    let (format, raw) = export::read_items(bytes)
        .map_err(|source| ImportError::NotAnExport { file: file.to_owned(), source })?;
    let mut records = Records::default();
    let mut rejected = Vec::new();
    let reject = |position, reason: String| RejectedItem { file: file.to_owned(), position, reason };
    for item in &raw {
        match &item.value {
            Err(reason) => rejected.push(reject(item.position, reason.clone())),
            Ok(value) => match items::parse_item(value) {
                Ok(r) => records.extend(r),
                Err(e) => rejected.push(reject(item.position, e.to_string())),
            },
        }
    }
    if records.is_empty() {
        let first =
            rejected.first().map_or_else(|| "the file holds no items".to_owned(), |r| r.reason.clone());
        return Err(ImportError::NothingUsable { file: file.to_owned(), items: raw.len(), first });
    }
    Ok((format, raw.len(), records, rejected))
}

/// Imports one file for `account` in one transaction.
///
/// # Errors
/// Unreadable file, not an export, or a database failure (then nothing of the file is kept).
pub async fn import_file(
    conn: &mut AsyncPgConnection,
    privacy: &PrivacyKey,
    account: &TrackedAccount,
    file: &Path,
) -> Result<FileReport, ImportError> {
    let bytes =
        tokio::fs::read(file).await.map_err(|source| ImportError::Read { file: file.to_owned(), source })?;
    let (format, items, records, rejected) = parse_file(file, &bytes)?;
    drop(bytes);
    let handle = account.handle.clone();
    let account_id = account.id;
    let stats = conn
        .transaction::<_, diesel::result::Error, _>(async move |conn| {
            let own = records.profiles.iter().find(|p| p.username == handle).cloned();
            let mut records = without_account_itself(records, &handle);
            let suppressed = privacy::drop_suppressed(conn, privacy, &mut records).await?;
            // An erased owner's account takes nothing: the posts are theirs, and a comment
            // export names no post owner to drop them by. Checked under the erasure lock
            // `drop_suppressed` took.
            if !privacy::suppressed_usernames(conn, privacy, &[handle.as_str()]).await?.is_empty() {
                return Ok(None);
            }
            // The account's own profile, when the file has it, updates the account.
            if let Some(own) = own {
                accounts::update_account_details(
                    conn,
                    account_id,
                    own.ig_user_id.as_deref(),
                    own.followers_count,
                )
                .await?;
            }
            let mut stats = store::store_records(conn, Some(account_id), &records).await?;
            stats.suppressed = suppressed;
            Ok(Some(stats))
        })
        .await
        .map_err(|source| ImportError::Database { file: file.to_owned(), source })?
        .ok_or_else(|| ImportError::Erased { file: file.to_owned(), handle: account.handle.clone() })?;
    Ok(FileReport { file: file.to_owned(), format, items, stats, rejected })
}

/// The tracked account is not one of its own commenters' profiles to classify: keep its
/// comments (replies to commenters) but do not count it as a commenter profile record.
fn without_account_itself(mut records: Records, handle: &str) -> Records {
    records.profiles.retain(|p| p.username != handle);
    records
}

/// Rejections never carry item contents (they may hold personal data), only positions.
#[must_use]
pub fn describe(rejection: &Rejection) -> String {
    rejection.to_string()
}
