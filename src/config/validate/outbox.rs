//! `[[webhooks]]`, `[[hooks]]` and `[outbox]`: where events go and how they are delivered.

use std::collections::HashSet;
use std::time::Duration;

use url::Url;

use super::Validator;
use crate::config::file::{HookFile, OutboxFile, WebhookFile};
use crate::config::settings::{EVENT_TYPES, Hook, OutboxSettings, Webhook, is_loopback_host};
use crate::egress;
use crate::secret::Secret;

/// A webhook secret shorter than this is refused: HMAC keys should have 256 bits.
const MIN_SECRET_LEN: usize = 32;

impl Validator {
    pub(super) fn outbox(
        &mut self,
        webhooks: &[WebhookFile],
        hooks: &[HookFile],
        file: &OutboxFile,
        issuer: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> OutboxSettings {
        let d = OutboxSettings::default();
        let mut urls = HashSet::new();
        let mut out = OutboxSettings {
            webhooks: Vec::new(),
            hooks: Vec::new(),
            poll_interval: self
                .duration(
                    "outbox.poll_interval",
                    file.poll_interval.as_deref(),
                    d.poll_interval,
                )
                .unwrap_or(d.poll_interval),
            first_retry: self
                .duration(
                    "outbox.first_retry",
                    file.first_retry.as_deref(),
                    d.first_retry,
                )
                .unwrap_or(d.first_retry),
            give_up_after: self
                .duration(
                    "outbox.give_up_after",
                    file.give_up_after.as_deref(),
                    d.give_up_after,
                )
                .unwrap_or(d.give_up_after),
        };
        if out.give_up_after > Duration::from_secs(30 * 24 * 3600) {
            self.problem("outbox.give_up_after: at most 30 days");
        }
        for (i, w) in webhooks.iter().enumerate() {
            let key = format!("webhooks[{i}]");
            let url = self.destination_url(&format!("{key}.url"), &w.url, issuer);
            if url.is_some() && !urls.insert(w.url.clone()) {
                self.problem(format!("{key}.url: `{}` is listed twice", w.url));
            }
            let secret = self.one_secret(
                &key,
                ("secret", &w.secret),
                ("secret_env", &w.secret_env),
                env,
            );
            if secret
                .as_ref()
                .is_some_and(|s| s.expose().len() < MIN_SECRET_LEN)
            {
                self.problem(format!(
                    "{key}: the signing secret has fewer than {MIN_SECRET_LEN} characters; use a \
                     random secret of 32 bytes or more (e.g. `openssl rand -hex 32`)"
                ));
            }
            let events = match &w.events {
                None => EVENT_TYPES.iter().map(|e| e.to_string()).collect(),
                Some(events) => {
                    for e in events.iter().filter(|e| !EVENT_TYPES.contains(&e.as_str())) {
                        self.problem(format!(
                            "{key}.events: `{e}` is not an event Herald emits; choose from {}",
                            EVENT_TYPES.join(", ")
                        ));
                    }
                    events.clone()
                }
            };
            if let (Some(url), Some(secret)) = (url, secret) {
                out.webhooks.push(Webhook {
                    url,
                    secret,
                    events,
                });
            }
        }
        for (i, h) in hooks.iter().enumerate() {
            let key = format!("hooks[{i}]");
            if h.kind != "onetrust" {
                self.problem(format!(
                    "{key}.kind: `{}` is not a hook Herald knows; the one kind is \"onetrust\" \
                     (a OneTrust collection point)",
                    h.kind
                ));
                continue;
            }
            let url = self.destination_url(&format!("{key}.url"), &h.url, issuer);
            if url.is_some() && !urls.insert(h.url.clone()) {
                self.problem(format!("{key}.url: `{}` is listed twice", h.url));
            }
            let token = self.one_secret(
                &key,
                ("api_token", &h.api_token),
                ("api_token_env", &h.api_token_env),
                env,
            );
            if h.purpose_id.trim().is_empty() {
                self.problem(format!(
                    "{key}.purpose_id: the collection point's purpose id is required"
                ));
            }
            if let (Some(url), Some(api_token)) = (url, token) {
                out.hooks.push(Hook::OneTrust {
                    url,
                    api_token,
                    purpose_id: h.purpose_id.clone(),
                    skip_if_no_email: h.skip_if_no_email.unwrap_or(true),
                });
            }
        }
        out
    }

    /// `[telemetry]`: the collector's URL is http(s) and not a link-local or metadata address.
    pub(super) fn telemetry(&mut self, file: &crate::config::file::TelemetryFile) {
        if let Some(raw) = &file.otlp_endpoint {
            match Url::parse(raw) {
                Ok(url) => {
                    if let Some(why) = egress::check_url(&url) {
                        self.problem(format!("telemetry.otlp_endpoint: {why}"));
                    }
                }
                Err(_) => self.problem(format!(
                    "telemetry.otlp_endpoint: `{raw}` is not a URL; write it like \
                     \"http://otel-collector:4318\""
                )),
            }
        }
    }

    /// An https URL Herald may call; plain http only on loopback beside a loopback http://
    /// Herald (development), never a link-local or metadata address.
    pub(super) fn destination_url(
        &mut self,
        key: &str,
        raw: &str,
        issuer: Option<&str>,
    ) -> Option<String> {
        let Ok(url) = Url::parse(raw) else {
            self.problem(format!("{key}: `{raw}` is not a URL"));
            return None;
        };
        if let Some(why) = egress::check_url(&url) {
            self.problem(format!("{key}: {why}"));
            return None;
        }
        let herald_local = issuer
            .and_then(|i| Url::parse(i).ok())
            .is_none_or(|i| i.scheme() == "http");
        let local = url.scheme() == "http" && url.host_str().is_some_and(is_loopback_host);
        if url.scheme() == "https" || (local && herald_local) {
            Some(raw.to_string())
        } else {
            self.problem(format!(
                "{key}: `{raw}` must be an https:// URL (http:// only on loopback, beside a \
                 loopback http:// Herald)"
            ));
            None
        }
    }

    /// A secret given inline or by an environment variable: exactly one of the two keys.
    fn one_secret(
        &mut self,
        key: &str,
        (inline_key, inline): (&str, &Option<String>),
        (env_key, by_env): (&str, &Option<String>),
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Secret> {
        match (inline, by_env) {
            (Some(v), None) if !v.is_empty() => Some(Secret::new(v.clone())),
            (None, Some(var)) => match env(var).filter(|v| !v.is_empty()) {
                Some(v) => Some(Secret::new(v)),
                None => {
                    self.problem(format!(
                        "{key}.{env_key}: the environment variable {var} is not set"
                    ));
                    None
                }
            },
            (Some(_), Some(_)) => {
                self.problem(format!("{key}: set {inline_key} or {env_key}, not both"));
                None
            }
            _ => {
                self.problem(format!(
                    "{key}.{env_key}: required (the environment variable holding it)"
                ));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Hook;

    fn parse(extra: &str) -> Result<crate::config::Settings, String> {
        let text = format!(
            "issuer = \"{}\"\nlisten = \"127.0.0.1:8080\"\ndatabase_url = \"sqlite::memory:\"\n\
             {extra}\n[[upstreams]]\nid = \"dev\"\nkind = \"dev\"\n",
            if extra.contains("HTTPS_HERALD") {
                "https://login.example.com"
            } else {
                "http://127.0.0.1:8080"
            }
        )
        .replace("# HTTPS_HERALD", "");
        crate::config::from_toml(&text)
            .map(|(s, _)| s)
            .map_err(|e| e.to_string())
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn webhooks_and_hooks_are_read_with_their_secrets_and_events() {
        let s = parse(&format!(
            "[[webhooks]]\nurl = \"http://127.0.0.1:9/h\"\nsecret = \"{SECRET}\"\n\
             events = [\"consent.granted\"]\n\
             [[webhooks]]\nurl = \"https://events.example/h\"\nsecret = \"{SECRET}\"\n\
             [[hooks]]\nkind = \"onetrust\"\nurl = \"https://privacyportal.onetrust.com/request/v1/consentreceipts\"\n\
             api_token = \"t\"\npurpose_id = \"p\"\n\
             [outbox]\nfirst_retry = \"2s\"\n"
        ))
        .unwrap();
        assert_eq!(s.outbox.webhooks[0].events, ["consent.granted"]);
        assert_eq!(
            s.outbox.webhooks[1].events.len(),
            6,
            "every event by default"
        );
        let Hook::OneTrust {
            skip_if_no_email, ..
        } = &s.outbox.hooks[0];
        assert!(skip_if_no_email, "skipped by default");
        assert_eq!(s.outbox.first_retry, std::time::Duration::from_secs(2));
        assert_eq!(s.outbox.poll_interval, std::time::Duration::from_secs(1));
    }

    #[test]
    fn each_mistake_is_named_with_its_key() {
        let cases = [
            (format!("[[webhooks]]\nurl = \"ftp://x/h\"\nsecret = \"{SECRET}\"\n"), "webhooks[0].url: `ftp://x/h` is not an http(s) URL"),
            (format!("[[webhooks]]\nurl = \"http://169.254.169.254/h\"\nsecret = \"{SECRET}\"\n"), "link-local or cloud-metadata"),
            (format!("# HTTPS_HERALD\n[[webhooks]]\nurl = \"http://127.0.0.1:9/h\"\nsecret = \"{SECRET}\"\n"), "must be an https:// URL"),
            ("[[webhooks]]\nurl = \"https://e.example/h\"\nsecret = \"short\"\n".to_string(), "fewer than 32 characters"),
            ("[[webhooks]]\nurl = \"https://e.example/h\"\nsecret_env = \"HERALD_NO_SUCH_VARIABLE\"\n".to_string(), "webhooks[0].secret_env: the environment variable HERALD_NO_SUCH_VARIABLE is not set"),
            (format!("[[webhooks]]\nurl = \"https://e.example/h\"\nsecret = \"{SECRET}\"\nsecret_env = \"X\"\n"), "set secret or secret_env, not both"),
            ("[[webhooks]]\nurl = \"https://e.example/h\"\n".to_string(), "webhooks[0].secret_env: required"),
            (format!("[[webhooks]]\nurl = \"https://e.example/h\"\nsecret = \"{SECRET}\"\nevents = [\"consent.maybe\"]\n"), "`consent.maybe` is not an event Herald emits"),
            (format!("[[webhooks]]\nurl = \"https://e.example/h\"\nsecret = \"{SECRET}\"\n[[webhooks]]\nurl = \"https://e.example/h\"\nsecret = \"{SECRET}\"\n"), "webhooks[1].url: `https://e.example/h` is listed twice"),
            ("[[hooks]]\nkind = \"zapier\"\nurl = \"https://e.example/h\"\napi_token = \"t\"\npurpose_id = \"p\"\n".to_string(), "hooks[0].kind: `zapier` is not a hook Herald knows"),
            ("[[hooks]]\nkind = \"onetrust\"\nurl = \"https://e.example/h\"\napi_token = \"t\"\npurpose_id = \" \"\n".to_string(), "hooks[0].purpose_id: the collection point's purpose id is required"),
            ("[outbox]\ngive_up_after = \"90d\"\n".to_string(), "outbox.give_up_after: at most 30 days"),
        ];
        for (extra, expected) in cases {
            let err = parse(&extra).unwrap_err();
            assert!(err.contains(expected), "{expected} not in: {err}");
        }
    }
}
