//! Resource indicators (RFC 8707): which registered API (`[[resources]]`) an access token is
//! for. `/authorize` takes the `resource` values an app may get tokens for; `/token` may narrow
//! them (§2.2), and the access token's `aud` is those APIs, its scopes only theirs, its
//! lifetime and algorithm theirs. A value that names no registered API is `invalid_target`.

use serde_json::{Value, json};

use crate::config::{Resource, Settings};
use crate::oauth::error::OAuthError;
use crate::tokens::Alg;

/// RFC 8707 §2's error code.
pub const INVALID_TARGET: &str = "invalid_target";

/// The registered APIs `raw` names (space-separated, as [`crate::oauth::Params`] keeps a
/// repeated `resource`); `Err` with a description for the first unknown one.
pub fn named<'s>(settings: &'s Settings, raw: Option<&str>) -> Result<Vec<&'s Resource>, String> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(' ')
        .filter(|r| !r.is_empty())
        .map(|uri| {
            settings.resource(uri).ok_or_else(|| {
                format!("resource {uri} is not an API this server issues access tokens for")
            })
        })
        .collect()
}

/// The registered APIs a grant (a code, a refresh-token family) allows, as stored; one that has
/// been removed since is `invalid_target`.
pub fn granted<'s>(
    settings: &'s Settings,
    stored: Option<&str>,
) -> Result<Vec<&'s Resource>, OAuthError> {
    named(settings, stored).map_err(|why| {
        OAuthError::bad_request(
            INVALID_TARGET,
            format!("{why} any more; the app must ask again"),
        )
    })
}

/// What an access token is for, when it is for registered APIs.
#[derive(Debug)]
pub struct Target {
    /// One API's URI, or an array of several.
    pub audience: Value,
    /// The granted scopes that belong to these APIs.
    pub scopes: Vec<String>,
    /// The shortest of their lifetimes, if any has one.
    pub ttl_secs: Option<i64>,
    /// The one API's algorithm, if it has one.
    pub alg: Option<Alg>,
}

/// The access token's target: for the APIs `asked` at the token endpoint, which must be among
/// `allowed` (RFC 8707 §2.2: a token request may narrow, never widen), or for all of `allowed`
/// when none is asked; `None` when neither names any (a token for Herald's own userinfo).
/// `scopes` are the scopes granted; the token carries those of its APIs only.
pub fn target(
    settings: &Settings,
    allowed: &[&Resource],
    asked: Option<&str>,
    scopes: &[String],
) -> Result<Option<Target>, OAuthError> {
    let invalid_target = |why: String| OAuthError::bad_request(INVALID_TARGET, why);
    let asked = named(settings, asked).map_err(invalid_target)?;
    if let Some(r) = asked
        .iter()
        .find(|r| !allowed.iter().any(|a| a.uri == r.uri))
    {
        return Err(invalid_target(format!(
            "resource {} was not part of this grant",
            r.uri
        )));
    }
    let apis: &[&Resource] = if asked.is_empty() { allowed } else { &asked };
    if apis.is_empty() {
        return Ok(None);
    }
    let scopes: Vec<String> = scopes
        .iter()
        .filter(|s| apis.iter().any(|r| r.scopes.contains(s)))
        .cloned()
        .collect();
    if scopes.is_empty() {
        return Err(OAuthError::invalid_scope(format!(
            "none of the granted scopes belongs to {}",
            apis.iter()
                .map(|r| r.uri.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let audience = match apis {
        [one] => json!(one.uri),
        many => json!(many.iter().map(|r| &r.uri).collect::<Vec<_>>()),
    };
    Ok(Some(Target {
        audience,
        scopes,
        ttl_secs: apis
            .iter()
            .filter_map(|r| r.access_token_ttl)
            .map(|d| d.as_secs() as i64)
            .min(),
        alg: match apis {
            [one] => one.alg,
            _ => None,
        },
    }))
}

/// [`target`] for a grant not tied to an authorization request (client_credentials, token
/// exchange): any registered API may be `asked` for; none asked, a token for Herald.
pub fn any_registered(
    settings: &Settings,
    asked: Option<&str>,
    scopes: &[String],
) -> Result<Option<Target>, OAuthError> {
    let apis: Vec<&Resource> = match asked {
        Some(_) => settings.resources.iter().collect(),
        None => Vec::new(),
    };
    target(settings, &apis, asked, scopes)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn api(uri: &str, scopes: &[&str], ttl: Option<u64>) -> Resource {
        Resource {
            uri: uri.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            access_token_ttl: ttl.map(Duration::from_secs),
            alg: Some(Alg::ES256),
        }
    }

    fn settings(resources: Vec<Resource>) -> Settings {
        let mut s = crate::config::from_toml(
            r#"
issuer = "http://127.0.0.1:8080"
listen = "127.0.0.1:8080"
database_url = "sqlite://x.db"
[[upstreams]]
id = "dev"
kind = "dev"
"#,
        )
        .unwrap()
        .0;
        s.resources = resources;
        s
    }

    fn scopes(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_token_request_narrows_to_one_api_and_its_scopes() {
        let s = settings(vec![
            api("https://orders", &["orders"], Some(300)),
            api("https://billing", &["billing"], Some(600)),
        ]);
        let allowed: Vec<&Resource> = s.resources.iter().collect();
        let granted = scopes(&["openid", "orders", "billing"]);

        let t = target(&s, &allowed, Some("https://billing"), &granted)
            .unwrap()
            .unwrap();
        assert_eq!(t.audience, json!("https://billing"));
        assert_eq!(t.scopes, ["billing"]);
        assert_eq!(t.ttl_secs, Some(600));
        assert_eq!(t.alg, Some(Alg::ES256));

        // None asked: all of them, the shortest lifetime, the client's algorithm.
        let t = target(&s, &allowed, None, &granted).unwrap().unwrap();
        assert_eq!(t.audience, json!(["https://orders", "https://billing"]));
        assert_eq!(t.scopes, ["orders", "billing"]);
        assert_eq!(t.ttl_secs, Some(300));
        assert_eq!(t.alg, None);
    }

    #[test]
    fn unknown_ungranted_and_scopeless_targets_are_refused() {
        let s = settings(vec![
            api("https://orders", &["orders"], None),
            api("https://billing", &["billing"], None),
        ]);
        let orders: Vec<&Resource> = s.resources.iter().take(1).collect();
        let granted = scopes(&["openid", "orders"]);
        let e = target(&s, &orders, Some("https://unknown"), &granted).unwrap_err();
        assert_eq!(e.code, INVALID_TARGET);
        let e = target(&s, &orders, Some("https://billing"), &granted).unwrap_err();
        assert_eq!(e.code, INVALID_TARGET);
        assert!(e.description.contains("not part of this grant"));
        let e = target(&s, &orders, None, &scopes(&["openid"])).unwrap_err();
        assert_eq!(e.code, "invalid_scope");
        // No resource anywhere: a token for Herald itself.
        assert!(target(&s, &[], None, &granted).unwrap().is_none());
    }
}
