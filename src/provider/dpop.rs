//! DPoP (RFC 9449) at Herald's endpoints: reading the `DPoP` header, checking the proof with
//! [`crate::tokens::dpop`], recording its `jti` once in the store (so no replica accepts it
//! again), and answering refusals the way each side of the RFC does: the token endpoint with a
//! 400 `invalid_dpop_proof` or `use_dpop_nonce` (§5.2, §8), a protected resource (userinfo)
//! with a 401 and a `DPoP` challenge (§7.1). With `require_dpop_nonce` on, every answer to a
//! DPoP request carries a fresh `DPoP-Nonce`.

use axum::http::{HeaderMap, HeaderValue, StatusCode};

use crate::oauth::error::NONCE_HEADER;

use crate::oauth::error::{OAuthError, sanitize};
use crate::state::AppState;
use crate::tokens::dpop::{self, ALGORITHMS, DpopError, Expect, Proof};
use crate::tokens::hashing::digest_hex;

/// Which side of RFC 9449 is checking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum At {
    /// The token endpoint (§5).
    Token,
    /// A protected resource: userinfo (§7).
    Resource,
}

/// The request's DPoP proof, checked and recorded; `None` when it has no `DPoP` header.
/// `path` is the endpoint's path under the issuer; `access_token` the token the proof must
/// carry the hash of (at a resource).
pub async fn proof(
    state: &AppState,
    headers: &HeaderMap,
    at: At,
    htm: &str,
    path: &str,
    access_token: Option<&str>,
) -> Result<Option<Proof>, OAuthError> {
    let mut values = headers.get_all("dpop").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(refusal(
            state,
            at,
            DpopError::Invalid("send one DPoP header".into()),
        ));
    }
    let value = value.to_str().map_err(|_| {
        refusal(
            state,
            at,
            DpopError::Invalid("the DPoP header is not text".into()),
        )
    })?;
    let settings = state.settings();
    let keys = state.keys();
    let now = state.now();
    let htu = format!("{}{path}", settings.issuer);
    let expect = Expect {
        htm,
        htu: &htu,
        access_token,
        now,
        nonces: settings.require_dpop_nonce.then(|| keys.dpop_nonces()),
    };
    let checked = dpop::check(value, &expect).map_err(|e| refusal(state, at, e))?;
    // Kept until the proof's iat leaves the window, after which the proof is refused anyway;
    // as a digest, since the client chose the jti (PostgreSQL's TEXT refuses NUL).
    let until = checked.iat + dpop::MAX_AGE_SECS + 1;
    if !state
        .store
        .use_dpop_proof(&checked.jkt, &digest_hex(&checked.jti), until)
        .await?
    {
        return Err(refusal(
            state,
            at,
            DpopError::Invalid("the DPoP proof was used before (its jti is spent)".into()),
        ));
    }
    Ok(Some(checked))
}

/// A nonce for the `DPoP-Nonce` header of an answer, when nonces are required.
pub fn fresh_nonce(state: &AppState) -> Option<String> {
    if !state.settings().require_dpop_nonce {
        return None;
    }
    state.keys().dpop_nonces().current(state.now())
}

/// Adds a fresh `DPoP-Nonce` to an answer, when nonces are required and it has none yet.
pub fn offer_nonce(state: &AppState, res: &mut axum::response::Response) {
    if let Some(n) = fresh_nonce(state).and_then(|n| HeaderValue::from_str(&n).ok()) {
        res.headers_mut().entry(NONCE_HEADER).or_insert(n);
    }
}

/// How `at` answers a refused proof.
pub fn refusal(state: &AppState, at: At, e: DpopError) -> OAuthError {
    let (code, why) = match e {
        DpopError::Invalid(why) => ("invalid_dpop_proof", why),
        DpopError::UseNonce(why) => ("use_dpop_nonce", why),
    };
    let mut err = OAuthError::bad_request(code, why);
    // With use_dpop_nonce this is the nonce to retry with (nonces are then required).
    err.dpop_nonce = fresh_nonce(state);
    if at == At::Resource {
        err.status = StatusCode::UNAUTHORIZED;
        err.challenge = Some(challenge(Some((code, &err.description))));
    }
    err
}

/// The `WWW-Authenticate: DPoP` challenge of a resource (RFC 9449 §7.1), with an error or
/// without (no credentials at all).
pub fn challenge(error: Option<(&str, &str)>) -> String {
    let algs = ALGORITHMS.join(" ");
    match error {
        None => format!("DPoP algs=\"{algs}\""),
        Some((code, why)) => format!(
            "DPoP error=\"{code}\", error_description=\"{}\", algs=\"{algs}\"",
            sanitize(why).replace('"', "'")
        ),
    }
}

/// A DPoP-bound token presented without its proof, or a bound token's proof by another key: an
/// `invalid_token` challenge in the DPoP scheme (RFC 9449 §7.1).
pub fn invalid_token(why: &str) -> OAuthError {
    let mut err = OAuthError::invalid_token(why);
    err.challenge = Some(challenge(Some(("invalid_token", why))));
    err
}
