//! Signing-key rotation: the next key is published before it signs, and retired keys stay in
//! the JWKS until the tokens they signed have expired.

use herald::tokens::keys::{self, Alg, KeyEncryption};

use crate::support::*;

fn verifies_with(jwt: &str, set: &jsonwebtoken::jwk::JwkSet, aud: &str) -> bool {
    let Some(jwk) = set.find(&kid_of(jwt)) else {
        return false;
    };
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[aud]);
    jsonwebtoken::decode::<serde_json::Value>(jwt, &key, &v).is_ok()
}

#[tokio::test]
async fn a_rotated_key_is_published_before_it_signs_and_old_tokens_keep_verifying() {
    let app = spawn_app().await;
    let before = app.tokens(&AuthParams::new("trusted", "openid")).await;
    let old_token = before["id_token"].as_str().unwrap().to_string();
    let old_kid = kid_of(&old_token);
    assert_eq!(app.jwks().await.keys.len(), 1);

    let kek = KeyEncryption::from_base64(&app.kek).unwrap();
    let rotation = keys::rotate(
        &*app.state.store,
        &kek,
        Alg::RS256,
        app.state.now(),
        300,
        3900,
    )
    .await
    .unwrap();
    app.state.reload_keys().await.unwrap();

    // Published at once, not yet signing.
    let set = app.jwks().await;
    assert_eq!(set.keys.len(), 2);
    assert!(set.find(&rotation.new_kid).is_some());
    let during = app.tokens(&AuthParams::new("trusted", "openid")).await;
    assert_eq!(kid_of(during["id_token"].as_str().unwrap()), old_kid);

    // After activation the new key signs; the old one is still published.
    app.clock.advance(301);
    app.state.reload_keys().await.unwrap();
    let after = app.tokens(&AuthParams::new("trusted", "openid")).await;
    assert_eq!(
        kid_of(after["id_token"].as_str().unwrap()),
        rotation.new_kid
    );
    let fresh = app.jwks().await;
    assert!(
        verifies_with(&old_token, &fresh, "trusted"),
        "a token signed before rotation verifies with a fresh JWKS"
    );
    assert!(verifies_with(
        after["id_token"].as_str().unwrap(),
        &fresh,
        "trusted"
    ));
    // The old key's access tokens still work at userinfo.
    assert_eq!(
        app.userinfo(before["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // Once everything it signed has expired, the old key leaves the JWKS.
    app.clock.advance(3901);
    app.state.reload_keys().await.unwrap();
    let last = app.jwks().await;
    assert_eq!(last.keys.len(), 1);
    assert!(last.find(&old_kid).is_none());
}

#[tokio::test]
async fn clients_may_choose_es256_or_eddsa_and_their_tokens_verify_with_the_jwks() {
    let extra = r#"
[[clients]]
client_id = "es"
client_secret = "app-secret-for-tests"
redirect_uris = ["http://127.0.0.1:9000/cb"]
scopes = ["openid"]
trusted = true
id_token_signed_response_alg = "ES256"

[[clients]]
client_id = "ed"
client_secret = "app-secret-for-tests"
redirect_uris = ["http://127.0.0.1:9000/cb"]
scopes = ["openid"]
trusted = true
id_token_signed_response_alg = "EdDSA"
"#;
    let app = spawn_app_with(extra).await;
    let set = app.jwks().await;
    assert_eq!(set.keys.len(), 3, "one key per algorithm in use");
    for (client, alg) in [
        ("es", jsonwebtoken::Algorithm::ES256),
        ("ed", jsonwebtoken::Algorithm::EdDSA),
    ] {
        let t = app.tokens(&AuthParams::new(client, "openid")).await;
        let id_token = t["id_token"].as_str().unwrap();
        let header = jsonwebtoken::decode_header(id_token).unwrap();
        assert_eq!(header.alg, alg);
        let key =
            jsonwebtoken::DecodingKey::from_jwk(set.find(header.kid.as_deref().unwrap()).unwrap())
                .unwrap();
        let mut v = jsonwebtoken::Validation::new(alg);
        v.set_audience(&[client]);
        v.set_issuer(&[app.base.as_str()]);
        jsonwebtoken::decode::<serde_json::Value>(id_token, &key, &v)
            .expect("verifies with the published key");
        assert_eq!(
            app.userinfo(t["access_token"].as_str().unwrap())
                .await
                .status(),
            200
        );
    }
}

#[tokio::test]
async fn an_unsupported_signing_algorithm_is_a_configuration_error() {
    let extra = "[[clients]]\nclient_id = \"x\"\nredirect_uris = [\"http://127.0.0.1:9000/cb\"]\nscopes = [\"openid\"]\nid_token_signed_response_alg = \"HS256\"\n";
    let base = "issuer = \"http://127.0.0.1:1\"\nlisten = \"127.0.0.1:1\"\ndatabase_url = \"sqlite::memory:\"\n[[upstreams]]\nid = \"dev\"\nkind = \"dev\"\n";
    let err = herald::config::from_toml(&format!("{base}{extra}"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("id_token_signed_response_alg") && err.contains("ES256"),
        "{err}"
    );
}

/// Hole 7 of the hardening issue: keys stored in plaintext (created while no key-encryption key
/// was set) loaded silently and stayed plaintext once one was set. Now they are sealed at start,
/// keep their kid, and open only with that key-encryption key.
#[tokio::test]
async fn plaintext_keys_are_sealed_when_a_key_encryption_key_is_set() {
    let db = std::env::temp_dir().join(format!(
        "herald-reseal-{}.db",
        herald::tokens::random_token()
    ));
    let store = herald::store::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let plain = keys::load_or_create(&*store, &KeyEncryption::none(), &[Alg::ES256], 1_000)
        .await
        .unwrap();
    let kid = store.signing_keys().await.unwrap()[0].kid.clone();
    assert_eq!(store.signing_keys().await.unwrap()[0].encryption, "none");

    let kek = KeyEncryption::from_base64(&KeyEncryption::generate_base64()).unwrap();
    let sealed = keys::load_or_create(&*store, &kek, &[Alg::ES256], 2_000)
        .await
        .unwrap();
    let rows = store.signing_keys().await.unwrap();
    assert_eq!(rows.len(), 1, "no new key was made");
    assert_eq!(
        (rows[0].kid.as_str(), rows[0].encryption.as_str()),
        (kid.as_str(), "aes256gcm")
    );
    assert_eq!(
        plain.jwks_json(),
        sealed.jwks_json(),
        "the same key is published"
    );
    // Without the key-encryption key the sealed key cannot be read.
    assert!(
        keys::load_or_create(&*store, &KeyEncryption::none(), &[Alg::ES256], 3_000)
            .await
            .is_err()
    );
}
