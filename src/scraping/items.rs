//! Apify dataset items → normalised records. One parser for every source: the scrapers'
//! datasets, JSON/JSONL exports and flattened CSV exports (unflattened first). The shape is
//! detected per item, so mixed files work; schemas drift, so every field is optional except
//! an item's identity, and a field of the wrong type counts as absent (never invented).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::fields::{bool_at, i64_at, id_at, post_id_from_url, shortcode_to_id, str_at, time_at};

/// A post (or reel) of some account.
#[derive(Debug, Clone, PartialEq)]
pub struct PostRecord {
    /// Instagram's media id; derived from the shortcode when only that is given.
    pub ig_post_id: String,
    pub short_code: Option<String>,
    pub owner_username: Option<String>,
    pub owner_ig_id: Option<String>,
    pub url: Option<String>,
    pub post_type: Option<String>,
    pub posted_at: Option<DateTime<Utc>>,
    pub comments_count: Option<i32>,
    pub likes_count: Option<i32>,
    /// Lower-case usernames of the accounts that published the post with its owner
    /// (`coauthorProducers`: collaboration posts).
    pub coauthors: Vec<String>,
}

impl PostRecord {
    /// A post known only by its id (a comment named it).
    #[must_use]
    pub fn bare(ig_post_id: String, url: Option<String>) -> Self {
        Self {
            ig_post_id,
            short_code: None,
            owner_username: None,
            owner_ig_id: None,
            url,
            post_type: None,
            posted_at: None,
            comments_count: None,
            likes_count: None,
            coauthors: Vec::new(),
        }
    }
}

/// A person as the sources show them; identity is the user id when given, else the username.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProfileRecord {
    pub ig_user_id: Option<String>,
    pub username: String,
    pub full_name: Option<String>,
    pub is_private: Option<bool>,
    pub is_verified: Option<bool>,
    pub is_business: Option<bool>,
    pub followers_count: Option<i64>,
    pub profile_pic_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommentRecord {
    pub ig_comment_id: String,
    pub ig_post_id: String,
    /// The post's address as the item gave it (`postUrl`), for a post known only from its
    /// comments.
    pub post_url: Option<String>,
    /// The comment this one replies to.
    pub parent_ig_comment_id: Option<String>,
    pub author: ProfileRecord,
    pub body: Option<String>,
    pub commented_at: Option<DateTime<Utc>>,
    pub likes_count: Option<i32>,
}

/// Everything one item contributed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Records {
    pub posts: Vec<PostRecord>,
    pub comments: Vec<CommentRecord>,
    pub profiles: Vec<ProfileRecord>,
    /// Comments carried inside a post or a comment (`latestComments`, `replies`) that could not
    /// be read (no id, no author): counted, never silently lost.
    pub rejected_comments: usize,
}

impl Records {
    pub fn extend(&mut self, other: Self) {
        self.posts.extend(other.posts);
        self.comments.extend(other.comments);
        self.profiles.extend(other.profiles);
        self.rejected_comments += other.rejected_comments;
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.posts.is_empty() && self.comments.is_empty() && self.profiles.is_empty()
    }
}

impl Rejection {
    /// Whether the rejected item was a comment (it counts among the comments of the input).
    #[must_use]
    pub fn is_comment(&self) -> bool {
        matches!(self, Self::CommentWithoutId | Self::CommentWithoutAuthor | Self::CommentWithoutPost)
    }
}

/// Why an item was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("not a JSON object")]
    NotAnObject,
    #[error("not an Instagram item (fields: {0})")]
    Unrecognised(String),
    #[error("post without id, shortCode or a post URL")]
    PostWithoutId,
    #[error("comment without id")]
    CommentWithoutId,
    #[error("comment without its author's username")]
    CommentWithoutAuthor,
    #[error("comment without the post it belongs to (no postUrl)")]
    CommentWithoutPost,
    #[error("profile without username")]
    ProfileWithoutUsername,
}

/// What kind of item this is, from the fields it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Post,
    Comment,
    Profile,
}

