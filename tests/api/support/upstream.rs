//! An OpenID provider written for the tests: discovery, JWKS, an authorize endpoint that logs
//! the configured user in at once, a token endpoint that checks PKCE, and userinfo. Knobs make
//! it misbehave (wrong nonce, wrong issuer, errors, 500s) the way real upstreams can.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::test_keys::{TestKey, UPSTREAM};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

/// How the next logins go.
#[derive(Clone, Debug)]
pub struct Behaviour {
    pub subject: String,
    /// Extra ID-token claims (custom namespaced ones).
    pub id_claims: Map<String, Value>,
    /// Extra userinfo claims.
    pub userinfo_claims: Map<String, Value>,
    pub wrong_nonce: bool,
    pub wrong_issuer: bool,
    /// `error=` on the callback instead of a code.
    pub authorize_error: Option<String>,
    pub token_status: Option<u16>,
    pub userinfo_sub: Option<String>,
    /// Discovery names this `jwks_uri` instead of its own.
    pub jwks_uri: Option<String>,
    /// Discovery states this issuer instead of its own.
    pub discovery_issuer: Option<String>,
    /// Discovery says `authorization_response_iss_parameter_supported` (RFC 9207).
    pub advertise_iss: bool,
    /// `iss` added to the callback.
    pub callback_iss: Option<String>,
    /// The token endpoint answers 302 to this URL instead of tokens.
    pub token_redirect: Option<String>,
    /// The token endpoint waits this long before answering.
    pub token_stall: Option<std::time::Duration>,
    /// The token endpoint answers 200 with this content type and body instead of tokens.
    pub token_body: Option<(&'static str, Vec<u8>)>,
    /// Discovery answers 200 with this content type and body instead of its document.
    pub discovery_body: Option<(&'static str, Vec<u8>)>,
    /// Bytes of an extra member in the discovery document and in token responses, which are
    /// otherwise valid.
    pub padding: usize,
    /// Discovery, the JWKS and userinfo answer with this status (and an HTML body) instead.
    pub discovery_status: Option<u16>,
    pub jwks_status: Option<u16>,
    pub userinfo_status: Option<u16>,
    /// How the ID token is spoiled, if at all.
    pub spoil: Option<Spoil>,
    /// ID tokens carry no `kid` in their header.
    pub omit_kid: bool,
    /// The JWKS also lists another key: `Some(false)` with a kid of its own, `Some(true)` with
    /// the signing key's kid.
    pub second_key: Option<bool>,
    /// The token endpoint refuses refresh tokens (`invalid_grant`): the user was blocked there.
    pub refuse_refresh: bool,
    /// `prompt=login` is ignored: the ID token keeps the behaviour's `auth_time` (otherwise a
    /// login asked for with it authenticates afresh, `auth_time` now).
    pub ignore_prompt_login: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        let mut id_claims = Map::new();
        id_claims.insert(
            "https://example.com/groups".into(),
            json!(["staff", "admins"]),
        );
        id_claims.insert("email".into(), json!("alice@example.com"));
        id_claims.insert("email_verified".into(), json!(true));
        id_claims.insert("name".into(), json!("Alice"));
        Self {
            subject: "auth0|alice".into(),
            id_claims,
            userinfo_claims: Map::new(),
            wrong_nonce: false,
            wrong_issuer: false,
            authorize_error: None,
            token_status: None,
            userinfo_sub: None,
            jwks_uri: None,
            discovery_issuer: None,
            advertise_iss: false,
            callback_iss: None,
            token_redirect: None,
            token_stall: None,
            token_body: None,
            discovery_body: None,
            padding: 0,
            discovery_status: None,
            jwks_status: None,
            userinfo_status: None,
            omit_kid: false,
            second_key: None,
            spoil: None,
            refuse_refresh: false,
            ignore_prompt_login: false,
        }
    }
}

/// What a hostile or broken upstream does to its ID tokens.
#[derive(Clone, Copy, Debug)]
pub enum Spoil {
    /// `exp` ten minutes ago.
    Expired,
    /// `aud` is another client.
    WrongAudience,
    /// `iat` an hour ahead.
    IssuedInTheFuture,
    /// `alg: none`, no signature.
    AlgNone,
    /// HS256, keyed with the upstream's public JWK.
    Hs256WithThePublicKey,
    /// RS256 as usual, one bit of the signature flipped.
    FlippedSignatureBit,
    /// RS256 under the published key's kid, signed by another (unpublished) key.
    SignedByAnotherKey,
}

struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    scope: String,
    prompt_login: bool,
}

