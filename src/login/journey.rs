//! An authorization request's way from `/authorize` to the code: reuse the browser's login or
//! log in upstream, ask for consent when needed, then issue the code and redirect. Herald's own
//! pages (the consent center, the admin pages) start the same journey with [`start_sign_in`].
//!
//! The request lives in the store (so any replica can continue it); the browser holds a random
//! *binding* in a cookie ([`crate::web::binding`]) whose digest the request records, so only the
//! browser that started a request can continue it; its session holds the login itself.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use super::own_pages;
use super::pending::{
    already_answered, fail, has_prompt, login_failed, requested_scopes, return_link, store_failure,
};
use super::session::{binding_digest, live_login};
use super::upstream_start::upstream_start;
use crate::claims::AuthContext;
use crate::config::policy::{AccessPolicy, Verdict};
use crate::config::{ACCOUNT_CLIENT_ID, Client, Settings};
use crate::consent;
use crate::oauth::with_params;
use crate::state::AppState;
use crate::store::{AuthRequest, CodeRecord, Conclusion, ConsentWrite, Grant};
use crate::tokens::hashing::{digest_hex, random_token};
use crate::web::PageError;
use crate::web::binding::BrowserBinding;

/// Starts a login for one of Herald's own pages (the consent center, the admin pages), exactly as
/// for an app's authorization request; the browser comes back to `return_path` (a path on
/// Herald, such as `/account`), or there with `?error=…` when the login fails.
///
/// `max_age` (seconds) asks for a login at least that fresh, as in OIDC Core §3.1.2.1: an older
/// browser login is not reused, so the user signs in at the upstream again.
#[tracing::instrument(skip_all, fields(return_path = %return_path))]
pub async fn start_sign_in(
    state: &AppState,
    session: &Session,
    binding: &BrowserBinding,
    return_path: &str,
    max_age: Option<i64>,
) -> Result<Response, PageError> {
    let settings = state.settings();
    let now = state.now();
    let req = AuthRequest {
        id: random_token(),
        client_id: ACCOUNT_CLIENT_ID.into(),
        // Where the browser returns: after the login, or with an OAuth error when it fails.
        redirect_uri: own_pages::return_url(&settings, return_path),
        scope: "openid".into(),
        state: None,
        nonce: None,
        code_challenge: None,
        prompt: None,
        max_age,
        login_hint: None,
        upstream_hint: None,
        browser_binding: binding_digest(binding),
        created_at: now,
        expires_at: now + settings.tokens.login_ttl.as_secs() as i64,
        sub: None,
        auth_context_id: None,
        auth_time: None,
        decided_at: None,
        ui_locales: None,
        acr_values: None,
        pass_through: None,
        resources: None,
        dpop_jkt: None,
    };
    proceed(state, session, req, None).await
}

/// Continues a new request, not stored yet: reuse the browser's login when allowed, else log
/// in upstream. The request is stored here, in one write with what it starts with (the reused
/// login, or the upstream's login state); a `prompt=none` refusal stores nothing.
/// `hinted_sub` is the subject of a verified `id_token_hint`: a login of anyone else does not
/// count (so `prompt=none` answers `login_required`).
#[tracing::instrument(skip_all, fields(request = %req.id, client_id = %req.client_id))]
pub async fn proceed(
    state: &AppState,
    session: &Session,
    req: AuthRequest,
    hinted_sub: Option<&str>,
) -> Result<Response, PageError> {
    let now = state.now();
    let login = live_login(state, session).await.map_err(store_failure)?;
    let login = login.filter(|l| {
        hinted_sub.is_none_or(|h| h == l.sub)
            && req.max_age.is_none_or(|max| now - l.auth_time <= max)
            && req
                .upstream_hint
                .as_deref()
                .is_none_or(|h| h == l.upstream_id)
            && !has_prompt(&req, "login")
            && !has_prompt(&req, "select_account")
            // Which class a remembered login met is the upstream's to say again.
            && req.acr_values.is_none()
    });
    match login {
        Some(login) => {
            let req = AuthRequest {
                sub: Some(login.sub),
                auth_context_id: Some(login.context_id),
                auth_time: Some(login.auth_time),
                ..req
            };
            state
                .store
                .insert_auth_request(&req)
                .await
                .map_err(store_failure)?;
            consent_stage(state, req).await
        }
        // An upstream that allows it is asked silently: its session may still be there.
        // Not with an id_token_hint: the upstream's session may be someone else's.
        None if has_prompt(&req, "none")
            && hinted_sub.is_none()
            && silent_upstream(state, &req) =>
        {
            to_upstream(state, req).await
        }
        None if has_prompt(&req, "none") => Ok(fail(
            state,
            &req,
            "login_required",
            "the user is not logged in and prompt=none forbids asking",
        )),
        None => to_upstream(state, req).await,
    }
}

