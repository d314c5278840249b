//! An authorization request, parsed and checked without HTTP (RFC 6749 §4.1.1, §4.1.2.1;
//! OIDC Core §3.1.2.1–§3.1.2.2; RFC 7636 §4.3; RFC 9207).
//!
//! Order matters: the client and its redirect URI are checked first, and while either is in
//! doubt the answer is [`AuthorizeError::Page`], never a redirect (RFC 6749 §4.1.2.1). After
//! that, every error is an [`AuthorizeError::Redirect`] back to the client with `error`,
//! `state` and `iss`.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Client, GrantType, Settings};
use crate::oauth::params::Params;
use crate::provider::resource;
use crate::store::AuthRequest;
use crate::tokens::KeyRing;
use crate::tokens::jwt::verify_id_token_hint;

const MAX_STATE: usize = 2048;
const MAX_NONCE: usize = 512;

/// A request the authorization endpoint accepts: every parameter checked against the client.
#[derive(Debug)]
pub struct AuthorizeRequest {
    pub client: Arc<Client>,
    /// Registered for `client`, character for character.
    pub redirect_uri: String,
    /// Known, allowed for the client, without repeats, `openid` among them; in request order.
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// An S256 challenge (RFC 7636 §4.2).
    pub code_challenge: Option<String>,
    /// As sent; every value is one Herald knows, and `none` stands alone.
    pub prompt: Option<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// Preferred locales for the pages (OIDC Core §3.1.2.1), space-separated, at most 256 bytes.
    pub ui_locales: Option<String>,
    pub acr_values: Option<String>,
    pub pass_through: Option<String>,
    /// The id of a configured upstream.
    pub upstream_hint: Option<String>,
    /// Not yet verified: that needs the key ring ([`AuthorizeRequest::hinted_subject`]).
    pub id_token_hint: Option<String>,
    /// The registered APIs the tokens are for (RFC 8707 §2), space-separated.
    pub resources: Option<String>,
    /// The DPoP key the code is bound to (RFC 9449 §10): a JWK SHA-256 thumbprint.
    pub dpop_jkt: Option<String>,
    issuer: String,
}

/// Why a request is refused, and how the refusal is delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or its redirect URI is in doubt: an error page, never a redirect.
    Page {
        /// What the log records (no value from the request in it).
        reason: &'static str,
        /// What the page says, naming the app and the address it sent.
        message: String,
    },
    /// An OAuth error sent back to the client's registered redirect URI (RFC 6749 §4.1.2.1)
    /// with `iss` (RFC 9207 §2).
    Redirect {
        redirect_uri: String,
        issuer: String,
        state: Option<String>,
        code: &'static str,
        description: String,
    },
}

