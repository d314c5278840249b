//! The browser's legs of an upstream login: `/login/{request}` (the chooser, or straight to the
//! upstream) and `/callback/{upstream}` (back from it). The callback checks the answer, lets
//! the relying party ([`crate::upstream`]) redeem the code, and hands the finished upstream
//! login to [`record_login`]: the callback's one store transaction, which also spends the
//! answer's `state`. A failed answer spends it on its own; then the journey goes on to consent.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use tower_sessions::Session;

use super::journey::{consent_stage, upstream_for};
use super::pending::login_failed;
use super::pending::{
    check_pending, fail, has_prompt, pending_request, return_link, store_failure,
};
use super::post_login::send_to_application;
use super::session::{Browser, set_login};
use super::upstream_login::{record_login, state_spent, upstream_auth_time};
use super::upstream_start::{upstream_failure, upstream_start};
use crate::claims::Source;
use crate::config::{Settings, Upstream};
use crate::oauth::Params;
use crate::state::AppState;
use crate::store::{AuthRequest, StoreError, UpstreamLogin};
use crate::telemetry::{events, metrics};
use crate::tokens::hashing::digest_hex;
use crate::web::binding::BrowserBinding;
use crate::web::limits::ClientIp;
use crate::web::pages::{ChooserOption, ChooserPage};
use crate::web::{PageError, render};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login/{request}", get(login))
        .route("/callback/{upstream}", get(callback))
}

/// Sends the browser to the upstream the request names or the user picks, or shows the chooser.
async fn login(
    State(state): State<AppState>,
    session: Session,
    binding: BrowserBinding,
    Path(request_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let req = pending_request(&state, &session, &binding, &request_id).await?;
    let settings = state.settings();
    let p = Params::parse(query.unwrap_or_default().as_bytes());
    // "Not you?" on the consent page: the upstream asks who is there instead of reusing its
    // session, and the answer's user replaces the one the request was signed in for.
    let switching = p.get("switch") == Some("1");
    // The upstream's first answer was older than the app's max_age: once more, fresh.
    let reauth = p.get("reauth") == Some("1");
    let Some(upstream_id) = upstream_for(&settings, &req, p.get("upstream")) else {
        return Ok(chooser(&settings, &req, switching));
    };
    let upstream = settings.upstream(&upstream_id).cloned().ok_or_else(|| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Unknown sign-in option",
            "That identity provider is not configured. Go back and choose another.",
        )
    })?;
    let (url, record) =
        upstream_start(&state, &req, &upstream, switching || reauth, reauth).await?;
    state
        .store
        .insert_upstream_login(&record)
        .await
        .map_err(store_failure)?;
    Ok(Redirect::to(&url).into_response())
}

/// The upstream's answer: checked against the login it answers, redeemed, recorded; then on to
/// the consent stage.
#[tracing::instrument(skip_all, fields(upstream = %upstream_id))]
async fn callback(
    State(state): State<AppState>,
    session: Session,
    binding: BrowserBinding,
    Path(upstream_id): Path<String>,
    ClientIp(ip): ClientIp,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let p = Params::parse(query.unwrap_or_default().as_bytes());
    if p.refusal().is_some() {
        return Err(refused(
            "The identity provider's answer repeats a parameter or has far too many; it was refused.",
        ));
    }
    let state_hash = state_hash(&p)?;
    let found = upstream_login(&state, &state_hash).await?;
    let ip = ip.map(|ip| ip.to_string());
    let browser = (&session, &binding);
    match answer(&state, browser, &upstream_id, &p, found, &state_hash, ip).await {
        Ok(Answered::SignedIn(response)) => Ok(response),
        // A refused or failed answer spends its state too: each state is tried once. Best
        // effort: a state left behind by a store failure expires with its request.
        other => {
            if let Err(e) = state.store.take_upstream_login(&state_hash).await {
                tracing::warn!(error = %e, "spending a failed login's state failed");
            }
            other.map(Answered::into_response)
        }
    }
}

/// What an answer came to: a login, whose transaction spent the state, or the upstream's
/// refusal sent back to the app.
enum Answered {
    SignedIn(Response),
    SentBack(Response),
}

impl Answered {
    fn into_response(self) -> Response {
        match self {
            Answered::SignedIn(r) | Answered::SentBack(r) => r,
        }
    }
}

