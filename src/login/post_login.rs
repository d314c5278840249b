//! The post-authentication application (issue 18): an upstream's `post_login_url` sees the
//! user after the upstream login and the mappings, before consent (onboarding, profile
//! completion), as Cloudentity's post-authentication applications do.
//!
//! At the callback Herald records the login but does not yet remember it in the browser's
//! session: it sends the user to the application with `token`, a JWT Herald signs for itself
//! (`typ` `herald-continue+jwt`, five minutes, single use by its `jti`). The application sends
//! the user back to `GET /login/continue?token=…`, optionally with `context`, a JWT it signs
//! with a key of its client's registered `jwks` (`iss` its client id, `aud` Herald's issuer,
//! `continue` the token's `jti`, a short `exp`), whose claims are merged into the login's
//! context. Only then is the login the browser's, and the journey goes on to consent: a user
//! cannot skip the application by going to the consent page, since the page needs the login in
//! the session.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use tower_sessions::Session;

use super::journey::consent_stage;
use super::pending::{pending_request, store_failure};
use super::session::{LoginSession, set_login};
use crate::claims::{AuthContext, Merge, Origin, RESERVED_CLAIMS, Source};
use crate::config::{ClientAuth, PostLogin};
use crate::oauth::Params;
use crate::state::AppState;
use crate::store::AuthRequest;
use crate::tokens::{jwt, random_token};
use crate::web::PageError;

/// The continue token's media type.
pub const CONTINUE_TYP: &str = "herald-continue+jwt";
/// How long the application has to send the user back.
pub const CONTINUE_TTL_SECS: i64 = 300;
/// How long ahead a context JWT may expire.
const MAX_CONTEXT_LIFETIME: i64 = 600;
/// Claims of a context JWT that describe the JWT itself, not the user.
const ENVELOPE: [&str; 8] = ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "continue"];

pub fn router() -> Router<AppState> {
    Router::new().route("/login/continue", get(resume))
}

/// Sends the browser to the application with a continue token for this login.
pub(super) fn send_to_application(
    state: &AppState,
    app: &PostLogin,
    req: &AuthRequest,
    login: &LoginSession,
) -> Result<Response, PageError> {
    let settings = state.settings();
    let now = state.now();
    let claims = json!({
        "iss": settings.issuer,
        "aud": continue_audience(&settings.issuer),
        "iat": now,
        "exp": now + CONTINUE_TTL_SECS,
        "jti": random_token(),
        "request": req.id,
        "login": login,
    });
    let keys = state.keys();
    let token = keys
        .signing_key(crate::tokens::Alg::RS256)
        .ok_or(crate::tokens::keys::KeyError::Sign)
        .and_then(|key| jwt::sign(key, CONTINUE_TYP, &claims))
        .map_err(|e| {
            tracing::error!(error = %e, "signing a continue token failed");
            PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Herald could not continue this sign-in. Please try again.",
            )
        })?;
    let separator = if app.url.contains('?') { '&' } else { '?' };
    let url = format!(
        "{}{separator}token={}",
        app.url,
        form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    Ok(Redirect::to(&url).into_response())
}

fn continue_audience(issuer: &str) -> String {
    format!("{issuer}/login/continue")
}