pub struct UpstreamState {
    pub issuer: String,
    /// The signing key, an index into [`UPSTREAM`]; `rotate_key` moves to the next (the JWKS
    /// then lists only the new one).
    key: Mutex<usize>,
    pub behaviour: Mutex<Behaviour>,
    codes: Mutex<HashMap<String, Code>>,
    tokens: Mutex<HashMap<String, Map<String, Value>>>,
    /// Every authorize request's parameters, for assertions.
    pub authorize_requests: Mutex<Vec<HashMap<String, String>>>,
    /// Every logout request's parameters.
    pub logout_requests: Mutex<Vec<HashMap<String, String>>>,
    /// How many requests the token endpoint got.
    pub token_requests: std::sync::atomic::AtomicUsize,
    /// Live refresh tokens: the client and subject each was issued to. Rotated on every use.
    refresh_tokens: Mutex<HashMap<String, (String, String)>>,
    /// How many refresh-token requests the token endpoint got.
    pub refresh_requests: std::sync::atomic::AtomicUsize,
    /// How each token request authenticated: `basic`, `post` or `none`.
    pub token_auth: Mutex<Vec<&'static str>>,
}

#[derive(Clone)]
pub struct TestUpstream {
    pub state: Arc<UpstreamState>,
    shutdown: Arc<Mutex<Option<tokio::sync::oneshot::Sender<()>>>>,
}

impl TestUpstream {
    pub async fn start() -> TestUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(UpstreamState {
            issuer,
            key: Mutex::new(0),
            behaviour: Mutex::new(Behaviour::default()),
            codes: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            authorize_requests: Mutex::new(Vec::new()),
            logout_requests: Mutex::new(Vec::new()),
            token_requests: std::sync::atomic::AtomicUsize::new(0),
            refresh_tokens: Mutex::new(HashMap::new()),
            refresh_requests: std::sync::atomic::AtomicUsize::new(0),
            token_auth: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .route("/logout", get(logout))
            .with_state(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        TestUpstream {
            state,
            shutdown: Arc::new(Mutex::new(Some(tx))),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    pub fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.state.behaviour.lock().unwrap());
    }

    /// Signs with the next key (a new kid) from now on; the JWKS lists only the new key.
    pub fn rotate_key(&self) {
        let mut key = self.state.key.lock().unwrap();
        *key = (*key + 1) % UPSTREAM.len();
    }

    /// How many requests its token endpoint has had.
    pub fn token_requests(&self) -> usize {
        self.state
            .token_requests
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The JWKS it publishes now.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.state.signing_key().jwk()] })
    }

    /// `claims` signed with its current key, as it signs its own tokens (a logout token).
    pub fn sign(&self, claims: &Value) -> String {
        self.state.signing_key().sign(claims)
    }

    /// `claims` signed with a key it does not publish, under its current key's kid.
    pub fn sign_with_another_key(&self, claims: &Value) -> String {
        let kid = self.state.signing_key().kid();
        self.state.second_key().sign_with_kid(claims, Some(&kid))
    }

    /// Stops the server: the upstream is down from now on.
    pub fn stop(&self) {
        if let Some(tx) = self.shutdown.lock().unwrap().take() {
            let _ = tx.send(());
        }
    }
}

fn params(raw: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(raw).into_owned().collect()
}

