//! The OpenAPI document, generated from the handlers' annotations, served at
//! `/api/v1/openapi.json`.

use actix_web::{HttpResponse, get};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{accounts, admin, analyses, audience, auth, imports, meta, sharing, usage};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "AudienceLens API", description = "Instagram audience analysis with honest uncertainty. \
        Authenticate with `Authorization: Bearer <token>` (from /auth/login) or an API key. \
        Errors are `{\"error\": code, \"message\": text}`."),
    paths(
        auth::register, auth::login, auth::open_session, auth::me, auth::session_state, auth::logout, auth::change_password,
        auth::refresh, auth::create_api_key, auth::list_api_keys, auth::revoke_api_key,
        accounts::create, accounts::list, accounts::get, accounts::update, accounts::remove,
        analyses::start, imports::upload, analyses::list, analyses::get, analyses::cancel, analyses::retry,
        audience::latest, audience::of_analysis, audience::history, audience::compare, audience::overlap,
        audience::overlap_matrix,
        audience::commenters, audience::export, audience::export_commenters,
        sharing::create, sharing::list, sharing::revoke, sharing::open,
        admin::erase_person, admin::export_person, usage::usage, meta::server, meta::methodology,
    ),
    modifiers(&BearerAuth),
    tags((name = "auth"), (name = "accounts"), (name = "analyses"), (name = "audience"), (name = "admin"), (name = "usage"), (name = "sharing"), (name = "meta"))
)]
pub struct ApiDoc;

/// The OpenAPI 3.1 document of this API.
#[get("/openapi.json")]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
