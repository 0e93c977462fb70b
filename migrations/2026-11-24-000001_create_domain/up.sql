-- The AudienceLens domain: tenants (users, API keys, tracked accounts), the public Instagram
-- data collected for them (posts, comments, commenters, pictures), what the classifiers said
-- about each picture, and analyses with their result snapshots.
--
-- Conventions: bigint identity keys; timestamps are timestamptz; money is integer micro-USD
-- (1 USD = 1_000_000) so sums are exact; every foreign key has an index.

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL,
    password_hash text NOT NULL,
    is_admin      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE api_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    -- The first characters of the key, shown in listings so a user can tell keys apart.
    key_prefix   text NOT NULL,
    -- SHA-256 of the whole key: the key itself is shown once and never stored.
    key_hash     bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);

CREATE TABLE tracked_accounts (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id               bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    handle                text NOT NULL,
    ig_user_id            text,
    followers_count       bigint,
    schedule              text NOT NULL DEFAULT 'off' CHECK (schedule IN ('off', 'daily', 'weekly')),
    max_posts             integer NOT NULL DEFAULT 12 CHECK (max_posts > 0),
    max_comments_per_post integer NOT NULL DEFAULT 50 CHECK (max_comments_per_post > 0),
    budget_micro_usd      bigint CHECK (budget_micro_usd >= 0),
    last_analyzed_at      timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
-- Also serves as the index of the user_id foreign key (leading column).
CREATE UNIQUE INDEX tracked_accounts_user_handle_key ON tracked_accounts (user_id, lower(handle));

-- Posts are public data keyed by Instagram's id, shared by every tenant that tracks the account.
CREATE TABLE posts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ig_post_id      text NOT NULL UNIQUE,
    short_code      text,
    owner_username  text,
    owner_ig_id     text,
    url             text,
    post_type       text,
    posted_at       timestamptz,
    comments_count  integer,
    likes_count     integer,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX posts_owner_username_idx ON posts (lower(owner_username));

-- Which posts belong to which tracked account (an import or a hashtag scrape can attribute posts
-- by other owners to an account).
CREATE TABLE tracked_account_posts (
    tracked_account_id bigint NOT NULL REFERENCES tracked_accounts (id) ON DELETE CASCADE,
    post_id            bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    PRIMARY KEY (tracked_account_id, post_id)
);
CREATE INDEX tracked_account_posts_post_id_idx ON tracked_account_posts (post_id);

-- Commenters. Identity is Instagram's user id when the source gives it; some exports carry only
-- the username, so those rows are unique by username among rows without an id.
CREATE TABLE ig_profiles (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ig_user_id             text UNIQUE,
    username               text NOT NULL,
    full_name              text,
    is_private             boolean,
    is_verified            boolean,
    is_business            boolean,
    profile_pic_url        text,
    profile_pic_expires_at timestamptz,
    -- When this person's data was first collected: retention runs from here and is not renewed
    -- by later scrapes.
    collected_at           timestamptz NOT NULL DEFAULT now(),
    refreshed_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ig_profiles_username_idx ON ig_profiles (lower(username));
CREATE UNIQUE INDEX ig_profiles_username_without_id_key ON ig_profiles (lower(username))
    WHERE ig_user_id IS NULL;
CREATE INDEX ig_profiles_collected_at_idx ON ig_profiles (collected_at);

CREATE TABLE comments (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ig_comment_id     text NOT NULL UNIQUE,
    post_id           bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    parent_comment_id bigint REFERENCES comments (id) ON DELETE CASCADE,
    ig_profile_id     bigint NOT NULL REFERENCES ig_profiles (id) ON DELETE CASCADE,
    body              text,
    commented_at      timestamptz,
    likes_count       integer,
    collected_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX comments_post_id_idx ON comments (post_id);
CREATE INDEX comments_parent_comment_id_idx ON comments (parent_comment_id);
CREATE INDEX comments_ig_profile_id_idx ON comments (ig_profile_id);
CREATE INDEX comments_collected_at_idx ON comments (collected_at);

-- One row per picture a commenter showed us: where it came from, whether we got it, and the
-- hash of its content once fetched (identical pictures share a hash and one classification).
CREATE TABLE profile_pictures (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ig_profile_id  bigint NOT NULL REFERENCES ig_profiles (id) ON DELETE CASCADE,
    source_url     text NOT NULL,
    url_expires_at timestamptz,
    fetch_status   text NOT NULL DEFAULT 'pending' CHECK (fetch_status IN
                       ('pending', 'fetched', 'default_avatar', 'expired', 'failed', 'rejected')),
    fetch_error    text,
    fetch_attempts integer NOT NULL DEFAULT 0,
    content_sha256 bytea,
    mime_type      text,
    width          integer,
    height         integer,
    fetched_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX profile_pictures_ig_profile_id_idx ON profile_pictures (ig_profile_id);
CREATE INDEX profile_pictures_content_sha256_idx ON profile_pictures (content_sha256);
CREATE INDEX profile_pictures_pending_idx ON profile_pictures (id) WHERE fetch_status = 'pending';

-- Picture bytes, kept only until the picture is classified.
CREATE TABLE picture_blobs (
    content_sha256 bytea PRIMARY KEY,
    bytes          bytea NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- What a classifier said about a picture. Keyed by content hash and model version, so a
-- re-analysis never pays twice for the same picture and model.
CREATE TABLE classifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    content_sha256  bytea NOT NULL,
    model_version   text NOT NULL,
    source_model    text NOT NULL,
    profile_type    text NOT NULL CHECK (profile_type IN ('person', 'group', 'no_person', 'default_avatar')),
    no_person_kind  text,
    face_count      integer NOT NULL DEFAULT 0,
    gender          text CHECK (gender IN ('female', 'male')),
    gender_prob     double precision,
    age_estimate    double precision,
    p_age_13_17     double precision,
    p_age_18_24     double precision,
    p_age_25_34     double precision,
    p_age_35_44     double precision,
    p_age_45_54     double precision,
    p_age_55_64     double precision,
    p_age_65_plus   double precision,
    abstain_reason  text,
    cost_micro_usd  bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (content_sha256, model_version)
);
CREATE INDEX classifications_created_at_idx ON classifications (created_at);

-- One run over one tracked account: its stage, progress counts and, once aggregated, an
-- immutable snapshot of the audience (no personal data).
CREATE TABLE analyses (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tracked_account_id bigint NOT NULL REFERENCES tracked_accounts (id) ON DELETE CASCADE,
    status             text NOT NULL DEFAULT 'queued' CHECK (status IN
                           ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    stage              text NOT NULL DEFAULT 'scrape' CHECK (stage IN
                           ('scrape', 'fetch_pictures', 'classify', 'aggregate', 'done')),
    classifier         text NOT NULL DEFAULT 'local' CHECK (classifier IN ('local', 'gemini', 'cascade')),
    progress           jsonb NOT NULL DEFAULT '{}'::jsonb,
    error              text,
    snapshot           jsonb,
    cost_micro_usd     bigint NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,
    finished_at        timestamptz
);
CREATE INDEX analyses_tracked_account_id_idx ON analyses (tracked_account_id, created_at DESC);
