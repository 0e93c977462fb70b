//! What of the data coming in belongs to the account being analysed. One rule for every path
//! (import files, the dashboard's uploads, the scrape runs), applied before anything is stored:
//!
//! - a post is the account's when its owner is the account, or the account is one of its
//!   co-authors (`coauthorProducers`); a post whose owner the input does not name (a comment
//!   export gives only `postUrl`) is taken as the account's, and counted so that the report
//!   can say so; any other post is set aside with its comments (`foreign`);
//! - a profile of another account is kept only when that person comments on the account's
//!   posts (in this input or stored before); a profile export of other accounts is set aside;
//! - the same comment id twice in the input is stored once and counted as a duplicate;
//! - comments the account (or a post's co-author) wrote are stored, and set aside when the
//!   audience is counted (the `audience_comments` view): they are the account's own replies.
//!
//! Owns: [`Intake`], the counts of what came in and what was set aside. Uses: `db`, `privacy`,
//! `scraping::store`.

use std::collections::{HashMap, HashSet};

use diesel::QueryResult;
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use super::items::{CommentRecord, PostRecord, Records};
use super::store::{self, ForAnalysis, StoreStats};
use crate::accounts::TrackedAccount;
use crate::privacy::{self, PrivacyKey};

/// What a batch of input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The account's posts and the comments on them (an export, an upload, a posts or comments
    /// run).
    Account,
    /// Profiles of the account's commenters (a profile run): only the profiles are taken; the
    /// posts such an item carries are the commenter's own.
    CommenterProfiles,
}

/// What the input held and what was set aside before storage, by reason. Counts add up over
/// files and runs; an analysis keeps the sum in its progress (`intake`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Intake {
    /// Comment records read (replies included), before anything was set aside.
    pub comments_read: usize,
    /// Comments on posts of other accounts.
    pub comments_foreign: usize,
    /// The same comment again (twice in a file, in two files, or in two runs).
    pub comments_duplicate: usize,
    /// Of the duplicates, those whose post, author or text differ from the comment first
    /// seen with that id: the first one is kept, nothing of the other is stored.
    pub comments_conflicting: usize,
    /// Comments that could not be read (no id, no author, no post).
    pub comments_rejected: usize,
    /// Comments by people erased at their request, or on their posts.
    pub comments_suppressed: usize,
    /// Comments stored (new or already stored): `comments_read` less everything set aside.
    pub comments_kept: usize,
    /// Posts of other accounts, set aside with their comments.
    pub posts_foreign: usize,
    /// Owners of the posts set aside (a few, for the message).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub foreign_owners: Vec<String>,
    /// Profiles of other accounts that do not comment on the account's posts.
    pub profiles_foreign: usize,
    /// Posts whose owner the input does not name, taken as the account's.
    pub posts_without_owner: usize,
    /// Items that could not be read at all (not JSON, not an Instagram item).
    pub items_rejected: usize,
}

/// How many post owners a message names.
const NAMED_OWNERS: usize = 5;

impl std::ops::AddAssign for Intake {
    fn add_assign(&mut self, o: Self) {
        self.comments_read += o.comments_read;
        self.comments_foreign += o.comments_foreign;
        self.comments_duplicate += o.comments_duplicate;
        self.comments_conflicting += o.comments_conflicting;
        self.comments_rejected += o.comments_rejected;
        self.comments_suppressed += o.comments_suppressed;
        self.comments_kept += o.comments_kept;
        self.posts_foreign += o.posts_foreign;
        self.profiles_foreign += o.profiles_foreign;
        self.posts_without_owner += o.posts_without_owner;
        self.items_rejected += o.items_rejected;
        for owner in o.foreign_owners {
            if self.foreign_owners.len() < NAMED_OWNERS && !self.foreign_owners.contains(&owner) {
                self.foreign_owners.push(owner);
            }
        }
    }
}

impl Intake {
    /// Comments set aside before storage.
    #[must_use]
    pub fn comments_set_aside(&self) -> usize {
        self.comments_foreign + self.comments_duplicate + self.comments_rejected + self.comments_suppressed
    }
}

/// The account the data is for.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// Lower-case handle.
    pub handle: &'a str,
    pub ig_user_id: Option<&'a str>,
}

impl<'a> Owner<'a> {
    #[must_use]
    pub fn of(account: &'a TrackedAccount) -> Self {
        Self { handle: &account.handle, ig_user_id: account.ig_user_id.as_deref() }
    }

    fn is(&self, username: Option<&str>, ig_id: Option<&str>) -> bool {
        username.is_some_and(|u| u.eq_ignore_ascii_case(self.handle))
            || (ig_id.is_some() && ig_id == self.ig_user_id)
    }
}

