//! The consent page: GET shows it, POST records the decision.
//!
//! The POST is accepted only for a pending request of this browser session, with the CSRF token
//! issued for that request's page, and only once: the request is marked decided atomically.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use tower_sessions::Session;

use super::journey::{access_check, issue_code};
use super::pending::{
    already_answered, check_pending, fail, has_prompt, load_request_with_grant, requested_scopes,
    return_link, store_failure,
};
use super::session::{binding_of, current_login};
use crate::claims::ScopeCatalog;
use crate::claims::purposes::{DEFAULT_LOCALE, accept_language, text_in};
use crate::consent::decision::{Choice, ConsentDecision};
use crate::state::AppState;
use crate::store::{AuthRequest, Conclusion, ConsentWrite, Grant};
use crate::telemetry::{events, metrics};
use crate::tokens::hashing::{constant_time_eq, mac_token};
use crate::web::binding::BrowserBinding;
use crate::web::pages::{ConsentPage, ScopeRow};
use crate::web::{PageError, render};

pub fn router() -> Router<AppState> {
    Router::new().route("/consent", get(show).post(decide))
}

#[derive(Deserialize)]
pub struct ConsentQuery {
    request: Option<String>,
}

fn forbidden(msg: &str) -> PageError {
    PageError::new(StatusCode::FORBIDDEN, "Request refused", msg)
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    binding: BrowserBinding,
    headers: HeaderMap,
    query: Result<Query<ConsentQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let id = query.ok().and_then(|q| q.0.request).ok_or_else(|| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "This consent page needs the sign-in it belongs to. Start again from the app.",
        )
    })?;
    // The request with its user's grant for the app, in one read: the user is the request's
    // (`signed_in_user`), and so is the app.
    let (loaded, grant) = load_request_with_grant(&state, &id).await?;
    let req = check_pending(&state, &session, &binding, loaded).await?;
    signed_in_user(&state, &session, &req).await?;
    let settings = state.settings();
    let client = settings
        .client(&req.client_id)
        .ok_or_else(|| forbidden("The app that started this sign-in is no longer registered."))?;
    let requested = requested_scopes(&req);
    let plan = crate::consent::plan(
        &requested,
        grant.as_ref(),
        &settings.scopes,
        has_prompt(&req, "consent"),
    );
    let locale = page_locale(&settings.scopes, &req, &requested, &headers);
    // Derived from this browser's binding and session, with the locale shown: showing the page
    // stores nothing. The request is this browser's (checked above), so it has the binding.
    let bound = binding_of(&binding, &session, &req)
        .await
        .unwrap_or_default();
    let csrf = consent_csrf(&bound, &session, &req, &locale);
    let t = crate::web::texts::consent_texts(&locale);
    let scopes = requested
        .iter()
        .map(|s| {
            let def = settings.scopes.get(s);
            let purpose = settings.scopes.purpose_of(s);
            ScopeRow {
                name: s.clone(),
                description: settings.scopes.scope_text(s, &locale).to_string(),
                optional: def.is_some_and(|d| d.optional),
                granted: plan.granted.contains(s),
                purpose: purpose
                    .map(|(_, p)| text_in(&p.description, &p.translations, &locale).to_string()),
                legal_basis: purpose.map(|(_, p)| t.basis(p.legal_basis).to_string()),
            }
        })
        .collect();
    let redirect_host = url::Url::parse(&req.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| req.redirect_uri.clone());
    let signed_in_as = current_login(&session)
        .await
        .and_then(|l| l.name)
        .or_else(|| req.sub.clone())
        .unwrap_or_default();
    let links = client.links.clone();
    let mut page = render(
        StatusCode::OK,
        &ConsentPage {
            t,
            title: t.with_app(t.title, &client.client_name),
            heading: t.with_app(t.heading, &client.client_name),
            app_documents: t.with_app(t.app_documents, &client.client_name),
            app_name: client.client_name.clone(),
            redirect_host,
            request_id: req.id.clone(),
            csrf,
            locale,
            scopes,
            signed_in_as,
            switch_url: format!("/login/{}?switch=1", req.id),
            logo_uri: links.logo_uri.clone(),
            client_uri: links.client_uri,
            policy_uri: links.policy_uri,
            tos_uri: links.tos_uri,
        },
    );
    if let Some(logo) = &links.logo_uri {
        allow_image_from(&mut page, logo);
    }
    Ok(page)
}

/// Lets the page show the app's logo: its origin joins the images the page may load (every
/// other page keeps Herald's default policy, which loads images from Herald only).
fn allow_image_from(page: &mut Response, logo: &str) {
    let Some(origin) = url::Url::parse(logo)
        .ok()
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o.starts_with("https://"))
    else {
        return;
    };
    let policy = format!(
        "{}; img-src 'self' data: {origin}",
        crate::web::PAGE_POLICY_BASE
    );
    if let Ok(value) = axum::http::HeaderValue::from_str(&policy) {
        page.headers_mut()
            .insert(axum::http::header::CONTENT_SECURITY_POLICY, value);
    }
}