async fn discovery(State(s): State<Arc<UpstreamState>>) -> Response {
    let iss = &s.issuer;
    let b = s.behaviour.lock().unwrap().clone();
    if let Some(status) = b.discovery_status {
        return (StatusCode::from_u16(status).unwrap(), "<html>down</html>").into_response();
    }
    if let Some((content_type, body)) = b.discovery_body {
        return ([("content-type", content_type)], body).into_response();
    }
    let jwks_uri = b.jwks_uri;
    axum::Json(json!({
        "x-padding": "a".repeat(b.padding),
        "issuer": b.discovery_issuer.unwrap_or_else(|| iss.clone()),
        "authorization_response_iss_parameter_supported": b.advertise_iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "userinfo_endpoint": format!("{iss}/userinfo"),
        "jwks_uri": jwks_uri.unwrap_or_else(|| format!("{iss}/jwks")),
        "end_session_endpoint": format!("{iss}/logout"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
    .into_response()
}

impl UpstreamState {
    fn signing_key(&self) -> &'static TestKey {
        &UPSTREAM[*self.key.lock().unwrap()]
    }

    /// Another of its keys than the one it signs with.
    fn second_key(&self) -> &'static TestKey {
        &UPSTREAM[(*self.key.lock().unwrap() + 1) % UPSTREAM.len()]
    }
}

async fn jwks(State(s): State<Arc<UpstreamState>>) -> Response {
    if let Some(status) = s.behaviour.lock().unwrap().jwks_status {
        return (StatusCode::from_u16(status).unwrap(), "<html>down</html>").into_response();
    }
    let key = s.signing_key();
    let mut keys = vec![key.jwk()];
    if let Some(same_kid) = s.behaviour.lock().unwrap().second_key {
        let mut other = s.second_key().jwk();
        if same_kid {
            other["kid"] = key.jwk()["kid"].clone();
        }
        keys.push(other);
    }
    axum::Json(json!({ "keys": keys })).into_response()
}

/// An ID token with `alg: none`, or HMAC-signed with the public key as the secret.
fn forged(key: &TestKey, claims: &Map<String, Value>, spoil: Spoil) -> String {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let kid = key.kid();
    let alg = if matches!(spoil, Spoil::AlgNone) {
        "none"
    } else {
        "HS256"
    };
    let header = json!({"alg": alg, "typ": "JWT", "kid": kid}).to_string();
    let input = format!(
        "{}.{}",
        b64(header.as_bytes()),
        b64(&serde_json::to_vec(claims).unwrap())
    );
    if matches!(spoil, Spoil::AlgNone) {
        return format!("{input}.");
    }
    let secret = key.jwk().to_string();
    let hmac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&hmac, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// `jws` with the first bit of its signature's last byte flipped.
fn flip_a_signature_bit(jws: &str) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (input, signature) = jws.rsplit_once('.').unwrap();
    let mut signature = engine.decode(signature).unwrap();
    *signature.last_mut().unwrap() ^= 0x80;
    format!("{input}.{}", engine.encode(signature))
}

async fn authorize(State(s): State<Arc<UpstreamState>>, RawQuery(q): RawQuery) -> Response {
    let p = params(q.unwrap_or_default().as_bytes());
    s.authorize_requests.lock().unwrap().push(p.clone());
    let redirect_uri = p.get("redirect_uri").cloned().unwrap_or_default();
    let state = p.get("state").cloned().unwrap_or_default();
    let behaviour = s.behaviour.lock().unwrap().clone();
    let mut url = url::Url::parse(&redirect_uri).unwrap();
    if let Some(err) = behaviour.authorize_error {
        url.query_pairs_mut()
            .append_pair("error", &err)
            .append_pair("state", &state);
        return Redirect::to(url.as_str()).into_response();
    }
    let code = herald::tokens::random_token();
    s.codes.lock().unwrap().insert(
        code.clone(),
        Code {
            client_id: p.get("client_id").cloned().unwrap_or_default(),
            redirect_uri,
            challenge: p.get("code_challenge").cloned().unwrap_or_default(),
            nonce: p.get("nonce").cloned(),
            scope: p.get("scope").cloned().unwrap_or_default(),
            prompt_login: p
                .get("prompt")
                .is_some_and(|v| v.split(' ').any(|v| v == "login")),
        },
    );
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &state);
    if let Some(iss) = &behaviour.callback_iss {
        url.query_pairs_mut().append_pair("iss", iss);
    }
    Redirect::to(url.as_str()).into_response()
}

/// The client secret a token request presents: HTTP Basic (form-urlencoded inside, RFC 6749
/// §2.3.1) or `client_secret` in the body.
fn presented_secret(
    headers: &axum::http::HeaderMap,
    p: &HashMap<String, String>,
) -> Option<String> {
    use base64::Engine;
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            let (_, secret) = pair.split_once(':')?;
            Some(
                percent_encoding::percent_decode_str(secret)
                    .decode_utf8_lossy()
                    .into_owned(),
            )
        });
    basic.or_else(|| p.get("client_secret").cloned())
}

