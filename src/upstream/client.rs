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
use crate::telemetry::metrics;
use tracing::Instrument;

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
const MAX_USERINFO_BYTES: usize = 256 * 1024;

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
    ) -> Result<LoginStart, UpstreamError> {
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
        for (k, v) in &up.extra_authorize_params {
            if !(fresh && k == "prompt") {
                req = req.add_extra_param(k.clone(), v.clone());
            }
        }
        if fresh {
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
    ) -> Result<UpstreamClaims, UpstreamError> {
        let mut d = self.discover(up, false).await?;
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

        let verified = {
            let verifier = verifier(&client);
            id_token.claims(&verifier, &nonce).map(|_| ())
        };
        match verified {
            Ok(()) => {}
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // Maybe the upstream rotated its keys: refetch once, then check again.
                let fresh = self.discover(up, true).await?;
                let client = self.client(up, &fresh, redirect_uri)?;
                let verifier = verifier(&client);
                id_token
                    .claims(&verifier, &nonce)
                    .map_err(|e| UpstreamError::Invalid(format!("ID token rejected: {e}")))?;
                // The access token is signed with the new key too: check it with the fresh JWKS.
                d = fresh;
            }
            Err(e) => return Err(UpstreamError::Invalid(format!("ID token rejected: {e}"))),
        }
        let id_claims = jwt_payload(&id_token.to_string()).ok_or_else(|| {
            UpstreamError::Invalid("ID token payload is not a JSON object".into())
        })?;
        let subject = id_claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| UpstreamError::Invalid("ID token has no sub".into()))?
            .to_string();

        let access_token = token.access_token().secret();
        let userinfo = if up.userinfo {
            let endpoint = d
                .metadata
                .userinfo_endpoint()
                .ok_or_else(|| {
                    UpstreamError::Misconfigured(
                        "userinfo = true, but the provider's discovery has no userinfo_endpoint"
                            .into(),
                    )
                })?
                .url()
                .clone();
            let info = self.userinfo(up, endpoint.as_str(), access_token).await?;
            // OIDC Core §5.3.2: the userinfo sub must equal the ID token's.
            if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err(UpstreamError::Invalid(
                    "userinfo sub differs from the ID token's sub".into(),
                ));
            }
            Some(info)
        } else {
            None
        };
        let access_token = if wants_access_token_claims {
            self.access_token_claims(up, &d, access_token)
        } else {
            AccessTokenClaims::Absent
        };
        Ok(UpstreamClaims {
            id_token: id_claims,
            userinfo,
            access_token,
        })
    }

    async fn userinfo(
        &self,
        up: &Upstream,
        endpoint: &str,
        access_token: &str,
    ) -> Result<Map<String, Value>, UpstreamError> {
        let start = Instant::now();
        let span =
            tracing::info_span!("upstream.request", upstream = %up.id, endpoint = "userinfo");
        let (answer, error) = self
            .fetch_userinfo(up, endpoint, access_token)
            .instrument(span)
            .await;
        metrics::upstream_request(&up.id, "userinfo", start.elapsed(), error);
        answer
    }

    /// The userinfo answer, and how the request failed for the metrics (`None`: it was answered).
    async fn fetch_userinfo(
        &self,
        up: &Upstream,
        endpoint: &str,
        access_token: &str,
    ) -> (
        Result<Map<String, Value>, UpstreamError>,
        Option<&'static str>,
    ) {
        let upstream_id = &up.id;
        let failed = |e: reqwest::Error| {
            let kind = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "transport"
            };
            let error = UpstreamError::Unavailable(format!("{upstream_id} userinfo: {e}"));
            (Err(error), Some(kind))
        };
        let resp = match self
            .http
            .get(endpoint)
            .timeout(up.timeout)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        let status = resp.status();
        if status.is_server_error() || status.is_redirection() {
            let error = format!("{upstream_id} userinfo answered {status}");
            return (Err(UpstreamError::Unavailable(error)), Some("status"));
        }
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return failed(e),
        };
        (check_userinfo(upstream_id, status, &body), None)
    }
}

/// A userinfo answer that arrived: a success status and a JSON object of bounded size.
fn check_userinfo(
    upstream_id: &str,
    status: reqwest::StatusCode,
    body: &[u8],
) -> Result<Map<String, Value>, UpstreamError> {
    if !status.is_success() {
        return Err(UpstreamError::Invalid(format!(
            "{upstream_id} userinfo answered {status}"
        )));
    }
    if body.len() > MAX_USERINFO_BYTES {
        return Err(UpstreamError::Invalid(format!(
            "{upstream_id} userinfo response is larger than {MAX_USERINFO_BYTES} bytes"
        )));
    }
    claims_object(body).ok_or_else(|| {
        UpstreamError::Invalid(format!(
            "{upstream_id} userinfo is not a JSON object with unique member names"
        ))
    })
}

impl UpstreamClients {
    /// Claims of a JWT access token, verified against the upstream's JWKS; an opaque token, or
    /// one that fails verification, yields none.
    fn access_token_claims(&self, up: &Upstream, d: &Discovered, token: &str) -> AccessTokenClaims {
        if token.split('.').count() != 3 {
            return AccessTokenClaims::Opaque;
        }
        let Ok(jwks) = serde_json::to_value(d.metadata.jwks())
            .and_then(serde_json::from_value::<jsonwebtoken::jwk::JwkSet>)
        else {
            return AccessTokenClaims::Opaque;
        };
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return AccessTokenClaims::Opaque;
        };
        let key = match header.kid.as_deref() {
            Some(kid) => jwks.find(kid),
            None if jwks.keys.len() == 1 => jwks.keys.first(),
            None => None,
        };
        let Some(jwk) = key else {
            return AccessTokenClaims::Opaque;
        };
        let Ok(decoding) = jsonwebtoken::DecodingKey::from_jwk(jwk) else {
            return AccessTokenClaims::Opaque;
        };
        // The algorithm comes from the key, never from the token header (RFC 8725 §3.1).
        let Some(alg) = jwk
            .common
            .key_algorithm
            .and_then(|a| a.to_string().parse::<jsonwebtoken::Algorithm>().ok())
            .or(match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => {
                    Some(jsonwebtoken::Algorithm::RS256)
                }
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => {
                    Some(jsonwebtoken::Algorithm::ES256)
                }
                jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => {
                    Some(jsonwebtoken::Algorithm::EdDSA)
                }
                _ => None,
            })
        else {
            return AccessTokenClaims::Opaque;
        };
        let mut v = jsonwebtoken::Validation::new(alg);
        v.set_issuer(&[up.endpoint.issuer.as_str()]);
        match up.extra_authorize_params.get("audience") {
            Some(aud) => v.set_audience(&[aud]),
            None => v.validate_aud = false,
        }
        match jsonwebtoken::decode::<Map<String, Value>>(token, &decoding, &v) {
            Ok(data) => AccessTokenClaims::Jwt(data.claims),
            Err(e) => {
                tracing::warn!(upstream = %up.id, error = %e, "upstream access token not verified; its claims are ignored");
                AccessTokenClaims::Opaque
            }
        }
    }
}

impl Default for UpstreamClients {
    fn default() -> Self {
        Self::new()
    }
}
