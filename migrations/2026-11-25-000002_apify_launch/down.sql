ALTER TABLE apify_runs DROP COLUMN launch_started_at;