/// Stores a request that needs an upstream login and sends the browser on: straight to the
/// upstream when the request names one or there is only one (the request and the upstream's
/// login state in one write), else to the chooser at `/login/{request}`.
async fn to_upstream(state: &AppState, req: AuthRequest) -> Result<Response, PageError> {
    let settings = state.settings();
    let upstream = upstream_for(&settings, &req, None).and_then(|id| settings.upstream(&id));
    let Some(upstream) = upstream else {
        state
            .store
            .insert_auth_request(&req)
            .await
            .map_err(store_failure)?;
        return Ok(Redirect::to(&format!("/login/{}", req.id)).into_response());
    };
    let (url, login) = match upstream_start(state, &req, upstream, false, false).await {
        Ok(started) => started,
        // A silent sign-in shows no page (OIDC Core §3.1.2.6): the app hears why.
        Err(page) if has_prompt(&req, "none") => return page.into_redirect(),
        Err(page) => return Err(page),
    };
    state
        .store
        .start_upstream_login(&req, &login)
        .await
        .map_err(store_failure)?;
    Ok(Redirect::to(&url).into_response())
}

/// After login: skip consent for trusted apps and already-granted scopes, ask otherwise.
#[tracing::instrument(skip_all, fields(request = %req.id, client_id = %req.client_id))]
pub async fn consent_stage(state: &AppState, req: AuthRequest) -> Result<Response, PageError> {
    if req.client_id == ACCOUNT_CLIENT_ID {
        // Herald's own consent center: the login is all it needs; no grant, no code.
        return own_pages::signed_in(state, &req).await;
    }
    let settings = state.settings();
    let client = settings.client(&req.client_id).cloned().ok_or_else(|| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Unknown app",
            "The app that started this login is no longer registered with Herald.",
        )
    })?;
    let Some(sub) = req.sub.clone() else {
        return Ok(Redirect::to(&format!("/login/{}", req.id)).into_response());
    };
    // The app's access policy, before any consent page: a refused user never sees one.
    if let Some(policy) = &client.access_policy {
        access_check(state, &req, &client, policy).await?;
    }
    let requested = requested_scopes(&req);
    let now = state.now();
    // A trusted app skips the consent page, unless it asks for it with prompt=consent.
    if client.trusted && !has_prompt(&req, "consent") {
        let grant = state
            .store
            .grant(&sub, &client.client_id)
            .await
            .map_err(store_failure)?;
        let scopes = without_unconsented_offline_access(&requested, grant.as_ref());
        let decided = consent::trusted_decision(
            &settings,
            grant.as_ref(),
            &sub,
            &client.client_id,
            &scopes,
            now,
        );
        let write = decided.as_ref().map(consent::Decided::write);
        return issue_code(state, &req, &scopes, write).await;
    }
    let grant = state
        .store
        .grant(&sub, &client.client_id)
        .await
        .map_err(store_failure)?;
    let plan = consent::plan(
        &requested,
        grant.as_ref(),
        &settings.scopes,
        has_prompt(&req, "consent"),
    );
    if plan.needed.is_empty() {
        return issue_code(state, &req, &plan.granted, None).await;
    }
    if has_prompt(&req, "none") {
        return Ok(fail(
            state,
            &req,
            "consent_required",
            "the user has not granted the requested scopes and prompt=none forbids asking",
        ));
    }
    Ok(Redirect::to(&format!("/consent?request={}", req.id)).into_response())
}

/// OIDC Core §11: the OP must always obtain the user's consent before it returns a refresh
/// token. A trusted app's skipped page obtains none, so its `offline_access` is ignored unless
/// the user granted it before (on a consent page, which `prompt=consent` shows).
fn without_unconsented_offline_access(requested: &[String], grant: Option<&Grant>) -> Vec<String> {
    let consented = grant.is_some_and(|g| g.scopes.contains("offline_access"));
    let scopes: Vec<String> = requested
        .iter()
        .filter(|s| consented || *s != "offline_access")
        .cloned()
        .collect();
    if scopes.len() != requested.len() {
        tracing::info!(
            "offline_access ignored: a trusted app gets it only after the user's consent \
             (prompt=consent)"
        );
    }
    scopes
}

