//! Back-channel logout to apps (OpenID Connect Back-Channel Logout 1.0): when a login ends, each
//! app it reached that registered a `backchannel_logout_uri` is owed a logout token. The owed
//! tokens are outbox rows ([`rows`]) written in the transaction that ends the login; the
//! deliverer signs each one when it sends it ([`logout_token`]), with the app's algorithm and a
//! fresh `jti` per attempt, and POSTs it as `logout_token` (§2.5).

use serde_json::{Value, json};

use crate::config::Settings;
use crate::store::{AppLogin, OutboxRow};
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

/// One row per app and login among `apps` whose client registered a back-channel logout URI;
/// the body names the user and the login's `sid`.
pub fn rows(settings: &Settings, apps: &[AppLogin], now: i64) -> Vec<OutboxRow> {
    apps.iter()
        .filter(|a| {
            settings
                .client(&a.client_id)
                .is_some_and(|c| c.backchannel_logout_uri.is_some())
        })
        .map(|a| {
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
    let claims = mint::logout_token(&settings.issuer, client_id, sub, sid, &random_token(), now);
    let key = keys
        .signing_key(client.signing_alg)
        .ok_or("no signing key is active for the client's algorithm")?;
    let token = jwt::sign(key, "logout+jwt", &claims).map_err(|e| e.to_string())?;
    Ok((uri, token))
}
