//! Client authentication at the token endpoint (RFC 6749 §2.3.1): client_secret_basic,
//! client_secret_post, and `none` for public clients (which must use PKCE).
//!
//! Client secrets written in the configuration are argon2 hashes, deliberately slow. So the
//! endpoint does not pay that per request, a successful verification is remembered as a
//! SHA-256 digest of the presented secret, keyed by the client and its stored hash; later
//! requests compare digests in constant time. A wrong secret never matches the cache and always
//! pays the full argon2 price.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::config::{Client, ClientAuth, Settings};
use crate::oauth::error::OAuthError;
use crate::state::AppState;
use crate::telemetry::events;
use crate::tokens::SecretHash;
use crate::tokens::hashing::{digest, digest_hex};
use crate::tokens::secret_cache::Refused;

/// Credentials as presented, before checking.
pub struct Presented {
    client_id: String,
    secret: Option<String>,
    /// A private_key_jwt assertion (RFC 7523 §2.2).
    assertion: Option<String>,
    via_basic: bool,
}

/// RFC 7523 §2.2.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Assertions may not live longer than this (RFC 7523 §3: exp "limits the time window").
const MAX_ASSERTION_LIFETIME: i64 = 600;

/// Reads the client's credentials from the Authorization header and the form body, refusing
/// ambiguous combinations (RFC 6749 §2.3: one method per request).
pub fn presented(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Presented, OAuthError> {
    let body_id = form.get("client_id").cloned();
    let body_secret = form.get("client_secret").cloned();
    if let Some(kind) = form.get("client_assertion_type") {
        if kind != JWT_BEARER {
            return Err(OAuthError::invalid_request(format!(
                "client_assertion_type must be {JWT_BEARER}"
            )));
        }
        if headers.contains_key(axum::http::header::AUTHORIZATION) || body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method: a client assertion or a secret",
            ));
        }
        let assertion = form
            .get("client_assertion")
            .cloned()
            .ok_or_else(|| OAuthError::invalid_request("client_assertion is required"))?;
        // The client is the assertion's issuer; a client_id sent along must agree.
        let iss = unverified_claim(&assertion, "iss")
            .ok_or_else(|| OAuthError::invalid_client("the client assertion names no issuer"))?;
        if body_id.as_deref().is_some_and(|b| b != iss) {
            return Err(OAuthError::invalid_request(
                "client_id differs from the client assertion's issuer",
            ));
        }
        return Ok(Presented {
            client_id: iss,
            secret: None,
            assertion: Some(assertion),
            via_basic: false,
        });
    }
    let auth = headers.get(axum::http::header::AUTHORIZATION);
    if let Some(auth) = auth {
        let value = auth
            .to_str()
            .map_err(|_| OAuthError::invalid_request("malformed Authorization header"))?;
        let Some(b64) = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))
        else {
            return Err(OAuthError::invalid_request(
                "the token endpoint accepts only Basic authentication in the Authorization header",
            ));
        };
        let decoded = STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| OAuthError::invalid_request("malformed Basic credentials"))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| OAuthError::invalid_request("malformed Basic credentials"))?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
        let id = form_decode(id)?;
        let secret = form_decode(secret)?;
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method: Basic or client_secret in the body",
            ));
        }
        if body_id.as_deref().is_some_and(|b| b != id) {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the Basic credentials",
            ));
        }
        return Ok(Presented {
            client_id: id,
            secret: Some(secret),
            assertion: None,
            via_basic: true,
        });
    }
    let client_id = body_id.ok_or_else(|| {
        OAuthError::invalid_client("client authentication is required (Basic or client_id)")
    })?;
    Ok(Presented {
        client_id,
        secret: body_secret,
        assertion: None,
        via_basic: false,
    })
}

fn form_decode(s: &str) -> Result<String, OAuthError> {
    let plus_fixed = s.replace('+', " ");
    percent_decode(&plus_fixed)
        .ok_or_else(|| OAuthError::invalid_request("malformed Basic credentials"))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A string claim of a JWT, read before verification (to find whose key verifies it).
fn unverified_claim(jwt: &str, name: &str) -> Option<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    if jwt.len() > 16 * 1024 {
        return None;
    }
    let payload = jwt.split('.').nth(1)?;
    let v: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    v.get(name)?.as_str().map(str::to_string)
}

/// Checks a private_key_jwt assertion (RFC 7523 §3): signed by a key of the client's JWKS with
/// that key's algorithm, `iss` = `sub` = client_id, `aud` the token endpoint or the issuer,
/// short-lived, and its `jti` never seen before (stored until it expires).
async fn verify_assertion(
    state: &AppState,
    settings: &Settings,
    client_id: &str,
    jwks: &jsonwebtoken::jwk::JwkSet,
    assertion: &str,
) -> Result<(), String> {
    let token_endpoint = format!("{}/token", settings.issuer);
    let now = state.now();
    let claims = crate::tokens::jwt::verify_client_signed(
        "assertion",
        jwks,
        client_id,
        &[token_endpoint.as_str(), settings.issuer.as_str()],
        assertion,
        now,
        MAX_ASSERTION_LIFETIME,
    )?;
    // A post-login application's context (its `continue` claim) is never a client assertion
    // (RFC 8725 §3.12); its audience already differs.
    if claims.contains_key("continue") {
        return Err("assertion rejected: a post-login context is not a client assertion".into());
    }
    // RFC 7523 §3: the client is the subject too.
    if claims.get("sub").and_then(serde_json::Value::as_str) != Some(client_id) {
        return Err("assertion rejected: sub must be the client_id".into());
    }
    let Some(jti) = claims.get("jti").and_then(serde_json::Value::as_str) else {
        return Err("assertion rejected: it has no jti".into());
    };
    let exp = claims
        .get("exp")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(now);
    // Kept as a digest: a jti is any string the client chose (PostgreSQL's TEXT refuses NUL).
    match state
        .store
        .use_client_assertion(client_id, &digest_hex(jti), exp + 60, now)
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err("the assertion was already used (jti replay)".into()),
        Err(e) => Err(format!("cannot record the assertion: {e}")),
    }
}

