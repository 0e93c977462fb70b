-- One row per Gemini request: the tokens it reported and what they cost. Sums per analysis,
-- tracked account and user come from here. No personal data: counts and money only.
CREATE TABLE gemini_requests (
    id                 bigserial PRIMARY KEY,
    user_id            bigint REFERENCES users (id) ON DELETE CASCADE,
    tracked_account_id bigint REFERENCES tracked_accounts (id) ON DELETE SET NULL,
    analysis_id        bigint REFERENCES analyses (id) ON DELETE SET NULL,
    model              text NOT NULL,
    pictures           integer NOT NULL CHECK (pictures >= 0),
    prompt_tokens      bigint NOT NULL CHECK (prompt_tokens >= 0),
    candidates_tokens  bigint NOT NULL CHECK (candidates_tokens >= 0),
    thoughts_tokens    bigint NOT NULL CHECK (thoughts_tokens >= 0),
    total_tokens       bigint NOT NULL CHECK (total_tokens >= 0),
    -- Billionths of a US dollar: exact for prices with up to three decimals per million tokens.
    cost_nano_usd      bigint NOT NULL CHECK (cost_nano_usd >= 0),
    -- ok, blocked:REASON, finish:REASON, malformed, no_candidate
    outcome            text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gemini_requests_user_id ON gemini_requests (user_id);
CREATE INDEX gemini_requests_tracked_account_id ON gemini_requests (tracked_account_id);
CREATE INDEX gemini_requests_analysis_id ON gemini_requests (analysis_id);

