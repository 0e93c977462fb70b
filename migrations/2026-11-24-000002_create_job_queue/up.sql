-- The durable job queue (src/queue/). Generic: it knows queues and kinds only as strings.
--
-- Life of a job: queued -> running (claimed under a lease) -> succeeded | queued again with a
-- later run_at (retry) | failed (attempts exhausted, or not retryable) | cancelled.
-- Finished rows stay for `jobs list` and are pruned after a retention period.
CREATE TABLE jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue            text NOT NULL,
    kind             text NOT NULL,
    payload          jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Lower runs first.
    priority         smallint NOT NULL DEFAULT 0,
    status           text NOT NULL DEFAULT 'queued'
                         CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 20 CHECK (max_attempts > 0),
    run_at           timestamptz NOT NULL DEFAULT now(),
    lease_owner      uuid,
    lease_expires_at timestamptz,
    last_error       text,
    dedupe_key       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    CHECK ((status = 'running') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)),
    CHECK ((status IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL))
);

-- Exactly the claim predicate, so claims never walk finished rows.
CREATE INDEX jobs_claim_idx ON jobs (queue, priority, run_at, id) WHERE status = 'queued';
-- Two unfinished jobs with the same key are impossible, whoever enqueues them.
CREATE UNIQUE INDEX jobs_dedupe_key_idx ON jobs (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running');
-- The rescuer's scan for expired leases.
CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at) WHERE status = 'running';
-- Pruning finished jobs.
CREATE INDEX jobs_finished_at_idx ON jobs (finished_at) WHERE finished_at IS NOT NULL;

-- Every claim and completion leaves a dead tuple: vacuum this table far more eagerly than the
-- defaults (20 % of the table) so the claim index stays short.
ALTER TABLE jobs SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 50000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_analyze_scale_factor = 0.02
);

-- Leaderless cron: one row per schedule; the copy that moves last_tick forward enqueues the
-- tick's job in the same transaction, so N running copies produce one job per tick.
CREATE TABLE cron_ticks (
    schedule   text PRIMARY KEY,
    last_tick  timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Written by the `queue_probe` job: an operator's end-to-end check that workers run jobs
-- (`audiencelens jobs probe`). One row per probe job, however often it runs.
CREATE TABLE queue_probes (
    job_id      bigint PRIMARY KEY,
    runs        integer NOT NULL DEFAULT 1,
    worker_id   uuid NOT NULL,
    first_run_at timestamptz NOT NULL DEFAULT now(),
    last_run_at  timestamptz NOT NULL DEFAULT now()
);
