use serde_json::json;

use super::*;
use crate::scraping::items::parse_item;

fn records(items: &[serde_json::Value]) -> Records {
    let mut out = Records::default();
    for item in items {
        out.extend(parse_item(item).expect("item"));
    }
    out
}

fn comment(id: &str, author: &str, code: &str) -> serde_json::Value {
    json!({"id": id, "text": "nice", "ownerUsername": author,
           "postUrl": format!("https://www.instagram.com/p/{code}/")})
}

fn post(code: &str, owner: &str, comments: &[serde_json::Value]) -> serde_json::Value {
    json!({"shortCode": code, "ownerUsername": owner, "url": format!("https://www.instagram.com/p/{code}/"),
           "latestComments": comments})
}

const BRAND: Owner<'static> = Owner { handle: "brand", ig_user_id: None };

#[test]
fn posts_of_other_accounts_are_set_aside_with_their_comments() {
    let input = records(&[
        post("DAAAAAAAAAA", "brand", &[comment("1", "fan", "DAAAAAAAAAA")]),
        post("DBBBBBBBBBB", "rival", &[comment("2", "fan", "DBBBBBBBBBB"), comment("3", "x", "DBBBBBBBBBB")]),
        json!({"username": "rival", "followersCount": 10, "profilePicUrl": "https://x/p.jpg"}),
        json!({"username": "fan", "followersCount": 3}),
    ]);
    let (kept, intake) = attribute(input, &BRAND, Source::Account, &Stored::default());
    assert_eq!(kept.posts.len(), 1);
    assert_eq!(kept.comments.len(), 1);
    assert_eq!((intake.comments_read, intake.comments_foreign), (3, 2));
    assert_eq!((intake.posts_foreign, intake.foreign_owners.clone()), (1, vec!["rival".to_owned()]));
    assert_eq!(intake.profiles_foreign, 1, "the rival's profile goes, the commenter's stays");
    assert_eq!(kept.profiles.iter().map(|p| p.username.as_str()).collect::<Vec<_>>(), ["fan"]);
}

#[test]
fn a_collaboration_post_belongs_to_each_co_author() {
    let mut collab = post("DCCCCCCCCCC", "partner", &[comment("4", "fan", "DCCCCCCCCCC")]);
    collab["coauthorProducers"] = json!([{"username": "Brand", "id": "9"}]);
    let (kept, intake) = attribute(records(&[collab]), &BRAND, Source::Account, &Stored::default());
    assert_eq!((kept.posts.len(), kept.comments.len(), intake.comments_foreign), (1, 1, 0));
    assert_eq!(kept.posts[0].coauthors, ["brand"]);
}

#[test]
fn comments_without_a_named_post_owner_are_kept_and_counted_per_post() {
    let input = records(&[
        comment("5", "a", "DDDDDDDDDDD"),
        comment("6", "b", "DDDDDDDDDDD"),
        comment("7", "c", "DEEEEEEEEEE"),
    ]);
    let (kept, intake) = attribute(input.clone(), &BRAND, Source::Account, &Stored::default());
    assert_eq!((kept.comments.len(), intake.posts_without_owner), (3, 2));
    // The database names one post's owner: that one is foreign, the other still unnamed.
    let mut stored = Stored::default();
    let id = crate::scraping::shortcode_to_id("DDDDDDDDDDD").expect("id");
    stored.posts.insert(id, Authors { owner_username: Some("rival".into()), ..Authors::default() });
    let (kept, intake) = attribute(input, &BRAND, Source::Account, &stored);
    assert_eq!((kept.comments.len(), intake.comments_foreign, intake.posts_without_owner), (1, 2, 1));
}

#[test]
fn repeated_comments_count_once_and_unreadable_ones_are_counted() {
    let input = records(&[
        post(
            "DFFFFFFFFFF",
            "brand",
            &[
                comment("8", "a", "DFFFFFFFFFF"),
                json!({"text": "no id", "ownerUsername": "b"}),
                json!("junk"),
            ],
        ),
        comment("8", "a", "DFFFFFFFFFF"),
    ]);
    let (kept, intake) = attribute(input, &BRAND, Source::Account, &Stored::default());
    assert_eq!(kept.comments.len(), 1);
    assert_eq!((intake.comments_read, intake.comments_duplicate, intake.comments_rejected), (4, 1, 2));
}

#[test]
fn a_profile_run_keeps_only_profiles() {
    let input = records(&[json!({"username": "fan", "followersCount": 3,
        "latestPosts": [post("DGGGGGGGGGG", "fan", &[comment("9", "z", "DGGGGGGGGGG")])]})]);
    assert_eq!(input.posts[0].owner_username.as_deref(), Some("fan"));
    let (kept, intake) = attribute(input, &BRAND, Source::CommenterProfiles, &Stored::default());
    assert_eq!((kept.profiles.len(), kept.posts.len(), kept.comments.len()), (1, 0, 0));
    assert_eq!(intake, Intake::default(), "a commenter's own posts are not the account's input");
}

#[test]
fn a_gif_comment_with_no_text_is_a_comment() {
    // A CSV export leaves the empty text cell out.
    let gif = json!({"id": "10", "ownerUsername": "a", "postUrl": "https://www.instagram.com/p/DHHHHHHHHHH/c/10",
                     "media": {"url": "https://x/y.gif"}});
    let r = parse_item(&gif).expect("a comment");
    assert_eq!(r.comments.len(), 1);
    assert_eq!(r.comments[0].post_url.as_deref(), Some("https://www.instagram.com/p/DHHHHHHHHHH/"));
}
