use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use super::*;

fn post_with_comments() -> Value {
    json!({
        "inputUrl": "https://www.instagram.com/humansofny/", "id": "3687361308854381515",
        "type": "Sidecar", "shortCode": "DMsI5LsyOvL", "url": "https://www.instagram.com/p/DMsI5LsyOvL/",
        "commentsCount": 2, "likesCount": -1, "timestamp": "2025-07-29T11:15:43.000Z",
        "ownerUsername": "humansofny", "ownerId": "242598499",
        "latestComments": [
            {"id": "18058751161889190", "text": "so good", "ownerUsername": "Raabedung",
             "ownerProfilePicUrl": "https://scontent.cdninstagram.com/v/t51.2885-19/1_n.jpg?stp=dst-jpg_s150x150&oe=67445236",
             "timestamp": "2024-11-20T22:39:43.000Z", "repliesCount": 1, "likesCount": 3,
             "owner": {"id": "70276545822", "is_verified": false, "username": "raabedung"},
             "replies": [{"id": "18058751161889191", "text": "agreed", "ownerUsername": "second.person",
                          "owner": {"id": 555, "username": "second.person", "is_private": "true"}}]},
            {"text": "no id here", "ownerUsername": "ghost"}
        ]
    })
}

#[test]
fn a_post_brings_its_comments_and_replies() {
    let r = parse_item(&post_with_comments()).expect("post");
    assert_eq!(r.posts.len(), 1);
    let post = &r.posts[0];
    assert_eq!(post.ig_post_id, "3687361308854381515");
    assert_eq!(post.likes_count, None, "-1 means hidden, not a count");
    assert_eq!(post.comments_count, Some(2));
    assert_eq!(r.comments.len(), 2, "the comment without id is skipped, the reply kept");
    assert_eq!(r.comments[0].author.username, "raabedung");
    assert_eq!(r.comments[0].author.ig_user_id.as_deref(), Some("70276545822"));
    assert_eq!(r.comments[0].author.is_private, None, "absent stays absent");
    assert_eq!(r.comments[1].parent_ig_comment_id.as_deref(), Some("18058751161889190"));
    assert_eq!(r.comments[1].author.ig_user_id.as_deref(), Some("555"));
    assert_eq!(r.comments[1].author.is_private, Some(true));
}

#[test]
fn a_comment_scraper_item_finds_its_post_by_url() {
    let item = json!({"id": "17936051705776440", "text": "Boss", "timestamp": "2024-08-01T18:24:09.000Z",
                      "ownerUsername": "teni_juste", "postUrl": "https://www.instagram.com/p/DMsI5LsyOvL/"});
    let r = parse_item(&item).expect("comment");
    assert_eq!(r.comments[0].ig_post_id, "3687361308854381515");
    assert!(r.posts.is_empty());
    let orphan = json!({"id": "1", "text": "hi", "ownerUsername": "x"});
    assert_eq!(parse_item(&orphan), Err(Rejection::CommentWithoutPost));
}

#[test]
fn an_overview_post_without_id_uses_its_url() {
    let item = json!({"caption": "c", "ownerUsername": "tinker_verse", "url": "https://www.instagram.com/p/DMozbG6sOQS/",
                      "commentsCount": 0, "firstComment": "", "likesCount": 44, "timestamp": "2025-07-28T04:10:00.000Z"});
    let r = parse_item(&item).expect("post");
    assert_eq!(r.posts[0].ig_post_id, shortcode_to_id("DMozbG6sOQS").expect("id"));
}

#[test]
fn a_profile_item_keeps_flags_not_biography() {
    let item = json!({"id": "242598499", "username": "HumansOfNY", "fullName": "Humans of New York",
                      "biography": "never stored", "followersCount": 12_800_000, "private": false, "verified": true,
                      "isBusinessAccount": false, "profilePicUrl": "https://x/v/t51.2885-19/a.jpg?oe=1",
                      "latestPosts": [{"id": "3199788912020727379", "shortCode": "Cxn7w_xOqZT", "ownerUsername": "humansofny"}]});
    let r = parse_item(&item).expect("profile");
    assert_eq!(r.profiles[0].username, "humansofny");
    assert_eq!(r.profiles[0].is_verified, Some(true));
    assert_eq!(r.profiles[0].followers_count, Some(12_800_000));
    assert_eq!(r.posts.len(), 1);
}

#[test]
fn things_that_are_not_items_are_rejected_with_a_reason() {
    assert_eq!(parse_item(&json!([1, 2])), Err(Rejection::NotAnObject));
    assert!(matches!(parse_item(&json!({"hello": "world"})), Err(Rejection::Unrecognised(_))));
    assert_eq!(parse_item(&json!({"shortCode": "***"})), Err(Rejection::PostWithoutId));
}

/// Arbitrary JSON, biased towards the field names the parser looks at.
fn arbitrary(rng: &mut StdRng, depth: u32) -> Value {
    const KEYS: &[&str] = &[
        "id",
        "shortCode",
        "url",
        "postUrl",
        "text",
        "ownerUsername",
        "owner",
        "username",
        "latestComments",
        "replies",
        "timestamp",
        "likesCount",
        "commentsCount",
        "followersCount",
        "profilePicUrl",
        "latestPosts",
        "private",
        "verified",
        "pk",
        "x",
    ];
    match rng.random_range(0..if depth > 3 { 6 } else { 9 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>() * 1e12 - 5e11),
        4 => {
            let pool = [
                "",
                "DMsI5LsyOvL",
                "https://www.instagram.com/p/DMsI5LsyOvL/",
                "2024-11-20T22:39:43Z",
                "true",
                "-1",
                "é😀\u{0}",
                "/p/",
                "18058751161889190",
            ];
            Value::String(pool[rng.random_range(0..pool.len())].to_owned())
        }
        5 => Value::String(
            (0..rng.random_range(0..20)).map(|_| char::from(rng.random_range(32u8..127))).collect(),
        ),
        6 | 7 => {
            let n = rng.random_range(0..8);
            Value::Object(
                (0..n)
                    .map(|_| (KEYS[rng.random_range(0..KEYS.len())].to_owned(), arbitrary(rng, depth + 1)))
                    .collect(),
            )
        }
        _ => Value::Array((0..rng.random_range(0..5)).map(|_| arbitrary(rng, depth + 1)).collect()),
    }
}

#[test]
fn no_json_value_makes_the_parser_panic() {
    let mut rng = StdRng::seed_from_u64(0x5EED);
    let mut accepted = 0;
    for _ in 0..20_000 {
        if parse_item(&arbitrary(&mut rng, 0)).is_ok() {
            accepted += 1;
        }
    }
    // The generator is biased enough that some random items are valid, so both paths run.
    assert!(accepted > 0);
}
