//! What every admin page shares: the signed-in admin ([`AdminUser`], with the role read from the
//! stored login on every request), the CSRF-checked form ([`AdminForm`]), the stale-save check,
//! and the pages for a refusal or a failed store call.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::admin::auth::Admin;
use crate::admin::error::ApiError;
use crate::claims::AuthContext;
use crate::config::{Permission, RoleSet};
use crate::login;
use crate::state::AppState;
use crate::store::StoreError;
use crate::tokens::hashing::{constant_time_eq, random_token};
use crate::web::binding::BrowserBinding;
use crate::web::{ReturnLink, error_page, store_failure_page, unavailable_page};

const CSRF_KEY: &str = "admin_csrf";

/// A signed-in admin: the browser's login carries one of the admin roles.
pub struct AdminUser {
    pub sub: String,
    /// How the pages greet them: `preferred_username`, `name`, `email`, else `sub`.
    pub name: String,
    /// This session's CSRF token, for the forms of the page being rendered.
    pub csrf: String,
    /// The roles their sign-in carries.
    pub roles: RoleSet,
    /// Where Sign out leads: the issuer's `/logout`, which a separate admin listener lacks.
    pub logout_url: String,
}

impl AdminUser {
    /// Who the audit log says made a change.
    pub fn actor(&self) -> Admin {
        Admin {
            actor: format!("user:{}", self.sub),
            roles: self.roles.clone(),
        }
    }

    /// A 403 page when their role lacks `need`, naming the roles that have it.
    pub fn refuse_unless(&self, need: Permission) -> Option<Response> {
        if self.roles.may(need) {
            return None;
        }
        Some(error_page(
            StatusCode::FORBIDDEN,
            "Your role does not allow this",
            &format!(
                "You are signed in as {} with the {} role; this needs the {} role. Nothing was \
                 changed. Ask an admin to give you that role through your identity provider.",
                self.name,
                self.roles.names(),
                need.who()
            ),
            Some(back_to_admin()),
        ))
    }
}

/// Handlers take an [`AdminUser`]; without one they answer what [`admin_user`] says instead.
impl FromRequestParts<AppState> for AdminUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Ok(binding) = BrowserBinding::from_request_parts(parts, state).await;
        admin_user(state, (&session, &binding), &parts.method, &parts.uri).await
    }
}

#[derive(Serialize, Deserialize)]
struct AdminCsrf {
    sub: String,
    token: String,
}

/// The signed-in admin, or the response to send instead: a sign-in (for a GET), or a page that
/// says why not.
pub async fn admin_user(
    state: &AppState,
    (session, binding): login::Browser<'_>,
    method: &Method,
    uri: &axum::http::Uri,
) -> Result<AdminUser, Response> {
    // PostgreSQL refuses NUL in text: a path or filter with one is a bad request, not a 500.
    let here = uri.path_and_query().map_or("/admin", |p| p.as_str());
    if crate::admin::error::has_nul(here) {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "This address holds a NUL character (%00), which no admin page accepts.",
            Some(back_to_admin()),
        ));
    }
    let settings = state.settings();
    let Some(roles) = settings.admin.roles.clone() else {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "Admin pages are off",
            "No admin role is configured, so nobody can sign in here. Set role_claim and \
             roles under [admin] in Herald's configuration file (for example role_claim = \
             \"groups\" and roles = { admin = \"herald-admins\" }) and restart. The admin API \
             works with tokens meanwhile.",
            None,
        ));
    };
    let signed_in = match login::live_login_context(state, session).await {
        Ok(s) => s,
        Err(e) => return Err(store_failed(e)),
    };
    let Some((login, stored)) = signed_in else {
        if method != Method::GET {
            return Err(refused(
                "You are not signed in, or your sign-in has expired, so nothing was changed. \
                 Open the admin pages and sign in again.",
            ));
        }
        let failed_sign_in = uri
            .query()
            .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "error"));
        if failed_sign_in {
            return Err(error_page(
                StatusCode::OK,
                "You are not signed in",
                "Signing in to the admin pages did not complete. You can try again.",
                Some(back_to_admin()),
            ));
        }
        return Err(login::start_sign_in(state, session, binding, here, None)
            .await
            .into_response());
    };
    // An old sign-in is renewed at the upstream, which also reads the role afresh: someone
    // removed from the admin group stops being an admin within max_auth_age.
    let max_age = settings.admin.max_auth_age.as_secs() as i64;
    if state.now() - login.auth_time > max_age {
        if method != Method::GET {
            return Err(refused(
                "Your sign-in is too old to change anything, so nothing was changed. Open the \
                 page again to sign in afresh, then retry.",
            ));
        }
        return Err(
            login::start_sign_in(state, session, binding, here, Some(max_age))
                .await
                .into_response(),
        );
    }
    let Ok(context) = serde_json::from_str::<AuthContext>(&stored.context) else {
        return Err(refused(
            "Your sign-in's details are no longer available. Sign out and sign in again.",
        ));
    };
    let name = context.display_name().unwrap_or(&login.sub).to_string();
    let held = roles.of(&context.attributes);
    if held.is_empty() {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "You are not an admin",
            &format!(
                "You are signed in as {name}, but your sign-in carries no admin role ({}). Ask \
                 an admin to grant one through your identity provider, or sign out at /logout \
                 and sign in as an admin.",
                roles.describe()
            ),
            None,
        ));
    }
    let csrf = match session.get::<AdminCsrf>(CSRF_KEY).await {
        Ok(Some(c)) if c.sub == login.sub => c.token,
        Ok(_) => {
            let fresh = AdminCsrf {
                sub: login.sub.clone(),
                token: random_token(),
            };
            if let Err(e) = session.insert(CSRF_KEY, &fresh).await {
                tracing::warn!(error = %e, "session store failed");
                return Err(unavailable_page());
            }
            fresh.token
        }
        Err(e) => {
            tracing::warn!(error = %e, "session store failed");
            return Err(unavailable_page());
        }
    };
    Ok(AdminUser {
        sub: login.sub,
        name,
        csrf,
        roles: held,
        logout_url: format!("{}/logout", settings.issuer),
    })
}

