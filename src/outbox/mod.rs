//! Events that leave Herald (issue 16): written into the store's outbox in the transaction of
//! the change they describe ([`rows`]), then delivered at least once, signed, by the replica
//! holding the outbox lease ([`deliver`]).
//!
//! An event is `{"id", "type", "created_at", "data"}`; each configured destination subscribed
//! to its type gets its own row (its own attempts and state) with the same event id. Webhooks
//! get the event as it is; a OneTrust collection point gets its own payload, built at delivery
//! from the event and the configuration, so the API token is never stored. Apps get logout
//! tokens when a login they took part in ends ([`backchannel`]).

pub mod backchannel;
pub mod deliver;

use serde_json::{Map, Value, json};

use crate::clock::rfc3339_utc;
use crate::config::{Hook, OutboxSettings};
use crate::store::{ConsentMethod, ConsentOutcome, ConsentRecord, OutboxRow};
use crate::tokens::random_token;

/// The destination of a webhook row: `webhook <url>`.
pub fn webhook_destination(url: &str) -> String {
    format!("webhook {url}")
}

/// The destination of a OneTrust hook row: `hook onetrust <url>`.
pub fn onetrust_destination(url: &str) -> String {
    format!("hook onetrust {url}")
}

/// The rows of one event: one per webhook subscribed to `event_type`, plus, for
/// `login.succeeded` with an email, one per OneTrust hook (whose body carries the email).
pub fn rows(
    settings: &OutboxSettings,
    event_type: &str,
    data: Map<String, Value>,
    email: Option<&str>,
    now: i64,
) -> Vec<OutboxRow> {
    let webhooks: Vec<&str> = settings
        .webhooks
        .iter()
        .filter(|w| w.events.iter().any(|e| e == event_type))
        .map(|w| w.url.as_str())
        .collect();
    let hook_email =
        email.filter(|_| event_type == "login.succeeded" && !settings.hooks.is_empty());
    // Nothing subscribes (the usual case without webhooks): no id drawn, no JSON written.
    if webhooks.is_empty() && hook_email.is_none() {
        return Vec::new();
    }
    let event_id = random_token();
    let body = |data: &Map<String, Value>| {
        json!({
            "id": event_id,
            "type": event_type,
            "created_at": rfc3339_utc(now),
            "data": data,
        })
        .to_string()
    };
    let row = |destination: String, body: String| OutboxRow {
        id: random_token(),
        event_id: event_id.clone(),
        event_type: event_type.to_string(),
        destination,
        body,
        created_at: now,
        only_for_new_user: event_type == "user.created",
    };
    // One body for every webhook: they all get the same event.
    let for_webhooks = body(&data);
    let mut out: Vec<OutboxRow> = webhooks
        .into_iter()
        .map(|url| row(webhook_destination(url), for_webhooks.clone()))
        .collect();
    if let Some(email) = hook_email {
        let mut with_email = data;
        with_email.insert("email".into(), json!(email));
        let for_hooks = body(&with_email);
        for Hook::OneTrust { url, .. } in &settings.hooks {
            out.push(row(onetrust_destination(url), for_hooks.clone()));
        }
    }
    out
}

/// The events of a login: `login.succeeded`, and `user.created` for a user made by it (the
/// store keeps that one only if the login did create the user).
pub fn login_rows(
    settings: &OutboxSettings,
    sub: &str,
    client_id: &str,
    upstream: &str,
    email: Option<&str>,
    now: i64,
) -> Vec<OutboxRow> {
    let mut data = Map::new();
    data.insert("sub".into(), json!(sub));
    data.insert("client_id".into(), json!(client_id));
    data.insert("upstream".into(), json!(upstream));
    let mut out = rows(settings, "login.succeeded", data, email, now);
    let mut created = Map::new();
    created.insert("sub".into(), json!(sub));
    created.insert("upstream".into(), json!(upstream));
    out.extend(rows(settings, "user.created", created, None, now));
    out
}

/// An imported decision's source and its id there.
fn source(data: &mut Map<String, Value>, record: &ConsentRecord) {
    if let Some(source) = &record.source {
        data.insert("source".into(), json!(source));
    }
    if let Some(reference) = &record.source_reference {
        data.insert("source_reference".into(), json!(reference));
    }
}

/// The event of a consent decision: `consent.granted` when it allowed scopes, else
/// `consent.denied`; `consent.withdrawn` for a withdrawal.
pub fn consent_rows(settings: &OutboxSettings, record: &ConsentRecord) -> Vec<OutboxRow> {
    let mut data = Map::new();
    data.insert("sub".into(), json!(record.sub));
    data.insert("client_id".into(), json!(record.client_id));
    data.insert("record_id".into(), json!(record.id));
    let purposes: Value = serde_json::from_str(&record.purposes).unwrap_or_else(|_| json!({}));
    let event_type = match record.decision {
        ConsentOutcome::Withdrawn => {
            data.insert("scopes".into(), json!(record.denied.to_vec()));
            let method = match record.method {
                ConsentMethod::Admin => "admin",
                ConsentMethod::ClientDeleted => "client_deleted",
                ConsentMethod::Import => "import",
                _ => "user",
            };
            data.insert("method".into(), json!(method));
            data.insert("purposes".into(), purposes);
            source(&mut data, record);
            "consent.withdrawn"
        }
        outcome => {
            data.insert("scopes".into(), json!(record.allowed.to_vec()));
            data.insert("denied_scopes".into(), json!(record.denied.to_vec()));
            data.insert("purposes".into(), purposes);
            data.insert("method".into(), json!(record.method.as_str()));
            data.insert("locale".into(), json!(record.locale));
            source(&mut data, record);
            if outcome == ConsentOutcome::Granted {
                "consent.granted"
            } else {
                "consent.denied"
            }
        }
    };
    rows(settings, event_type, data, None, record.decided_at)
}