/// Who published a post, as far as known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authors {
    pub owner_username: Option<String>,
    pub owner_ig_id: Option<String>,
    pub coauthors: Vec<String>,
}

impl Authors {
    fn of(post: &PostRecord) -> Self {
        Self {
            owner_username: post.owner_username.as_deref().map(str::to_ascii_lowercase),
            owner_ig_id: post.owner_ig_id.clone(),
            coauthors: post.coauthors.clone(),
        }
    }

    fn known(&self) -> bool {
        self.owner_username.is_some() || self.owner_ig_id.is_some()
    }

    /// `Some(true)` when the post is `owner`'s (owned or co-authored), `None` when nobody is
    /// named.
    fn belongs_to(&self, owner: &Owner<'_>) -> Option<bool> {
        if self.coauthors.iter().any(|c| c.eq_ignore_ascii_case(owner.handle)) {
            return Some(true);
        }
        self.known().then(|| owner.is(self.owner_username.as_deref(), self.owner_ig_id.as_deref()))
    }
}

/// What the database already knows that the rules need: the authors of stored posts the input
/// refers to without carrying them, and which usernames already comment on the account's posts.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    pub posts: HashMap<String, Authors>,
    pub commenters: HashSet<String>,
}

/// What a whole input says about its posts and commenters, gathered before any of it is
/// stored (a first pass over a file), so that an input taken in in parts is judged as a whole:
/// a comment whose post record comes later in the file, a profile whose comments come later.
#[derive(Debug, Default)]
pub struct InputFacts {
    /// Authors of the posts the input carries, merged over repeats.
    authors: HashMap<String, Authors>,
    /// Posts the input's comments refer to.
    referred: HashSet<String>,
    /// Who commented where: ([`name_key`] of the lower-case username, of the post id).
    commented: HashSet<(u64, u64)>,
    /// The input's commenters on the account's posts (from `commented`, by [`Self::finish`]).
    commenters: HashSet<u64>,
}

