//! Ending logins and telling the apps they reached (OpenID Connect Back-Channel Logout 1.0):
//! the store ends the logins and, in the same transaction, writes the logout tokens owed to
//! the apps with a `backchannel_logout_uri` (see [`crate::outbox::backchannel`]).

use crate::outbox::backchannel;
use crate::state::AppState;
use crate::store::{EndLogins, Logouts, StoreError};

/// How the apps of ending logins are told, with the settings in effect now.
pub fn logouts(state: &AppState) -> Logouts {
    backchannel::logouts(&state.settings(), state.now())
}

/// Ends the live logins `which` names, with their codes and tokens, and owes their apps logout
/// tokens. Returns how many logins ended.
pub async fn end_logins(state: &AppState, which: &EndLogins<'_>) -> Result<u64, StoreError> {
    state
        .store
        .end_logins(which, state.now(), &logouts(state))
        .await
}
