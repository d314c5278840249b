//! Fuzzes the upstream's answers as Herald reads them: the bytes of an ID token payload and of
//! a userinfo response go through the claims-object reader (duplicate member names refused)
//! and then the claim mapping of an upstream with attributes of every type. Input: ID token
//! bytes, a 0xFF byte, then userinfo bytes. Nothing panics; a context that builds has the
//! ID token's subject.

#![no_main]

use std::sync::LazyLock;

use herald::claims::{AccessTokenClaims, UpstreamClaims, build_context};
use herald::config::Settings;
use herald::upstream::client::claims_object;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

static SETTINGS: LazyLock<Settings> = LazyLock::new(|| {
    herald::config::from_toml(
        r#"
        issuer = "http://127.0.0.1:8080"
        listen = "127.0.0.1:8080"
        database_url = "sqlite::memory:"
        [[upstreams]]
        id = "up"
        kind = "oidc"
        issuer = "https://idp.example.com"
        client_id = "herald"
        userinfo = true
        [[upstreams.attributes]]
        claim = "https://example\\.com/groups"
        source = "id_token"
        type = "string_array"
        [[upstreams.attributes]]
        claim = "address.country"
        source = "userinfo"
        type = "string"
        [[upstreams.attributes]]
        claim = "age"
        source = "userinfo"
        type = "number"
        [[upstreams.attributes]]
        claim = "verified"
        source = "id_token"
        type = "boolean"
        [[upstreams.attributes]]
        claim = "profile"
        source = "userinfo"
        type = "object"
        [[upstreams.mappings]]
        from = "https://example\\.com/groups"
        to = "groups"
        [[upstreams.mappings]]
        from = "address.country"
        to = "org.country"
        [[clients]]
        client_id = "app"
        redirect_uris = ["http://127.0.0.1:9000/cb"]
        scopes = ["openid"]
        "#,
    )
    .expect("the fuzzing configuration is valid")
    .0
});

fuzz_target!(|data: &[u8]| {
    let (id_token, userinfo) = match data.iter().position(|b| *b == 0xFF) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Some(id_token) = claims_object(id_token) else {
        return;
    };
    let claims = UpstreamClaims {
        id_token,
        userinfo: userinfo.and_then(claims_object),
        access_token: AccessTokenClaims::Absent,
    };
    let up = &SETTINGS.upstreams[0];
    if let Ok(built) = build_context("up", &up.mapping, &claims, None) {
        let Some(Value::String(sub)) = claims.id_token.get("sub") else {
            panic!("a context was built without a subject");
        };
        assert!(!sub.is_empty());
        let _ = built;
    }
});
