//! Auth0's Management API as a source of profiles (`herald import --from-upstream`).
//!
//! Herald's application at the tenant gets a token for the API with client_credentials
//! (audience `{base}/api/v2/`; the application must be authorised for it with `read:users`),
//! then reads `GET /api/v2/users` page by page (`page`, `per_page`, `include_totals`). Auth0
//! serves at most 1,000 users this way; a larger tenant is exported with a job and imported
//! from the file. Calls go out through the guarded client: timeouts, no redirects, no
//! link-local or metadata addresses.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{Upstream, UpstreamKind};
use crate::egress::{self, Timeouts};

/// Users per page (Auth0's maximum).
pub const PER_PAGE: u32 = 100;

/// A Management API client for one Auth0 upstream.
pub struct ManagementApi {
    http: reqwest::Client,
    base: String,
    client_id: String,
    client_secret: String,
}

/// One page of users.
#[derive(Debug, Deserialize)]
pub struct UsersPage {
    pub users: Vec<Map<String, Value>>,
    /// All users, when the API says.
    pub total: Option<u64>,
}

impl ManagementApi {
    /// The client for `up`, an Auth0 upstream with a client secret.
    pub fn for_upstream(up: &Upstream) -> Result<Self, String> {
        if up.kind != UpstreamKind::Auth0 {
            return Err(format!(
                "upstream `{}` is not kind = \"auth0\": only Auth0 has the Management API; \
                 import its users from a file instead",
                up.id
            ));
        }
        let client_secret = up
            .client_secret
            .as_ref()
            .ok_or_else(|| {
                format!(
                    "upstream `{}` has no client secret: the Management API needs Herald's \
                     application to authenticate (client_credentials)",
                    up.id
                )
            })?
            .expose()
            .to_string();
        let base = up
            .management_api_url
            .clone()
            .unwrap_or_else(|| up.endpoint.issuer.trim_end_matches('/').to_string());
        Ok(Self {
            http: egress::client(Timeouts {
                connect: Duration::from_secs(5),
                total: up.timeout,
            }),
            base,
            client_id: up.client_id.clone(),
            client_secret,
        })
    }

    fn url(&self, path: &str) -> Result<url::Url, String> {
        let url = url::Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| format!("{}{path}: {e}", self.base))?;
        match egress::check_url(&url) {
            Some(why) => Err(why),
            None => Ok(url),
        }
    }

    /// An access token for the Management API.
    pub async fn token(&self) -> Result<String, String> {
        let audience = format!("{}/api/v2/", self.base);
        let res = self
            .http
            .post(self.url("/oauth/token")?)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.as_str()),
                ("audience", audience.as_str()),
            ])
            .send()
            .await
            .map_err(|e| format!("the token request failed: {e}"))?;
        let status = res.status();
        let body: Value = res
            .json()
            .await
            .map_err(|e| format!("the token answer ({status}) is not JSON: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "the tenant refused Herald's application a Management API token ({status}: {}); \
                 authorise it for the Management API with read:users",
                body["error_description"]
                    .as_str()
                    .or(body["error"].as_str())
                    .unwrap_or("no reason given")
            ));
        }
        body["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| "the token answer has no access_token".to_string())
    }

    /// Page `page` (from 0) of the tenant's users.
    pub async fn users(&self, token: &str, page: u32) -> Result<UsersPage, String> {
        let mut url = self.url("/api/v2/users")?;
        url.query_pairs_mut()
            .append_pair("page", &page.to_string())
            .append_pair("per_page", &PER_PAGE.to_string())
            .append_pair("include_totals", "true");
        self.get(url, token, "GET /api/v2/users").await
    }

    /// One user of the tenant, by their `user_id`.
    pub async fn user(&self, token: &str, user_id: &str) -> Result<Map<String, Value>, String> {
        let mut url = self.url("/api/v2/users/")?;
        url.path_segments_mut()
            .map_err(|_| "the Management API URL cannot take a path".to_string())?
            .pop_if_empty()
            .push(user_id);
        self.get(url, token, "GET /api/v2/users/{id}").await
    }

    /// A JSON answer to GET `url` with the API token; `what` names the call in errors.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        url: url::Url,
        token: &str,
        what: &str,
    ) -> Result<T, String> {
        let res = self
            .http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| format!("{what} failed: {e}"))?;
        let status = res.status();
        if !status.is_success() {
            return Err(format!("{what} answered {status}"));
        }
        res.json()
            .await
            .map_err(|e| format!("{what}: not the answer expected: {e}"))
    }
}
