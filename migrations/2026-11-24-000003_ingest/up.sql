-- Ingest: a picture is identified per commenter by its CDN path (the signed query string
-- changes on every scrape, the file does not), and Apify runs are recorded so a retried scrape
-- job resumes the run it started instead of paying for a second one.

ALTER TABLE profile_pictures ADD COLUMN source_path text;
UPDATE profile_pictures SET source_path = split_part(source_url, '?', 1);
ALTER TABLE profile_pictures ALTER COLUMN source_path SET NOT NULL;
CREATE UNIQUE INDEX profile_pictures_profile_path_key ON profile_pictures (ig_profile_id, source_path);
-- Superseded by the unique index above (same leading column).
DROP INDEX profile_pictures_ig_profile_id_idx;

CREATE TABLE apify_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    analysis_id    bigint NOT NULL REFERENCES analyses (id) ON DELETE CASCADE,
    -- What the run is for within the analysis, e.g. "posts" or "comments:3" (a chunk).
    purpose        text NOT NULL,
    actor          text NOT NULL,
    input          jsonb NOT NULL,
    run_id         text,
    dataset_id     text,
    status         text NOT NULL DEFAULT 'starting',
    items_stored   integer NOT NULL DEFAULT 0,
    usage_usd      double precision,
    error          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    UNIQUE (analysis_id, purpose)
);

-- The account scrape asks for posts newer than the newest one stored.
CREATE INDEX posts_posted_at_idx ON posts (posted_at);
-- A post's comment count when its comments were last scraped: a re-analysis scrapes comments
-- only of posts that gained some since (comment results are paid for).
ALTER TABLE posts ADD COLUMN comments_scraped_count integer;
ALTER TABLE posts ADD COLUMN comments_scraped_at timestamptz;
