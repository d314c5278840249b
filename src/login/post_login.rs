//! The post-authentication application (issue 18): an upstream's `post_login_url` sees the
//! user after the upstream login and the mappings, before consent (onboarding, profile
//! completion), as Cloudentity's post-authentication applications do.
//!
//! At the callback Herald records the login but does not yet remember it in the browser's
//! session: it sends the user to the application with `token`, a JWT Herald signs for itself
//! (`typ` `herald-continue+jwt`, five minutes, single use by its `jti`). The application sends
//! the user back to `GET /login/continue?token=…&context=…`, where `context` is a JWT it signs
//! with a key of its client's registered `jwks` (`iss` its client id, `aud`
//! `{issuer}/login/continue`, so it can never pass for a client assertion, `continue` the
//! token's `jti`, a short `exp`): the user cannot skip the application, whose signature says it
//! saw them, and its claims are merged into the login's context. Only then is the login the
//! browser's, and the journey goes on to consent: the consent page refuses a request whose
//! login is not the browser's current one.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use tower_sessions::Session;

use super::journey::consent_stage;
use super::pending::{check_pending, started_elsewhere, store_failure};
use super::session::{LoginSession, binding_of, set_login};
use crate::claims::context::forget_origins;
use crate::claims::{AuthContext, ClaimPath, Merge, Origin, RESERVED_CLAIMS, Source};
use crate::config::{ClientAuth, PostLogin};
use crate::oauth::Params;
use crate::state::AppState;
use crate::store::AuthRequest;
use crate::tokens::{jwt, random_token};
use crate::web::PageError;
use crate::web::binding::BrowserBinding;

/// The continue token's media type.
pub const CONTINUE_TYP: &str = "herald-continue+jwt";
/// How long the application has to send the user back.
pub const CONTINUE_TTL_SECS: i64 = 300;
/// How long ahead a context JWT may expire.
const MAX_CONTEXT_LIFETIME: i64 = 600;
/// How origins name what a post-login application wrote.
const APPLICATION: &str = "post-login application";

/// Claims an application may not state: verifications are the identity provider's to make.
const NOT_FROM_APPLICATIONS: [&str; 2] = ["email_verified", "phone_number_verified"];

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
    binding: BrowserBinding,
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
    // The application's signed answer is what says it saw the user: without it, no login.
    let Some(app) = upstream.post_login.as_ref() else {
        return Err(refused(
            "This identity provider no longer sends users to a sign-in application. Start again \
             from the app.",
        ));
    };
    let context = p.get("context").ok_or_else(|| {
        refused(
            "The sign-in application did not send its answer back, so the sign-in stopped. \
             Start again from the app.",
        )
    })?;
    let context = context_claims(&state, app, context, &jti)?;
    // Only this browser may spend it: a token seen elsewhere (a log, a Referer) is refused
    // without being spent.
    let loaded = state
        .store
        .auth_request(&request_id)
        .await
        .map_err(store_failure)?;
    if let Some(req) = &loaded
        && binding_of(&binding, &session, req).await.is_none()
    {
        return Err(started_elsewhere());
    }
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
    // The request must still be pending.
    let req = check_pending(&state, &session, &binding, loaded).await?;
    if req.sub.as_deref() != Some(login.sub.as_str())
        || req.auth_context_id.as_deref() != Some(login.context_id.as_str())
    {
        return Err(refused(
            "This sign-in link belongs to another sign-in. Start again from the app.",
        ));
    }
    merge_context(&state, &login, &upstream.id, &context).await?;
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
    let client = settings
        .client(&app.client_id)
        .ok_or_else(|| refuse("the post_login_client is no longer registered".into()))?;
    let ClientAuth::PrivateKeyJwt(jwks) = &client.auth else {
        return Err(refuse(
            "the post_login_client has no registered keys".into(),
        ));
    };
    let audience = continue_audience(&settings.issuer);
    let claims = jwt::verify_client_signed(
        "context",
        jwks.as_ref(),
        &client.client_id,
        &[audience.as_str()],
        token,
        state.now(),
        MAX_CONTEXT_LIFETIME,
    )
    .map_err(refuse)?;
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
    let role_claim = state
        .settings()
        .admin
        .roles
        .as_ref()
        .map(|r| r.claim.clone());
    for (name, value) in extra {
        let Some(path) = ClaimPath::from_segments(vec![name.clone()]) else {
            continue;
        };
        // Not the JWT's own claims, not those Herald sets, not a verification only the
        // identity provider may state, and not the claim the admin roles are read from.
        let refused = ENVELOPE.contains(&name.as_str())
            || RESERVED_CLAIMS.contains(&name.as_str())
            || NOT_FROM_APPLICATIONS.contains(&name.as_str())
            || role_claim
                .as_ref()
                .is_some_and(|r| r.starts_with(&path) || path.starts_with(r));
        if refused {
            tracing::info!(claim = %name, "a post-login application's claim was not taken");
            continue;
        }
        let key = path.canonical();
        // Origins of what the written value replaces are stale.
        forget_origins(&mut context.origins, &key);
        context.attributes.insert(name.clone(), value.clone());
        context.origins.insert(
            key,
            vec![Origin {
                upstream: upstream_id.into(),
                source: Source::Computed,
                claim: name.as_str().into(),
                mapping: APPLICATION.into(),
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

/// Copies what a post-login application wrote in `previous` into `rebuilt` (a login's context
/// rebuilt from refreshed upstream claims), which the mappings alone would drop.
pub fn carry_over(previous: &AuthContext, rebuilt: &mut AuthContext) {
    for (key, origins) in &previous.origins {
        if !origins.iter().any(|o| o.mapping.as_str() == APPLICATION) {
            continue;
        }
        let Ok(path) = ClaimPath::parse(key) else {
            continue;
        };
        if let Some(value) = path.get(&previous.attributes) {
            path.set(&mut rebuilt.attributes, value.clone());
            rebuilt.origins.insert(key.clone(), origins.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_an_application_wrote_survives_a_rebuild_and_nothing_else_is_carried() {
        let origin = |mapping: &str| Origin {
            upstream: "up".into(),
            source: Source::Computed,
            claim: "plan".into(),
            mapping: mapping.into(),
            merge: Merge::Set,
            kept: false,
        };
        let mut previous: AuthContext = serde_json::from_value(json!({
            "upstream": "up", "subject": "s", "attributes": {"plan": "gold", "name": "Old"},
            "origins": {}
        }))
        .unwrap();
        previous
            .origins
            .insert("plan".into(), vec![origin(APPLICATION)]);
        previous
            .origins
            .insert("name".into(), vec![origin("standard")]);
        let mut rebuilt: AuthContext = serde_json::from_value(json!({
            "upstream": "up", "subject": "s", "attributes": {"name": "New"}, "origins": {}
        }))
        .unwrap();
        carry_over(&previous, &mut rebuilt);
        assert_eq!(rebuilt.attributes["plan"], "gold");
        assert_eq!(rebuilt.attributes["name"], "New");
        assert_eq!(rebuilt.origins["plan"][0].mapping.as_str(), APPLICATION);
    }
}
