//! Fuzzes the claim path parser, which reads admin config and paths typed into the admin CLI.
//!
//! Any UTF-8 input must parse or fail without panicking; whatever parses must print to a canonical form
//! (and a bracket form) that parses back to the same path.

#![no_main]

use herald::claims::ClaimPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(path) = ClaimPath::parse(input) else {
        return;
    };
    let canonical = path.to_string();
    assert_eq!(
        ClaimPath::parse(&canonical).as_ref(),
        Ok(&path),
        "canonical form {canonical:?}"
    );
    let bracketed = path.to_bracket_form();
    assert_eq!(
        ClaimPath::parse(&bracketed).as_ref(),
        Ok(&path),
        "bracket form {bracketed:?}"
    );
    assert!(path.segments().iter().all(|s| !s.is_empty()));
});
