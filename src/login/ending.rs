//! Ending logins and telling the apps they reached (OpenID Connect Back-Channel Logout 1.0):
//! the apps that got codes or tokens from the logins are looked up, and the logout tokens owed
//! to those with a `backchannel_logout_uri` are written to the outbox in the transaction that
//! ends the logins (see [`crate::outbox::backchannel`]).

use crate::outbox::backchannel;
use crate::state::AppState;
use crate::store::{EndLogins, OutboxRow, StoreError};

/// Ends the live logins `which` names, with their codes and tokens, and owes their apps logout
/// tokens. Returns how many logins ended.
pub async fn end_logins(state: &AppState, which: &EndLogins<'_>) -> Result<u64, StoreError> {
    let rows = logout_rows(state, which).await?;
    state.store.end_logins(which, state.now(), &rows).await
}

/// The logout tokens owed to the apps of the live logins `which` names: none without an app
/// that listens (no store read then).
pub async fn logout_rows(
    state: &AppState,
    which: &EndLogins<'_>,
) -> Result<Vec<OutboxRow>, StoreError> {
    let settings = state.settings();
    if !settings
        .clients
        .values()
        .any(|c| c.backchannel_logout_uri.is_some())
    {
        return Ok(Vec::new());
    }
    let apps = state.store.apps_of_logins(which).await?;
    Ok(backchannel::rows(&settings, &apps, state.now()))
}
