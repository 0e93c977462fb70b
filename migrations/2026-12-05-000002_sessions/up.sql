-- Logins, so that they can end: a logout ends one, a new password ends every other one, a
-- password or role set by an operator ends them all. Every request checks its session here,
-- so an ended session stops working at once on every API process.
CREATE TABLE sessions (
    id          uuid PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- `token`: a JWT from /auth/login carries the id. `cookie`: the dashboard's HttpOnly
    -- cookie carries a random secret, of which only the SHA-256 is stored.
    kind        text NOT NULL CHECK (kind IN ('token', 'cookie')),
    secret_hash bytea UNIQUE,
    -- When the password was given: a session lasts at most `auth.max_session_hours` from it.
    created_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    CHECK ((kind = 'cookie') = (secret_hash IS NOT NULL))
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
