//! One `[[clients]]` entry, checked: its id, redirect URIs, scopes, grants, refresh-token
//! lifetimes, how it authenticates and how its tokens are signed.

use std::sync::Arc;
use std::time::Duration;

use super::Validator;
use crate::claims::ScopeCatalog;
use crate::config::file::ClientFile;
use crate::config::policy::AccessPolicy;
use crate::config::settings::{
    Client, ClientAuth, ClientLinks, GrantType, MAX_REFRESH_GRACE, PreviousSecret,
};
use crate::config::{ACCOUNT_CLIENT_ID, ACCOUNT_LINK_SCOPE, ADMIN_SCOPE, EDIT_SCOPE, READ_SCOPE};
use crate::tokens::{Alg, SecretHash};

impl Validator {
    pub(super) fn client(
        &mut self,
        i: usize,
        c: ClientFile,
        scopes: Option<&ScopeCatalog>,
        issuer: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Client> {
        let key = format!("clients[{i}]");
        let before = self.problems.len();
        if c.client_id.is_empty() || c.client_id.chars().any(|ch| ch.is_control() || ch == ' ') {
            self.problem(format!(
                "{key}.client_id: must be non-empty, without spaces or control characters"
            ));
        }
        if c.client_id == ACCOUNT_CLIENT_ID {
            self.problem(format!(
                "{key}.client_id: `{}` is reserved for Herald's own consent center; choose \
                 another",
                c.client_id
            ));
        }
        let grant_types = self.grant_types(&key, c.grant_types.as_deref());
        // A machine-to-machine client (client_credentials only) never sees /authorize.
        let logs_users_in = grant_types
            .as_ref()
            .is_none_or(|g| g.contains(&GrantType::AuthorizationCode));
        if c.redirect_uris.is_empty() && logs_users_in {
            self.problem(format!(
                "{key}.redirect_uris: at least one redirect URI is needed"
            ));
        }
        for (j, uri) in c.redirect_uris.iter().enumerate() {
            if let Err(why) = check_redirect_uri(uri) {
                self.problem(format!("{key}.redirect_uris[{j}]: `{uri}` {why}"));
            }
        }
        if let Some(catalog) = scopes {
            for s in &c.scopes {
                if [ADMIN_SCOPE, EDIT_SCOPE, READ_SCOPE, ACCOUNT_LINK_SCOPE].contains(&s.as_str()) {
                    // Built in, and never a user's: only a client acting for itself gets it.
                    if logs_users_in {
                        self.problem(format!(
                            "{key}.scopes: `{s}` lets a client act on Herald's users and is only \
                             for clients with grant_types = [\"client_credentials\"]"
                        ));
                    }
                } else if catalog.get(s).is_none() {
                    self.problem(format!(
                        "{key}.scopes: `{s}` is not a known scope; define it under [scopes.{s}] \
                         or remove it"
                    ));
                }
            }
        }
        if logs_users_in && !c.scopes.iter().any(|s| s == "openid") {
            self.problem(format!(
                "{key}.scopes: must contain \"openid\" so the client can log users in"
            ));
        }
        let idle = self.duration(
            &format!("{key}.refresh_token_idle_ttl"),
            c.refresh_token_idle_ttl.as_deref(),
            Duration::from_secs(14 * 86_400),
        );
        let absolute = self.duration(
            &format!("{key}.refresh_token_absolute_ttl"),
            c.refresh_token_absolute_ttl.as_deref(),
            Duration::from_secs(90 * 86_400),
        );
        if let (Some(i), Some(a)) = (idle, absolute)
            && i > a
        {
            self.problem(format!(
                "{key}.refresh_token_idle_ttl: longer than refresh_token_absolute_ttl; make it \
                 shorter (for example \"14d\" idle within \"90d\" absolute)"
            ));
        }
        let grace = match c.refresh_token_grace_period.as_deref() {
            None => Some(Duration::ZERO),
            Some(raw) => match humantime::parse_duration(raw) {
                Ok(d) if d <= MAX_REFRESH_GRACE => Some(d),
                Ok(_) => {
                    self.problem(format!(
                        "{key}.refresh_token_grace_period: `{raw}` is longer than the 5 minutes \
                         allowed; a reused refresh token is a leak unless it comes back at once"
                    ));
                    None
                }
                Err(_) => {
                    self.problem(format!(
                        "{key}.refresh_token_grace_period: `{raw}` is not a duration; write it \
                         like \"0s\", \"3s\" or \"1m\""
                    ));
                    None
                }
            },
        };
        let refreshes = grant_types
            .as_ref()
            .is_some_and(|g| g.contains(&GrantType::RefreshToken));
        if !refreshes
            && (c.refresh_token_idle_ttl.is_some()
                || c.refresh_token_absolute_ttl.is_some()
                || c.refresh_token_grace_period.is_some())
        {
            self.problem(format!(
                "{key}.refresh_token_idle_ttl/refresh_token_absolute_ttl/\
                 refresh_token_grace_period: this client gets no refresh tokens; add \
                 \"refresh_token\" to grant_types or remove these keys"
            ));
        }
        if refreshes && !c.scopes.iter().any(|s| s == "offline_access") {
            self.warnings.push(format!(
                "{key}: grant_types has \"refresh_token\" but scopes lacks \"offline_access\"; \
                 refresh tokens are issued only when offline_access is granted"
            ));
        }
        let stored_hash = match c.client_secret_hash.as_deref() {
            None => None,
            Some(_) if c.client_secret.is_some() || c.client_secret_env.is_some() => {
                self.problem(format!(
                    "{key}.client_secret_hash: set one of client_secret, client_secret_env or \
                     client_secret_hash"
                ));
                None
            }
            Some(h) => match SecretHash::from_stored(h) {
                Some(h) => Some(h),
                None => {
                    self.problem(format!(
                        "{key}.client_secret_hash: not a stored secret hash; write an argon2 PHC \
                         string (\"$argon2id$...\") or \"sha256:\" and a base64url digest"
                    ));
                    None
                }
            },
        };
        let secret = self.secret(
            &format!("{key}.client_secret"),
            c.client_secret,
            c.client_secret_env,
            env,
        );
        if secret.as_ref().is_some_and(|s| s.expose().len() < 8) {
            self.problem(format!(
                "{key}.client_secret: too short; use at least 8 characters (32 random bytes is \
                 better)"
            ));
        }
        if secret.is_none()
            && c.jwks.is_none()
            && stored_hash.is_none()
            && c.client_secret_hash.is_none()
            && grant_types
                .as_ref()
                .is_some_and(|g| g.contains(&GrantType::ClientCredentials))
        {
            self.problem(format!(
                "{key}.grant_types: \"client_credentials\" needs a confidential client (RFC 6749 \
                 §4.4); set client_secret_env or jwks (private_key_jwt), or remove the grant"
            ));
        }
        if self.problems.len() != before {
            return None;
        }
        if stored_hash.is_some() && c.jwks.is_some() {
            self.problem(format!(
                "{key}.jwks: a client authenticates with a secret or with private_key_jwt (jwks), \
                 not both; remove client_secret_hash or jwks"
            ));
            return None;
        }
        let auth = match (secret, c.jwks) {
            (Some(_), Some(_)) => {
                self.problem(format!(
                    "{key}.jwks: a client authenticates with a secret or with private_key_jwt \
                     (jwks), not both; remove one"
                ));
                return None;
            }
            (None, Some(jwks)) if let Err(why) = public_keys_only(&jwks) => {
                self.problem(format!("{key}.jwks: {why}"));
                return None;
            }
            (None, Some(jwks)) => match serde_json::from_value::<jsonwebtoken::jwk::JwkSet>(jwks) {
                Ok(set) if !set.keys.is_empty() => ClientAuth::PrivateKeyJwt(Arc::new(set)),
                Ok(_) => {
                    self.problem(format!("{key}.jwks: has no keys"));
                    return None;
                }
                Err(e) => {
                    self.problem(format!(
                        "{key}.jwks: not a JWK Set ({e}); write jwks = {{ keys = [ {{ kty = \"EC\", ... }} ] }}"
                    ));
                    return None;
                }
            },
            (secret, None) => match secret {
                None if stored_hash.is_some() => ClientAuth::Secret(stored_hash?),
                None => ClientAuth::None,
                Some(s) => match SecretHash::argon2(s.expose()) {
                    Ok(h) => ClientAuth::Secret(h),
                    Err(e) => {
                        self.problem(format!("{key}.client_secret: cannot be hashed: {e}"));
                        return None;
                    }
                },
            },
        };
        let previous_secret = match (
            c.previous_secret_hash.as_deref(),
            c.previous_secret_expires_at,
        ) {
            (None, None) => None,
            (Some(h), Some(expires_at)) if matches!(auth, ClientAuth::Secret(_)) => {
                match SecretHash::from_stored(h) {
                    Some(hash) => Some(PreviousSecret { hash, expires_at }),
                    None => {
                        self.problem(format!(
                            "{key}.previous_secret_hash: not a stored secret hash; remove it and \
                             previous_secret_expires_at (Herald writes both when it rotates a \
                             secret)"
                        ));
                        return None;
                    }
                }
            }
            (Some(_), Some(_)) => {
                self.problem(format!(
                    "{key}.previous_secret_hash: only a client that authenticates with a secret \
                     has a previous one; remove previous_secret_hash and \
                     previous_secret_expires_at"
                ));
                return None;
            }
            _ => {
                self.problem(format!(
                    "{key}.previous_secret_hash/previous_secret_expires_at: give both or neither \
                     (Herald writes both when it rotates a secret)"
                ));
                return None;
            }
        };
        let links = ClientLinks {
            logo_uri: self.https_link(&key, "logo_uri", c.logo_uri),
            client_uri: self.https_link(&key, "client_uri", c.client_uri),
            policy_uri: self.https_link(&key, "policy_uri", c.policy_uri),
            tos_uri: self.https_link(&key, "tos_uri", c.tos_uri),
        };
        let signing_alg = match c.id_token_signed_response_alg.as_deref() {
            None => Some(Alg::RS256),
            Some(raw) => match Alg::parse(raw) {
                Some(alg) => Some(alg),
                None => {
                    self.problem(format!(
                        "{key}.id_token_signed_response_alg: `{raw}` is not supported; use \
                         \"RS256\", \"ES256\" or \"EdDSA\""
                    ));
                    None
                }
            },
        };
        if let Some(uri) = &c.backchannel_logout_uri {
            // Herald POSTs there from the server (Back-Channel Logout 1.0 §2.2): held to the
            // webhooks' rules (https, no link-local or metadata address; loopback http only
            // beside a loopback Herald). No fragment.
            if uri.contains('#') {
                self.problem(format!(
                    "{key}.backchannel_logout_uri: `{uri}` must not contain a fragment"
                ));
            }
            self.destination_url(&format!("{key}.backchannel_logout_uri"), uri, issuer);
        }
        for (j, uri) in c.post_logout_redirect_uris.iter().enumerate() {
            if let Err(why) = check_redirect_uri(uri) {
                self.problem(format!(
                    "{key}.post_logout_redirect_uris[{j}]: `{uri}` {why}"
                ));
            }
        }
        let access_policy = match c.access_policy.as_deref().map(AccessPolicy::compile) {
            None => None,
            Some(Ok(policy)) => Some(policy),
            Some(Err(why)) => {
                self.problem(format!(
                    "{key}.access_policy: not a CEL condition: {why}; write one over `context` \
                     and `upstream`, like \"'herald-admins' in context.groups\""
                ));
                None
            }
        };
        Some(Client {
            client_name: c.client_name.unwrap_or_else(|| c.client_id.clone()),
            client_id: c.client_id,
            auth,
            redirect_uris: c.redirect_uris,
            scopes: c.scopes,
            trusted: c.trusted,
            access_policy,
            require_pushed_authorization_requests: c.require_pushed_authorization_requests,
            dpop_bound_access_tokens: c.dpop_bound_access_tokens,
            grant_types: grant_types?,
            refresh_token_idle_ttl: idle?,
            refresh_token_grace_period: grace?,
            refresh_token_absolute_ttl: absolute?,
            signing_alg: signing_alg?,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            backchannel_logout_uri: c.backchannel_logout_uri,
            backchannel_logout_session_required: c.backchannel_logout_session_required,
            registered_at: c.registered_at.unwrap_or(0),
            previous_secret,
            links,
        })
    }

    /// A page people are sent to or an image the consent page shows: an absolute https URL
    /// without credentials in it (RFC 7591 §2 asks for URLs of web pages and images). A problem
    /// leaves it out.
    fn https_link(&mut self, key: &str, name: &str, raw: Option<String>) -> Option<String> {
        let raw = raw?;
        match url::Url::parse(&raw) {
            Ok(u)
                if u.scheme() == "https"
                    && plain_host(&u)
                    && u.username().is_empty()
                    && u.password().is_none() =>
            {
                Some(raw)
            }
            _ => {
                self.problem(format!(
                    "{key}.{name}: `{raw}` is not an https URL; people open it from the consent \
                     page, so write it like \"https://app.example.com/...\""
                ));
                None
            }
        }
    }

    fn grant_types(&mut self, key: &str, raw: Option<&[String]>) -> Option<Vec<GrantType>> {
        let Some(raw) = raw else {
            return Some(vec![GrantType::AuthorizationCode]);
        };
        if raw.is_empty() {
            self.problem(format!(
                "{key}.grant_types: empty; remove the key for [\"authorization_code\"] or list \
                 the grants the client uses"
            ));
            return None;
        }
        let mut out = Vec::new();
        for g in raw {
            match GrantType::parse(g) {
                Some(g) if !out.contains(&g) => out.push(g),
                Some(_) => {}
                None => {
                    self.problem(format!(
                        "{key}.grant_types: `{g}` is not supported; use \"authorization_code\", \
                         \"refresh_token\" or \"client_credentials\""
                    ));
                    return None;
                }
            }
        }
        if out.contains(&GrantType::RefreshToken) && !out.contains(&GrantType::AuthorizationCode) {
            self.problem(format!(
                "{key}.grant_types: \"refresh_token\" without \"authorization_code\" issues \
                 nothing; refresh tokens come from logins, so add \"authorization_code\""
            ));
            return None;
        }
        Some(out)
    }
}
/// A host a content security policy can name as it is: an IP address, or a DNS name of
/// letters, digits, hyphens and dots (no `*` or other character a policy would read as more).
fn plain_host(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => {
            !d.is_empty()
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        }
        Some(_) => true,
        None => false,
    }
}

