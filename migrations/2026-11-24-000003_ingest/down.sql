ALTER TABLE posts DROP COLUMN comments_scraped_at;
ALTER TABLE posts DROP COLUMN comments_scraped_count;
DROP INDEX posts_posted_at_idx;
DROP TABLE apify_runs;
CREATE INDEX profile_pictures_ig_profile_id_idx ON profile_pictures (ig_profile_id);
DROP INDEX profile_pictures_profile_path_key;
ALTER TABLE profile_pictures DROP COLUMN source_path;