#[must_use]
pub fn detect_shape(item: &Map<String, Value>) -> Option<Shape> {
    let has = |k: &str| item.get(k).is_some_and(|v| !v.is_null());
    let post_url = str_at(item, &["url"]).is_some_and(|u| post_id_from_url(u).is_some());
    if has("shortCode") || has("latestComments") || has("childPosts") || (post_url && !has("followersCount"))
    {
        return Some(Shape::Post);
    }
    let profile_fields = [
        "followersCount",
        "followsCount",
        "postsCount",
        "profilePicUrl",
        "biography",
        "fullName",
        "private",
        "verified",
        "isBusinessAccount",
    ];
    if has("username") && profile_fields.iter().any(|f| has(f)) {
        return Some(Shape::Profile);
    }
    // A GIF or sticker comment has an empty text (a CSV export leaves the cell empty: absent).
    let commented = has("text") || has("media") || has("postUrl") || has("commentUrl");
    let authored = has("ownerUsername") || has("owner");
    let addressed = has("postUrl") || has("commentUrl");
    if commented && (authored || addressed) {
        return Some(Shape::Comment);
    }
    None
}

/// Parses one dataset item.
///
/// # Errors
/// A [`Rejection`] saying why the item cannot be used.
pub fn parse_item(item: &Value) -> Result<Records, Rejection> {
    let Value::Object(map) = item else { return Err(Rejection::NotAnObject) };
    match detect_shape(map) {
        Some(Shape::Post) => parse_post(map),
        Some(Shape::Comment) => {
            let post = comment_post_id(map, None).ok_or(Rejection::CommentWithoutPost)?;
            let mut out = Records::default();
            parse_comment(map, &post, None, &mut out)?;
            Ok(out)
        }
        Some(Shape::Profile) => parse_profile_item(map),
        None => {
            let mut keys: Vec<&str> = map.keys().map(String::as_str).take(8).collect();
            keys.sort_unstable();
            Err(Rejection::Unrecognised(if keys.is_empty() { "none".into() } else { keys.join(", ") }))
        }
    }
}

fn post_identity(map: &Map<String, Value>) -> Option<(String, Option<String>)> {
    let short_code = str_at(map, &["shortCode", "shortcode", "code"]).map(str::to_owned);
    let id = id_at(map, &["id", "pk"])
        .map(|s| s.split('_').next().unwrap_or_default().to_owned())
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .or_else(|| short_code.as_deref().and_then(shortcode_to_id))
        .or_else(|| str_at(map, &["url", "postUrl", "inputUrl"]).and_then(post_id_from_url))?;
    Some((id, short_code))
}

fn parse_post(map: &Map<String, Value>) -> Result<Records, Rejection> {
    let (ig_post_id, short_code) = post_identity(map).ok_or(Rejection::PostWithoutId)?;
    let mut out = Records::default();
    let owner_username = str_at(map, &["ownerUsername", "owner/username"]).map(str::to_owned);
    out.posts.push(PostRecord {
        ig_post_id: ig_post_id.clone(),
        short_code,
        owner_username,
        owner_ig_id: id_at(map, &["ownerId", "owner/id"]),
        url: str_at(map, &["url"]).map(str::to_owned),
        post_type: str_at(map, &["type", "productType"]).map(str::to_owned),
        posted_at: time_at(map, &["timestamp", "takenAtTimestamp", "taken_at"]),
        comments_count: i64_at(map, &["commentsCount"]).and_then(|n| i32::try_from(n).ok()),
        likes_count: i64_at(map, &["likesCount"]).and_then(|n| i32::try_from(n).ok()).filter(|n| *n >= 0),
        coauthors: coauthors(map),
    });
    // Embedded comments ride along; a bad one is counted and skipped, not the post.
    if let Some(Value::Array(comments)) = map.get("latestComments") {
        for c in comments {
            let read = match c {
                Value::Object(c) => parse_comment(c, &ig_post_id, None, &mut out).is_ok(),
                _ => false,
            };
            if !read {
                out.rejected_comments += 1;
            }
        }
    }
    Ok(out)
}