/// Issues the code for `scopes` and redirects to the client with `code`, `state` and `iss`.
/// The request is marked decided, the consent decision made now (if any) and the code stored in
/// one transaction, so each request yields at most one code and a replay stores nothing.
#[tracing::instrument(skip_all, fields(request = %req.id, client_id = %req.client_id))]
pub async fn issue_code(
    state: &AppState,
    req: &AuthRequest,
    scopes: &[String],
    consent: Option<ConsentWrite<'_>>,
) -> Result<Response, PageError> {
    let settings = state.settings();
    let now = state.now();
    let (Some(sub), Some(context_id), Some(auth_time)) =
        (req.sub.clone(), req.auth_context_id.clone(), req.auth_time)
    else {
        return Ok(Redirect::to(&format!("/login/{}", req.id)).into_response());
    };
    let code = random_token();
    let record = CodeRecord {
        code_hash: digest_hex(&code),
        client_id: req.client_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        sub,
        scope: scopes.join(" "),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        auth_context_id: context_id,
        auth_time,
        auth_time_required: req.max_age.is_some(),
        created_at: now,
        expires_at: now + settings.tokens.authorization_code_ttl.as_secs() as i64,
        consumed_at: None,
        resources: req.resources.clone(),
        dpop_jkt: req.dpop_jkt.clone(),
    };
    let decided_now = state
        .store
        .conclude_auth_request(&Conclusion {
            request_id: &req.id,
            now,
            consent,
            code: Some(&record),
        })
        .await
        .map_err(store_failure)?;
    if !decided_now {
        return Err(already_answered(state, req));
    }
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = req.state.as_deref() {
        params.push(("state", s));
    }
    params.push(("iss", settings.issuer.as_str()));
    Ok(Redirect::to(&with_params(&req.redirect_uri, &params)).into_response())
}

/// `client`'s access policy on the login of `req`: a refusal ends on a page naming the app,
/// the app gets `access_denied`, and the login events say why.
pub(super) async fn access_check(
    state: &AppState,
    req: &AuthRequest,
    client: &Client,
    policy: &AccessPolicy,
) -> Result<(), PageError> {
    let id = req.auth_context_id.as_deref().unwrap_or_default();
    let stored = state.store.context(id).await.map_err(store_failure)?;
    let context = stored
        .as_ref()
        .and_then(|s| serde_json::from_str::<AuthContext>(&s.context).ok());
    let (verdict, upstream) = match &context {
        Some(c) => (
            policy.evaluate(&c.attributes, &c.upstream),
            c.upstream.as_str(),
        ),
        None => (Verdict::Refused("the login's context is gone".into()), ""),
    };
    let Verdict::Refused(why) = verdict else {
        return Ok(());
    };
    login_failed(state, upstream, &client.client_id, "access_denied", &why);
    Err(PageError::new(
        StatusCode::FORBIDDEN,
        "Not allowed",
        format!(
            "You cannot use {} with this account: its administrator lets only some accounts in, \
             and yours is not one of them. Ask the app's administrator if you think it should be.",
            client.client_name
        ),
    )
    .with_back(return_link(
        state,
        req,
        "access_denied",
        "the app's access policy refused this user",
    )))
}

/// Whether a `prompt=none` request without a login goes to its upstream silently: the
/// upstream it names (or the only one) has `silent_login`, and no post-login application,
/// which would need the user.
fn silent_upstream(state: &AppState, req: &AuthRequest) -> bool {
    let settings = state.settings();
    upstream_for(&settings, req, None)
        .and_then(|id| settings.upstream(&id))
        .is_some_and(|u| u.silent_login && u.post_login.is_none())
}

/// The upstream a request goes to: the one the user `picked`, the request's `idp_hint`, or the
/// only one there is; `None` when the user must choose.
pub(super) fn upstream_for(
    settings: &Settings,
    req: &AuthRequest,
    picked: Option<&str>,
) -> Option<String> {
    picked
        .or(req.upstream_hint.as_deref())
        .map(str::to_string)
        .or_else(|| (settings.upstreams.len() == 1).then(|| settings.upstreams[0].id.clone()))
}
