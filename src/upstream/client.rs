//! Herald as a relying party: the authorization-code flow at an upstream provider with the
//! `openidconnect` crate (OIDC Core §3.1; PKCE S256 per RFC 7636; RFC 9700 §2.1).
//!
//! Discovery is fetched on first use and cached, so Herald starts even when an upstream is down.
//! The issuer in the discovery document must equal the configured one exactly (Discovery §4.3;
//! Auth0's ends in `/`). When an ID token names a key the cached JWKS lacks, discovery and JWKS
//! are refetched once and the token checked again, which is how a rotated upstream key is picked
//! up without a restart. Such refetches happen at most once per 10 s per upstream, so tokens
//! naming made-up keys cannot make Herald hammer the upstream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClient, CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl, Scope,
    SignatureVerificationError,
};
use serde_json::{Map, Value};

pub use super::claims_json::claims_object;
use super::claims_json::jwt_payload;
use super::endpoints;
use super::error::UpstreamError;
use super::http::Guarded;
use crate::claims::{AccessTokenClaims, UpstreamClaims};
use crate::config::Upstream;
use crate::egress;
use crate::secret::Secret;

pub(super) type RpClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Asymmetric algorithms only: an HMAC-signed ID token keyed with the client secret is refused,
/// which rules out algorithm confusion (RFC 8725 §2.1).
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 7] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// The discovery members Herald reads beyond the core ones.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
pub(super) struct MoreMetadata {
    /// RFC 9207 §3: the upstream puts `iss` in every authorization response.
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
    /// OpenID Connect Back-Channel Logout 1.0 §2.1: it sends logout tokens.
    #[serde(default)]
    backchannel_logout_supported: bool,
    /// ... with `sid`.
    #[serde(default)]
    backchannel_logout_session_supported: bool,
}

impl AdditionalProviderMetadata for MoreMetadata {}

pub(super) type Metadata = ProviderMetadata<
    MoreMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// How far in the future an upstream ID token's `iat` may be: clocks differ a little, but a
/// token issued later than this comes from a broken or hostile upstream (checklist item 44).
const IAT_LEEWAY_SECONDS: i64 = 60;

/// The ID-token checks: signature with an asymmetric algorithm, `iss`, `aud`, `exp` (by the
/// crate), and `iat` at most [`IAT_LEEWAY_SECONDS`] ahead.
fn verifier(client: &RpClient) -> openidconnect::core::CoreIdTokenVerifier<'_> {
    client
        .id_token_verifier()
        .set_allowed_algs(ALLOWED_ALGS)
        .set_issue_time_verifier_fn(|iat| {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            if iat.timestamp() > now + IAT_LEEWAY_SECONDS {
                Err(format!("iat is {} s in the future", iat.timestamp() - now))
            } else {
                Ok(())
            }
        })
}

const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
const REFETCH_COOLDOWN: Duration = Duration::from_secs(10);

pub(super) struct Discovered {
    pub(super) metadata: Metadata,
    fetched_at: Instant,
    /// Fetched because a token named an unknown key: another such refetch waits for
    /// [`REFETCH_COOLDOWN`]. One fetched on schedule may be refetched at once, so a key rotated
    /// just after it was fetched is still picked up.
    forced: bool,
}

fn refused_endpoint(id: &str, why: String) -> UpstreamError {
    UpstreamError::Misconfigured(format!(
        "{id}: the discovery document names an endpoint Herald will not call: {why}"
    ))
}

/// A finished code exchange (or refresh): the upstream's claims, and its refresh token when it
/// gave one.
#[derive(Debug)]
pub struct Finished {
    pub claims: UpstreamClaims,
    pub refresh_token: Option<Secret>,
}

/// What the app asked of the login that Herald passes on to the upstream (issue 18): a fresh
/// authentication (`prompt=login`), its freshness (`max_age`), who to sign in (`login_hint`),
/// the language of the upstream's pages (`ui_locales`) and the authentication context classes
/// it must meet (`acr_values`). They win over the same keys in
/// `extra_authorize_params`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked<'a> {
    pub prompt_login: bool,
    /// The app asked for no interaction (`prompt=none`): the upstream is asked the same.
    pub prompt_none: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<&'a str>,
    pub ui_locales: Option<&'a str>,
    /// The authentication context classes the app asked for.
    pub acr_values: Option<&'a str>,
    /// The app's parameters this upstream takes through (`pass_through`).
    pub passed: &'a [(String, String)],
}

