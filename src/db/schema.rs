// @generated automatically by Diesel CLI.

diesel::table! {
    analyses (id) {
        id -> Int8,
        tracked_account_id -> Int8,
        status -> Text,
        stage -> Text,
        classifier -> Text,
        progress -> Jsonb,
        error -> Nullable<Text>,
        snapshot -> Nullable<Jsonb>,
        cost_micro_usd -> Int8,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        scope -> Text,
    }
}

diesel::table! {
    analysis_comments (analysis_id, comment_id) {
        analysis_id -> Int8,
        comment_id -> Int8,
    }
}

diesel::table! {
    analysis_posts (analysis_id, post_id) {
        analysis_id -> Int8,
        post_id -> Int8,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Int8,
        user_id -> Int8,
        name -> Text,
        key_prefix -> Text,
        key_hash -> Bytea,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    apify_runs (id) {
        id -> Int8,
        analysis_id -> Int8,
        purpose -> Text,
        actor -> Text,
        input -> Jsonb,
        run_id -> Nullable<Text>,
        dataset_id -> Nullable<Text>,
        status -> Text,
        items_stored -> Int4,
        usage_usd -> Nullable<Float8>,
        error -> Nullable<Text>,
        created_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        launch_started_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Int8,
        at -> Timestamptz,
        actor -> Text,
        action -> Text,
        subject_hash -> Nullable<Bytea>,
        details -> Jsonb,
    }
}

diesel::table! {
    classifications (id) {
        id -> Int8,
        content_sha256 -> Bytea,
        model_version -> Text,
        source_model -> Text,
        profile_type -> Text,
        no_person_kind -> Nullable<Text>,
        face_count -> Int4,
        gender -> Nullable<Text>,
        gender_prob -> Nullable<Float8>,
        age_estimate -> Nullable<Float8>,
        p_age_13_17 -> Nullable<Float8>,
        p_age_18_24 -> Nullable<Float8>,
        p_age_25_34 -> Nullable<Float8>,
        p_age_35_44 -> Nullable<Float8>,
        p_age_45_54 -> Nullable<Float8>,
        p_age_55_64 -> Nullable<Float8>,
        p_age_65_plus -> Nullable<Float8>,
        abstain_reason -> Nullable<Text>,
        cost_micro_usd -> Int8,
        created_at -> Timestamptz,
        details -> Nullable<Jsonb>,
    }
}

diesel::table! {
    comments (id) {
        id -> Int8,
        ig_comment_id -> Text,
        post_id -> Int8,
        parent_comment_id -> Nullable<Int8>,
        ig_profile_id -> Int8,
        body -> Nullable<Text>,
        commented_at -> Nullable<Timestamptz>,
        likes_count -> Nullable<Int4>,
        collected_at -> Timestamptz,
    }
}

diesel::table! {
    cron_ticks (schedule) {
        schedule -> Text,
        last_tick -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    gemini_requests (id) {
        id -> Int8,
        user_id -> Nullable<Int8>,
        tracked_account_id -> Nullable<Int8>,
        analysis_id -> Nullable<Int8>,
        model -> Text,
        pictures -> Int4,
        prompt_tokens -> Int8,
        candidates_tokens -> Int8,
        thoughts_tokens -> Int8,
        total_tokens -> Int8,
        cost_nano_usd -> Int8,
        outcome -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    ig_profiles (id) {
        id -> Int8,
        ig_user_id -> Nullable<Text>,
        username -> Text,
        full_name -> Nullable<Text>,
        is_private -> Nullable<Bool>,
        is_verified -> Nullable<Bool>,
        is_business -> Nullable<Bool>,
        profile_pic_url -> Nullable<Text>,
        profile_pic_expires_at -> Nullable<Timestamptz>,
        collected_at -> Timestamptz,
        refreshed_at -> Timestamptz,
    }
}

diesel::table! {
    jobs (id) {
        id -> Int8,
        queue -> Text,
        kind -> Text,
        payload -> Jsonb,
        priority -> Int2,
        status -> Text,
        attempts -> Int4,
        max_attempts -> Int4,
        run_at -> Timestamptz,
        lease_owner -> Nullable<Uuid>,
        lease_expires_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        dedupe_key -> Nullable<Text>,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    picture_blobs (content_sha256) {
        content_sha256 -> Bytea,
        bytes -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    posts (id) {
        id -> Int8,
        ig_post_id -> Text,
        short_code -> Nullable<Text>,
        owner_username -> Nullable<Text>,
        owner_ig_id -> Nullable<Text>,
        url -> Nullable<Text>,
        post_type -> Nullable<Text>,
        posted_at -> Nullable<Timestamptz>,
        comments_count -> Nullable<Int4>,
        likes_count -> Nullable<Int4>,
        first_seen_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        comments_scraped_count -> Nullable<Int4>,
        comments_scraped_at -> Nullable<Timestamptz>,
        coauthors -> Array<Text>,
    }
}

diesel::table! {
    profile_pictures (id) {
        id -> Int8,
        ig_profile_id -> Int8,
        source_url -> Text,
        url_expires_at -> Nullable<Timestamptz>,
        fetch_status -> Text,
        fetch_error -> Nullable<Text>,
        fetch_attempts -> Int4,
        content_sha256 -> Nullable<Bytea>,
        mime_type -> Nullable<Text>,
        width -> Nullable<Int4>,
        height -> Nullable<Int4>,
        fetched_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        source_path -> Text,
    }
}

diesel::table! {
    queue_probes (job_id) {
        job_id -> Int8,
        runs -> Int4,
        worker_id -> Uuid,
        first_run_at -> Timestamptz,
        last_run_at -> Timestamptz,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Int8,
        kind -> Text,
        secret_hash -> Nullable<Bytea>,
        created_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    share_links (id) {
        id -> Int8,
        tracked_account_id -> Int8,
        token_hash -> Bytea,
        token_prefix -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    suppressions (kind, key_hash) {
        kind -> Text,
        key_hash -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    tracked_account_posts (tracked_account_id, post_id) {
        tracked_account_id -> Int8,
        post_id -> Int8,
    }
}

diesel::table! {
    tracked_accounts (id) {
        id -> Int8,
        user_id -> Int8,
        handle -> Text,
        ig_user_id -> Nullable<Text>,
        followers_count -> Nullable<Int8>,
        schedule -> Text,
        max_posts -> Int4,
        max_comments_per_post -> Int4,
        budget_micro_usd -> Nullable<Int8>,
        last_analyzed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        email -> Text,
        password_hash -> Text,
        is_admin -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(analyses -> tracked_accounts (tracked_account_id));
diesel::joinable!(analysis_comments -> analyses (analysis_id));
diesel::joinable!(analysis_comments -> comments (comment_id));
diesel::joinable!(analysis_posts -> analyses (analysis_id));
diesel::joinable!(analysis_posts -> posts (post_id));
diesel::joinable!(api_keys -> users (user_id));
diesel::joinable!(apify_runs -> analyses (analysis_id));
diesel::joinable!(comments -> ig_profiles (ig_profile_id));
diesel::joinable!(comments -> posts (post_id));
diesel::joinable!(gemini_requests -> analyses (analysis_id));
diesel::joinable!(gemini_requests -> tracked_accounts (tracked_account_id));
diesel::joinable!(gemini_requests -> users (user_id));
diesel::joinable!(profile_pictures -> ig_profiles (ig_profile_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(share_links -> tracked_accounts (tracked_account_id));
diesel::joinable!(tracked_account_posts -> posts (post_id));
diesel::joinable!(tracked_account_posts -> tracked_accounts (tracked_account_id));
diesel::joinable!(tracked_accounts -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    analyses,
    analysis_comments,
    analysis_posts,
    api_keys,
    apify_runs,
    audit_log,
    classifications,
    comments,
    cron_ticks,
    gemini_requests,
    ig_profiles,
    jobs,
    picture_blobs,
    posts,
    profile_pictures,
    queue_probes,
    sessions,
    share_links,
    suppressions,
    tracked_account_posts,
    tracked_accounts,
    users,
);
