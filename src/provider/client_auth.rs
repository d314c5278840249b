//! Client authentication at the token endpoint (RFC 6749 §2.3.1): client_secret_basic,
//! client_secret_post, and `none` for public clients (which must use PKCE).
//!
//! Client secrets written in the configuration are argon2 hashes, deliberately slow. So the
//! endpoint does not pay that per request, a successful verification is remembered as a
//! SHA-256 digest of the presented secret, keyed by the client and its stored hash; later
//! requests compare digests in constant time. A wrong secret never matches the cache and always
//! pays the full argon2 price.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

use super::error::OAuthError;
use crate::config::{Client, ClientAuth, Settings};
use crate::tokens::hashing::digest;

#[derive(Debug, Default)]
pub struct SecretCache {
    verified: RwLock<HashMap<String, (String, [u8; 32])>>,
}

impl SecretCache {
    fn hit(&self, client_id: &str, stored: &str, presented: &[u8; 32]) -> bool {
        self.verified
            .read()
            .ok()
            .and_then(|m| {
                m.get(client_id)
                    .map(|(s, d)| s == stored && bool::from(d.ct_eq(presented)))
            })
            .unwrap_or(false)
    }

    fn remember(&self, client_id: &str, stored: String, presented: [u8; 32]) {
        if let Ok(mut m) = self.verified.write() {
            m.insert(client_id.to_string(), (stored, presented));
        }
    }
}

/// Credentials as presented, before checking.
struct Presented {
    client_id: String,
    secret: Option<String>,
    via_basic: bool,
}

/// Reads the client's credentials from the Authorization header and the form body, refusing
/// ambiguous combinations (RFC 6749 §2.3: one method per request).
fn presented(headers: &HeaderMap, form: &HashMap<String, String>) -> Result<Presented, OAuthError> {
    let body_id = form.get("client_id").cloned();
    let body_secret = form.get("client_secret").cloned();
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
            via_basic: true,
        });
    }
    let client_id = body_id.ok_or_else(|| {
        OAuthError::invalid_client("client authentication is required (Basic or client_id)")
    })?;
    Ok(Presented {
        client_id,
        secret: body_secret,
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

/// Authenticates the client making a token-endpoint request.
pub async fn authenticate(
    settings: &Settings,
    cache: &Arc<SecretCache>,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Arc<Client>, OAuthError> {
    let p = presented(headers, form)?;
    let fail = |msg: &str| {
        let mut e = OAuthError::invalid_client(msg.to_string());
        if !p.via_basic {
            e.challenge = None;
        }
        e
    };
    let Some(client) = settings.client(&p.client_id).cloned() else {
        return Err(fail("unknown client or wrong credentials"));
    };
    match (&client.auth, p.secret) {
        (ClientAuth::None, None) => Ok(client),
        (ClientAuth::None, Some(_)) => Err(fail(
            "this client is public and has no secret; authenticate with client_id only",
        )),
        (ClientAuth::Secret(_), None) => Err(fail("this client must authenticate with its secret")),
        (ClientAuth::Secret(hash), Some(secret)) => {
            let stored = hash.to_stored();
            let presented = digest(&secret);
            if cache.hit(&client.client_id, &stored, &presented) {
                return Ok(client);
            }
            let hash = hash.clone();
            // Argon2 is CPU-bound for tens of milliseconds: keep it off the async workers.
            let ok = tokio::task::spawn_blocking(move || hash.verify(&secret))
                .await
                .unwrap_or(false);
            if ok {
                cache.remember(&client.client_id, stored, presented);
                Ok(client)
            } else {
                Err(fail("unknown client or wrong credentials"))
            }
        }
    }
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
