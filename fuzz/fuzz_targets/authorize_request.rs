//! Fuzzes the authorization request as `/authorize` reads it: any query parses into a request
//! or an error, never a panic; an accepted request uses a registered redirect URI and S256 PKCE.

#![no_main]

use std::sync::LazyLock;

use herald::config::Settings;
use herald::oauth::params::Params;
use herald::provider::authorize::AuthorizeRequest;
use libfuzzer_sys::fuzz_target;

static SETTINGS: LazyLock<Settings> = LazyLock::new(|| {
    herald::config::from_toml(
        r#"
        issuer = "http://127.0.0.1:8080"
        listen = "127.0.0.1:8080"
        database_url = "sqlite::memory:"
        [[upstreams]]
        id = "dev"
        kind = "dev"
        [[clients]]
        client_id = "app"
        client_secret = "a-long-enough-secret-for-fuzzing"
        redirect_uris = ["https://app.example.com/cb"]
        scopes = ["openid", "profile", "email", "offline_access"]
        grant_types = ["authorization_code", "refresh_token"]
        [[clients]]
        client_id = "spa"
        redirect_uris = ["http://127.0.0.1:9000/cb"]
        scopes = ["openid", "profile"]
        "#,
    )
    .expect("the fuzzing configuration is valid")
    .0
});

fuzz_target!(|data: &[u8]| {
    let params = Params::parse(data);
    if let Ok(req) = AuthorizeRequest::parse(&params, &SETTINGS) {
        assert!(req.client.redirect_uris.contains(&req.redirect_uri));
        assert!(!req.client.is_public() || req.code_challenge.is_some());
    }
});
