//! `audiencelens import`: Apify export files into the database, with counts and the reason
//! for every item not used. Each file is one transaction: a file that is not an export at all
//! writes nothing; in a mixed file every valid item is kept.

use std::path::{Path, PathBuf};

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::Serialize;

use super::export::{self, ExportError, Format};
use super::intake::{self, Intake, Source};
use super::items::{self, Records, Rejection};
use super::store::{ForAnalysis, StoreStats};
use crate::accounts::TrackedAccount;
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
    /// What the file held and what of it was set aside, by reason.
    pub intake: Intake,
    pub rejected: Vec<RejectedItem>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: cannot read: {source}")]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{file}: {size} bytes is more than the {max} a file may have (import.max_file_bytes)")]
    TooLarge { file: PathBuf, size: u64, max: u64 },
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
    #[error(
        "{file}: nothing in it belongs to @{handle}: {posts} posts of other accounts ({owners}) were set aside. \
         Import it for the account it is about (--account)"
    )]
    OtherAccounts { file: PathBuf, handle: String, posts: usize, owners: String },
}

impl From<diesel::result::Error> for ImportError {
    /// A database error outside any one file's work (the file is named by the caller).
    fn from(source: diesel::result::Error) -> Self {
        Self::Database { file: PathBuf::new(), source }
    }
}

/// A file's contents, parsed (no database involved).
pub struct Parsed {
    pub format: Format,
    pub items: usize,
    pub records: Records,
    pub rejected: Vec<RejectedItem>,
    /// Rejected items that were not comments (unreadable, or not Instagram items).
    pub unreadable: usize,
}

/// Parses a whole export into records and rejections (no database involved). Comments among
/// the rejected items are counted in `records.rejected_comments`.
///
/// # Errors
/// When the file is not an export, or holds nothing usable.
pub fn parse_file(file: &Path, bytes: &[u8]) -> Result<Parsed, ImportError> {
    let (format, raw) = export::read_items(bytes)
        .map_err(|source| ImportError::NotAnExport { file: file.to_owned(), source })?;
    let mut records = Records::default();
    let mut rejected = Vec::new();
    let mut unreadable = 0;
    let reject = |position, reason: String| RejectedItem { file: file.to_owned(), position, reason };
    for item in &raw {
        match &item.value {
            Err(reason) => {
                unreadable += 1;
                rejected.push(reject(item.position, reason.clone()));
            }
            Ok(value) => match items::parse_item(value) {
                Ok(r) => records.extend(r),
                Err(e) => {
                    if e.is_comment() {
                        records.rejected_comments += 1;
                    } else {
                        unreadable += 1;
                    }
                    rejected.push(reject(item.position, e.to_string()));
                }
            },
        }
    }
    if records.is_empty() {
        let first =
            rejected.first().map_or_else(|| "the file holds no items".to_owned(), |r| r.reason.clone());
        return Err(ImportError::NothingUsable { file: file.to_owned(), items: raw.len(), first });
    }
    Ok(Parsed { format, items: raw.len(), records, rejected, unreadable })
}

/// Imports one file for `account` (as the input of `analysis`, when given) inside the
/// caller's transaction: the intake rules ([`intake::take_in`]), then storage.
///
/// # Errors
/// Unreadable file, not an export, the account's owner erased, or a database failure.
pub async fn import_file(
    conn: &mut AsyncPgConnection,
    privacy: &PrivacyKey,
    account: &TrackedAccount,
    file: &Path,
    analysis: Option<ForAnalysis>,
    max_bytes: u64,
) -> Result<FileReport, ImportError> {
    let size = tokio::fs::metadata(file)
        .await
        .map_err(|source| ImportError::Read { file: file.to_owned(), source })?
        .len();
    if size > max_bytes {
        return Err(ImportError::TooLarge { file: file.to_owned(), size, max: max_bytes });
    }
    let bytes =
        tokio::fs::read(file).await.map_err(|source| ImportError::Read { file: file.to_owned(), source })?;
    let parsed = parse_file(file, &bytes)?;
    drop(bytes);
    let database = |source| ImportError::Database { file: file.to_owned(), source };
    // An erased owner's account takes nothing: the posts are theirs, and a comment export names
    // no post owner to drop them by. Checked under the erasure lock `take_in` takes.
    privacy::hold_off_erasure(conn).await.map_err(database)?;
    if !privacy::suppressed_usernames(conn, privacy, &[account.handle.as_str()])
        .await
        .map_err(database)?
        .is_empty()
    {
        return Err(ImportError::Erased { file: file.to_owned(), handle: account.handle.clone() });
    }
    let (stats, mut intake) =
        intake::take_in(conn, privacy, account, analysis, Source::Account, parsed.records)
            .await
            .map_err(database)?;
    intake.items_rejected = parsed.unreadable;
    let kept = stats.posts_new + stats.posts_seen_before + intake.comments_kept;
    if kept == 0 && intake.posts_foreign > 0 {
        let owners = intake.foreign_owners.iter().map(|o| format!("@{o}")).collect::<Vec<_>>().join(", ");
        return Err(ImportError::OtherAccounts {
            file: file.to_owned(),
            handle: account.handle.clone(),
            posts: intake.posts_foreign,
            owners: if owners.is_empty() { "owners not named".to_owned() } else { owners },
        });
    }
    Ok(FileReport {
        file: file.to_owned(),
        format: parsed.format,
        items: parsed.items,
        stats,
        intake,
        rejected: parsed.rejected,
    })
}

/// Imports one file for `account` in a transaction of its own (`audiencelens import`): a file
/// that is not an export writes nothing; in a mixed file every valid item is kept.
///
/// # Errors
/// As [`import_file`]; then nothing of the file is kept.
pub async fn import_file_alone(
    conn: &mut AsyncPgConnection,
    privacy: &PrivacyKey,
    account: &TrackedAccount,
    file: &Path,
    max_bytes: u64,
) -> Result<FileReport, ImportError> {
    let file = file.to_owned();
    let failed = file.clone();
    conn.transaction::<_, ImportError, _>(async move |conn| {
        import_file(conn, privacy, account, &file, None, max_bytes).await
    })
    .await
    .map_err(|e| match e {
        ImportError::Database { source, .. } => ImportError::Database { file: failed, source },
        other => other,
    })
}

/// Rejections never carry item contents (they may hold personal data), only positions.
#[must_use]
pub fn describe(rejection: &Rejection) -> String {
    rejection.to_string()
}
