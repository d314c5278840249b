//! Fuzzes the configuration loader (`check-config`, the admin API's stored versions): any text
//! loads into settings or into problems to show, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = herald::config::from_toml(text);
});