/// Authenticates the client making a token-endpoint request.
pub async fn authenticate(
    state: &AppState,
    settings: &Settings,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Arc<Client>, OAuthError> {
    let cache = &state.secret_cache;
    let p = presented(headers, form)?;
    let fail = |msg: &str| {
        events::client_auth_failed(Some(&p.client_id), msg);
        let mut e = OAuthError::invalid_client(msg.to_string());
        if !p.via_basic {
            e.challenge = None;
        }
        e
    };
    let Some(client) = settings.client(&p.client_id).cloned() else {
        return Err(fail("unknown client or wrong credentials"));
    };
    if let Some(assertion) = &p.assertion {
        let ClientAuth::PrivateKeyJwt(jwks) = &client.auth else {
            return Err(fail(
                "this client does not authenticate with private_key_jwt",
            ));
        };
        return match verify_assertion(state, settings, &client.client_id, jwks, assertion).await {
            Ok(()) => Ok(client),
            Err(why) => {
                tracing::info!(client = %client.client_id, %why, "client assertion refused");
                Err(fail(&why))
            }
        };
    }
    match (&client.auth, p.secret) {
        (ClientAuth::PrivateKeyJwt(_), _) => Err(fail(
            "this client authenticates with private_key_jwt (client_assertion)",
        )),
        (ClientAuth::None, None) => Ok(client),
        (ClientAuth::None, Some(_)) => Err(fail(
            "this client is public and has no secret; authenticate with client_id only",
        )),
        (ClientAuth::Secret(_), None) => Err(fail("this client must authenticate with its secret")),
        (ClientAuth::Secret(hash), Some(secret)) => {
            // The current secret, and during a rotation's grace period the one it replaced.
            let now = state.now();
            let previous = client
                .previous_secret
                .as_ref()
                .filter(|p| p.is_live(now))
                .map(|p| &p.hash);
            let stored: Vec<String> = std::iter::once(hash)
                .chain(previous)
                .map(SecretHash::to_stored)
                .collect();
            let presented = digest(&secret);
            let cached = || {
                stored
                    .iter()
                    .any(|s| cache.hit(&client.client_id, s, &presented))
            };
            if cached() {
                return Ok(client);
            }
            let permit = cache
                .admit(&client.client_id)
                .await
                .map_err(|refused| match refused {
                    Refused::Busy => {
                        OAuthError::busy("too many client secrets are being checked; retry")
                    }
                    Refused::BackOff(wait) => OAuthError::slow_down(
                        "too many wrong secrets for this client; wait before retrying",
                        wait.as_secs_f64().ceil() as u64,
                    ),
                })?;
            if cached() {
                return Ok(client);
            }
            // Only a slow check needs its own copies of the hashes (it runs on another thread).
            let candidates: Vec<SecretHash> =
                std::iter::once(hash).chain(previous).cloned().collect();
            // Argon2 is CPU-bound for tens of milliseconds: keep it off the async workers.
            let matched = tokio::task::spawn_blocking(move || {
                let matched = candidates.iter().position(|h| h.verify(&secret));
                drop(permit);
                matched
            })
            .await
            .unwrap_or(None);
            match matched {
                Some(i) => {
                    cache.remember(&client.client_id, stored[i].clone(), presented);
                    Ok(accepted(client, i))
                }
                None => {
                    cache.failed(&client.client_id, Instant::now());
                    Err(fail("unknown client or wrong credentials"))
                }
            }
        }
    }
}

/// A client whose secret was just verified: candidate 0 is its current secret, 1 the one a
/// rotation replaced, which is noted (once per replica and secret, not per request: later ones
/// hit the cache) so an admin can see who still uses it before it stops.
fn accepted(client: Arc<Client>, candidate: usize) -> Arc<Client> {
    if candidate > 0 {
        tracing::info!(
            client = %client.client_id,
            expires_at = client.previous_secret.as_ref().map_or(0, |p| p.expires_at),
            "client authenticated with its previous secret, which stops working at expires_at"
        );
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(form_decode("a%3Ab+c").unwrap(), "a:b c");
        assert!(form_decode("%zz").is_err());
    }

    #[test]
    fn basic_and_body_secret_together_are_ambiguous() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::AUTHORIZATION,
            format!("Basic {}", STANDARD.encode("app:secret"))
                .parse()
                .unwrap(),
        );
        let mut form = HashMap::new();
        form.insert("client_secret".to_string(), "secret".to_string());
        let err = presented(&h, &form).err().unwrap();
        assert_eq!(err.code, "invalid_request");
        form.clear();
        form.insert("client_id".to_string(), "other".to_string());
        assert_eq!(presented(&h, &form).err().unwrap().code, "invalid_request");
    }
}
