//! Benchmarks for the claims engine's per-login and per-token work.
//!
//! Budget: mapping one login with 50 attributes and 50 mappings well under 20 µs.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use herald::claims::{
    AccessTokenClaims, AttrType, Attribute, ClaimPath, Mapping, Merge, OnMissing, ReleaseEntry,
    ScopeCatalog, ScopeDef, Source, TokenKind, UpstreamClaims, UpstreamMapping, build_context,
    release,
};
use serde_json::{Map, json};

fn path(s: &str) -> ClaimPath {
    ClaimPath::parse(s).unwrap()
}

/// 50 attributes over three sources and 50 mappings using every merge strategy, plus matching claims.
fn fifty_by_fifty() -> (UpstreamMapping, UpstreamClaims) {
    let mut attributes = Vec::new();
    let mut mappings = Vec::new();
    let mut id_token = Map::new();
    let mut userinfo = Map::new();
    let mut access = Map::new();
    id_token.insert("sub".into(), json!("auth0|5f7c8ec7c33c6c004bbafe82"));
    id_token.insert("amr".into(), json!(["pwd", "mfa"]));
    for (name, value) in [
        ("name", json!("Ann Smith")),
        ("email", json!("ann@example.com")),
        ("email_verified", json!(true)),
        ("picture", json!("https://example.com/ann.png")),
        ("updated_at", json!(1_700_000_000)),
    ] {
        id_token.insert(name.into(), value);
    }
    userinfo.insert("locale".into(), json!("en-NZ"));
    let merges = [Merge::Set, Merge::SetIfEmpty, Merge::Add, Merge::SetOrClear];
    for i in 0..50 {
        let (source, payload) = match i % 5 {
            0..=2 => (Source::IdToken, &mut id_token),
            3 => (Source::Userinfo, &mut userinfo),
            _ => (Source::AccessToken, &mut access),
        };
        let (claim, ty, value) = match i % 4 {
            0 => (
                format!(r"https://example\.com/roles{i}"),
                AttrType::StringArray,
                json!(["admin", "user"]),
            ),
            1 => (
                format!("https://example\\.com/app_metadata{i}.tenant"),
                AttrType::String,
                json!("acme"),
            ),
            2 => (format!("plain{i}"), AttrType::Integer, json!(3.0)),
            _ => (format!("flag{i}"), AttrType::Boolean, json!(true)),
        };
        let parsed = path(&claim);
        parsed.set(payload, value);
        attributes.push(Attribute {
            claim: parsed.clone(),
            source,
            ty,
            display_name: None,
            required: i % 7 == 0,
            on_missing: OnMissing::Clear,
        });
        mappings.push(Mapping::copy(
            parsed,
            path(&format!("ctx{}.field{i}", i % 6)),
            merges[i % 4],
        ));
    }
    let cfg = UpstreamMapping {
        attributes,
        mappings,
        amr: None,
    };
    let claims = UpstreamClaims {
        id_token,
        userinfo: Some(userinfo),
        access_token: AccessTokenClaims::Jwt(access),
    };
    (cfg, claims)
}

fn catalog() -> ScopeCatalog {
    let mut custom = BTreeMap::new();
    custom.insert(
        "org".to_owned(),
        ScopeDef {
            description: "Your organisation".into(),
            claims: (0..6)
                .map(|i| ReleaseEntry::Path(path(&format!("ctx{i}"))))
                .chain([ReleaseEntry::Detailed {
                    claim: path("ctx1.field1"),
                    to: vec![TokenKind::AccessToken],
                }])
                .collect(),
            optional: false,
            purpose: None,
            translations: BTreeMap::new(),
        },
    );
    ScopeCatalog::new(custom).unwrap()
}

fn benches(c: &mut Criterion) {
    let (cfg, claims) = fifty_by_fifty();
    let built = build_context("auth0", &cfg, &claims, None).unwrap();
    assert!(built.warnings.is_empty(), "{:?}", built.warnings);
    c.bench_function("build_context 50 attributes x 50 mappings", |b| {
        b.iter(|| {
            build_context(
                black_box("auth0"),
                black_box(&cfg),
                black_box(&claims),
                None,
            )
            .unwrap()
        })
    });
    let with_previous = built.context.clone();
    c.bench_function("build_context with a previous context", |b| {
        b.iter(|| build_context("auth0", &cfg, &claims, Some(black_box(&with_previous))).unwrap())
    });

    let catalog = catalog();
    let granted: Vec<String> = ["openid", "profile", "email", "org"]
        .map(String::from)
        .to_vec();
    c.bench_function("release id_token for four scopes", |b| {
        b.iter(|| {
            release(
                black_box(&built.context),
                &catalog,
                black_box(&granted),
                TokenKind::IdToken,
            )
        })
    });

    let paths = [
        "email",
        "address.country",
        r"https://example\.com/groups",
        r#"["https://example.com/app_metadata"].tenant"#,
    ];
    c.bench_function("ClaimPath::parse four typical paths", |b| {
        b.iter(|| {
            for p in paths {
                black_box(ClaimPath::parse(black_box(p)).unwrap());
            }
        })
    });
}

criterion_group!(claims, benches);
criterion_main!(claims);
