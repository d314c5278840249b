//! Delivering the outbox: each replica ticks every `[outbox] poll_interval`; the one that holds
//! the `outbox` lease in the store sends the due rows, one at a time, and records each outcome.
//! A 2xx answer is delivered; anything else is retried after `first_retry`, doubling up to an
//! hour, until `give_up_after` has passed since the event (then `failed`, which an admin may
//! retry). Delivery is at least once: a replica that dies after the receiver answered and
//! before the outcome was stored sends that event again, with the same id.
//!
//! Webhooks are signed: `Herald-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
//! "<t>.<raw body>")>`, so a receiver checks the body and refuses old replays by `t`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{backchannel, onetrust_destination, webhook_destination};
use crate::clock::Clock;
use crate::config::{Hook, OutboxSettings, Settings};
use crate::egress;
use crate::store::{Delivery, DynStore};
use crate::telemetry::metrics;
use crate::tokens::keys::KeyRing;
use crate::tokens::random_token;

/// The store lease only one replica holds while it delivers.
const LEASE: &str = "outbox";
/// How long a lease lasts unless renewed: longer than one tick's deliveries may take (a replica
/// that dies holding it delays delivery by at most this; one that stops gives it up).
const LEASE_SECS: i64 = 30;
/// Rows fetched per tick; the lease is renewed before each is sent.
const BATCH: i64 = 50;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// The header a webhook's signature travels in.
pub const SIGNATURE_HEADER: &str = "herald-signature";

/// One replica's deliverer.
pub struct Deliverer {
    store: DynStore,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    /// This replica's name in the lease.
    holder: String,
}

impl Deliverer {
    pub fn new(store: DynStore, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            // Connect and total timeouts, no redirects, no link-local or metadata address.
            http: egress::client(egress::Timeouts {
                connect: Duration::from_secs(3),
                total: Duration::from_secs(10),
            }),
            holder: random_token(),
        }
    }

    /// Delivers what is due if this replica holds (or takes) the lease; returns how many rows
    /// it attempted.
    pub async fn tick(&self, settings: &Settings, keys: &KeyRing) -> crate::store::Result<usize> {
        if !self.hold_lease().await? {
            return Ok(0);
        }
        let due = self.store.due_deliveries(self.clock.now(), BATCH).await?;
        let mut attempted = 0;
        for d in &due {
            // Each attempt takes at most 10 s, well within a lease renewed just before it.
            if attempted > 0 && !self.hold_lease().await? {
                break;
            }
            self.attempt(settings, keys, d).await?;
            attempted += 1;
        }
        Ok(attempted)
    }

    /// Takes or renews the lease; false while another replica holds it.
    async fn hold_lease(&self) -> crate::store::Result<bool> {
        let now = self.clock.now();
        self.store
            .take_lease(LEASE, &self.holder, now, now + LEASE_SECS)
            .await
    }

    /// Gives the lease up, so another replica takes over at once (this one is stopping).
    pub async fn stop(&self) {
        if let Err(e) = self.store.release_lease(LEASE, &self.holder).await {
            tracing::warn!(error = %e, "could not give up the outbox lease; it expires by itself");
        }
    }

    async fn attempt(
        &self,
        settings: &Settings,
        keys: &KeyRing,
        d: &Delivery,
    ) -> crate::store::Result<()> {
        let attempts = d.attempts + 1;
        let outcome = if backchannel::client_of(&d.destination).is_some() {
            self.send_logout_token(settings, keys, d).await
        } else {
            self.send(&settings.outbox, d).await
        };
        let settings = &settings.outbox;
        let now = self.clock.now();
        match outcome {
            Ok(()) => {
                metrics::outbox_attempt("delivered");
                tracing::info!(event_id = %d.event_id, event = %d.event_type, destination = %d.destination, attempts, "event delivered");
                self.store.delivery_done(&d.id, attempts, now).await
            }
            Err(Failure::Gone(why)) => {
                metrics::outbox_attempt("failed");
                tracing::warn!(event_id = %d.event_id, destination = %d.destination, %why, "event not delivered: its destination is no longer configured");
                self.store
                    .delivery_failed(&d.id, attempts, None, &why)
                    .await
            }
            Err(Failure::Retry(why)) => {
                let next = next_attempt(settings, d.created_at, attempts, now);
                metrics::outbox_attempt(if next.is_some() { "retry" } else { "failed" });
                tracing::warn!(event_id = %d.event_id, destination = %d.destination, attempts, %why, gave_up = next.is_none(), "event delivery failed");
                self.store
                    .delivery_failed(&d.id, attempts, next, &why)
                    .await
            }
        }
    }

    /// A logout token to an app (Back-Channel Logout 1.0 §2.5): a form POST; the app answers
    /// 200 (or 204) once it has ended its session.
    async fn send_logout_token(
        &self,
        settings: &Settings,
        keys: &KeyRing,
        d: &Delivery,
    ) -> Result<(), Failure> {
        let (uri, token) =
            backchannel::logout_token(settings, keys, &d.destination, &d.body, self.clock.now())
                .map_err(Failure::Gone)?;
        let req = self
            .http
            .post(&uri)
            .header(reqwest::header::CACHE_CONTROL, "no-store")
            .form(&[("logout_token", token)]);
        answered(req.send().await)
    }

    async fn send(&self, settings: &OutboxSettings, d: &Delivery) -> Result<(), Failure> {
        if let Some(w) = settings
            .webhooks
            .iter()
            .find(|w| webhook_destination(&w.url) == d.destination)
        {
            let t = self.clock.now();
            let signature = sign(w.secret.expose(), t, &d.body);
            let req = self
                .http
                .post(&w.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(SIGNATURE_HEADER, signature)
                .body(d.body.clone());
            return answered(req.send().await);
        }
        for Hook::OneTrust {
            url,
            api_token,
            purpose_id,
            ..
        } in &settings.hooks
        {
            if onetrust_destination(url) != d.destination {
                continue;
            }
            let event: Value = serde_json::from_str(&d.body)
                .map_err(|e| Failure::Gone(format!("the stored event is not JSON: {e}")))?;
            let Some(email) = event["data"]["email"].as_str() else {
                return Err(Failure::Gone("the stored event has no email".into()));
            };
            // The collection point's payload (OneTrust's consent receipt API).
            let payload = json!({
                "identifier": email,
                "requestInformation": api_token.expose(),
                "purposes": [{ "Id": purpose_id }],
            });
            return answered(self.http.post(url).json(&payload).send().await);
        }
        Err(Failure::Gone(format!(
            "{} is no longer configured",
            d.destination
        )))
    }
}