/// The rest of the callback, for the login state the answer names and the request it was
/// started for (`None`: gone).
async fn answer(
    state: &AppState,
    (session, binding): Browser<'_>,
    upstream_id: &str,
    p: &Params,
    (login, request): (UpstreamLogin, Option<AuthRequest>),
    state_hash: &str,
    ip: Option<String>,
) -> Result<Answered, PageError> {
    // The answer must come back on the callback of the upstream it was sent to (mix-up).
    if login.upstream_id != upstream_id {
        return Err(refused(
            "The answer came back from a different identity provider than the one you were sent to; it was refused.",
        ));
    }
    let req = check_pending(state, session, binding, request).await?;
    // A silent sign-in (prompt=none) shows no page (OIDC Core §3.1.2.1): what would be one goes
    // back to the app as the error its link carries.
    let silent = has_prompt(&req, "none");
    match answer_request(state, session, upstream_id, p, login, req, state_hash, ip).await {
        Err(page) if silent => page.into_redirect().map(Answered::SentBack),
        other => other,
    }
}

/// [`answer`] for the request the answer's login state belongs to.
#[allow(clippy::too_many_arguments)]
async fn answer_request(
    state: &AppState,
    session: &Session,
    upstream_id: &str,
    p: &Params,
    login: UpstreamLogin,
    req: AuthRequest,
    state_hash: &str,
    ip: Option<String>,
) -> Result<Answered, PageError> {
    let settings = state.settings();
    let upstream = settings
        .upstream(upstream_id)
        .cloned()
        .ok_or_else(|| refused("That identity provider is no longer configured."))?;
    // RFC 9207 §2.4: when the upstream names itself, it must be the one we expect; one that
    // says it always does (§3) must have.
    match p.get("iss") {
        Some(iss) if iss != upstream.endpoint.issuer => {
            return Err(refused(
                "The answer names a different issuer than the identity provider you were sent to; it was refused (RFC 9207).",
            ));
        }
        None if state
            .upstreams
            .sends_iss(&upstream)
            .await
            .map_err(|e| upstream_failure(state, &req, &upstream.id, &e))? =>
        {
            return Err(refused(
                "The identity provider always names itself in its answers, and this one does not; it was refused (RFC 9207).",
            ));
        }
        _ => {}
    }
    if let Some(error) = p.get("error") {
        return upstream_refused(state, &req, &upstream, error, p.get("error_description"))
            .map(Answered::SentBack);
    }
    let code = p.get("code").ok_or_else(|| {
        refused("The identity provider's answer has neither a code nor an error.")
    })?;
    let wants_access_token = upstream
        .mapping
        .attributes
        .iter()
        .any(|a| a.source == Source::AccessToken);
    let finished = state
        .upstreams
        .finish(
            &upstream,
            &settings.callback_url(&upstream.id),
            code,
            &login.nonce,
            &login.pkce_verifier,
            wants_access_token,
        )
        .await
        .map_err(|e| upstream_failure(state, &req, &upstream.id, &e))?;
    // The app asked for a login at most max_age old: an older upstream authentication is asked
    // for again with prompt=login, and refused if the upstream answers with an old one again.
    if let Some(max_age) = req.max_age {
        let now = state.now();
        let auth_time = upstream_auth_time(&finished.claims, now);
        if now - auth_time > max_age {
            // Asking again needs the user, which a silent attempt (prompt=none) may not.
            if !login.forced && !has_prompt(&req, "none") {
                // This answer is spent: its state may not be used again.
                state
                    .store
                    .take_upstream_login(state_hash)
                    .await
                    .map_err(store_failure)?;
                return Ok(Answered::SentBack(
                    Redirect::to(&format!(
                        "/login/{}?reauth=1&upstream={}",
                        req.id,
                        form_urlencoded::byte_serialize(upstream.id.as_bytes()).collect::<String>()
                    ))
                    .into_response(),
                ));
            }
            let why = format!(
                "the identity provider's authentication is {} s old, more than max_age {max_age}, \
                 even when asked to authenticate again",
                now - auth_time
            );
            login_failed(state, &upstream.id, &req.client_id, "login_required", &why);
            return Ok(Answered::SentBack(fail(
                state,
                &req,
                "login_required",
                &why,
            )));
        }
    }
    // The app asked for certain authentication context classes: the upstream must have met one.
    if let Some(wanted) = req.acr_values.as_deref() {
        let got = finished
            .claims
            .id_token
            .get("acr")
            .and_then(serde_json::Value::as_str);
        if !got.is_some_and(|acr| wanted.split(' ').any(|w| w == acr)) {
            let why = format!(
                "the identity provider authenticated the user with acr {}, not one of: {wanted}",
                got.unwrap_or("(none)")
            );
            login_failed(
                state,
                &upstream.id,
                &req.client_id,
                "unmet_authentication_requirements",
                &why,
            );
            return Ok(Answered::SentBack(fail(
                state,
                &req,
                "unmet_authentication_requirements",
                &why,
            )));
        }
    }
    let client_id = req.client_id.clone();
    let (browser_login, req) =
        record_login(state, &upstream, &finished, req, state_hash, ip).await?;
    metrics::login(&upstream.id, &client_id, "success");
    events::login_succeeded(&browser_login.sub, &client_id, &upstream.id);
    // A post-login application sees the user first; the login becomes the browser's when it
    // sends them back.
    if let Some(app) = &upstream.post_login {
        return send_to_application(state, app, &req, &browser_login).map(Answered::SignedIn);
    }
    set_login(session, &browser_login).await?;
    consent_stage(state, req).await.map(Answered::SignedIn)
}