/// An OAuth error code and its description, before it knows where it is sent.
type Refusal = (&'static str, String);

fn invalid_request(description: impl Into<String>) -> Refusal {
    ("invalid_request", description.into())
}

fn invalid_scope(description: impl Into<String>) -> Refusal {
    ("invalid_scope", description.into())
}

impl AuthorizeRequest {
    /// Checks the parameters in the order RFC 6749 §4.1.2.1 asks for; see the module docs.
    pub fn parse(params: &Params, settings: &Settings) -> Result<Self, AuthorizeError> {
        let (client, redirect_uri) = identify_client(params, settings)
            .map_err(|(reason, message)| AuthorizeError::Page { reason, message })?;
        // A repeated state is no state: which one would the client expect back?
        let state = if params.duplicated.iter().any(|k| k == "state") {
            None
        } else {
            params.get("state")
        };
        let refuse = |(code, description): Refusal| AuthorizeError::Redirect {
            redirect_uri: redirect_uri.to_string(),
            issuer: settings.issuer.clone(),
            state: state.map(str::to_string),
            code,
            description,
        };
        check_request_shape(params, &client, state).map_err(&refuse)?;
        let scopes = parse_scopes(params.get("scope"), settings, &client).map_err(&refuse)?;
        let prompt = params.get("prompt");
        check_prompt(prompt).map_err(&refuse)?;
        let max_age = parse_max_age(params.get("max_age")).map_err(&refuse)?;
        let nonce = params.get("nonce");
        if nonce.is_some_and(|n| n.len() > MAX_NONCE) {
            return Err(refuse(invalid_request("nonce is too long")));
        }
        let code_challenge = parse_pkce(params, &client).map_err(&refuse)?;
        let resources =
            parse_resources(params.get("resource"), settings, &scopes).map_err(&refuse)?;
        let dpop_jkt = params.get("dpop_jkt");
        if dpop_jkt.is_some_and(|j| !is_thumbprint(j)) {
            return Err(refuse(invalid_request(
                "dpop_jkt must be a JWK SHA-256 thumbprint: 43 base64url characters (RFC 9449 §10)",
            )));
        }
        let upstream_hint = params.get("idp_hint");
        if let Some(h) = upstream_hint
            && settings.upstream(h).is_none()
        {
            return Err(refuse(invalid_request(format!(
                "idp_hint {h} names no upstream"
            ))));
        }
        let owned = |v: Option<&str>| v.map(str::to_string);
        // The parameters some upstream takes through (Auth0's `connection`, `organization`),
        // kept for the upstream the login goes to; an overlong value is dropped.
        let passed: serde_json::Map<String, serde_json::Value> = settings
            .upstreams
            .iter()
            .flat_map(|u| u.pass_through.iter())
            .filter_map(|name| {
                let value = params.get(name).filter(|v| v.len() <= 256)?;
                Some((name.clone(), serde_json::Value::String(value.to_string())))
            })
            .collect();
        let pass_through =
            (!passed.is_empty()).then(|| serde_json::Value::Object(passed).to_string());
        Ok(AuthorizeRequest {
            pass_through,
            redirect_uri: redirect_uri.to_string(),
            scopes,
            state: owned(state),
            nonce: owned(nonce),
            code_challenge: owned(code_challenge),
            prompt: owned(prompt),
            max_age,
            login_hint: owned(params.get("login_hint")),
            // Only a hint: an overlong one is dropped rather than refused.
            ui_locales: owned(params.get("ui_locales")).filter(|l| l.len() <= 256),
            acr_values: owned(params.get("acr_values"))
                .map(|v| {
                    v.split(' ')
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .filter(|v| !v.is_empty() && v.len() <= 256),
            upstream_hint: owned(upstream_hint),
            id_token_hint: owned(params.get("id_token_hint")),
            resources,
            dpop_jkt: owned(dpop_jkt),
            issuer: settings.issuer.clone(),
            client,
        })
    }

    /// OIDC Core §3.1.2.1: the subject of `id_token_hint`, the user the client expects. Herald
    /// must have issued the hint, to this client; otherwise the request is refused.
    pub fn hinted_subject(&self, keys: &KeyRing) -> Result<Option<String>, AuthorizeError> {
        let Some(hint) = self.id_token_hint.as_deref() else {
            return Ok(None);
        };
        verify_id_token_hint(keys, &self.issuer, &self.client.client_id, hint)
            .map(Some)
            .map_err(|e| self.refuse(invalid_request(format!("id_token_hint is not valid: {e}"))))
    }

    /// The request as the store keeps it while the user logs in and consents.
    pub fn into_auth_request(
        self,
        id: String,
        browser_binding: String,
        now: i64,
        login_ttl: Duration,
    ) -> AuthRequest {
        AuthRequest {
            id,
            client_id: self.client.client_id.clone(),
            redirect_uri: self.redirect_uri,
            scope: self.scopes.join(" "),
            state: self.state,
            nonce: self.nonce,
            code_challenge: self.code_challenge,
            prompt: self.prompt,
            max_age: self.max_age,
            login_hint: self.login_hint,
            upstream_hint: self.upstream_hint,
            browser_binding,
            created_at: now,
            expires_at: now + login_ttl.as_secs() as i64,
            sub: None,
            auth_context_id: None,
            auth_time: None,
            decided_at: None,
            ui_locales: self.ui_locales,
            acr_values: self.acr_values,
            pass_through: self.pass_through,
            resources: self.resources,
            dpop_jkt: self.dpop_jkt,
        }
    }

    fn refuse(&self, (code, description): Refusal) -> AuthorizeError {
        AuthorizeError::Redirect {
            redirect_uri: self.redirect_uri.clone(),
            issuer: self.issuer.clone(),
            state: self.state.clone(),
            code,
            description,
        }
    }
}

impl AuthorizeError {
    /// The OAuth error code of a redirected refusal; `None` for an error page.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            AuthorizeError::Page { .. } => None,
            AuthorizeError::Redirect { code, .. } => Some(code),
        }
    }
}

/// A value from the request as an error page quotes it, so the user can pass it on to the
/// app's developer: at most `max` characters (the page escapes it).
fn cut(value: &str, max: usize) -> String {
    match value.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &value[..at]),
        None => value.to_string(),
    }
}

