//! The signing ceiling: how many access tokens one core signs per second, per algorithm.
//!
//! A token endpoint is bound by signing, so this is the rate `/token` is measured against
//! (`scripts/bench.sh`, `BENCHMARKS.md`). Two ways to sign the same payload with the same key:
//!
//! - `herald`: the key pair parsed once into aws-lc-rs ([`SigningKey`]), then [`jwt::sign`];
//! - `jsonwebtoken`: `jsonwebtoken::encode` with an `EncodingKey` made from the same key's DER,
//!   which parses the private key again on every call (an RSA key is validated on load).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use herald::tokens::jwt::{self, ACCESS_TOKEN_TYP};
use herald::tokens::keys::{Alg, SigningKey};
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

/// An access token like the ones `/token` issues (RFC 9068 §2.2) with a few released claims.
fn payload() -> Value {
    json!({
        "email": "alice@example.com",
        "groups": ["staff", "herald-admins"],
        "iss": "http://127.0.0.1:18080",
        "sub": "u_7f3c2a9e0b1d4c58a6e2f90b3d17c4a2",
        "aud": "http://127.0.0.1:18080",
        "client_id": "bench",
        "scope": "openid profile email groups",
        "jti": "Jd8yq3kQm2xP0vT7rW5nZ1aB4cE6gH9iK-LoMsNuVw",
        "iat": 1_760_000_000,
        "exp": 1_760_000_900,
        "auth_time": 1_760_000_000,
    })
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo` (RFC 5208 §5): jsonwebtoken's
/// `from_rsa_der` takes PKCS#1, Herald stores PKCS#8.
fn pkcs1_of_pkcs8(der: &[u8]) -> &[u8] {
    // Returns (tag, content, rest) of the DER element at the start of `b`.
    fn element(b: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = b[0];
        let (len, header) = match b[1] {
            l if l < 0x80 => (l as usize, 2),
            l => {
                let n = (l & 0x7f) as usize;
                let len = b[2..2 + n]
                    .iter()
                    .fold(0usize, |acc, x| (acc << 8) | *x as usize);
                (len, 2 + n)
            }
        };
        (tag, &b[header..header + len], &b[header + len..])
    }
    let (_, info, _) = element(der); // PrivateKeyInfo SEQUENCE
    let (_, _, rest) = element(info); // version INTEGER
    let (_, _, rest) = element(rest); // AlgorithmIdentifier SEQUENCE
    let (tag, key, _) = element(rest); // privateKey OCTET STRING
    assert_eq!(tag, 0x04, "PKCS#8 privateKey is an OCTET STRING");
    key
}

fn encoding_key(alg: Alg, der: &[u8]) -> EncodingKey {
    match alg {
        Alg::RS256 => EncodingKey::from_rsa_der(pkcs1_of_pkcs8(der)),
        Alg::ES256 => EncodingKey::from_ec_der(der),
        Alg::EdDSA => EncodingKey::from_ed_der(der),
    }
}

fn jsonwebtoken_alg(alg: Alg) -> jsonwebtoken::Algorithm {
    match alg {
        Alg::RS256 => jsonwebtoken::Algorithm::RS256,
        Alg::ES256 => jsonwebtoken::Algorithm::ES256,
        Alg::EdDSA => jsonwebtoken::Algorithm::EdDSA,
    }
}

fn signing(c: &mut Criterion) {
    let claims = payload();
    for alg in [Alg::RS256, Alg::ES256, Alg::EdDSA] {
        let (key, der) = SigningKey::generate(alg).expect("key generation");
        let jwt_key = encoding_key(alg, &der);
        let mut header = Header::new(jsonwebtoken_alg(alg));
        header.kid = Some(key.kid.clone());
        header.typ = Some(ACCESS_TOKEN_TYP.into());
        // Both paths must produce a token, or the comparison means nothing.
        encode(&header, &claims, &jwt_key).expect("jsonwebtoken signs with the same key");

        let mut group = c.benchmark_group(format!("sign-{}", alg.as_str()));
        group.throughput(Throughput::Elements(1));
        group.bench_function("herald", |b| {
            b.iter(|| jwt::sign(&key, ACCESS_TOKEN_TYP, black_box(&claims)).unwrap())
        });
        group.bench_function("jsonwebtoken", |b| {
            b.iter(|| encode(&header, black_box(&claims), &jwt_key).unwrap())
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    // Short runs: the harness must finish well inside its time budget; signing is steady.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = signing
}
criterion_main!(benches);