async fn decide(
    State(state): State<AppState>,
    session: Session,
    binding: BrowserBinding,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = ConsentForm::parse(&body);
    // A form without `locale` was shown in the default one.
    let locale = form.locale.as_deref().unwrap_or(DEFAULT_LOCALE);
    let (Some(id), Some(csrf)) = (form.request.as_deref(), form.csrf.as_deref()) else {
        return Err(forbidden(
            "This form is missing its security token. Start again from the app.",
        ));
    };
    let (req, sub, grant) = decidable_request(&state, &session, &binding, id, csrf, locale).await?;
    let settings = state.settings();
    let now = state.now();
    let requested = requested_scopes(&req);
    let plan = crate::consent::plan(
        &requested,
        grant.as_ref(),
        &settings.scopes,
        has_prompt(&req, "consent"),
    );
    let Some(choice) = form.decision.as_deref().and_then(Choice::parse) else {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "Choose Allow or Deny.",
        ));
    };
    let decision = ConsentDecision::new(choice, &requested, &plan, &form.checked, |s| {
        settings.scopes.get(s).is_some_and(|d| d.optional)
    });
    let new_grant =
        decision.grant_after(grant.as_ref(), &sub, &req.client_id, &settings.scopes, now);
    // The locale the page was shown in (the CSRF token vouches for it): the record keeps the
    // words in it.
    let record = decision.record(&sub, &req.client_id, &settings.scopes, locale, now);
    let events = crate::outbox::consent_rows(&settings.outbox, &record);
    let consent = ConsentWrite {
        grant: new_grant.as_ref(),
        record: &record,
        outbox: &events,
    };
    let allowed = decision.choice == Choice::Allow;
    // The decision, the request's end and its code (on an allow): one transaction.
    let response = match decision.choice {
        Choice::Allow => issue_code(&state, &req, &decision.released, Some(consent)).await?,
        Choice::Deny => deny(&state, &req, consent, now).await?,
    };
    metrics::consent_decision(&req.client_id, allowed);
    events::consent(&sub, &req.client_id, allowed, &decision.released.join(" "));
    if !allowed {
        state.record_login_event(crate::store::LoginEvent {
            id: 0,
            at: now,
            result: crate::store::LoginResult::Denied,
            sub: Some(sub.clone()),
            upstream_id: None,
            client_id: req.client_id.clone(),
            reason: Some("the user declined the app's consent".into()),
        });
    }
    Ok(response)
}

/// The locale to show the page in: the first of the request's `ui_locales`, then of the
/// browser's `Accept-Language`, that the requested scopes have texts in; else the default.
fn page_locale(
    catalog: &ScopeCatalog,
    req: &AuthRequest,
    requested: &[String],
    headers: &HeaderMap,
) -> String {
    let mut wanted: Vec<String> = req
        .ui_locales
        .as_deref()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    if let Some(header) = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    {
        wanted.extend(accept_language(header));
    }
    catalog.locale_for(requested, &wanted)
}

/// The consent form as posted; repeated `scope` fields are the optional scopes left checked.
#[derive(Debug, Default, PartialEq)]
struct ConsentForm {
    request: Option<String>,
    csrf: Option<String>,
    /// The locale the page was shown in.
    locale: Option<String>,
    decision: Option<String>,
    checked: Vec<String>,
}

impl ConsentForm {
    fn parse(body: &[u8]) -> ConsentForm {
        let mut form = ConsentForm::default();
        for (k, v) in form_urlencoded::parse(body) {
            match k.as_ref() {
                "request" => form.request = Some(v.into_owned()),
                "csrf" => form.csrf = Some(v.into_owned()),
                "locale" => form.locale = Some(v.into_owned()),
                "decision" => form.decision = Some(v.into_owned()),
                "scope" => form.checked.push(v.into_owned()),
                _ => {}
            }
        }
        form
    }
}

/// The user the request was signed in for, while that user is still the one signed in on this
/// browser: once another user signs in here, the previous user's pending sign-ins end
/// (checklist item 71), so nobody approves a request in someone else's name. The page links
/// back to the app with `login_required`, so it can start a sign-in for whoever is here now.
/// The user the request was signed in for, when that login is this browser's, and the app's
/// access policy still lets them in (the consent page is never shown to a user it refuses).
async fn signed_in_user(
    state: &AppState,
    session: &Session,
    req: &AuthRequest,
) -> Result<String, PageError> {
    let sub = login_of_request(state, session, req).await?;
    let client = state.settings().client(&req.client_id).cloned();
    if let Some(client) = client
        && let Some(policy) = &client.access_policy
    {
        access_check(state, req, &client, policy).await?;
    }
    Ok(sub)
}

