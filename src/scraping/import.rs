//! `audiencelens import`: Apify export files into the database, with counts and the reason
//! for every item not used. Each file is one transaction and is streamed (memory does not grow
//! with the file): a file that is not an export, or is damaged anywhere (cut off, broken JSON or
//! CSV), writes nothing; in an intact file every valid item is kept and every other one is
//! counted with its reason.

use std::path::{Path, PathBuf};

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::Serialize;

use super::export::{self, ExportError, Format, MAX_ITEM_BYTES, RawItem};
use super::intake::{self, Delivered, InputFacts, Intake, Owner, Part, Source, Stored};
use super::items::{self, Records, Rejection};
use super::store::{ForAnalysis, StoreStats};
use crate::accounts::{InstagramHandle, TrackedAccount};
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
    /// The rejected items, the first [`LISTED_REJECTIONS`] of them.
    pub rejected: Vec<RejectedItem>,
    /// Every rejected item, listed or not.
    pub rejected_total: usize,
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
    #[error("{file}: the file changed while it was being imported; nothing of it is kept")]
    Changed { file: PathBuf },
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

/// Records taken in per part of a file (with the item they came from, at most one item more).
const PART_RECORDS: usize = 10_000;

/// Rejected items listed in a report (all of them are counted).
pub const LISTED_REJECTIONS: usize = 10_000;

/// What a first reading of a file found (nothing stored).
pub struct Survey {
    pub format: Format,
    pub items: usize,
    pub rejected: Vec<RejectedItem>,
    /// Rejected items, listed or not.
    pub rejected_total: usize,
    /// Rejected items that were not comments (unreadable, or not Instagram items).
    pub unreadable: usize,
    /// Whether any post, comment or profile was readable.
    pub usable: bool,
    /// What the file says about its posts and commenters.
    pub facts: InputFacts,
}

/// One item's records, or why it was rejected (`Err`: whether it was a comment, the reason).
fn records_of(item: &RawItem) -> Result<Records, (bool, String)> {
    match &item.value {
        Err(reason) => Err((false, reason.clone())),
        Ok(value) => items::parse_item(value).map_err(|e| (e.is_comment(), e.to_string())),
    }
}

fn open(file: &Path) -> Result<std::fs::File, ImportError> {
    std::fs::File::open(file).map_err(|source| ImportError::Read { file: file.to_owned(), source })
}

fn not_an_export(file: &Path, source: ExportError) -> ImportError {
    match source {
        ExportError::Io(source) => ImportError::Read { file: file.to_owned(), source },
        source => ImportError::NotAnExport { file: file.to_owned(), source },
    }
}

/// Reads a whole export once, streaming, keeping only what judging it as a whole needs
/// (blocking: run it off the async threads).
///
/// # Errors
/// When the file is not an export, is damaged, or holds nothing usable.
pub fn survey(file: &Path) -> Result<Survey, ImportError> {
    let mut facts = InputFacts::default();
    let (mut rejected, mut rejected_total, mut unreadable, mut items, mut usable) =
        (Vec::new(), 0, 0, 0, false);
    let format = export::read_export(open(file)?, MAX_ITEM_BYTES, |item| {
        items += 1;
        match records_of(&item) {
            Ok(records) => {
                usable |= !records.is_empty();
                facts.observe(&records);
            }
            Err((comment, reason)) => {
                unreadable += usize::from(!comment);
                rejected_total += 1;
                if rejected.len() < LISTED_REJECTIONS {
                    rejected.push(RejectedItem { file: file.to_owned(), position: item.position, reason });
                }
            }
        }
    })
    .map_err(|e| not_an_export(file, e))?;
    if !usable {
        let first =
            rejected.first().map_or_else(|| "the file holds no items".to_owned(), |r| r.reason.clone());
        return Err(ImportError::NothingUsable { file: file.to_owned(), items, first });
    }
    Ok(Survey { format, items, rejected, rejected_total, unreadable, usable, facts })
}