async fn token(
    State(s): State<Arc<UpstreamState>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    s.token_requests
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let p = params(&body);
    let how = if headers.contains_key("authorization") {
        "basic"
    } else if p.contains_key("client_secret") {
        "post"
    } else {
        "none"
    };
    s.token_auth.lock().unwrap().push(how);
    // A client with a secret must present the right one (clients without one are public).
    if presented_secret(&headers, &p).is_some_and(|secret| secret != "upstream-secret") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let behaviour = s.behaviour.lock().unwrap().clone();
    if let Some(stall) = behaviour.token_stall {
        tokio::time::sleep(stall).await;
    }
    if let Some((content_type, body)) = behaviour.token_body.clone() {
        return ([("content-type", content_type)], body).into_response();
    }
    if let Some(to) = &behaviour.token_redirect {
        return Redirect::temporary(to).into_response();
    }
    if let Some(status) = behaviour.token_status {
        return (StatusCode::from_u16(status).unwrap(), "<html>oops</html>").into_response();
    }
    if p.get("grant_type").map(String::as_str) == Some("refresh_token") {
        return refresh(&s, &p, behaviour);
    }
    let Some(code) = p
        .get("code")
        .and_then(|c| s.codes.lock().unwrap().remove(c))
    else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let verifier = p.get("code_verifier").cloned().unwrap_or_default();
    if super::test_keys::s256(&verifier) != code.challenge
        || p.get("redirect_uri") != Some(&code.redirect_uri)
    {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    let mut behaviour = behaviour;
    if code.prompt_login && !behaviour.ignore_prompt_login {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        behaviour.id_claims.insert("auth_time".into(), json!(now));
    }
    let id_token = id_token(
        &s,
        &behaviour,
        &behaviour.subject,
        &code.client_id,
        code.nonce,
    );
    let refresh_token = code
        .scope
        .split(' ')
        .any(|s| s == "offline_access")
        .then(|| {
            let token = herald::tokens::random_token();
            s.refresh_tokens.lock().unwrap().insert(
                token.clone(),
                (code.client_id.clone(), behaviour.subject.clone()),
            );
            token
        });
    tokens(
        &s,
        behaviour.clone(),
        &behaviour.subject,
        id_token,
        refresh_token,
    )
}

/// The token response: a new access token (whose userinfo is the behaviour's), `id_token` and
/// perhaps a refresh token.
fn tokens(
    s: &UpstreamState,
    behaviour: Behaviour,
    subject: &str,
    id_token: String,
    refresh_token: Option<String>,
) -> Response {
    let access_token = herald::tokens::random_token();
    let mut info = behaviour.userinfo_claims.clone();
    info.insert(
        "sub".into(),
        json!(
            behaviour
                .userinfo_sub
                .unwrap_or_else(|| subject.to_string())
        ),
    );
    s.tokens.lock().unwrap().insert(access_token.clone(), info);
    let mut body = json!({
        "x-padding": "a".repeat(behaviour.padding),
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    });
    if let Some(r) = refresh_token {
        body["refresh_token"] = json!(r);
    }
    axum::Json(body).into_response()
}

/// The refresh_token grant: rotates the token and answers with a new ID token carrying the
/// behaviour's claims now; `invalid_grant` for an unknown token or with `refuse_refresh`.
fn refresh(s: &UpstreamState, p: &HashMap<String, String>, behaviour: Behaviour) -> Response {
    s.refresh_requests
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let presented = p.get("refresh_token").cloned().unwrap_or_default();
    let known = s.refresh_tokens.lock().unwrap().remove(&presented);
    let Some((client_id, subject)) = known.filter(|_| !behaviour.refuse_refresh) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant", "error_description": "user is blocked"})),
        )
            .into_response();
    };
    let next = herald::tokens::random_token();
    s.refresh_tokens
        .lock()
        .unwrap()
        .insert(next.clone(), (client_id.clone(), subject.clone()));
    let id_token = id_token(s, &behaviour, &subject, &client_id, None);
    tokens(s, behaviour, &subject, id_token, Some(next))
}

