//! Everything Herald holds about one user, as one JSON document (right of access and data
//! portability): the profile, each stored login with every value's origin, grants, consent
//! receipts, the current decision per purpose, browser sessions and tokens' metadata. Token
//! values and digests, session ids and upstream secrets are never part of it: they are
//! credentials, not data about the user.

use serde_json::{Value, json};

use crate::clock::rfc3339_utc;
use crate::config::Settings;
use crate::store::{Result, Store};

use super::export_record;

/// The export of `sub`, or `None` when Herald knows no such user.
pub async fn user_export(
    store: &dyn Store,
    settings: &Settings,
    sub: &str,
    now: i64,
) -> Result<Option<Value>> {
    let Some(user) = store.user(sub).await? else {
        return Ok(None);
    };
    let grants = store.grants(sub).await?;
    let records = store.consent_records(sub).await?;
    let purposes = store.purpose_states(sub).await?;
    let held = store.user_holdings(sub).await?;
    let identities = store.identities(sub).await?;
    let time = |t: i64| json!({ "unix": t, "utc": rfc3339_utc(t) });
    let opt_time = |t: Option<i64>| t.map(time);
    let parsed = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    Ok(Some(json!({
        "sub": user.sub,
        "exported_at": rfc3339_utc(now),
        "profile": {
            "upstream": user.upstream_id,
            "upstream_name": settings.upstream(&user.upstream_id).map(|u| u.display_name.clone()),
            "upstream_subject": user.upstream_subject,
            "identities": identities.iter().map(|i| json!({
                "upstream": i.upstream_id,
                "subject": i.subject,
                "linked_at": time(i.linked_at),
            })).collect::<Vec<_>>(),
            "email": user.email,
            "email_verified": user.email_verified,
            "name": user.name,
            "picture": user.picture,
            "logins_count": user.logins_count,
            "created_at": time(user.created_at),
            "last_login_at": time(user.last_login_at),
            // The last login's claims with each value's origin (upstream claim and source).
            "last_context": user.last_context.as_deref().map(parsed),
        },
        "logins": held.contexts.iter().map(|c| json!({
            "id": c.id,
            "upstream": c.upstream_id,
            "auth_time": time(c.auth_time),
            "created_at": time(c.created_at),
            "expires_at": opt_time(c.expires_at),
            "revoked_at": opt_time(c.revoked_at),
            "context": parsed(&c.context),
        })).collect::<Vec<_>>(),
        "grants": grants.iter().map(|g| json!({
            "client_id": g.client_id,
            "client_name": settings.app_name(&g.client_id),
            "scopes": g.scopes.to_vec(),
            "scope_versions": parsed(&g.scope_versions),
            "granted_at": time(g.granted_at),
            "updated_at": time(g.updated_at),
        })).collect::<Vec<_>>(),
        "consent_records": records
            .iter()
            .map(|r| export_record(r, &settings.app_name(&r.client_id)))
            .collect::<Vec<_>>(),
        "purposes": purposes.iter().map(|p| json!({
            "purpose": p.purpose,
            "decision": p.decision.as_str(),
            "version": p.version,
            "record_id": p.record_id,
            "decided_at": time(p.decided_at),
        })).collect::<Vec<_>>(),
        "sessions": held.session_expiries.iter().map(|e| json!({
            "expires_at": time(*e),
        })).collect::<Vec<_>>(),
        "access_tokens": held.access_tokens.iter().map(|t| json!({
            "jti": t.jti,
            "client_id": t.client_id,
            "scope": t.scope,
            "issued_at": time(t.issued_at),
            "expires_at": time(t.expires_at),
            "revoked_at": opt_time(t.revoked_at),
        })).collect::<Vec<_>>(),
        "refresh_tokens": held.refresh_tokens.iter().map(|t| json!({
            "client_id": t.client_id,
            "scope": t.scope,
            "issued_at": time(t.issued_at),
            "expires_at": time(t.expires_at),
            "family_expires_at": time(t.family_expires_at),
            "rotated_at": opt_time(t.rotated_at),
            "revoked_at": opt_time(t.revoked_at),
        })).collect::<Vec<_>>(),
    })))
}