/// Members that hold private or symmetric key material (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A client's JWKS holds public keys only, of the kinds Herald verifies: RSA, EC P-256 and
/// OKP Ed25519 (hole 8 of the hardening issue: a private key given here would be stored in
/// every configuration version and the audit log). The message never repeats a key's values.
fn public_keys_only(jwks: &serde_json::Value) -> Result<(), String> {
    let Some(keys) = jwks.get("keys").and_then(|k| k.as_array()) else {
        return Ok(()); // the JWK Set parser says what is wrong with the shape
    };
    for (i, jwk) in keys.iter().enumerate() {
        let Some(jwk) = jwk.as_object() else {
            continue;
        };
        if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
            return Err(format!(
                "keys[{i}] holds private key material (`{m}`); give the client's public key \
                 only, and replace this key: it has been shown to someone"
            ));
        }
        let kty = jwk.get("kty").and_then(|v| v.as_str()).unwrap_or("");
        let crv = jwk.get("crv").and_then(|v| v.as_str()).unwrap_or("");
        match (kty, crv) {
            ("RSA", _) | ("EC", "P-256") | ("OKP", "Ed25519") => {}
            _ => {
                return Err(format!(
                    "keys[{i}]: kty `{kty}`{} is not accepted; use an RSA, EC P-256 or OKP \
                     Ed25519 public key",
                    if crv.is_empty() {
                        String::new()
                    } else {
                        format!(" with crv `{crv}`")
                    }
                ));
            }
        }
    }
    Ok(())
}

/// Registration rules for redirect URIs (RFC 9700 §2.1, §4.1; RFC 8252 §7): absolute, no
/// fragment, no wildcard, `http:` only for loopback hosts.
pub fn check_redirect_uri(uri: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(uri).map_err(|_| "is not an absolute URL")?;
    if url.fragment().is_some() || uri.contains('#') {
        return Err("must not contain a fragment (RFC 6749 §3.1.2)");
    }
    if uri.contains('*') {
        return Err("must not contain a wildcard; register each URI exactly");
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if url.host_str().is_some_and(crate::config::is_loopback_host) => Ok(()),
        "http" => Err("uses http:// on a host that is not loopback; use https://"),
        // Private-use schemes of native apps use reverse domain names (RFC 8252 §7.1).
        s if s.contains('.') => Ok(()),
        _ => Err("must be https://, loopback http://, or a reverse-domain private-use scheme"),
    }
}