/// Where to send the browser, and what to remember until the callback.
#[derive(Debug)]
pub struct LoginStart {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Relying-party clients for every upstream, sharing one HTTP client.
pub struct UpstreamClients {
    pub(super) http: reqwest::Client,
    cache: Mutex<HashMap<String, Arc<Discovered>>>,
}

impl std::fmt::Debug for UpstreamClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamClients")
    }
}

impl UpstreamClients {
    pub fn new() -> Self {
        // No redirects followed, no link-local or metadata address reached (SSRF). Each
        // request also carries its upstream's `timeout`, shorter than this bound.
        let http = egress::client(egress::Timeouts {
            connect: Duration::from_secs(3),
            total: Duration::from_secs(60),
        });
        Self {
            http,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Drops every cached discovery document (the configuration changed).
    pub fn forget_discovery(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
    }

    /// Drops one upstream's cached discovery document (a check fetches afresh).
    pub(super) fn forget(&self, id: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(id);
        }
    }

    fn cached(&self, id: &str) -> Option<Arc<Discovered>> {
        self.cache.lock().ok()?.get(id).cloned()
    }

    pub(super) async fn discover(
        &self,
        up: &Upstream,
        force: bool,
    ) -> Result<Arc<Discovered>, UpstreamError> {
        if let Some(d) = self.cached(&up.id) {
            let age = d.fetched_at.elapsed();
            if (!force && age < DISCOVERY_TTL) || (force && d.forced && age < REFETCH_COOLDOWN) {
                return Ok(d);
            }
        }
        let issuer = IssuerUrl::new(up.endpoint.issuer.clone())
            .map_err(|e| UpstreamError::Misconfigured(e.to_string()))?;
        // Every request discovery makes (the document, then its jwks_uri) is checked first,
        // so a hostile document cannot point Herald's JWKS fetch anywhere.
        let guarded = Guarded::new(&self.http, up);
        // discover_async checks that the document's issuer equals ours exactly.
        let metadata =
            Metadata::discover_async(issuer, &guarded)
                .await
                .map_err(|e| match guarded.refusal() {
                    Some(why) => refused_endpoint(&up.id, why),
                    None => {
                        let jwks = guarded.last_jwks_url();
                        UpstreamError::from_discovery(&up.id, e, jwks.as_deref())
                    }
                })?;
        let named = [
            metadata.token_endpoint().map(|u| u.url()),
            metadata.userinfo_endpoint().map(|u| u.url()),
        ];
        if let Some(why) = named
            .into_iter()
            .flatten()
            .find_map(|url| endpoints::refusal(&up.endpoint, url))
        {
            return Err(refused_endpoint(&up.id, why));
        }
        let more = metadata.additional_metadata();
        if more.backchannel_logout_supported {
            tracing::info!(upstream = %up.id, sid = more.backchannel_logout_session_supported,
                "the upstream supports back-channel logout: register Herald's \
                 /backchannel-logout/{} as its back-channel logout URI", up.id);
        } else {
            tracing::info!(upstream = %up.id,
                "the upstream does not say it supports back-channel logout \
                 (backchannel_logout_supported); sessions it ends are not ended here");
        }
        let d = Arc::new(Discovered {
            metadata,
            fetched_at: Instant::now(),
            forced: force,
        });
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(up.id.clone(), d.clone());
        }
        Ok(d)
    }

