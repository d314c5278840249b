//! Back-channel logout to apps (OpenID Connect Back-Channel Logout 1.0): when a login ends, each
//! app it reached that registered a `backchannel_logout_uri` is owed a logout token. The owed
//! tokens are outbox rows ([`rows`]) written in the transaction that ends the login; the
//! deliverer signs each one when it sends it ([`logout_token`]), with the app's algorithm and a
//! fresh `jti` per attempt, and POSTs it as `logout_token` (§2.5).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::config::Settings;
use crate::store::{AppLogin, Logouts, OutboxRow};
use crate::tokens::keys::KeyRing;
use crate::tokens::mint::{self, session_id};
use crate::tokens::{jwt, random_token};

/// The event type of a logout-token row.
pub const EVENT_TYPE: &str = "logout.backchannel";

/// The destination of an app's logout-token row: `backchannel <client_id>`.
pub fn destination(client_id: &str) -> String {
    format!("backchannel {client_id}")
}

/// The client a logout-token row is for, if `destination` is one.
pub fn client_of(destination: &str) -> Option<&str> {
    destination.strip_prefix("backchannel ")
}

/// What the store calls, in the transaction that ends logins, on the apps they reached: one
/// row per app and login whose client (as `settings` has it) registered a back-channel logout
/// URI; the body names the user, the login's `sid` and the client's registration.
pub fn logouts(settings: &Settings, now: i64) -> Logouts {
    let listening: HashMap<String, i64> = settings
        .clients
        .values()
        .filter(|c| c.backchannel_logout_uri.is_some())
        .map(|c| (c.client_id.clone(), c.registered_at))
        .collect();
    if listening.is_empty() {
        return Logouts::none();
    }
    Logouts(Arc::new(move |apps: &[AppLogin]| {
        rows(&listening, apps, now)
    }))
}

fn rows(listening: &HashMap<String, i64>, apps: &[AppLogin], now: i64) -> Vec<OutboxRow> {
    apps.iter()
        .filter_map(|a| Some((a, *listening.get(&a.client_id)?)))
        .map(|(a, registered_at)| {
            let event_id = random_token();
            OutboxRow {
                id: random_token(),
                event_type: EVENT_TYPE.into(),
                destination: destination(&a.client_id),
                body: json!({
                    "id": event_id,
                    "type": EVENT_TYPE,
                    "client_id": a.client_id,
                    "sub": a.sub,
                    "sid": session_id(&a.auth_context_id),
                    // A client deleted and registered again under the same id is another app.
                    "registered_at": registered_at,
                })
                .to_string(),
                event_id,
                created_at: now,
                only_for_new_user: false,
            }
        })
        .collect()
}

/// What a logout-token row's delivery needs: where to POST, and the signed token; `Err` when the
/// app or its URI is gone from the configuration, or the row is unreadable.
pub fn logout_token(
    settings: &Settings,
    keys: &KeyRing,
    destination: &str,
    body: &str,
    now: i64,
) -> Result<(String, String), String> {
    let client_id = client_of(destination).ok_or("not a back-channel logout row")?;
    let client = settings
        .client(client_id)
        .ok_or_else(|| format!("client {client_id} is no longer registered"))?;
    let uri = client
        .backchannel_logout_uri
        .clone()
        .ok_or_else(|| format!("client {client_id} no longer has a backchannel_logout_uri"))?;
    let row: Value =
        serde_json::from_str(body).map_err(|e| format!("the stored row is not JSON: {e}"))?;
    let (Some(sub), Some(sid)) = (row["sub"].as_str(), row["sid"].as_str()) else {
        return Err("the stored row names no sub and sid".into());
    };
    if row["registered_at"].as_i64() != Some(client.registered_at) {
        return Err(format!(
            "client {client_id} was registered again since; the logout was for the earlier one"
        ));
    }
    let claims = mint::logout_token(&settings.issuer, client_id, sub, sid, &random_token(), now);
    let key = keys
        .signing_key(client.signing_alg)
        .ok_or("no signing key is active for the client's algorithm")?;
    let token = jwt::sign(key, "logout+jwt", &claims).map_err(|e| e.to_string())?;
    Ok((uri, token))
}
