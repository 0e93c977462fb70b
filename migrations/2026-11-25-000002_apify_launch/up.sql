-- When an attempt claimed the start of a run ('launching'): only that attempt calls Apify, and a
-- claim left by an attempt that died before recording the run id expires after a while.
ALTER TABLE apify_runs ADD COLUMN launch_started_at timestamptz;