enum Failure {
    /// Worth another attempt: the destination was down, slow or said no.
    Retry(String),
    /// Not worth another: the destination is gone from the configuration.
    Gone(String),
}

fn answered(res: reqwest::Result<reqwest::Response>) -> Result<(), Failure> {
    match res {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(Failure::Retry(format!("answered {}", r.status()))),
        Err(e) if e.is_timeout() => Err(Failure::Retry("timed out".into())),
        Err(e) if e.is_connect() => Err(Failure::Retry("could not connect".into())),
        Err(e) => Err(Failure::Retry(format!("request failed: {e}"))),
    }
}

/// When to try again after `attempts` failed attempts: `first_retry` doubled per attempt, at
/// most an hour; `None` once `give_up_after` has passed since the event.
fn next_attempt(
    settings: &OutboxSettings,
    created_at: i64,
    attempts: i64,
    now: i64,
) -> Option<i64> {
    let doublings = u32::try_from(attempts - 1).unwrap_or(0).min(20);
    let wait = settings
        .first_retry
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_BACKOFF);
    // Whole seconds, at least one: the store counts in seconds.
    let next = now + wait.as_secs().max(1) as i64;
    (next - created_at <= settings.give_up_after.as_secs() as i64).then_some(next)
}

/// The `Herald-Signature` value for `body` sent at `t`.
pub fn sign(secret: &str, t: i64, body: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, format!("{t}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_the_first_wait_up_to_an_hour_and_stop_after_the_limit() {
        let s = OutboxSettings::default();
        assert_eq!(next_attempt(&s, 0, 1, 0), Some(5));
        assert_eq!(next_attempt(&s, 0, 2, 100), Some(110));
        assert_eq!(next_attempt(&s, 0, 3, 100), Some(120));
        assert_eq!(next_attempt(&s, 0, 30, 1000), Some(1000 + 3600));
        assert_eq!(next_attempt(&s, 0, 30, 24 * 3600 - 100), None);
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_time_and_body() {
        // Checked with: printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'k' -hex
        assert_eq!(
            sign("k", 1_700_000_000, "{\"a\":1}"),
            format!("t=1700000000,v1={}", EXPECTED)
        );
    }

    const EXPECTED: &str = "1b6ad1bc9bf48c52ce01939866d5877c6cc4e87ddad27e16673cb8c4964394a3";
}