/// Reads the export again, sending its records in parts of about [`PART_RECORDS`] (blocking).
fn read_parts(
    file: &Path,
    items: usize,
    parts: &tokio::sync::mpsc::Sender<Records>,
) -> Result<(), ImportError> {
    let mut part = Records::default();
    let mut size = 0;
    let mut seen = 0;
    let mut closed = false;
    export::read_export(open(file)?, MAX_ITEM_BYTES, |item| {
        seen += 1;
        if closed {
            return;
        }
        match records_of(&item) {
            Ok(records) => {
                size += records.posts.len()
                    + records.comments.len()
                    + records.profiles.len()
                    + records.rejected_comments;
                part.extend(records);
            }
            Err((true, _)) => part.rejected_comments += 1,
            Err((false, _)) => {}
        }
        if size >= PART_RECORDS {
            closed = parts.blocking_send(std::mem::take(&mut part)).is_err();
            size = 0;
        }
    })
    .map_err(|e| not_an_export(file, e))?;
    if seen != items {
        return Err(ImportError::Changed { file: file.to_owned() });
    }
    if !closed && (size > 0 || part.rejected_comments > 0) {
        let _ = parts.blocking_send(part);
    }
    Ok(())
}

/// Imports one file for `account` (as the input of `analysis`, when given) inside the
/// caller's transaction, streaming: a first reading judges the file as a whole without
/// storing anything (a damaged file or one with nothing usable stops here), a second takes
/// it in by parts under the intake rules ([`intake::take_in_part`]). Memory stays bounded
/// whatever the file's size.
///
/// # Errors
/// Unreadable file, not an export, damaged, the account's owner erased, or a database failure.
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
    let path = file.to_owned();
    let mut surveyed = tokio::task::spawn_blocking(move || survey(&path))
        .await
        .map_err(|e| ImportError::Read { file: file.to_owned(), source: std::io::Error::other(e) })??;
    let database = |source| ImportError::Database { file: file.to_owned(), source };
    // An erased owner's account takes nothing: the posts are theirs, and a comment export names
    // no post owner to drop them by. Checked under the erasure lock `take_in_part` relies on.
    privacy::hold_off_erasure(conn).await.map_err(database)?;
    if !privacy::suppressed_usernames(conn, privacy, &[account.handle.as_str()])
        .await
        .map_err(database)?
        .is_empty()
    {
        return Err(ImportError::Erased { file: file.to_owned(), handle: account.handle.clone() });
    }
    let owner = Owner::of(account);
    let mut stored = Stored {
        posts: intake::stored_posts(conn, &surveyed.facts.posts_not_carried()).await.map_err(database)?,
        ..Stored::default()
    };
    surveyed.facts.finish(&owner, &stored);

    let (sender, mut parts) = tokio::sync::mpsc::channel(1);
    let (path, items) = (file.to_owned(), surveyed.items);
    let reader = tokio::task::spawn_blocking(move || read_parts(&path, items, &sender));
    let mut stats = StoreStats::default();
    let mut intake = Intake::default();
    let mut delivered = Delivered::default();
    while let Some(records) = parts.recv().await {
        let part = Part { facts: &surveyed.facts, stored: &mut stored, delivered: &mut delivered };
        let taken =
            intake::take_in_part(conn, privacy, account, analysis, Source::Account, records, part).await;
        let (s, i) = match taken {
            Ok(taken) => taken,
            Err(e) => {
                drop(parts); // the reader stops at its next part
                let _ = reader.await;
                return Err(database(e));
            }
        };
        stats += s;
        intake += i;
    }
    reader
        .await
        .map_err(|e| ImportError::Read { file: file.to_owned(), source: std::io::Error::other(e) })??;
    let posts = surveyed.facts.post_counts(&owner, &stored);
    intake.posts_foreign = posts.posts_foreign;
    intake.foreign_owners = posts.foreign_owners;
    intake.posts_without_owner = posts.posts_without_owner;
    intake.items_rejected = surveyed.unreadable;
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
        format: surveyed.format,
        items: surveyed.items,
        stats,
        intake,
        rejected: surveyed.rejected,
        rejected_total: surveyed.rejected_total,
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

/// Imports one file in a transaction of its own for the account `handle` of `user_id`,
/// creating the account in the same transaction (`audiencelens import`): a refused file
/// leaves nothing behind, not even the account.
///
/// # Errors
/// As [`import_file`]; then nothing of the file is kept.
pub async fn import_file_for(
    conn: &mut AsyncPgConnection,
    privacy: &PrivacyKey,
    user_id: i64,
    handle: &InstagramHandle,
    file: &Path,
    max_bytes: u64,
) -> Result<(TrackedAccount, FileReport), ImportError> {
    let file = file.to_owned();
    let failed = file.clone();
    conn.transaction::<_, ImportError, _>(async move |conn| {
        let account = crate::accounts::find_or_create_account(conn, user_id, handle)
            .await
            .map_err(|source| ImportError::Database { file: file.clone(), source })?;
        let report = import_file(conn, privacy, &account, &file, None, max_bytes).await?;
        Ok((account, report))
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
