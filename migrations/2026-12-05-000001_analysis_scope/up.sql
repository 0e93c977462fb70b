-- What an analysis covers, fixed once, so that every view of it counts the same comments.

-- The accounts that published a post together with its owner (Instagram collaboration posts):
-- they are never part of the post's audience. Lower-case usernames.
ALTER TABLE posts ADD COLUMN coauthors text[] NOT NULL DEFAULT '{}';

-- How an analysis chose its posts: `latest_posts` (a scrape: the account's newest `max_posts`,
-- fixed when its pictures stage starts) or `input` (an import: every post of the files).
ALTER TABLE analyses ADD COLUMN scope text NOT NULL DEFAULT 'latest_posts'
    CHECK (scope IN ('latest_posts', 'input'));

-- The posts an analysis covers.
CREATE TABLE analysis_posts (
    analysis_id bigint NOT NULL REFERENCES analyses (id) ON DELETE CASCADE,
    post_id     bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    PRIMARY KEY (analysis_id, post_id)
);
CREATE INDEX analysis_posts_post_id_idx ON analysis_posts (post_id);

-- The comments an analysis's own input delivered (its import files or its scrape runs), kept
-- until its snapshot is stored: they tell the input's duplicates from comments stored earlier.
CREATE TABLE analysis_comments (
    analysis_id bigint NOT NULL REFERENCES analyses (id) ON DELETE CASCADE,
    comment_id  bigint NOT NULL REFERENCES comments (id) ON DELETE CASCADE,
    PRIMARY KEY (analysis_id, comment_id)
);
CREATE INDEX analysis_comments_comment_id_idx ON analysis_comments (comment_id);

-- The comments that make up a tracked account's audience: every comment on its posts except
-- those written by the account itself or by an author of the post (its owner, a co-author).
-- Every audience read (snapshots, commenter lists, overlap, the pictures to fetch) goes
-- through this view, so the rule lives in one place.
CREATE VIEW audience_comments AS
SELECT tap.tracked_account_id, c.id, c.post_id, c.ig_profile_id, c.commented_at
FROM comments c
JOIN tracked_account_posts tap ON tap.post_id = c.post_id
JOIN tracked_accounts t ON t.id = tap.tracked_account_id
JOIN posts p ON p.id = c.post_id
JOIN ig_profiles pr ON pr.id = c.ig_profile_id
WHERE lower(pr.username) <> lower(t.handle)
  AND lower(pr.username) IS DISTINCT FROM lower(p.owner_username)
  AND NOT (lower(pr.username) = ANY (p.coauthors))
  AND (t.ig_user_id IS NULL OR pr.ig_user_id IS DISTINCT FROM t.ig_user_id)
  AND (p.owner_ig_id IS NULL OR pr.ig_user_id IS DISTINCT FROM p.owner_ig_id);