/// A fixed 64-bit hash (`SipHash` with fixed keys) standing for a name or id in the sets a
/// whole file needs, so that a million commenters cost a few megabytes.
fn name_key(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

impl InputFacts {
    /// Adds what `records` say.
    pub fn observe(&mut self, records: &Records) {
        for p in &records.posts {
            let a = self.authors.entry(p.ig_post_id.clone()).or_default();
            let theirs = Authors::of(p);
            if a.owner_username.is_none() {
                a.owner_username = theirs.owner_username;
            }
            if a.owner_ig_id.is_none() {
                a.owner_ig_id = theirs.owner_ig_id;
            }
            for c in theirs.coauthors {
                if !a.coauthors.contains(&c) {
                    a.coauthors.push(c);
                }
            }
        }
        for c in &records.comments {
            if !self.referred.contains(&c.ig_post_id) {
                self.referred.insert(c.ig_post_id.clone());
            }
            self.commented
                .insert((name_key(&c.author.username.to_ascii_lowercase()), name_key(&c.ig_post_id)));
        }
    }

    /// Once every part has been observed and the stored authors are known: who comments on
    /// the account's posts.
    pub fn finish(&mut self, owner: &Owner<'_>, stored: &Stored) {
        let foreign: HashSet<u64> = self
            .authors
            .keys()
            .chain(&self.referred)
            .filter(|p| self.verdict(p, owner, stored) == Some(false))
            .map(|p| name_key(p))
            .collect();
        self.commenters = self
            .commented
            .drain()
            .filter(|(_, post)| !foreign.contains(post))
            .map(|(name, _)| name)
            .collect();
        self.commented.shrink_to_fit();
    }

    /// Posts referred to but not carried (their authors may be stored).
    #[must_use]
    pub fn posts_not_carried(&self) -> Vec<&str> {
        let mut ids: Vec<&str> =
            self.referred.iter().filter(|p| !self.authors.contains_key(*p)).map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    fn verdict(&self, post: &str, owner: &Owner<'_>, stored: &Stored) -> Option<bool> {
        self.authors.get(post).or_else(|| stored.posts.get(post)).and_then(|a| a.belongs_to(owner))
    }

    /// The counts about posts, for the whole input: posts of other accounts (and a few of
    /// their owners), posts whose owner nobody names.
    #[must_use]
    pub fn post_counts(&self, owner: &Owner<'_>, stored: &Stored) -> Intake {
        let mut foreign: Vec<&str> = self
            .authors
            .keys()
            .filter(|p| self.verdict(p, owner, stored) == Some(false))
            .map(String::as_str)
            .collect();
        foreign.sort_unstable();
        let owners: Vec<String> = foreign
            .iter()
            .filter_map(|p| self.authors.get(*p)?.owner_username.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .take(NAMED_OWNERS)
            .collect();
        let unnamed = self
            .authors
            .keys()
            .chain(self.referred.iter().filter(|p| !self.authors.contains_key(*p)))
            .filter(|p| self.verdict(p, owner, stored).is_none())
            .count();
        Intake {
            posts_foreign: foreign.len(),
            foreign_owners: owners,
            posts_without_owner: unnamed,
            ..Intake::default()
        }
    }
}

/// The comments an input has delivered so far (ids and contents as [`name_key`]s), so that a
/// repeat is counted once and a conflicting repeat is told apart, across the parts of a file.
#[derive(Debug, Default)]
pub struct Delivered(HashMap<u64, u64>);

/// What makes a comment the same comment: its post, its author and its text.
fn content_key(c: &CommentRecord) -> u64 {
    name_key(&format!(
        "{}\u{0}{}\u{0}{}",
        c.ig_post_id,
        c.author.username.to_ascii_lowercase(),
        c.body.as_deref().unwrap_or_default()
    ))
}

/// Applies the rules to one batch that is the whole input: returns what is kept and the counts
/// (comments read, set aside as foreign or duplicate, posts without a named owner, foreign
/// profiles). Rejections and suppressions are counted by the caller.
#[must_use]
pub fn attribute(records: Records, owner: &Owner<'_>, source: Source, stored: &Stored) -> (Records, Intake) {
    let mut facts = InputFacts::default();
    if source == Source::Account {
        facts.observe(&records);
        facts.finish(owner, stored);
    }
    let (kept, mut intake) =
        attribute_part(records, owner, source, stored, &facts, &mut Delivered::default());
    if source == Source::Account {
        let posts = facts.post_counts(owner, stored);
        intake.posts_foreign = posts.posts_foreign;
        intake.foreign_owners = posts.foreign_owners;
        intake.posts_without_owner = posts.posts_without_owner;
    }
    (kept, intake)
}

/// Applies the rules to one part of an input described by `facts` (the post counts are the
/// whole input's: [`InputFacts::post_counts`]); `delivered` carries the comments of the parts
/// before.
#[must_use]
pub fn attribute_part(
    mut records: Records,
    owner: &Owner<'_>,
    source: Source,
    stored: &Stored,
    facts: &InputFacts,
    delivered: &mut Delivered,
) -> (Records, Intake) {
    let mut intake = Intake::default();
    if source == Source::CommenterProfiles {
        records.posts.clear();
        records.comments.clear();
        records.rejected_comments = 0;
        return (records, intake);
    }
    intake.comments_read = records.comments.len() + records.rejected_comments;
    intake.comments_rejected = records.rejected_comments;
    records.rejected_comments = 0;

    let verdict = |post: &str| facts.verdict(post, owner, stored);
    records.posts.retain(|p| verdict(&p.ig_post_id) != Some(false));
    let before = records.comments.len();
    records.comments.retain(|c| verdict(&c.ig_post_id) != Some(false));
    intake.comments_foreign = before - records.comments.len();

    let before = records.comments.len();
    records.comments.retain(|c| match delivered.0.entry(name_key(&c.ig_comment_id)) {
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(content_key(c));
            true
        }
        std::collections::hash_map::Entry::Occupied(o) => {
            if *o.get() != content_key(c) {
                intake.comments_conflicting += 1;
            }
            false
        }
    });
    intake.comments_duplicate = before - records.comments.len();

    let before = records.profiles.len();
    let handle = owner.handle;
    records.profiles.retain(|p| {
        p.username.eq_ignore_ascii_case(handle)
            || facts.commenters.contains(&name_key(&p.username.to_ascii_lowercase()))
            || stored.commenters.contains(&p.username)
    });
    intake.profiles_foreign = before - records.profiles.len();
    (records, intake)
}

#[derive(QueryableByName)]
struct StoredPost {
    #[diesel(sql_type = Text)]
    ig_post_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    owner_username: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    owner_ig_id: Option<String>,
    #[diesel(sql_type = Array<Text>)]
    coauthors: Vec<String>,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    username: String,
}

/// The stored authors of `posts` (posts an input refers to without carrying them).
pub async fn stored_posts(
    conn: &mut AsyncPgConnection,
    posts: &[&str],
) -> QueryResult<HashMap<String, Authors>> {
    if posts.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<StoredPost> = diesel::sql_query(
        "SELECT ig_post_id, owner_username, owner_ig_id, coauthors FROM posts WHERE ig_post_id = ANY($1)",
    )
    .bind::<Array<Text>, _>(posts)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let authors = Authors {
                owner_username: r.owner_username.map(|u| u.to_ascii_lowercase()),
                owner_ig_id: r.owner_ig_id,
                coauthors: r.coauthors,
            };
            (r.ig_post_id, authors)
        })
        .collect())
}

