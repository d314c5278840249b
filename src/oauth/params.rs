//! Request parameters as OAuth reads them: form-urlencoded, each at most once (RFC 6749 §3.1,
//! §3.2: "Request and response parameters MUST NOT be included more than once"), empty values
//! treated as absent. The exceptions are `resource` (RFC 8707 §2) and `audience` (RFC 8693
//! §2.1), which may be repeated: their values are kept space-separated, in order, without
//! repeats.

use std::collections::{HashMap, HashSet};

/// The most parameters one request may carry. An authorization request has about twenty that
/// mean something; anything near this bound is an attack, and parsing stops there instead of
/// reading on (checklist: a 1 MB form of repeated keys must not buy seconds of work).
pub const MAX_PARAMS: usize = 128;

/// The parameters that may be repeated (RFC 8707 §2, RFC 8693 §2.1): their values are kept
/// space-separated.
pub const REPEATABLE: [&str; 2] = ["resource", "audience"];

/// Parameters by name. Duplicates are kept aside so the caller decides how to answer.
#[derive(Debug, Default)]
pub struct Params {
    pub values: HashMap<String, String>,
    /// Names given more than once, in the order they were first repeated.
    pub duplicated: Vec<String>,
    /// More than [`MAX_PARAMS`] pairs were sent; the rest were not read.
    pub too_many: bool,
}

impl Params {
    /// Reads a form or query string in one pass: linear in its length, and bounded by
    /// [`MAX_PARAMS`] pairs.
    pub fn parse(raw: &[u8]) -> Params {
        let mut p = Params::default();
        let mut repeated = HashSet::new();
        for (n, (k, v)) in form_urlencoded::parse(raw).enumerate() {
            if n == MAX_PARAMS {
                p.too_many = true;
                break;
            }
            if v.is_empty() {
                continue;
            }
            if REPEATABLE.contains(&k.as_ref())
                && let Some(kept) = p.values.get_mut(k.as_ref())
            {
                if !kept.split(' ').any(|r| r == v) {
                    kept.push(' ');
                    kept.push_str(&v);
                }
            } else if p.values.contains_key(k.as_ref()) {
                if repeated.insert(k.to_string()) {
                    p.duplicated.push(k.into_owned());
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

    /// Why these parameters cannot be used as sent (RFC 6749 §3.1: a repeated parameter; or
    /// more parameters than any request has), as an `error_description`.
    pub fn refusal(&self) -> Option<String> {
        if self.too_many {
            return Some(format!("the request has more than {MAX_PARAMS} parameters"));
        }
        self.duplicated
            .first()
            .map(|dup| format!("parameter {dup} is included more than once"))
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
    fn resource_may_be_repeated_and_is_kept_space_separated() {
        let p = Params::parse(
            b"resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb&resource=https%3A%2F%2Fa",
        );
        assert!(p.duplicated.is_empty());
        assert_eq!(p.get("resource"), Some("https://a https://b"));
    }

    #[test]
    fn duplicates_are_reported_and_empty_values_ignored() {
        let p = Params::parse(b"state=a&state=b&scope=&client_id=c%20d");
        assert_eq!(p.duplicated, vec!["state"]);
        assert_eq!(p.get("scope"), None);
        assert_eq!(p.get("client_id"), Some("c d"));
        assert_eq!(
            p.refusal().as_deref(),
            Some("parameter state is included more than once")
        );
    }

    #[test]
    fn a_name_repeated_many_times_is_reported_once() {
        let p = Params::parse(b"a=1&a=2&a=3&b=1&b=2&a=4");
        assert_eq!(p.duplicated, vec!["a", "b"]);
    }

    #[test]
    fn parsing_stops_at_the_bound_and_says_so() {
        let at_bound: Vec<String> = (0..MAX_PARAMS).map(|i| format!("k{i}=v")).collect();
        let p = Params::parse(at_bound.join("&").as_bytes());
        assert!(!p.too_many);
        assert_eq!(p.values.len(), MAX_PARAMS);
        assert_eq!(p.refusal(), None);

        let over: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("k{i}=v")).collect();
        let p = Params::parse(over.join("&").as_bytes());
        assert!(p.too_many);
        assert_eq!(p.values.len(), MAX_PARAMS);
        assert_eq!(
            p.refusal().as_deref(),
            Some("the request has more than 128 parameters")
        );
    }

    /// Hole 1 of issue 14: 43,000 distinct names each sent twice (a 1 MB form) made the old
    /// parser compare every new duplicate with every earlier one. Now the bound stops it after
    /// 128 pairs, whatever follows.
    #[test]
    fn a_megabyte_of_repeated_names_stops_at_the_bound() {
        let body: String = (0..43_000)
            .map(|i| format!("name{i}=1&name{i}=1&"))
            .collect();
        assert!(body.len() > 1_000_000);
        let p = Params::parse(body.as_bytes());
        assert!(p.too_many);
        assert_eq!(p.duplicated.len(), MAX_PARAMS / 2);
    }
}