/// Text from Herald's configuration (a client's name and id), quoted on a page.
fn shown(value: &str) -> String {
    cut(value, 200)
}

/// A client_id the request sent, quoted only when it looks like one (at most 64 letters,
/// digits and `-._:`), so that nobody can put sentences of their own on Herald's pages.
fn sent_client_id(value: &str) -> String {
    let plain = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:".contains(c));
    if plain {
        format!("“{value}”")
    } else {
        "that the app sent".to_string()
    }
}

/// A redirect URI the request sent, quoted as its scheme, host, port and path (at most 80
/// characters of path, no query): what a developer needs to recognise it, and no room for
/// sentences of someone else's on Herald's pages.
fn sent_redirect_uri(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(u) if u.host_str().is_some() => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "“{}://{}{port}{}”",
                u.scheme(),
                u.host_str().unwrap_or_default(),
                cut(u.path(), 80)
            )
        }
        _ => "an address that is not a URL".to_string(),
    }
}

/// A refusal whose page says no more than its log reason.
fn page_refusal(message: &'static str) -> (&'static str, String) {
    (message, message.to_string())
}

/// Who is asking, and where would the answer go? When in doubt: the log's reason, and the
/// message of the page shown.
fn identify_client<'p>(
    params: &'p Params,
    settings: &Settings,
) -> Result<(Arc<Client>, &'p str), (&'static str, String)> {
    if params.too_many {
        return Err(page_refusal(
            "The request has far more parameters than an authorization request has.",
        ));
    }
    if params
        .duplicated
        .iter()
        .any(|k| k == "client_id" || k == "redirect_uri")
    {
        return Err(page_refusal(
            "client_id or redirect_uri appears more than once in the request.",
        ));
    }
    let Some(client_id) = params.get("client_id") else {
        return Err(page_refusal(
            "The request has no client_id. The app that sent you here must include it.",
        ));
    };
    let Some(client) = settings.client(client_id).cloned() else {
        return Err((
            "unknown client_id",
            format!(
                "The app that sent you here is not registered with Herald: no app has the client_id \
                 {}. Tell the app's developer; it may be misconfigured or pointing at the wrong \
                 Herald.",
                sent_client_id(client_id)
            ),
        ));
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return Err((
            "no redirect_uri",
            format!(
                "The request from {} (client_id “{}”) has no redirect_uri. OpenID Connect requires \
             it, and Herald never guesses where to send you. Tell the app's developer.",
                shown(&client.client_name),
                shown(&client.client_id)
            ),
        ));
    };
    if !client.has_redirect_uri(redirect_uri) {
        return Err((
            "redirect_uri not registered for the client",
            format!(
                "{} (client_id “{}”) asked Herald to send you back to {}, which is not registered \
                 for this app, so Herald will not send you there. Tell the app's developer: its \
                 administrator must register that redirect URI exactly, character for character.",
                shown(&client.client_name),
                shown(&client.client_id),
                sent_redirect_uri(redirect_uri)
            ),
        ));
    }
    Ok((client, redirect_uri))
}

