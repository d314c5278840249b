//! Checking an upstream for real (`herald check-upstream ID`, `POST
//! /admin/api/upstreams/{id}/test`): its discovery document, its JWKS, and Herald's client
//! credentials there, each step reported. The credentials are tried with a token request for a
//! made-up code: an upstream that accepts the client answers `invalid_grant` (the code), one that
//! does not answers `invalid_client`. Nothing is stored, no user is involved.

use openidconnect::core::CoreErrorResponseType;
use openidconnect::{AuthorizationCode, PkceCodeVerifier, RequestTokenError};
use serde::Serialize;

use super::client::UpstreamClients;
use super::error::UpstreamError;
use super::http::Guarded;
use crate::config::Upstream;
use crate::tokens::random_token;

/// One step of a check and what came of it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckStep {
    /// `discovery`, `jwks` or `credentials`.
    pub step: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// Whether a check passed: every one of its three steps ran and passed.
pub fn check_passed(steps: &[CheckStep]) -> bool {
    steps.len() == 3 && steps.iter().all(|s| s.ok)
}

fn step(step: &'static str, ok: bool, detail: impl Into<String>) -> CheckStep {
    CheckStep {
        step,
        ok,
        detail: detail.into(),
    }
}

impl UpstreamClients {
    /// Runs the steps in order; a step that fails ends the check (later steps need it).
    pub async fn check(&self, up: &Upstream, redirect_uri: &str) -> Vec<CheckStep> {
        let mut steps = Vec::new();
        // For real: not the cached document.
        self.forget(&up.id);
        let d = match self.discover(up, false).await {
            Ok(d) => d,
            Err(e @ UpstreamError::KeysUnavailable(_)) => {
                steps.push(step("discovery", true, "the discovery document answered"));
                steps.push(step("jwks", false, e.to_string()));
                return steps;
            }
            Err(e) => {
                steps.push(step("discovery", false, e.to_string()));
                return steps;
            }
        };
        let m = &d.metadata;
        steps.push(step(
            "discovery",
            true,
            format!(
                "{} answered; token endpoint {}",
                m.issuer().as_str(),
                m.token_endpoint().map_or("(none)", |u| u.as_str())
            ),
        ));
        let keys = m.jwks().keys().len();
        if keys == 0 {
            steps.push(step(
                "jwks",
                false,
                format!("{} lists no keys", m.jwks_uri().as_str()),
            ));
            return steps;
        }
        steps.push(step(
            "jwks",
            true,
            format!("{keys} key(s) at {}", m.jwks_uri().as_str()),
        ));
        steps.push(self.check_credentials(up, &d, redirect_uri).await);
        steps
    }

    async fn check_credentials(
        &self,
        up: &Upstream,
        d: &super::client::Discovered,
        redirect_uri: &str,
    ) -> CheckStep {
        let client = match self.client(up, d, redirect_uri) {
            Ok(c) => c,
            Err(e) => return step("credentials", false, e.to_string()),
        };
        let request = match client.exchange_code(AuthorizationCode::new(random_token())) {
            Ok(r) => r,
            Err(e) => return step("credentials", false, e.to_string()),
        };
        let answer = request
            .set_pkce_verifier(PkceCodeVerifier::new(random_token()))
            .request_async(&Guarded::new(&self.http, up))
            .await;
        match answer {
            Err(RequestTokenError::ServerResponse(r)) => match r.error() {
                CoreErrorResponseType::InvalidGrant => step(
                    "credentials",
                    true,
                    "the token endpoint accepted Herald's client credentials (it refused only \
                     the made-up code: invalid_grant)",
                ),
                CoreErrorResponseType::InvalidClient
                | CoreErrorResponseType::UnauthorizedClient => step(
                    "credentials",
                    false,
                    format!(
                        "the token endpoint refused Herald's client credentials ({}): check \
                             client_id and the secret",
                        r.error().as_ref()
                    ),
                ),
                other => step(
                    "credentials",
                    false,
                    format!("the token endpoint answered {}", other.as_ref()),
                ),
            },
            Ok(_) => step(
                "credentials",
                false,
                "the token endpoint issued tokens for a made-up code: it is not checking codes",
            ),
            Err(e) => step(
                "credentials",
                false,
                UpstreamError::from_token(&up.id, e).to_string(),
            ),
        }
    }
}