/// `GET /login/continue`: the application hands the user back.
async fn resume(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let p = Params::parse(query.unwrap_or_default().as_bytes());
    if p.refusal().is_some() {
        return Err(refused("The link repeats a parameter; it was refused."));
    }
    let token = p
        .get("token")
        .ok_or_else(|| refused("This link has no continue token. Start again from the app."))?;
    let settings = state.settings();
    let now = state.now();
    let claims = jwt::verify_own(
        &state.keys(),
        &settings.issuer,
        &continue_audience(&settings.issuer),
        CONTINUE_TYP,
        token,
        now,
    )
    .map_err(|e| {
        tracing::info!(error = %e, "a continue token was refused");
        refused(
            "This sign-in link is invalid or has expired (it works for five minutes). Start \
             again from the app.",
        )
    })?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or_default();
    let (jti, request_id) = (text("jti").to_owned(), text("request").to_owned());
    let login: LoginSession = claims
        .get("login")
        .cloned()
        .and_then(|l| serde_json::from_value(l).ok())
        .ok_or_else(|| refused("This sign-in link is malformed. Start again from the app."))?;
    let upstream = settings
        .upstream(&login.upstream_id)
        .cloned()
        .ok_or_else(|| refused("That identity provider is no longer configured."))?;
    let context = match (p.get("context"), upstream.post_login.as_ref()) {
        (Some(jwt), Some(app)) => Some(context_claims(&state, app, jwt, &jti)?),
        (Some(_), None) => {
            return Err(refused(
                "This identity provider has no post-login application, so no context is taken.",
            ));
        }
        (None, _) => None,
    };
    // Single use, across replicas: the continue token's `jti`, kept while it could be valid.
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(now);
    let first = state
        .store
        .use_client_assertion("post-login-continue", &jti, exp + 60, now)
        .await
        .map_err(store_failure)?;
    if !first {
        return Err(refused(
            "This sign-in link was used already. Start again from the app.",
        ));
    }
    // The request must be this browser's and still pending.
    let req = pending_request(&state, &session, &request_id).await?;
    if req.sub.as_deref() != Some(login.sub.as_str()) {
        return Err(refused(
            "This sign-in link belongs to another sign-in. Start again from the app.",
        ));
    }
    if let Some(extra) = context {
        merge_context(&state, &login, &upstream.id, &extra).await?;
    }
    set_login(&session, &login).await?;
    consent_stage(&state, req).await
}

/// The claims of the application's context JWT, checked: signed by a key of the application's
/// client, for Herald, for this continue token, not expired and not long-lived.
fn context_claims(
    state: &AppState,
    app: &PostLogin,
    token: &str,
    jti: &str,
) -> Result<Map<String, Value>, PageError> {
    let settings = state.settings();
    let refuse = |why: String| {
        tracing::info!(why = %why, "a post-login application's context was refused");
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The information the sign-in application sent back could not be verified, so the \
             sign-in stopped. Start again from the app; if this keeps happening, tell its \
             administrator.",
        )
    };
    let client = app
        .client_id
        .as_deref()
        .and_then(|id| settings.client(id))
        .ok_or_else(|| refuse("no post_login_client is configured to verify it".into()))?;
    let ClientAuth::PrivateKeyJwt(jwks) = &client.auth else {
        return Err(refuse(
            "the post_login_client has no registered keys".into(),
        ));
    };
    let claims = jwt::verify_client_signed(
        jwks.as_ref(),
        &client.client_id,
        &[settings.issuer.as_str()],
        token,
        state.now(),
        MAX_CONTEXT_LIFETIME,
    )
    .map_err(|e| refuse(format!("context {e}")))?;
    if claims.get("continue").and_then(Value::as_str) != Some(jti) {
        return Err(refuse(
            "the context's `continue` is not this continue token's jti".into(),
        ));
    }
    Ok(claims)
}

/// Writes the context JWT's claims (not its envelope, not the claims Herald sets itself) into
/// the login's stored context, each with an origin naming the application.
async fn merge_context(
    state: &AppState,
    login: &LoginSession,
    upstream_id: &str,
    extra: &Map<String, Value>,
) -> Result<(), PageError> {
    let mut stored = state
        .store
        .context(&login.context_id)
        .await
        .map_err(store_failure)?
        .ok_or_else(|| refused("This sign-in has ended. Start again from the app."))?;
    let mut context: AuthContext = serde_json::from_str(&stored.context)
        .map_err(|_| refused("This sign-in could not be continued. Start again from the app."))?;
    for (name, value) in extra {
        if ENVELOPE.contains(&name.as_str()) || RESERVED_CLAIMS.contains(&name.as_str()) {
            continue;
        }
        context.attributes.insert(name.clone(), value.clone());
        context.origins.insert(
            name.clone(),
            vec![Origin {
                upstream: upstream_id.into(),
                source: Source::Computed,
                claim: name.as_str().into(),
                mapping: "post-login application".into(),
                merge: Merge::Set,
                kept: false,
            }],
        );
    }
    stored.context = serde_json::to_string(&context)
        .map_err(|_| refused("This sign-in could not be continued. Start again from the app."))?;
    match state.store.refresh_context(&stored).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(refused("This sign-in has ended. Start again from the app.")),
        Err(e) => Err(store_failure(e)),
    }
}

fn refused(message: &str) -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, "Sign-in failed", message)
}
