//! The built-in development provider (`kind = "dev"`): a small OpenID provider served under
//! `{issuer}/dev-upstream`, so a person can log in end to end with no Auth0 account.
//!
//! It logs anyone in under any name, and says so on its page. Configuration allows it only with
//! a loopback `http://` issuer. Herald talks to it over HTTP exactly as to Auth0, so the
//! relying-party code it exercises is the production code. Codes and tokens live in memory.

pub mod routes;

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::tokens::keys::{Alg, SigningKey};

struct DevCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    claims: Map<String, Value>,
    nonce: Option<String>,
    created_at: i64,
}

/// Userinfo claims of an issued access token, and when it expires (Unix seconds).
type IssuedToken = (Map<String, Value>, i64);

/// The development provider's key and in-memory state.
pub struct DevProvider {
    key: SigningKey,
    codes: Mutex<HashMap<String, DevCode>>,
    /// Access token -> its userinfo claims and expiry; pruned as new ones are issued.
    tokens: Mutex<HashMap<String, IssuedToken>>,
}

impl std::fmt::Debug for DevProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevProvider")
    }
}

impl DevProvider {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            key: SigningKey::generate(Alg::RS256)?.0,
            codes: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        })
    }
}