/// The co-authors of a collaboration post (`coauthorProducers`: objects with a username, or
/// bare usernames), lower-case.
fn coauthors(map: &Map<String, Value>) -> Vec<String> {
    let Some(Value::Array(list)) = map.get("coauthorProducers") else { return Vec::new() };
    let mut names: Vec<String> = list
        .iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(s.as_str()),
            Value::Object(o) => str_at(o, &["username"]),
            _ => None,
        })
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The post a comment belongs to: given by the caller, or from its `postUrl`/`commentUrl`.
fn comment_post_id(map: &Map<String, Value>, given: Option<&str>) -> Option<String> {
    given.map(str::to_owned).or_else(|| {
        str_at(map, &["postUrl", "commentUrl", "inputUrl", "url"])
            .and_then(post_id_from_url)
            .or_else(|| id_at(map, &["postId", "mediaId"]))
    })
}

fn parse_comment(
    map: &Map<String, Value>,
    ig_post_id: &str,
    parent: Option<&str>,
    out: &mut Records,
) -> Result<(), Rejection> {
    let id = id_at(map, &["id", "pk"]).ok_or(Rejection::CommentWithoutId)?;
    let username = str_at(map, &["ownerUsername", "owner/username", "username"])
        .filter(|u| !u.is_empty())
        .ok_or(Rejection::CommentWithoutAuthor)?;
    let author = ProfileRecord {
        ig_user_id: id_at(map, &["owner/id", "ownerId", "owner/pk"]),
        username: username.to_ascii_lowercase(),
        full_name: str_at(map, &["owner/full_name", "ownerFullName"])
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        is_private: bool_at(map, &["owner/is_private"]),
        is_verified: bool_at(map, &["owner/is_verified", "ownerIsVerified"]),
        is_business: None,
        followers_count: None,
        profile_pic_url: str_at(map, &["ownerProfilePicUrl", "owner/profile_pic_url"])
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    };
    out.comments.push(CommentRecord {
        ig_comment_id: id.clone(),
        ig_post_id: ig_post_id.to_owned(),
        post_url: str_at(map, &["postUrl"]).filter(|u| post_id_from_url(u).is_some()).map(post_address),
        parent_ig_comment_id: parent.map(str::to_owned),
        author,
        body: str_at(map, &["text"]).map(str::to_owned),
        commented_at: time_at(map, &["timestamp", "created_at"]),
        likes_count: i64_at(map, &["likesCount"]).and_then(|n| i32::try_from(n).ok()),
    });
    if let Some(Value::Array(replies)) = map.get("replies") {
        for r in replies {
            let read = match r {
                Value::Object(r) => parse_comment(r, ig_post_id, Some(&id), out).is_ok(),
                _ => false,
            };
            if !read {
                out.rejected_comments += 1;
            }
        }
    }
    Ok(())
}

/// A post's address without its query and without a comment's `/c/ID` tail.
fn post_address(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let path = path.find("/c/").map_or(path, |at| &path[..at]);
    if path.ends_with('/') { path.to_owned() } else { format!("{path}/") }
}

fn parse_profile_item(map: &Map<String, Value>) -> Result<Records, Rejection> {
    let username =
        str_at(map, &["username"]).filter(|u| !u.is_empty()).ok_or(Rejection::ProfileWithoutUsername)?;
    let mut out = Records::default();
    out.profiles.push(ProfileRecord {
        ig_user_id: id_at(map, &["id", "pk"]),
        username: username.to_ascii_lowercase(),
        full_name: str_at(map, &["fullName", "full_name"]).filter(|s| !s.is_empty()).map(str::to_owned),
        is_private: bool_at(map, &["private", "isPrivate", "is_private"]),
        is_verified: bool_at(map, &["verified", "isVerified", "is_verified"]),
        is_business: bool_at(map, &["isBusinessAccount", "is_business_account"]),
        followers_count: i64_at(map, &["followersCount"]),
        profile_pic_url: str_at(map, &["profilePicUrl", "profile_pic_url", "profilePicUrlHD"])
            .map(str::to_owned),
    });
    // A profile item carries the account's latest posts (with their comments): the profile's
    // own, whether or not each names its owner.
    if let Some(Value::Array(posts)) = map.get("latestPosts") {
        for p in posts {
            if let Value::Object(p) = p
                && let Ok(mut records) = parse_post(p)
            {
                for post in &mut records.posts {
                    if post.owner_username.is_none() {
                        post.owner_username = Some(username.to_ascii_lowercase());
                    }
                }
                out.extend(records);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "items_tests.rs"]
mod tests;