/// An ID token for `subject` and `client_id` with the behaviour's claims, spoilt as it says.
fn id_token(
    s: &UpstreamState,
    behaviour: &Behaviour,
    subject: &str,
    client_id: &str,
    nonce: Option<String>,
) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut claims = behaviour.id_claims.clone();
    claims.insert("sub".into(), json!(subject));
    let iss = if behaviour.wrong_issuer {
        format!("{}/evil", s.issuer)
    } else {
        s.issuer.clone()
    };
    claims.insert("iss".into(), json!(iss));
    let spoil = behaviour.spoil;
    let aud = match spoil {
        Some(Spoil::WrongAudience) => "another-client".to_string(),
        _ => client_id.to_string(),
    };
    claims.insert("aud".into(), json!(aud));
    let iat = match spoil {
        Some(Spoil::IssuedInTheFuture) => now + 3600,
        _ => now,
    };
    claims.insert("iat".into(), json!(iat));
    let exp = match spoil {
        Some(Spoil::Expired) => now - 600,
        Some(Spoil::IssuedInTheFuture) => now + 7200,
        _ => now + 300,
    };
    claims.insert("exp".into(), json!(exp));
    let nonce = if behaviour.wrong_nonce {
        Some("not-the-nonce".to_string())
    } else {
        nonce
    };
    if let Some(n) = nonce {
        claims.insert("nonce".into(), json!(n));
    }
    let key = s.signing_key();
    if let Some(spoil @ (Spoil::AlgNone | Spoil::Hs256WithThePublicKey)) = spoil {
        forged(key, &claims, spoil)
    } else if behaviour.omit_kid {
        key.sign_with_kid(&claims, None)
    } else if let Some(Spoil::SignedByAnotherKey) = spoil {
        s.second_key().sign_with_kid(&claims, Some(&key.kid()))
    } else if let Some(Spoil::FlippedSignatureBit) = spoil {
        flip_a_signature_bit(&key.sign(&claims))
    } else {
        key.sign(&claims)
    }
}

async fn userinfo(State(s): State<Arc<UpstreamState>>, headers: HeaderMap) -> Response {
    if let Some(status) = s.behaviour.lock().unwrap().userinfo_status {
        return (StatusCode::from_u16(status).unwrap(), "<html>down</html>").into_response();
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    match s.tokens.lock().unwrap().get(token) {
        Some(info) => axum::Json(Value::Object(info.clone())).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn logout(State(s): State<Arc<UpstreamState>>, RawQuery(q): RawQuery) -> Response {
    let p = params(q.unwrap_or_default().as_bytes());
    s.logout_requests.lock().unwrap().push(p.clone());
    match p.get("post_logout_redirect_uri") {
        Some(uri) => Redirect::to(uri).into_response(),
        None => "signed out".into_response(),
    }
}
