//! Fuzzes what the token endpoint reads before any database work: the form body and the client
//! credentials from the Authorization header and the form. Input: header bytes, a 0xFF byte,
//! then the body. Any input ends in parameters and credentials or an OAuth error, never a panic.

#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use herald::provider::client_auth::presented;
use herald::provider::token::form;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (authorization, body) = match data.iter().position(|b| *b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    if let Ok(value) = HeaderValue::from_bytes(authorization) {
        headers.insert(header::AUTHORIZATION, value);
    }
    if let Ok(params) = form(&headers, body) {
        let _ = presented(&headers, &params.values);
    }
});
