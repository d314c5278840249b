//! JSON claims from an upstream: a claims object whose member names are unique at every depth,
//! and the payload of an ID token whose signature was already verified.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The payload of a compact JWS whose signature has already been verified.
/// Claims objects with a repeated member name are refused (RFC 7519 §4: "MUST either reject
/// ... or use a JSON parser that returns only the lexically last duplicate"; Herald rejects,
/// since two parsers disagreeing on which value counts is how claims get smuggled).
pub fn claims_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    let unique: UniqueKeys = serde_json::from_slice(bytes).ok()?;
    if !unique.0 {
        return None;
    }
    serde_json::from_slice(bytes).ok()
}

/// Deserializes any JSON, remembering whether every object's member names were unique.
struct UniqueKeys(bool);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<UniqueKeys, A::Error> {
                let mut seen = std::collections::HashSet::new();
                let mut unique = true;
                while let Some(k) = m.next_key::<String>()? {
                    unique &= seen.insert(k);
                    unique &= m.next_value::<UniqueKeys>()?.0;
                }
                Ok(UniqueKeys(unique))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<UniqueKeys, A::Error> {
                let mut unique = true;
                while let Some(v) = s.next_element::<UniqueKeys>()? {
                    unique &= v.0;
                }
                Ok(UniqueKeys(unique))
            }
            fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys(true))
            }
            fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys(true))
            }
            fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys(true))
            }
            fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys(true))
            }
            fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys(true))
            }
            fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys(true))
            }
        }
        d.deserialize_any(V)
    }
}

pub(super) fn jwt_payload(jwt: &str) -> Option<Map<String, Value>> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    claims_object(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_with_a_repeated_name_at_any_depth_are_refused() {
        assert!(claims_object(br#"{"sub":"a","email_verified":false}"#).is_some());
        assert!(
            claims_object(br#"{"sub":"a","email_verified":false,"email_verified":true}"#).is_none()
        );
        assert!(claims_object(br#"{"sub":"a","x":[{"k":1,"k":2}]}"#).is_none());
        assert!(claims_object(br#"{"sub":"a","o":{"k":1},"p":{"k":2}}"#).is_some());
        assert!(claims_object(b"[1,2]").is_none());
    }
}