/// Which of the people `records` has profiles of already comment on the account's posts.
async fn stored_commenters(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    records: &Records,
) -> QueryResult<HashSet<String>> {
    let names: Vec<&str> = records.profiles.iter().map(|p| p.username.as_str()).collect();
    if names.is_empty() {
        return Ok(HashSet::new());
    }
    let rows: Vec<Name> = diesel::sql_query(
        "SELECT DISTINCT lower(pr.username) AS username FROM audience_comments a
         JOIN ig_profiles pr ON pr.id = a.ig_profile_id
         WHERE a.tracked_account_id = $1 AND lower(pr.username) = ANY($2)",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Array<Text>, _>(&names)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.username).collect())
}

/// Takes one batch that is a whole input in for `account` inside the caller's transaction
/// (a scrape run's dataset page): as [`take_in_part`], with the batch's own facts.
pub async fn take_in(
    conn: &mut AsyncPgConnection,
    privacy: &PrivacyKey,
    account: &TrackedAccount,
    analysis: Option<ForAnalysis>,
    source: Source,
    records: Records,
) -> QueryResult<(StoreStats, Intake)> {
    let owner = Owner::of(account);
    let mut facts = InputFacts::default();
    let mut stored = Stored::default();
    if source == Source::Account {
        facts.observe(&records);
        stored.posts = stored_posts(conn, &facts.posts_not_carried()).await?;
        facts.finish(&owner, &stored);
    }
    let mut delivered = Delivered::default();
    let part = Part { facts: &facts, stored: &mut stored, delivered: &mut delivered };
    let (stats, mut intake) = take_in_part(conn, privacy, account, analysis, source, records, part).await?;
    if source == Source::Account {
        let posts = facts.post_counts(&owner, &stored);
        intake.posts_foreign = posts.posts_foreign;
        intake.foreign_owners = posts.foreign_owners;
        intake.posts_without_owner = posts.posts_without_owner;
    }
    Ok((stats, intake))
}

/// The whole input a part belongs to.
pub struct Part<'a> {
    pub facts: &'a InputFacts,
    /// The stored authors of the posts the input refers to without carrying them.
    pub stored: &'a mut Stored,
    pub delivered: &'a mut Delivered,
}

/// Takes one part of an input in for `account` inside the caller's transaction: the rules
/// above, comments conflicting with stored ones and erased people dropped, the account's own
/// profile applied to the account, the rest stored (and, for an analysis, its comments and
/// posts recorded as its input). Returns what the store changed and the intake counts, less
/// the post counts ([`InputFacts::post_counts`], the whole input's) and `items_rejected`
/// (the caller's).
pub async fn take_in_part(
    conn: &mut AsyncPgConnection,
    privacy: &PrivacyKey,
    account: &TrackedAccount,
    analysis: Option<ForAnalysis>,
    source: Source,
    records: Records,
    part: Part<'_>,
) -> QueryResult<(StoreStats, Intake)> {
    let owner = Owner::of(account);
    part.stored.commenters = stored_commenters(conn, account.id, &records).await?;
    let (mut records, mut intake) =
        attribute_part(records, &owner, source, part.stored, part.facts, part.delivered);
    let conflicting = store::drop_conflicting(conn, &mut records).await?;
    intake.comments_duplicate += conflicting;
    intake.comments_conflicting += conflicting;
    let own = records.profiles.iter().position(|p| p.username.eq_ignore_ascii_case(&account.handle));
    let own = own.map(|i| records.profiles.remove(i));
    let comments = records.comments.len();
    let suppressed = privacy::drop_suppressed(conn, privacy, &mut records).await?;
    intake.comments_suppressed = comments - records.comments.len();
    if let Some(own) = own {
        crate::accounts::update_account_details(
            conn,
            account.id,
            own.ig_user_id.as_deref(),
            own.followers_count,
        )
        .await?;
    }
    let link = (source == Source::Account).then_some(account.id);
    let mut stats = store::store_records(conn, link, analysis, &records).await?;
    stats.suppressed = suppressed;
    intake.comments_duplicate += stats.comments_repeated;
    intake.comments_kept = records.comments.len() - stats.comments_repeated;
    Ok((stats, intake))
}

#[cfg(test)]
#[path = "intake_tests.rs"]
mod tests;
