-- Read-only links to one account's latest report, for an agency's clients: unguessable (a
-- random token, only its SHA-256 stored), expiring, revocable.
CREATE TABLE share_links (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tracked_account_id bigint NOT NULL REFERENCES tracked_accounts (id) ON DELETE CASCADE,
    token_hash         bytea NOT NULL UNIQUE,
    -- The first characters of the token, so that links can be told apart in a list.
    token_prefix       text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL,
    revoked_at         timestamptz
);
CREATE INDEX share_links_tracked_account_id_idx ON share_links (tracked_account_id);