/// A form a signed-in admin posted, its CSRF token checked: what every admin POST handler takes.
pub struct AdminForm {
    pub admin: AdminUser,
    pub form: Form,
}

impl FromRequest<AppState> for AdminForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let admin = AdminUser::from_request_parts(&mut parts, state).await?;
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let form = Form::parse(&body);
        if let Some(page) = form.csrf_refusal(&admin) {
            return Err(page);
        }
        Ok(Self { admin, form })
    }
}

/// A save from a page read before the latest configuration version (another admin or a script
/// changed it meanwhile): `Some((latest, message))` to show with what the admin typed (`typed`:
/// "rows", "values"), instead of overwriting that change.
pub async fn stale_save(
    state: &AppState,
    form: &Form,
    typed: &str,
) -> Result<Option<(i64, String)>, Response> {
    let latest = match state.store.latest_config_version().await {
        Ok(v) => v.unwrap_or(0),
        Err(e) => return Err(store_failed(e)),
    };
    let seen = form.version();
    Ok((latest != seen).then(|| {
        (
            latest,
            format!(
                "Not saved: the configuration changed (version {seen} → {latest}) since this \
                 page was opened, perhaps by another admin. Your {typed} are shown as you left \
                 them; compare them with the current ones (open this page in another tab), then \
                 save again to replace them."
            ),
        )
    }))
}

/// A form's fields, in order. Repeated names keep every value.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// Every field, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The field's value, trimmed; empty when absent.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").trim().to_string()
    }

    /// The configuration version the page was read from (0 when the form lacks it); see
    /// [`stale_save`].
    pub fn version(&self) -> i64 {
        self.get("version")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The refusal to send unless the form carries this admin's CSRF token.
    pub fn csrf_refusal(&self, admin: &AdminUser) -> Option<Response> {
        match self.get("csrf") {
            Some(t) if constant_time_eq(t, &admin.csrf) => None,
            _ => Some(refused(
                "This form's security token is missing, wrong or from another session, so \
                 nothing was changed. Open the page again and retry.",
            )),
        }
    }
}

/// `text` as one segment of a URL path: everything but unreserved characters percent-encoded
/// (RFC 3986 §2.3), so a space is `%20`, not the `+` of form encoding.
pub fn path_segment(text: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

/// Lines of a textarea, trimmed, without blanks.
pub fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn refused(message: &str) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Request refused",
        message,
        Some(back_to_admin()),
    )
}

pub fn back_to_admin() -> ReturnLink {
    ReturnLink {
        url: "/admin".into(),
        app_name: "the admin pages".into(),
    }
}

pub fn store_failed(e: StoreError) -> Response {
    store_failure_page(
        e,
        "on an admin page",
        "Herald could not read or change its data. Nothing was changed; please try again.",
        Some(back_to_admin()),
    )
}

/// An API error on a page that cannot show it inline: unavailable, missing or conflicting.
/// A refusal a page shows next to the form (invalid or conflicting); others get their own page
/// ([`api_failed`]).
pub fn inline(e: &ApiError) -> bool {
    e.status == StatusCode::BAD_REQUEST || e.status == StatusCode::CONFLICT
}

/// A refusal's messages, for a page's error list: its description, then check-config's.
pub fn problems(e: ApiError) -> Vec<String> {
    let mut out = vec![e.body.error_description];
    out.extend(e.body.problems);
    out
}

pub fn api_failed(e: ApiError) -> Response {
    let status = e.status;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return unavailable_page();
    }
    let mut message = e.body.error_description;
    for p in e.body.problems {
        message.push_str("\n• ");
        message.push_str(&p);
    }
    error_page(status, "Not done", &message, Some(back_to_admin()))
}
