//! Request parameters as OAuth reads them: form-urlencoded, each at most once (RFC 6749 §3.1,
//! §3.2: "Request and response parameters MUST NOT be included more than once"), empty values
//! treated as absent.

use std::collections::HashMap;

/// Parameters by name. Duplicates are kept aside so the caller decides how to answer.
#[derive(Debug, Default)]
pub struct Params {
    pub values: HashMap<String, String>,
    pub duplicated: Vec<String>,
}

impl Params {
    pub fn parse(raw: &[u8]) -> Params {
        let mut p = Params::default();
        for (k, v) in form_urlencoded::parse(raw) {
            if v.is_empty() {
                continue;
            }
            if p.values.contains_key(k.as_ref()) {
                if !p.duplicated.contains(&k.to_string()) {
                    p.duplicated.push(k.to_string());
                }
            } else {
                p.values.insert(k.into_owned(), v.into_owned());
            }
        }
        p
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.values.get(k).map(String::as_str)
    }
}

/// True when the request body is form-encoded (`application/x-www-form-urlencoded`).
pub fn is_form(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_reported_and_empty_values_ignored() {
        let p = Params::parse(b"state=a&state=b&scope=&client_id=c%20d");
        assert_eq!(p.duplicated, vec!["state"]);
        assert_eq!(p.get("scope"), None);
        assert_eq!(p.get("client_id"), Some("c d"));
    }
}