/// Repeated parameters, request objects, `response_type`, the client's grant, `response_mode`
/// and the length of `state`.
fn check_request_shape(
    params: &Params,
    client: &Client,
    state: Option<&str>,
) -> Result<(), Refusal> {
    if let Some(why) = params.refusal() {
        return Err(invalid_request(why));
    }
    if params.get("request").is_some() {
        return Err((
            "request_not_supported",
            "request objects are not supported".into(),
        ));
    }
    if params.get("request_uri").is_some() {
        return Err((
            "request_uri_not_supported",
            "request_uri is not supported".into(),
        ));
    }
    match params.get("response_type") {
        None => return Err(invalid_request("response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err((
                "unsupported_response_type",
                "only response_type=code is supported".into(),
            ));
        }
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err((
            "unauthorized_client",
            "this client is not registered for the authorization_code grant".into(),
        ));
    }
    if let Some(mode) = params.get("response_mode")
        && mode != "query"
    {
        return Err(invalid_request("only response_mode=query is supported"));
    }
    if state.is_some_and(|s| s.len() > MAX_STATE) {
        return Err(invalid_request("state is too long"));
    }
    Ok(())
}

/// Every scope known and allowed for the client, repeats dropped, `openid` required.
fn parse_scopes(
    scope: Option<&str>,
    settings: &Settings,
    client: &Client,
) -> Result<Vec<String>, Refusal> {
    let Some(scope) = scope else {
        return Err(invalid_scope("scope is required; include openid"));
    };
    let mut scopes: Vec<String> = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if settings.scopes.get(s).is_none() {
            return Err(invalid_scope(format!("unknown scope {s}")));
        }
        if !client.scopes.iter().any(|c| c == s) {
            return Err(invalid_scope(format!(
                "scope {s} is not allowed for this client"
            )));
        }
        if !scopes.iter().any(|known| known == s) {
            scopes.push(s.to_string());
        }
    }
    if !scopes.iter().any(|s| s == "openid") {
        return Err(invalid_scope("scope must include openid"));
    }
    Ok(scopes)
}