    pub(super) fn client(
        &self,
        up: &Upstream,
        d: &Discovered,
        redirect_uri: &str,
    ) -> Result<RpClient, UpstreamError> {
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| UpstreamError::Misconfigured(e.to_string()))?;
        Ok(CoreClient::from_provider_metadata(
            d.metadata.clone(),
            ClientId::new(up.client_id.clone()),
            up.client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose().to_string())),
        )
        .set_redirect_uri(redirect)
        .set_auth_type(if up.secret_in_body {
            AuthType::RequestBody
        } else {
            AuthType::BasicAuth
        }))
    }

    /// Starts a login: a fresh state, nonce and PKCE pair, and the upstream authorization URL.
    /// `fresh`: ask the upstream to authenticate the user again (`prompt=login`, OIDC Core
    /// §3.1.2.1) instead of reusing its session: someone switching to another account.
    pub async fn start(
        &self,
        up: &Upstream,
        redirect_uri: &str,
        fresh: bool,
        asked: Asked<'_>,
    ) -> Result<LoginStart, UpstreamError> {
        let fresh = fresh || asked.prompt_login;
        let mut passed: Vec<(&str, String)> = Vec::new();
        if let Some(max_age) = asked.max_age {
            passed.push(("max_age", max_age.to_string()));
        }
        if let Some(hint) = asked.login_hint {
            passed.push(("login_hint", hint.to_string()));
        }
        if let Some(locales) = asked.ui_locales {
            passed.push(("ui_locales", locales.to_string()));
        }
        if let Some(acr) = asked.acr_values {
            passed.push(("acr_values", acr.to_string()));
        }
        for (name, value) in asked.passed {
            passed.push((name.as_str(), value.clone()));
        }
        let d = self.discover(up, false).await?;
        let client = self.client(up, &d, redirect_uri)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for s in up.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        // A refresh token to refresh stale logins with (OIDC Core §11).
        if up.refresh_upstream && !up.scopes.iter().any(|s| s == "offline_access") {
            req = req.add_scope(Scope::new("offline_access".into()));
        }
        for (k, v) in &up.extra_authorize_params {
            // The app's values win, and a fresh login drops a configured prompt.
            let replaced = passed.iter().any(|(p, _)| p == k)
                || ((fresh || asked.prompt_none) && k == "prompt");
            if !replaced {
                req = req.add_extra_param(k.clone(), v.clone());
            }
        }
        for (k, v) in passed {
            req = req.add_extra_param(k, v);
        }
        if asked.prompt_none && !fresh {
            req = req.add_prompt(CoreAuthPrompt::None);
        } else if fresh {
            req = req.add_prompt(CoreAuthPrompt::Login);
        }
        let (url, state, nonce) = req.url();
        Ok(LoginStart {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Whether the upstream says it puts `iss` in every authorization response (RFC 9207 §3),
    /// so that an answer without one must be refused (§2.4).
    pub async fn sends_iss(&self, up: &Upstream) -> Result<bool, UpstreamError> {
        let d = self.discover(up, false).await?;
        Ok(d.metadata
            .additional_metadata()
            .authorization_response_iss_parameter_supported)
    }

    /// Where to send the browser to end its session at the upstream, returning to
    /// `return_to`: the discovery document's `end_session_endpoint` (RP-Initiated Logout 1.0
    /// §2), or Auth0's `/v2/logout` when the tenant has no OIDC logout enabled.
    pub async fn logout_url(
        &self,
        up: &Upstream,
        return_to: &str,
    ) -> Result<String, UpstreamError> {
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            up.endpoint.issuer.trim_end_matches('/')
        );
        let doc: serde_json::Value = self
            .http
            .get(&discovery)
            .timeout(up.timeout)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| UpstreamError::Unavailable(format!("{}: discovery failed: {e}", up.id)))?
            .json()
            .await
            .map_err(|e| {
                UpstreamError::Invalid(format!("{}: discovery is not JSON: {e}", up.id))
            })?;
        let mut url = match doc.get("end_session_endpoint").and_then(Value::as_str) {
            Some(endpoint) => {
                let mut url = url::Url::parse(endpoint).map_err(|e| {
                    UpstreamError::Invalid(format!("{}: end_session_endpoint: {e}", up.id))
                })?;
                url.query_pairs_mut()
                    .append_pair("client_id", &up.client_id)
                    .append_pair("post_logout_redirect_uri", return_to);
                url
            }
            None if up.kind == crate::config::UpstreamKind::Auth0 => {
                let mut url = url::Url::parse(&format!("{}v2/logout", up.endpoint.issuer))
                    .map_err(|e| UpstreamError::Misconfigured(e.to_string()))?;
                url.query_pairs_mut()
                    .append_pair("client_id", &up.client_id)
                    .append_pair("returnTo", return_to);
                url
            }
            None => {
                return Err(UpstreamError::Misconfigured(format!(
                    "{}: logout = true, but the provider has no end_session_endpoint",
                    up.id
                )));
            }
        };
        url.set_fragment(None);
        Ok(url.to_string())
    }

    /// Completes a login: exchanges the code, verifies the ID token (signature, `iss`, `aud`,
    /// `exp`, `nonce`), and gathers userinfo and access-token claims as configured.
    pub async fn finish(
        &self,
        up: &Upstream,
        redirect_uri: &str,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
        wants_access_token_claims: bool,
    ) -> Result<Finished, UpstreamError> {
        let d = self.discover(up, false).await?;
        let client = self.client(up, &d, redirect_uri)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| UpstreamError::Misconfigured(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&Guarded::new(&self.http, up))
            .await
            .map_err(|e| UpstreamError::from_token(&up.id, e))?;
        let id_token = token
            .extra_fields()
            .id_token()
            .ok_or_else(|| UpstreamError::Invalid("the token response has no id_token".into()))?;
        let nonce = Nonce::new(nonce.to_string());
        let d = self
            .checked_id_token(up, redirect_uri, d, id_token, &nonce)
            .await?;
        let id_claims = jwt_payload(&id_token.to_string()).ok_or_else(|| {
            UpstreamError::Invalid("ID token payload is not a JSON object".into())
        })?;
        let refresh_token = token
            .refresh_token()
            .map(|r| Secret::new(r.secret().clone()));
        self.with_claims(
            up,
            &d,
            Some(id_claims),
            token.access_token().secret(),
            wants_access_token_claims,
            refresh_token,
        )
        .await
    }

    /// The rest of a token response: userinfo when `up` asks for it (or when there is no ID
    /// token, as a refresh may answer), its `sub` checked against the ID token's, and the
    /// access token's claims when wanted.
    pub(super) async fn with_claims(
        &self,
        up: &Upstream,
        d: &Discovered,
        id_claims: Option<Map<String, Value>>,
        access_token: &str,
        wants_access_token_claims: bool,
        refresh_token: Option<Secret>,
    ) -> Result<Finished, UpstreamError> {
        let subject = match &id_claims {
            Some(claims) => Some(
                claims
                    .get("sub")
                    .and_then(Value::as_str)
                    .ok_or_else(|| UpstreamError::Invalid("ID token has no sub".into()))?
                    .to_string(),
            ),
            None => None,
        };
        let userinfo = if up.userinfo || id_claims.is_none() {
            let endpoint = d
                .metadata
                .userinfo_endpoint()
                .ok_or_else(|| {
                    UpstreamError::Misconfigured(
                        "userinfo = true (or a refresh without an ID token), but the \
                         provider's discovery has no userinfo_endpoint"
                            .into(),
                    )
                })?
                .url()
                .clone();
            let info = self.userinfo(up, endpoint.as_str(), access_token).await?;
            // OIDC Core §5.3.2: the userinfo sub must equal the ID token's.
            let info_sub = info.get("sub").and_then(Value::as_str);
            if info_sub.is_none() || subject.as_deref().is_some_and(|s| Some(s) != info_sub) {
                return Err(UpstreamError::Invalid(
                    "userinfo sub differs from the ID token's sub".into(),
                ));
            }
            Some(info)
        } else {
            None
        };
        let id_token = match id_claims {
            Some(claims) => claims,
            // Only the subject, from userinfo: the mappings read the rest from there.
            None => userinfo
                .as_ref()
                .and_then(|i| i.get("sub"))
                .map(|sub| Map::from_iter([("sub".to_string(), sub.clone())]))
                .unwrap_or_default(),
        };
        let access_token = if wants_access_token_claims {
            self.access_token_claims(up, d, access_token)
        } else {
            AccessTokenClaims::Absent
        };
        Ok(Finished {
            claims: UpstreamClaims {
                id_token,
                userinfo,
                access_token,
            },
            refresh_token,
        })
    }

    /// Checks an ID token from `up` (see [`verifier`]) with `nonce`; returns the discovery it
    /// was checked with: when the token names a key the cached JWKS lacks, the upstream may
    /// have rotated its keys, so discovery is refetched once and the token checked again (the
    /// access token is signed with the new key too).
    pub(super) async fn checked_id_token<N: openidconnect::NonceVerifier + Copy>(
        &self,
        up: &Upstream,
        redirect_uri: &str,
        d: Arc<Discovered>,
        id_token: &openidconnect::core::CoreIdToken,
        nonce: N,
    ) -> Result<Arc<Discovered>, UpstreamError> {
        let verified = {
            let client = self.client(up, &d, redirect_uri)?;
            let verifier = verifier(&client);
            id_token.claims(&verifier, nonce).map(|_| ())
        };
        match verified {
            Ok(()) => Ok(d),
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                let fresh = self.discover(up, true).await?;
                let client = self.client(up, &fresh, redirect_uri)?;
                let verifier = verifier(&client);
                id_token
                    .claims(&verifier, nonce)
                    .map_err(|e| UpstreamError::Invalid(format!("ID token rejected: {e}")))?;
                Ok(fresh)
            }
            Err(e) => Err(UpstreamError::Invalid(format!("ID token rejected: {e}"))),
        }
    }
}

impl Default for UpstreamClients {
    fn default() -> Self {
        Self::new()
    }
}
