//! Sample upstream claims for the upstream editor's preview: prefilled with what a login could
//! produce, read back from the form.

use serde_json::{Map, Value, json};

use super::base::Form;
use crate::claims::{AccessTokenClaims, AttrType, Source, UpstreamClaims};
use crate::config::Upstream;

/// The preview pane's sample claims, as JSON text.
#[derive(Clone)]
pub(super) struct Samples {
    pub(super) id_token: String,
    pub(super) userinfo: String,
    pub(super) access_token: String,
    /// Space-separated scopes to grant; empty: every scope.
    pub(super) scopes: String,
}

impl Samples {
    /// A sample a login through `up` could produce: standard claims plus a value of the right
    /// type for each declared attribute.
    pub(super) fn for_upstream(up: &Upstream) -> Self {
        let mut id_token = Map::new();
        id_token.insert("sub".into(), json!("sample-user"));
        id_token.insert("name".into(), json!("Sample User"));
        id_token.insert("email".into(), json!("sample@example.com"));
        let mut userinfo = Map::new();
        let mut access_token = Map::new();
        for a in &up.mapping.attributes {
            let value = match a.ty {
                AttrType::String | AttrType::Any => json!("example"),
                AttrType::Number | AttrType::Integer => json!(1),
                AttrType::Boolean => json!(true),
                AttrType::StringArray => json!(["example"]),
                AttrType::Object => json!({}),
            };
            let target = match a.source {
                Source::IdToken => &mut id_token,
                Source::Userinfo => &mut userinfo,
                Source::AccessToken => &mut access_token,
                Source::Computed => continue,
            };
            a.claim.set(target, value);
        }
        // A real userinfo answer names the same user as the ID token (OIDC Core §5.3.2).
        if !userinfo.is_empty() {
            userinfo.insert("sub".into(), json!("sample-user"));
        }
        let text = |m: Map<String, Value>| {
            if m.is_empty() {
                String::new()
            } else {
                pretty(&Value::Object(m))
            }
        };
        Self {
            id_token: pretty(&Value::Object(id_token)),
            userinfo: text(userinfo),
            access_token: text(access_token),
            scopes: String::new(),
        }
    }

    pub(super) fn from_form(form: &Form) -> Self {
        Self {
            id_token: form.text("sample_id_token"),
            userinfo: form.text("sample_userinfo"),
            access_token: form.text("sample_access_token"),
            scopes: form.text("scopes"),
        }
    }

    pub(super) fn claims(&self) -> Result<UpstreamClaims, String> {
        let object = |label: &str, text: &str| -> Result<Option<Map<String, Value>>, String> {
            if text.is_empty() {
                return Ok(None);
            }
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => Ok(Some(m)),
                Ok(_) => Err(format!(
                    "{label}: must be a JSON object, like {{\"sub\": \"alice\"}}"
                )),
                Err(e) => Err(format!("{label}: not valid JSON ({e})")),
            }
        };
        Ok(UpstreamClaims {
            id_token: object("Sample ID-token claims", &self.id_token)?.unwrap_or_default(),
            userinfo: object("Sample userinfo claims", &self.userinfo)?,
            access_token: match object("Sample access-token claims", &self.access_token)? {
                Some(m) => AccessTokenClaims::Jwt(m),
                None => AccessTokenClaims::Absent,
            },
        })
    }
}

pub(super) fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}
