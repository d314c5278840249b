//! A user's consent from outside Herald (issue 16): decisions imported from a
//! consent-management platform, single-use links to the user's consent center, and the export
//! of everything Herald holds about the user.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::audit::audit_user_action;
use super::auth::{AccountLinker, Admin};
use super::error::{ApiError, ErrorBody, Path};
use super::users::known_user;
use crate::consent::import::{self, ConsentImport};
use crate::state::AppState;
use crate::store::AccountLink;
use crate::tokens::hashing::{digest_hex, random_token};

/// How long an account link is valid by default, and at most.
pub const LINK_TTL_SECS: i64 = 15 * 60;
const LINK_TTL_MAX_SECS: i64 = 7 * 24 * 3600;

/// What an import recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct Imported {
    /// The ids of the consent records written, in the order of the decisions.
    pub record_ids: Vec<String>,
}

/// Records decisions made in a consent-management platform (method `import`, with the source).
/// They count like decisions made in Herald: the `purposes` claim and exports show them, and
/// webhooks get `consent.granted`, `consent.denied` or `consent.withdrawn`. All or nothing.
#[utoipa::path(post, path = "/admin/api/users/{sub}/consents", tag = "users",
    params(("sub" = String, Path, description = "Herald's subject identifier")),
    request_body = ConsentImport,
    responses((status = 201, body = Imported), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn import_consents(
    admin: Admin,
    State(state): State<AppState>,
    Path(sub): Path<String>,
    body: Result<Json<ConsentImport>, axum::extract::rejection::JsonRejection>,
) -> Result<(axum::http::StatusCode, Json<Imported>), ApiError> {
    let Json(body) = body.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    known_user(&state, &sub).await?;
    let settings = state.settings();
    let records =
        import::records(&settings, &sub, &body, state.now()).map_err(ApiError::invalid_request)?;
    let events: Vec<_> = records
        .iter()
        .flat_map(|r| crate::outbox::consent_rows(&settings.outbox, r))
        .collect();
    state.store.import_consents(&records, &events).await?;
    let record_ids: Vec<String> = records.into_iter().map(|r| r.id).collect();
    audit_user_action(
        &state,
        admin.actor,
        "consent.import",
        &sub,
        None,
        Some(json!({ "source": body.source, "records": record_ids })),
    )
    .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(Imported { record_ids }),
    ))
}

/// `POST /admin/api/users/{sub}/account-link`, optional body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// Seconds the link stays valid: default 900 (15 minutes), at most 7 days.
    #[schema(minimum = 60, maximum = 604800)]
    pub expires_in: Option<i64>,
}

/// A single-use link to a user's consent center.
#[derive(Debug, Serialize, ToSchema)]
pub struct Link {
    pub url: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// Makes a single-use link that opens the user's consent center without an upstream login: it
/// can list and withdraw that user's grants and nothing else (no login at Herald, no export).
/// For an admin, or a client with the `herald:account-link` scope (a consent-management
/// platform mailing users a link). The link's token is shown once and stored as a digest.
#[utoipa::path(post, path = "/admin/api/users/{sub}/account-link", tag = "users",
    params(("sub" = String, Path, description = "Herald's subject identifier")),
    request_body(content = Option<LinkRequest>),
    responses((status = 201, body = Link), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn account_link(
    linker: AccountLinker,
    State(state): State<AppState>,
    Path(sub): Path<String>,
    body: axum::body::Bytes,
) -> Result<(axum::http::StatusCode, Json<Link>), ApiError> {
    let request: LinkRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LinkRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid_request(e.to_string()))?
    };
    let ttl = request.expires_in.unwrap_or(LINK_TTL_SECS);
    if !(60..=LINK_TTL_MAX_SECS).contains(&ttl) {
        return Err(ApiError::invalid_request(format!(
            "expires_in: give 60 to {LINK_TTL_MAX_SECS} seconds"
        )));
    }
    known_user(&state, &sub).await?;
    let now = state.now();
    let token = random_token();
    let link = AccountLink {
        token_hash: digest_hex(&token),
        sub: sub.clone(),
        created_at: now,
        expires_at: now + ttl,
        used_at: None,
    };
    state.store.create_account_link(&link).await?;
    audit_user_action(
        &state,
        linker.actor,
        "account_link.create",
        &sub,
        None,
        Some(json!({ "expires_at": link.expires_at })),
    )
    .await?;
    let settings = state.settings();
    Ok((
        axum::http::StatusCode::CREATED,
        Json(Link {
            url: format!("{}/account/link?token={token}", settings.issuer),
            expires_at: crate::clock::rfc3339_utc(link.expires_at),
        }),
    ))
}

/// Everything Herald holds about the user: profile, stored logins with each value's origin,
/// grants, consent receipts, purpose states, sessions and tokens' metadata (never a token).
#[utoipa::path(get, path = "/admin/api/users/{sub}/export", tag = "users",
    params(("sub" = String, Path, description = "Herald's subject identifier")),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn export_user(
    admin: Admin,
    State(state): State<AppState>,
    Path(sub): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let settings = state.settings();
    let Some(doc) =
        crate::consent::export::user_export(&*state.store, &settings, &sub, state.now()).await?
    else {
        return Err(ApiError::not_found(format!("no user `{sub}`")));
    };
    audit_user_action(
        &state,
        admin.actor,
        "user.export",
        &sub,
        None,
        Some(json!({})),
    )
    .await?;
    // Like every admin answer, with `Cache-Control: no-store` (the admin router's layer).
    Ok(Json(doc))
}