/// RFC 8707 §2: every `resource` a registered API, and some scope asked for one of them (else
/// its tokens would carry none). Kept space-separated, in request order.
fn parse_resources(
    raw: Option<&str>,
    settings: &Settings,
    scopes: &[String],
) -> Result<Option<String>, Refusal> {
    let apis = resource::named(settings, raw).map_err(|why| (resource::INVALID_TARGET, why))?;
    if let Some(r) = apis
        .iter()
        .find(|r| !scopes.iter().any(|s| r.scopes.contains(s)))
    {
        return Err(invalid_scope(format!(
            "no scope asked for belongs to resource {}; its scopes are {}",
            r.uri,
            r.scopes.join(" ")
        )));
    }
    Ok((!apis.is_empty()).then(|| {
        apis.iter()
            .map(|r| r.uri.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }))
}

/// A JWK SHA-256 thumbprint as RFC 7638 encodes it: 43 base64url characters.
fn is_thumbprint(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// OIDC Core §3.1.2.1: known values only, and `none` alone.
fn check_prompt(prompt: Option<&str>) -> Result<(), Refusal> {
    let Some(prompt) = prompt else {
        return Ok(());
    };
    let values: Vec<&str> = prompt.split(' ').filter(|s| !s.is_empty()).collect();
    if let Some(v) = values
        .iter()
        .find(|v| !matches!(**v, "none" | "login" | "consent" | "select_account"))
    {
        return Err(invalid_request(format!("unsupported prompt value {v}")));
    }
    if values.contains(&"none") && values.len() > 1 {
        return Err(invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(())
}

fn parse_max_age(max_age: Option<&str>) -> Result<Option<i64>, Refusal> {
    match max_age.map(str::parse::<i64>) {
        None => Ok(None),
        Some(Ok(v)) if v >= 0 => Ok(Some(v)),
        Some(_) => Err(invalid_request("max_age must be a non-negative integer")),
    }
}

/// PKCE (RFC 7636 §4.3, §4.4.1): S256 only; mandatory for public clients.
fn parse_pkce<'p>(params: &'p Params, client: &Client) -> Result<Option<&'p str>, Refusal> {
    let challenge = params.get("code_challenge");
    match (challenge, params.get("code_challenge_method")) {
        (None, None) if client.is_public() => Err(invalid_request(
            "code_challenge is required for public clients (PKCE with S256)",
        )),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(invalid_request(
            "code_challenge_method without code_challenge",
        )),
        (Some(_), method) if method != Some("S256") => Err(invalid_request(
            "code_challenge_method must be S256 (plain is not supported)",
        )),
        (Some(c), _) if !is_valid_challenge(c) => Err(invalid_request(
            "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
        )),
        _ => Ok(challenge),
    }
}

/// RFC 7636 §4.2: 43–128 characters from the unreserved set.
fn is_valid_challenge(c: &str) -> bool {
    (43..=128).contains(&c.len())
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;

    const APP_CB: &str = "http://127.0.0.1:9000/cb";
    const SPA_CB: &str = "http://127.0.0.1:9001/cb";
    const M2M_CB: &str = "http://127.0.0.1:9002/cb";
    const ISSUER: &str = "http://127.0.0.1:8080";

    /// A confidential `app`, a public `spa` and a client_credentials-only `m2m`.
    static SETTINGS: LazyLock<Settings> = LazyLock::new(|| {
        let toml = format!(
            r#"
            issuer = "{ISSUER}"
            listen = "127.0.0.1:8080"
            database_url = "sqlite::memory:"
            [[upstreams]]
            id = "dev"
            kind = "dev"
            [[clients]]
            client_id = "app"
            client_secret = "a-long-enough-secret"
            redirect_uris = ["{APP_CB}"]
            scopes = ["openid", "profile"]
            [[clients]]
            client_id = "spa"
            redirect_uris = ["{SPA_CB}"]
            scopes = ["openid"]
            [[clients]]
            client_id = "m2m"
            client_secret = "another-long-enough-secret"
            redirect_uris = ["{M2M_CB}"]
            scopes = ["profile"]
            grant_types = ["client_credentials"]
            "#
        );
        crate::config::from_toml(&toml).unwrap().0
    });

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    /// `app`'s valid request with `changes`: a value replaces the parameter of that name (or is
    /// added), an empty value removes it (OAuth treats empty parameters as absent).
    fn parse_with(changes: &[(&str, &str)]) -> Result<AuthorizeRequest, AuthorizeError> {
        parse_query(&query_with(changes))
    }

    fn query_with(changes: &[(&str, &str)]) -> String {
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", "app"),
            ("redirect_uri", APP_CB),
            ("scope", "openid"),
            ("state", "xyz"),
        ];
        for &(k, v) in changes {
            match pairs.iter_mut().find(|(name, _)| *name == k) {
                Some(pair) => pair.1 = v,
                None => pairs.push((k, v)),
            }
        }
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }

    fn parse_query(query: &str) -> Result<AuthorizeRequest, AuthorizeError> {
        AuthorizeRequest::parse(&Params::parse(query.as_bytes()), &SETTINGS)
    }

    fn page(result: Result<AuthorizeRequest, AuthorizeError>) -> String {
        match result {
            Err(AuthorizeError::Page { message, .. }) => message,
            other => panic!("expected an error page, got {other:?}"),
        }
    }

    /// The OAuth error code and description of a refusal redirected to `app`.
    fn redirected(result: Result<AuthorizeRequest, AuthorizeError>) -> (&'static str, String) {
        match result {
            Err(AuthorizeError::Redirect {
                redirect_uri,
                issuer,
                code,
                description,
                ..
            }) => {
                assert_eq!(redirect_uri, APP_CB);
                assert_eq!(issuer, ISSUER);
                (code, description)
            }
            other => panic!("expected a redirect to the client, got {other:?}"),
        }
    }

    fn code_of(result: Result<AuthorizeRequest, AuthorizeError>) -> &'static str {
        redirected(result).0
    }

    #[test]
    fn a_valid_request_keeps_its_parameters_and_each_scope_once_in_order() {
        let r = parse_with(&[
            ("scope", "profile openid  profile"),
            ("nonce", "n-1"),
            ("prompt", "login consent"),
            ("max_age", "300"),
            ("login_hint", "ann@example.com"),
            ("idp_hint", "dev"),
        ])
        .unwrap();
        assert_eq!(r.client.client_id, "app");
        assert_eq!(r.redirect_uri, APP_CB);
        assert_eq!(r.scopes, ["profile", "openid"]);
        assert_eq!(r.state.as_deref(), Some("xyz"));
        assert_eq!(r.nonce.as_deref(), Some("n-1"));
        assert_eq!(r.prompt.as_deref(), Some("login consent"));
        assert_eq!(r.max_age, Some(300));
        assert_eq!(r.login_hint.as_deref(), Some("ann@example.com"));
        assert_eq!(r.upstream_hint.as_deref(), Some("dev"));
        assert_eq!(r.code_challenge, None);
        assert_eq!(r.id_token_hint, None);
    }

    #[test]
    fn the_stored_request_expires_after_the_login_ttl_with_nothing_decided_yet() {
        let r = parse_with(&[("scope", "openid profile")]).unwrap();
        let stored = r.into_auth_request(
            "id-1".into(),
            "bound".into(),
            1_000,
            Duration::from_secs(600),
        );
        assert_eq!(stored.id, "id-1");
        assert_eq!(stored.client_id, "app");
        assert_eq!(stored.scope, "openid profile");
        assert_eq!(stored.state.as_deref(), Some("xyz"));
        assert_eq!(stored.browser_binding, "bound");
        assert_eq!((stored.created_at, stored.expires_at), (1_000, 1_600));
        assert!(stored.sub.is_none() && stored.auth_time.is_none() && stored.decided_at.is_none());
    }

    #[test]
    fn a_repeated_client_id_or_redirect_uri_is_refused_on_a_page() {
        for extra in [
            "client_id=app",
            "redirect_uri=http%3A%2F%2F127.0.0.1%3A9000%2Fcb",
        ] {
            let message = page(parse_query(&format!("{}&{extra}", query_with(&[]))));
            assert!(message.contains("more than once"), "{extra}: {message}");
        }
    }

    #[test]
    fn a_request_without_client_id_is_refused_on_a_page() {
        assert!(page(parse_with(&[("client_id", "")])).contains("no client_id"));
    }

    #[test]
    fn an_unknown_client_is_refused_on_a_page_never_redirected() {
        let message = page(parse_with(&[("client_id", "nobody"), ("scope", "bogus")]));
        assert!(message.contains("not registered"), "{message}");
        // Named, so the user can tell the app's developer; a long one is cut.
        assert!(message.contains("client_id “nobody”"), "{message}");
        // Only something that looks like a client_id is quoted: no sentences of someone else's.
        for odd in [
            "x".repeat(65),
            "Call 555-0100 for support".into(),
            "a\nb".into(),
        ] {
            let message = page(parse_with(&[("client_id", odd.as_str())]));
            assert!(
                message.contains("no app has the client_id that the app sent"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_request_without_redirect_uri_is_refused_on_a_page() {
        assert!(page(parse_with(&[("redirect_uri", "")])).contains("no redirect_uri"));
    }

    #[test]
    fn a_redirect_uri_not_registered_exactly_for_the_client_is_refused_on_a_page() {
        for uri in [
            "http://127.0.0.1:9000/cb/",
            "http://127.0.0.1:9000/CB",
            "http://127.0.0.1:9000/cb?x=1",
            SPA_CB,
        ] {
            let message = page(parse_with(&[
                ("redirect_uri", uri),
                ("response_type", "token"),
            ]));
            assert!(
                message.contains("not registered for this app"),
                "{uri}: {message}"
            );
            assert!(message.contains("(client_id “app”)"), "{message}");
            let (without_query, _) = uri.split_once('?').unwrap_or((uri, ""));
            assert!(
                message.contains(&format!("back to “{without_query}”")),
                "{message}"
            );
        }
    }

    #[test]
    fn errors_once_the_client_is_known_go_back_with_its_state_and_the_issuer() {
        assert_eq!(
            parse_with(&[("response_type", "token")]).unwrap_err(),
            AuthorizeError::Redirect {
                redirect_uri: APP_CB.into(),
                issuer: ISSUER.into(),
                state: Some("xyz".into()),
                code: "unsupported_response_type",
                description: "only response_type=code is supported".into(),
            }
        );
    }

    #[test]
    fn any_other_repeated_parameter_is_invalid_request_and_a_repeated_state_is_not_sent_back() {
        let err = parse_query(&format!("{}&state=other", query_with(&[]))).unwrap_err();
        assert_eq!(err.code(), Some("invalid_request"));
        let AuthorizeError::Redirect {
            state, description, ..
        } = err
        else {
            unreachable!()
        };
        assert_eq!(state, None);
        assert_eq!(description, "parameter state is included more than once");

        let err = parse_query(&format!("{}&scope=openid", query_with(&[]))).unwrap_err();
        let AuthorizeError::Redirect {
            state, description, ..
        } = err
        else {
            panic!("expected a redirect")
        };
        assert_eq!(state.as_deref(), Some("xyz"));
        assert_eq!(description, "parameter scope is included more than once");
    }

    #[test]
    fn request_objects_by_value_or_by_reference_are_not_supported() {
        assert_eq!(
            code_of(parse_with(&[("request", "eyJ.x.y")])),
            "request_not_supported"
        );
        assert_eq!(
            code_of(parse_with(&[("request_uri", "urn:x")])),
            "request_uri_not_supported"
        );
    }

    #[test]
    fn response_type_is_required_and_only_code_is_supported() {
        assert_eq!(
            redirected(parse_with(&[("response_type", "")])),
            ("invalid_request", "response_type is required".into())
        );
        for other in ["token", "code id_token", "id_token"] {
            assert_eq!(
                code_of(parse_with(&[("response_type", other)])),
                "unsupported_response_type",
                "{other}"
            );
        }
    }

    #[test]
    fn a_client_without_the_authorization_code_grant_is_an_unauthorized_client() {
        let err = parse_with(&[("client_id", "m2m"), ("redirect_uri", M2M_CB)]).unwrap_err();
        assert_eq!(err.code(), Some("unauthorized_client"));
    }

    #[test]
    fn only_response_mode_query_is_supported() {
        assert!(parse_with(&[("response_mode", "query")]).is_ok());
        assert_eq!(
            redirected(parse_with(&[("response_mode", "fragment")])),
            (
                "invalid_request",
                "only response_mode=query is supported".into()
            )
        );
    }

    #[test]
    fn state_up_to_2048_and_nonce_up_to_512_characters_are_accepted_and_longer_refused() {
        let (state, nonce) = ("s".repeat(MAX_STATE), "n".repeat(MAX_NONCE));
        assert!(parse_with(&[("state", &state), ("nonce", &nonce)]).is_ok());
        let long_state = "s".repeat(MAX_STATE + 1);
        assert_eq!(
            redirected(parse_with(&[("state", &long_state)])),
            ("invalid_request", "state is too long".into())
        );
        let long_nonce = "n".repeat(MAX_NONCE + 1);
        assert_eq!(
            redirected(parse_with(&[("nonce", &long_nonce)])),
            ("invalid_request", "nonce is too long".into())
        );
    }

    #[test]
    fn scopes_must_be_present_known_allowed_for_the_client_and_include_openid() {
        for (scope, description) in [
            ("", "scope is required; include openid"),
            ("openid bogus", "unknown scope bogus"),
            ("openid email", "scope email is not allowed for this client"),
            ("profile", "scope must include openid"),
        ] {
            assert_eq!(
                redirected(parse_with(&[("scope", scope)])),
                ("invalid_scope", description.to_string()),
                "{scope}"
            );
        }
    }

    #[test]
    fn prompt_takes_known_values_and_none_only_alone() {
        for ok in ["none", "login", "consent select_account", "login  consent"] {
            assert!(parse_with(&[("prompt", ok)]).is_ok(), "{ok}");
        }
        assert_eq!(
            redirected(parse_with(&[("prompt", "login bogus")])),
            ("invalid_request", "unsupported prompt value bogus".into())
        );
        assert_eq!(
            redirected(parse_with(&[("prompt", "none login")])),
            (
                "invalid_request",
                "prompt=none cannot be combined with other values".into()
            )
        );
    }

    #[test]
    fn max_age_must_be_a_non_negative_integer() {
        assert_eq!(parse_with(&[("max_age", "0")]).unwrap().max_age, Some(0));
        for bad in ["-1", "1.5", "ten", "99999999999999999999"] {
            assert_eq!(
                redirected(parse_with(&[("max_age", bad)])),
                (
                    "invalid_request",
                    "max_age must be a non-negative integer".into()
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_public_client_must_send_an_s256_code_challenge() {
        let spa = |changes: &[(&str, &str)]| {
            let mut all = vec![("client_id", "spa"), ("redirect_uri", SPA_CB)];
            all.extend_from_slice(changes);
            parse_with(&all)
        };
        let ok = spa(&[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]);
        assert_eq!(ok.unwrap().code_challenge.as_deref(), Some(CHALLENGE));
        let err = spa(&[]).unwrap_err();
        let AuthorizeError::Redirect {
            redirect_uri,
            code,
            description,
            ..
        } = err
        else {
            panic!("expected a redirect")
        };
        assert_eq!((redirect_uri.as_str(), code), (SPA_CB, "invalid_request"));
        assert!(
            description.contains("required for public clients"),
            "{description}"
        );
    }

    #[test]
    fn a_code_challenge_must_be_s256_and_well_formed_for_any_client() {
        assert!(parse_with(&[]).unwrap().code_challenge.is_none());
        for (changes, description) in [
            (
                vec![("code_challenge_method", "S256")],
                "code_challenge_method without code_challenge",
            ),
            (
                vec![("code_challenge", CHALLENGE)],
                "code_challenge_method must be S256 (plain is not supported)",
            ),
            (
                vec![
                    ("code_challenge", CHALLENGE),
                    ("code_challenge_method", "plain"),
                ],
                "code_challenge_method must be S256 (plain is not supported)",
            ),
            (
                vec![
                    ("code_challenge", "short"),
                    ("code_challenge_method", "S256"),
                ],
                "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
            ),
        ] {
            assert_eq!(
                redirected(parse_with(&changes)),
                ("invalid_request", description.to_string()),
                "{changes:?}"
            );
        }
    }

    #[test]
    fn code_challenge_must_be_43_to_128_unreserved_characters() {
        assert!(is_valid_challenge(&"a".repeat(43)));
        assert!(is_valid_challenge(&"A-._~".repeat(20)));
        assert!(!is_valid_challenge(&"a".repeat(42)));
        assert!(!is_valid_challenge(&"a".repeat(129)));
        assert!(!is_valid_challenge(&format!("{}+", "a".repeat(43))));
    }

    #[test]
    fn an_idp_hint_must_name_a_configured_upstream() {
        assert_eq!(
            redirected(parse_with(&[("idp_hint", "elsewhere")])),
            (
                "invalid_request",
                "idp_hint elsewhere names no upstream".into()
            )
        );
    }

    #[test]
    fn the_first_problem_in_check_order_is_the_one_reported() {
        // Each query has two problems; the one checked first is reported.
        let repeated_scope_and_request_object =
            format!("{}&scope=openid", query_with(&[("request", "x")]));
        for (query, code) in [
            (repeated_scope_and_request_object, "invalid_request"),
            (
                query_with(&[("request", "x"), ("response_type", "token")]),
                "request_not_supported",
            ),
            (
                query_with(&[("response_type", "token"), ("scope", "bogus")]),
                "unsupported_response_type",
            ),
            (
                query_with(&[("response_mode", "fragment"), ("scope", "bogus")]),
                "invalid_request",
            ),
            (
                query_with(&[("scope", "bogus"), ("prompt", "bogus")]),
                "invalid_scope",
            ),
            (
                query_with(&[
                    ("client_id", "m2m"),
                    ("redirect_uri", M2M_CB),
                    ("scope", "x"),
                ]),
                "unauthorized_client",
            ),
        ] {
            assert_eq!(
                parse_query(&query).unwrap_err().code(),
                Some(code),
                "{query}"
            );
        }
    }

    #[test]
    fn an_id_token_hint_herald_cannot_verify_is_invalid_request_and_no_hint_names_nobody() {
        let keys = KeyRing::new(Vec::new(), &[]).unwrap();
        assert_eq!(parse_with(&[]).unwrap().hinted_subject(&keys), Ok(None));
        let r = parse_with(&[("id_token_hint", "not-a-jwt")]).unwrap();
        assert_eq!(
            redirected(r.hinted_subject(&keys).map(|_| r)),
            (
                "invalid_request",
                "id_token_hint is not valid: the token is malformed".into()
            )
        );
    }
}