fn chooser(settings: &Settings, req: &AuthRequest, switching: bool) -> Response {
    let options = settings
        .upstreams
        .iter()
        .map(|u| ChooserOption {
            url: format!(
                "/login/{}?upstream={}{}",
                req.id,
                u.id,
                if switching { "&switch=1" } else { "" }
            ),
            name: u.display_name.clone(),
        })
        .collect();
    let app_name = settings.app_name(&req.client_id);
    render(StatusCode::OK, &ChooserPage { app_name, options })
}

/// The digest of the answer's `state`, under which its login was stored.
fn state_hash(p: &Params) -> Result<String, PageError> {
    p.get("state").map(digest_hex).ok_or_else(|| {
        refused(
            "The identity provider's answer has no state, so it cannot be matched to a sign-in. Start again from the app.",
        )
    })
}

/// The login the answer's `state` was issued for, with its request (`None`: gone). Each state
/// works once: the login's transaction or, for a failed answer, the callback spends it.
async fn upstream_login(
    state: &AppState,
    state_hash: &str,
) -> Result<(UpstreamLogin, Option<AuthRequest>), PageError> {
    match state.store.upstream_login(state_hash).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(state_spent()),
        Err(StoreError::Unavailable(_)) => Err(PageError::unavailable()),
        Err(e) => {
            tracing::error!(error = %e, "loading upstream login state failed");
            Err(refused(
                "This sign-in could not be continued. Start again from the app.",
            ))
        }
    }
}

/// The upstream said no: a cancel goes back to the app as `access_denied`; anything else is a
/// page that quotes the upstream, with a link back to the app.
fn upstream_refused(
    state: &AppState,
    req: &AuthRequest,
    upstream: &Upstream,
    error: &str,
    description: Option<&str>,
) -> Result<Response, PageError> {
    tracing::info!(upstream = %upstream.id, error = %error, "upstream returned an error");
    // A silent attempt (prompt=none) the upstream could not answer without the user: the app
    // hears the same (OIDC Core §3.1.2.6); its consent to Herald is not the app's to give.
    if has_prompt(req, "none") {
        let code = match error {
            "login_required" | "account_selection_required" => Some(error),
            "interaction_required" | "consent_required" => Some("interaction_required"),
            _ => None,
        };
        if let Some(code) = code {
            let why = format!("the identity provider answered {error} to a silent sign-in");
            login_failed(state, &upstream.id, &req.client_id, code, &why);
            return Ok(fail(state, req, code, &why));
        }
    }
    if error == "access_denied" {
        login_failed(
            state,
            &upstream.id,
            &req.client_id,
            "access_denied",
            "the user cancelled at the upstream",
        );
        return Ok(fail(
            state,
            req,
            "access_denied",
            "the user cancelled at the identity provider",
        ));
    }
    let code = if error == "temporarily_unavailable" {
        "temporarily_unavailable"
    } else {
        "server_error"
    };
    login_failed(
        state,
        &upstream.id,
        &req.client_id,
        code,
        &format!(
            "the upstream answered error={:?}",
            error.chars().take(100).collect::<String>()
        ),
    );
    Err(PageError::new(
        StatusCode::BAD_GATEWAY,
        "The identity provider reported an error",
        format!(
            "The identity provider did not sign you in. It said: {}",
            description.unwrap_or(error)
        ),
    )
    .with_back(return_link(
        state,
        req,
        code,
        "the identity provider reported an error",
    )))
}

/// A refused answer: 400, "Sign-in failed", and what to do.
fn refused(message: &str) -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, "Sign-in failed", message)
}