async fn login_of_request(
    state: &AppState,
    session: &Session,
    req: &AuthRequest,
) -> Result<String, PageError> {
    let Some(sub) = req.sub.clone() else {
        return Err(forbidden(
            "You are not signed in for this request. Start again from the app.",
        ));
    };
    // The browser's login must be the one the request was signed in with: a request whose
    // login waits for a post-login application (or was made elsewhere) is not this one.
    match current_login(session).await {
        Some(login)
            if login.sub == sub
                && req
                    .auth_context_id
                    .as_deref()
                    .is_none_or(|id| id == login.context_id) =>
        {
            Ok(sub)
        }
        _ => Err(forbidden(
            "Someone else has signed in on this browser since this sign-in began, so it has \
             ended. Start again from the app.",
        )
        .with_back(return_link(
            state,
            req,
            "login_required",
            "another user signed in on this browser",
        ))),
    }
}

/// The consent form's CSRF token: a MAC of the browser session's id, the request, the user it
/// is signed in for and the locale shown, keyed with the browser's binding, so it needs no
/// storage, and another browser, session, request, user (after "Not you?") or locale never
/// matches. The session id is the secret part: Herald makes it at the login and only this
/// browser holds it (HttpOnly), where a binding cookie may have been planted by whoever then
/// knows it.
fn consent_csrf(binding: &str, session: &Session, req: &AuthRequest, locale: &str) -> String {
    let session_id = session.id().map(|id| id.to_string()).unwrap_or_default();
    csrf_of(
        binding,
        &session_id,
        &req.id,
        req.sub.as_deref().unwrap_or(""),
        locale,
    )
}

/// [`consent_csrf`] of its parts.
fn csrf_of(binding: &str, session_id: &str, request_id: &str, sub: &str, locale: &str) -> String {
    mac_token(
        binding,
        &format!("consent\n{session_id}\n{request_id}\n{sub}\n{locale}"),
    )
}

/// The pending request `id` of this browser, with the user it is signed in for and the grant
/// that user holds for its app, if it is still undecided, that user is the one signed in here,
/// and `csrf` is the token of its page shown in `locale`. One read. A decision already made
/// changes nothing: this browser is told its first answer went through, any other that the
/// sign-in is over.
async fn decidable_request(
    state: &AppState,
    session: &Session,
    binding: &BrowserBinding,
    id: &str,
    csrf: &str,
    locale: &str,
) -> Result<(AuthRequest, String, Option<Grant>), PageError> {
    let (loaded, grant) = load_request_with_grant(state, id).await?;
    let req = check_pending(state, session, binding, loaded).await?;
    // Before the token, which covers the session id: after another user's login (a new
    // session id) the page says who is signed in, not only that its token is stale.
    let sub = signed_in_user(state, session, &req).await?;
    let csrf_ok = match binding_of(binding, session, &req).await {
        Some(bound) => constant_time_eq(csrf, &consent_csrf(&bound, session, &req, locale)),
        None => false,
    };
    if !csrf_ok {
        return Err(forbidden(
            "This form's security token is wrong or expired. Start again from the app.",
        ));
    }
    Ok((req, sub, grant))
}

/// Ends a denied request (once), with the refusal on record, and sends the browser back to the
/// app with `access_denied`.
async fn deny(
    state: &AppState,
    req: &AuthRequest,
    consent: ConsentWrite<'_>,
    now: i64,
) -> Result<Response, PageError> {
    let decided_now = state
        .store
        .conclude_auth_request(&Conclusion {
            request_id: &req.id,
            now,
            consent: Some(consent),
            code: None,
        })
        .await
        .map_err(store_failure)?;
    if !decided_now {
        return Err(already_answered(state, req));
    }
    Ok(fail(
        state,
        req,
        "access_denied",
        "the user denied the request",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_collects_its_fields_and_every_checked_scope() {
        let form = ConsentForm::parse(
            b"request=r1&csrf=c%2B1&locale=fr&decision=allow&scope=profile&scope=phone&other=x",
        );
        assert_eq!(
            form,
            ConsentForm {
                request: Some("r1".into()),
                csrf: Some("c+1".into()),
                locale: Some("fr".into()),
                decision: Some("allow".into()),
                checked: vec!["profile".into(), "phone".into()],
            }
        );
    }

    #[test]
    fn the_csrf_token_binds_the_browser_its_session_the_request_and_the_locale() {
        let t = csrf_of("binding-a", "session-a", "req-1", "alice", "fr");
        assert_eq!(t, csrf_of("binding-a", "session-a", "req-1", "alice", "fr"));
        assert_ne!(t, csrf_of("binding-b", "session-a", "req-1", "alice", "fr"));
        // A planted binding is known to whoever planted it; the session id is not.
        assert_ne!(t, csrf_of("binding-a", "session-b", "req-1", "alice", "fr"));
        assert_ne!(t, csrf_of("binding-a", "session-a", "req-2", "alice", "fr"));
        assert_ne!(t, csrf_of("binding-a", "session-a", "req-1", "alice", "en"));
        // A page shown for Alice does not decide for Bob, who signed in since ("Not you?").
        assert_ne!(t, csrf_of("binding-a", "session-a", "req-1", "bob", "fr"));
    }

    #[test]
    fn an_empty_form_has_no_token_and_no_decision() {
        assert_eq!(ConsentForm::parse(b""), ConsentForm::default());
    }
}
