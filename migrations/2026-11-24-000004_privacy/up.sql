-- Privacy: people who asked to be erased stay erased, and every erasure and personal-data
-- export is on record (who, when, what; never the personal data itself).

-- Keyed hashes (HMAC-SHA256 with AUDIENCELENS_PRIVACY_KEY) of erased people's usernames and
-- Instagram ids: later scrapes and imports drop their items before storing anything.
CREATE TABLE suppressions (
    kind       text NOT NULL CHECK (kind IN ('username', 'user_id')),
    key_hash   bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key_hash)
);

CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    -- "cli" or "user:<id>".
    actor        text NOT NULL,
    action       text NOT NULL CHECK (action IN ('erase', 'access_export', 'audience_export')),
    -- The keyed hash of the person concerned (erasure, access request), or null.
    subject_hash bytea,
    -- Counts and identifiers of what was done, never personal data.
    details      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- Erasing a person must not erase other people's replies to them: a reply whose parent goes
-- stays, unlinked.
ALTER TABLE comments DROP CONSTRAINT comments_parent_comment_id_fkey;
ALTER TABLE comments ADD CONSTRAINT comments_parent_comment_id_fkey
    FOREIGN KEY (parent_comment_id) REFERENCES comments (id) ON DELETE SET NULL;
