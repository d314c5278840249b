//! Fuzzes the form and query parser that every OAuth endpoint reads (hole 1 of the hardening
//! issue): any bytes parse without panicking, at most MAX_PARAMS pairs are read, and parameters
//! that are accepted survive being written out and read again.

#![no_main]

use herald::oauth::params::{MAX_PARAMS, Params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = Params::parse(data);
    assert!(p.values.len() <= MAX_PARAMS);
    if p.refusal().is_some() {
        return;
    }
    let written = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(p.values.iter())
        .finish();
    let again = Params::parse(written.as_bytes());
    assert_eq!(again.values, p.values);
    assert!(again.refusal().is_none());
});
