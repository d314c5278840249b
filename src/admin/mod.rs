//! The admin API under `/admin/api`: JSON, described by the OpenAPI document at
//! `/admin/api/openapi.json`, which is generated from these handlers (utoipa).
//!
//! Every endpoint needs an admin credential ([`auth`]). Changes to the managed configuration
//! (upstream attributes and mappings, clients, scopes) are made on the latest stored version,
//! validated exactly as `herald check-config` validates a file (an invalid change is refused with
//! its messages and changes nothing), stored as the next version together with an audit entry,
//! and put into effect here at once and on every other replica within
//! `[server] config_poll_interval`.
//!
//! # Layout
//! - [`auth`]: who may call, in which role: the extractors [`auth::ConfigReader`],
//!   [`auth::ConfigEditor`], [`auth::UserReader`] and [`auth::Admin`] (bootstrap token, or a
//!   client token with `herald:admin`, `herald:edit` or `herald:read`).
//! - [`error`]: `{error, error_description}` answers and extractors that produce them.
//! - [`changes`]: the change service, the one way the API and the pages change the managed
//!   configuration.
//! - [`config_api`]: upstreams (with their attributes and mappings), clients, scopes, preview,
//!   lineage.
//! - [`users`]: users Herald has seen, their grants and consent records.
//! - [`identities`]: users created before their first login, and linking their identities.
//! - [`import_api`]: profiles imported through an upstream's mappings.
//! - [`consent_api`]: consent imported from a CMP, account links, the export of a user's data.
//! - [`erasure`]: erasing a user.
//! - [`audit`]: the audit log.
//! - [`pages`]: the admin pages under `/admin`, for admins signed in through Herald with the
//!   configured role.

pub mod audit;
pub mod auth;
pub mod changes;
pub mod config_api;
pub mod consent_api;
pub mod deliveries;
pub mod erasure;
pub mod error;
pub mod identities;
pub mod import_api;
pub mod login_events;
pub mod pages;
pub mod users;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// Admin requests carry small JSON documents; anything larger is refused before parsing.
const BODY_LIMIT: usize = 256 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Herald admin API",
        description = "Manage Herald's upstreams, claim mappings, clients and scopes at run \
                       time, look at users and their consents, and read the audit log. Every \
                       endpoint needs `Authorization: Bearer` with HERALD_ADMIN_TOKEN or an \
                       access token Herald issued by client_credentials with a role scope: \
                       herald:admin (everything), herald:edit (upstreams, mappings, scopes, \
                       clients) or herald:read (reads only). A refusal names the role needed."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "configuration", description = "The managed configuration"),
        (name = "users", description = "Users Herald has seen"),
        (name = "audit", description = "Who changed what"),
        (name = "events", description = "Events delivered to webhooks and hooks")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The answers every operation can give besides its own, added to the document once the
/// operations are in it: 400 `invalid_request` wherever a path, query or body is read (the
/// extractors of [`error`] refuse malformed ones, e.g. a path that is not UTF-8), 429 from the
/// rate limit per address, and 503 `temporarily_unavailable` everywhere, since even the
/// credential check may read the database.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                let reads_input = op.parameters.as_ref().is_some_and(|p| !p.is_empty())
                    || op.request_body.is_some();
                let responses = &mut op.responses.responses;
                if reads_input {
                    responses.entry("400".into()).or_insert_with(|| {
                        error("invalid_request: a malformed path, query or body").into()
                    });
                }
                responses.entry("429".into()).or_insert_with(|| {
                    error(
                        "temporarily_unavailable: too many requests from this address \
                         ([limits]); retry after the Retry-After header's seconds",
                    )
                    .into()
                });
                responses.entry("503".into()).or_insert_with(|| {
                    error("temporarily_unavailable: the database is unavailable; retry shortly")
                        .into()
                });
            }
        }
    }
}

/// The admin routes and the OpenAPI document describing them.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(
            config_api::upstreams::list_upstreams,
            config_api::upstreams::create_upstream
        ))
        .routes(routes!(
            config_api::upstreams::get_upstream,
            config_api::upstreams::put_upstream,
            config_api::upstreams::delete_upstream
        ))
        .routes(routes!(config_api::upstreams::test_upstream))
        .routes(routes!(
            config_api::upstreams::get_attributes,
            config_api::upstreams::put_attributes
        ))
        .routes(routes!(
            config_api::upstreams::get_mappings,
            config_api::upstreams::put_mappings
        ))
        .routes(routes!(
            config_api::clients::list_clients,
            config_api::clients::create_client
        ))
        .routes(routes!(
            config_api::clients::get_client,
            config_api::clients::put_client,
            config_api::clients::delete_client
        ))
        .routes(routes!(config_api::clients::rotate_secret))
        .routes(routes!(
            config_api::scopes::get_scopes,
            config_api::scopes::put_scopes
        ))
        .routes(routes!(config_api::scopes::preview))
        .routes(routes!(config_api::scopes::lineage))
        .routes(routes!(users::list_users, identities::create_user))
        .routes(routes!(import_api::import_users))
        .routes(routes!(import_api::refresh_user))
        .routes(routes!(identities::link_identity))
        .routes(routes!(identities::unlink_identity))
        .routes(routes!(
            users::get_user,
            users::patch_user,
            erasure::erase_user
        ))
        .routes(routes!(users::users_by_email))
        .routes(routes!(login_events::list_login_events))
        .routes(routes!(users::get_consents, consent_api::import_consents))
        .routes(routes!(consent_api::account_link))
        .routes(routes!(consent_api::export_user))
        .routes(routes!(users::withdraw_grant))
        .routes(routes!(audit::list_audit))
        .routes(routes!(deliveries::list_deliveries))
        .routes(routes!(deliveries::retry_delivery))
        .split_for_parts();
    CommonResponses.modify(&mut doc);
    (router, doc)
}

/// The OpenAPI document of the admin API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

pub fn router() -> Router<AppState> {
    let (router, doc) = api();
    let json = doc.to_json().expect("the OpenAPI document serializes");
    router
        .route(
            "/admin/api/openapi.json",
            get(move |_: auth::ConfigReader| {
                let json = json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], json).into_response() }
            }),
        )
        .route("/admin/api", axum::routing::any(unknown))
        .route("/admin/api/{*rest}", axum::routing::any(unknown))
        .merge(pages::router())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(no_store))
}

/// Admin answers carry users' data and, once, a generated client secret: no cache may keep them.
async fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Unknown paths under `/admin/api` need credentials like the rest, then are 404.
async fn unknown(_: auth::ConfigReader) -> Response {
    error::ApiError::not_found("no such admin endpoint").into_response()
}
