//! Tests of `build_context`: types, merges, missing claims, sources and AMR.

use serde_json::{Value, json};

use super::*;
use crate::claims::{AccessTokenClaims, OnMissing};

fn cfg(toml_text: &str) -> UpstreamMapping {
    toml::from_str(toml_text).unwrap()
}

fn object(v: Value) -> Map<String, Value> {
    v.as_object().expect("test payloads are objects").clone()
}

/// An ID token with a `sub` plus `extra`.
fn id_token(extra: Value) -> Map<String, Value> {
    let mut token = object(json!({"sub": "auth0|42"}));
    token.extend(object(extra));
    token
}

fn login(id: Value, userinfo: Option<Value>) -> UpstreamClaims {
    UpstreamClaims {
        id_token: id_token(id),
        userinfo: userinfo.map(object),
        access_token: AccessTokenClaims::Absent,
    }
}

fn build(config: &UpstreamMapping, claims: &UpstreamClaims) -> Built {
    build_context("auth0", config, claims, None).unwrap()
}

/// One attribute `x` of the given type from the ID token, mapped to `out`.
fn typed(ty: &str) -> UpstreamMapping {
    cfg(&format!(
        r#"
        [[attributes]]
        claim = "x"
        source = "id_token"
        type = "{ty}"
        [[mappings]]
        from = "x"
        to = "out"
    "#
    ))
}

fn typed_required(ty: &str) -> UpstreamMapping {
    let mut c = typed(ty);
    c.attributes[0].required = true;
    c
}

/// What an `x` of `value` becomes under type `ty`; `None` when dropped.
fn coerced(ty: &str, value: Value) -> Option<Value> {
    let built = build(&typed(ty), &login(json!({ "x": value }), None));
    built.context.attributes.get("out").cloned()
}

/// The same claim `x` from the ID token and userinfo, mapped to `out` with `merge`.
fn two_sources(merge: &str) -> UpstreamMapping {
    cfg(&format!(
        r#"
        [[attributes]]
        claim = "x"
        source = "userinfo"
        [[attributes]]
        claim = "x"
        source = "id_token"
        [[mappings]]
        from = "x"
        to = "out"
        merge = "{merge}"
    "#
    ))
}

fn out(built: &Built) -> Option<&Value> {
    built.context.attributes.get("out")
}

// ---- types ----

#[test]
fn lone_string_becomes_one_element_string_array() {
    assert_eq!(
        coerced("string_array", json!("admin")),
        Some(json!(["admin"]))
    );
    assert_eq!(
        coerced("string_array", json!(["a", "b"])),
        Some(json!(["a", "b"]))
    );
}

#[test]
fn list_with_a_non_string_item_is_not_a_string_array() {
    let built = build(&typed("string_array"), &login(json!({"x": ["a", 1]}), None));
    assert_eq!(out(&built), None);
    assert!(
        built.warnings[0]
            .message
            .contains("items that are not strings")
    );
}

#[test]
fn integer_valued_float_fits_integer_but_a_fraction_does_not() {
    assert_eq!(coerced("integer", json!(3.0)), Some(json!(3)));
    assert_eq!(coerced("integer", json!(-7)), Some(json!(-7)));
    assert_eq!(coerced("integer", json!(3.5)), None);
    assert_eq!(coerced("integer", json!("3")), None);
}

#[test]
fn strings_are_never_coerced_to_numbers_or_booleans() {
    assert_eq!(coerced("boolean", json!("true")), None);
    assert_eq!(coerced("number", json!("1.5")), None);
    assert_eq!(coerced("boolean", json!(false)), Some(json!(false)));
    assert_eq!(coerced("number", json!(1.5)), Some(json!(1.5)));
}

#[test]
fn string_object_and_any_keep_only_what_fits() {
    assert_eq!(coerced("string", json!("a")), Some(json!("a")));
    assert_eq!(coerced("string", json!(["a"])), None);
    assert_eq!(coerced("object", json!({"k": 1})), Some(json!({"k": 1})));
    assert_eq!(coerced("object", json!([])), None);
    assert_eq!(coerced("any", json!([1, "two"])), Some(json!([1, "two"])));
}

#[test]
fn ill_typed_value_is_dropped_with_a_warning_naming_claim_source_and_type() {
    let built = build(&typed("boolean"), &login(json!({"x": "yes"}), None));
    assert_eq!(out(&built), None);
    assert_eq!(built.warnings.len(), 1);
    assert_eq!(built.warnings[0].path, "x");
    assert_eq!(
        built.warnings[0].message,
        "the ID token has a string where true or false (`boolean`) is expected; value dropped"
    );
    assert_eq!(
        built.warnings[0].to_string(),
        format!("x: {}", built.warnings[0].message)
    );
}

#[test]
fn ill_typed_required_value_fails_the_login() {
    let err = build_context(
        "auth0",
        &typed_required("integer"),
        &login(json!({"x": "12"}), None),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err,
        MappingError::WrongType {
            upstream: "auth0".into(),
            location: Source::IdToken,
            claim: "x".into(),
            expected: AttrType::Integer,
            found: "a string",
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("`x` in its ID token as a string, but a whole number is needed"),
        "{msg}"
    );
    assert!(
        msg.contains("An administrator must fix the upstream or the attribute's `type`"),
        "{msg}"
    );
}

// ---- standard claims ----

#[test]
fn standard_claims_are_mapped_under_their_own_names() {
    let built = build(
        &UpstreamMapping::default(),
        &login(
            json!({"email": "a@b.c", "email_verified": true, "address": {"country": "NZ"}, "updated_at": 1700000000}),
            None,
        ),
    );
    assert_eq!(
        Value::Object(built.context.attributes.clone()),
        json!({"email": "a@b.c", "email_verified": true, "address": {"country": "NZ"}, "updated_at": 1700000000})
    );
    let origin = &built.context.origins["email"][0];
    assert_eq!(origin.mapping, "standard");
    assert_eq!(origin.source, Source::IdToken);
    assert_eq!(built.context.subject, "auth0|42");
}

#[test]
fn email_verified_as_a_string_is_dropped_not_believed() {
    let built = build(
        &UpstreamMapping::default(),
        &login(
            json!({"email_verified": "true", "phone_number_verified": 1}),
            None,
        ),
    );
    assert!(built.context.attributes.is_empty());
    assert_eq!(built.warnings.len(), 2);
    assert_eq!(built.warnings[0].path, "email_verified");
}

#[test]
fn userinfo_overrides_the_id_token_for_standard_claims() {
    let built = build(
        &UpstreamMapping::default(),
        &login(
            json!({"name": "Ann"}),
            Some(json!({"name": "Ann Smith", "locale": "en"})),
        ),
    );
    assert_eq!(built.context.attributes["name"], "Ann Smith");
    assert_eq!(built.context.attributes["locale"], "en");
    assert_eq!(built.context.origins["name"].len(), 1);
    assert_eq!(built.context.origins["name"][0].source, Source::Userinfo);
}

#[test]
fn sub_and_unlisted_claims_are_never_mapped_implicitly() {
    let built = build(
        &UpstreamMapping::default(),
        &login(json!({"nickname": "a", "custom": 1}), None),
    );
    assert_eq!(
        Value::Object(built.context.attributes),
        json!({"nickname": "a"})
    );
}

#[test]
fn explicit_mappings_apply_after_the_standard_ones() {
    let c = cfg(r#"
        [[attributes]]
        claim = 'https://example\.com/email'
        source = "id_token"
        [[mappings]]
        from = 'https://example\.com/email'
        to = "email"
    "#);
    let built = build(
        &c,
        &login(
            json!({"email": "std@x", "https://example.com/email": "custom@x"}),
            None,
        ),
    );
    assert_eq!(built.context.attributes["email"], "custom@x");
    assert_eq!(
        built.context.origins["email"][0].mapping,
        r"https://example\.com/email → email"
    );
}

#[test]
fn id_token_without_sub_fails_with_a_message_for_the_user() {
    let claims = UpstreamClaims {
        id_token: object(json!({"email": "a@b.c"})),
        ..UpstreamClaims::default()
    };
    let err = build_context("auth0", &UpstreamMapping::default(), &claims, None).unwrap_err();
    assert!(err.to_string().contains("without a subject (`sub`) claim"));
}

// ---- merges ----

#[test]
fn set_lets_the_last_source_win() {
    let built = build(
        &two_sources("set"),
        &login(json!({"x": "id"}), Some(json!({"x": "ui"}))),
    );
    assert_eq!(out(&built), Some(&json!("ui")));
    let origins = &built.context.origins["out"];
    assert_eq!(origins.len(), 1);
    assert_eq!(
        (origins[0].source, origins[0].merge),
        (Source::Userinfo, Merge::Set)
    );
}

#[test]
fn set_keeps_the_earlier_source_when_a_later_one_is_absent() {
    let built = build(
        &two_sources("set"),
        &login(json!({"x": "id"}), Some(json!({}))),
    );
    assert_eq!(out(&built), Some(&json!("id")));
}

#[test]
fn set_if_empty_lets_the_first_source_win() {
    let built = build(
        &two_sources("set_if_empty"),
        &login(json!({"x": "id"}), Some(json!({"x": "ui"}))),
    );
    assert_eq!(out(&built), Some(&json!("id")));
    assert_eq!(built.context.origins["out"][0].source, Source::IdToken);
}

#[test]
fn set_if_empty_fills_a_target_left_empty() {
    let built = build(
        &two_sources("set_if_empty"),
        &login(json!({"x": ""}), Some(json!({"x": "ui"}))),
    );
    assert_eq!(out(&built), Some(&json!("ui")));
}

#[test]
fn add_unions_lists_in_first_seen_order() {
    let built = build(
        &two_sources("add"),
        &login(
            json!({"x": ["b", "a", "b"]}),
            Some(json!({"x": ["c", "a"]})),
        ),
    );
    assert_eq!(out(&built), Some(&json!(["b", "a", "c"])));
    let sources: Vec<Source> = built.context.origins["out"]
        .iter()
        .map(|o| o.source)
        .collect();
    assert_eq!(sources, [Source::IdToken, Source::Userinfo]);
}

#[test]
fn add_treats_strings_as_one_element_lists() {
    let built = build(
        &two_sources("add"),
        &login(json!({"x": "a"}), Some(json!({"x": ["b", "a"]}))),
    );
    assert_eq!(out(&built), Some(&json!(["a", "b"])));
    let built = build(&two_sources("add"), &login(json!({"x": "a"}), None));
    assert_eq!(out(&built), Some(&json!(["a"])));
}

#[test]
fn add_sums_numbers() {
    let built = build(
        &two_sources("add"),
        &login(json!({"x": 2}), Some(json!({"x": 3}))),
    );
    assert_eq!(out(&built), Some(&json!(5)));
    let built = build(
        &two_sources("add"),
        &login(json!({"x": 1.5}), Some(json!({"x": 1}))),
    );
    assert_eq!(out(&built), Some(&json!(2.5)));
}

#[test]
fn add_of_mismatched_kinds_keeps_the_existing_value_and_warns() {
    let built = build(
        &two_sources("add"),
        &login(json!({"x": ["a"]}), Some(json!({"x": 3}))),
    );
    assert_eq!(out(&built), Some(&json!(["a"])));
    assert_eq!(built.warnings.len(), 1);
    assert_eq!(built.warnings[0].path, "out");
    assert!(
        built.warnings[0]
            .message
            .contains("cannot add a number from `x` to a list")
    );
}

#[test]
fn set_or_clear_removes_a_standard_value_when_the_source_is_absent() {
    let c = cfg(r#"
        [[attributes]]
        claim = "custom_name"
        source = "id_token"
        [[mappings]]
        from = "custom_name"
        to = "name"
        merge = "set_or_clear"
    "#);
    let built = build(&c, &login(json!({"name": "Ann"}), None));
    assert!(!built.context.attributes.contains_key("name"));
    assert!(!built.context.origins.contains_key("name"));
    let built = build(
        &c,
        &login(json!({"name": "Ann", "custom_name": "Bo"}), None),
    );
    assert_eq!(built.context.attributes["name"], "Bo");
    assert_eq!(built.context.origins["name"][0].merge, Merge::SetOrClear);
}

#[test]
fn set_or_clear_treats_empty_values_as_absent() {
    for empty in [json!(""), json!([]), json!({}), json!(null)] {
        let c = cfg(r#"
            [[attributes]]
            claim = "n"
            source = "id_token"
            [[mappings]]
            from = "n"
            to = "name"
            merge = "set_or_clear"
        "#);
        let built = build(&c, &login(json!({"name": "Ann", "n": empty}), None));
        assert!(!built.context.attributes.contains_key("name"), "{empty}");
    }
}

#[test]
fn set_or_clear_does_not_let_one_empty_source_clear_another() {
    let built = build(
        &two_sources("set_or_clear"),
        &login(json!({"x": "id"}), Some(json!({"x": ""}))),
    );
    assert_eq!(out(&built), Some(&json!("id")));
}

#[test]
fn set_or_clear_prunes_parents_and_nested_origins() {
    let c = cfg(r#"
        [[attributes]]
        claim = "t"
        source = "id_token"
        [[attributes]]
        claim = "gone"
        source = "id_token"
        [[mappings]]
        from = "t"
        to = "org.tenant"
        [[mappings]]
        from = "gone"
        to = "org"
        merge = "set_or_clear"
    "#);
    let built = build(&c, &login(json!({"t": "acme"}), None));
    assert!(built.context.attributes.is_empty());
    assert!(built.context.origins.is_empty());
}

// ---- sources ----

#[test]
fn sources_apply_in_fixed_order_whatever_order_attributes_are_declared_in() {
    let mut reversed = two_sources("set");
    reversed.attributes.reverse();
    let claims = login(json!({"x": "id"}), Some(json!({"x": "ui"})));
    assert_eq!(
        build(&reversed, &claims),
        build(&two_sources("set"), &claims)
    );
}

#[test]
fn jwt_access_token_claims_apply_after_userinfo() {
    let c = cfg(r#"
        [[attributes]]
        claim = "x"
        source = "access_token"
        [[attributes]]
        claim = "x"
        source = "userinfo"
        [[mappings]]
        from = "x"
        to = "out"
    "#);
    let mut claims = login(json!({}), Some(json!({"x": "ui"})));
    claims.access_token = AccessTokenClaims::Jwt(object(json!({"x": "at"})));
    assert_eq!(out(&build(&c, &claims)), Some(&json!("at")));
}

#[test]
fn opaque_access_token_yields_no_claims_and_says_so() {
    let c = cfg(r#"
        [[attributes]]
        claim = "permissions"
        source = "access_token"
        [[mappings]]
        from = "permissions"
        to = "permissions"
    "#);
    let mut claims = login(json!({"permissions": ["from-id-token"]}), None);
    claims.access_token = AccessTokenClaims::Opaque;
    let built = build(&c, &claims);
    assert!(!built.context.attributes.contains_key("permissions"));
    assert!(built.warnings[0].message.contains("opaque"));
}

#[test]
fn required_claim_from_an_opaque_access_token_fails_the_login() {
    let mut c = cfg(r#"
        [[attributes]]
        claim = "permissions"
        source = "access_token"
        required = true
    "#);
    let mut claims = login(json!({}), None);
    claims.access_token = AccessTokenClaims::Opaque;
    let err = build_context("auth0", &c, &claims, None).unwrap_err();
    assert!(err.to_string().contains("`audience`"), "{err}");
    c.attributes[0].required = false;
    c.attributes[0].on_missing = OnMissing::Fail;
    assert!(matches!(
        build_context("auth0", &c, &claims, None),
        Err(MappingError::OpaqueAccessToken { .. })
    ));
}

// ---- paths ----

#[test]
fn escaped_namespaced_claims_map_into_nested_context_paths() {
    let c = cfg(r#"
        [[attributes]]
        claim = 'https://example\.com/app_metadata.tenant'
        source = "id_token"
        [[attributes]]
        claim = '["https://example.com/groups"]'
        source = "id_token"
        type = "string_array"
        [[mappings]]
        from = 'https://example\.com/app_metadata.tenant'
        to = "org.tenant"
        [[mappings]]
        from = 'https://example\.com/groups'
        to = 'teams["x.y"]'
    "#);
    let built = build(
        &c,
        &login(
            json!({"https://example.com/app_metadata": {"tenant": "acme", "plan": "pro"},
                   "https://example.com/groups": "eng"}),
            None,
        ),
    );
    assert_eq!(
        Value::Object(built.context.attributes.clone()),
        json!({"org": {"tenant": "acme"}, "teams": {"x.y": ["eng"]}})
    );
    let tenant = &built.context.origins["org.tenant"][0];
    assert_eq!(tenant.claim, r"https://example\.com/app_metadata.tenant");
    assert_eq!(
        tenant.mapping,
        r"https://example\.com/app_metadata.tenant → org.tenant"
    );
    assert!(built.context.origins.contains_key(r"teams.x\.y"));
}

#[test]
fn a_dot_inside_a_claim_name_is_not_nesting_unless_written_so() {
    let c = cfg(r#"
        [[attributes]]
        claim = "https://example.com/groups"
        source = "id_token"
    "#);
    // Unescaped, the path looks for {"https://example": {"com/groups": …}}; the upstream's flat claim is missing.
    let c2 = cfg(r#"
        [[attributes]]
        claim = 'https://example\.com/groups'
        source = "id_token"
        required = true
    "#);
    let claims = login(json!({"https://example.com/groups": ["a"]}), None);
    assert_eq!(c.attributes[0].claim.segments().len(), 2);
    assert!(build_context("auth0", &c2, &claims, None).is_ok());
    let mut required = c;
    required.attributes[0].required = true;
    assert!(build_context("auth0", &required, &claims, None).is_err());
}

// ---- missing claims ----

fn with_on_missing(on_missing: &str) -> UpstreamMapping {
    cfg(&format!(
        r#"
        [[attributes]]
        claim = "x"
        source = "id_token"
        on_missing = "{on_missing}"
        [[mappings]]
        from = "x"
        to = "out"
    "#
    ))
}

#[test]
fn on_missing_clear_leaves_the_attribute_absent_even_with_a_previous_value() {
    let c = with_on_missing("clear");
    let first = build(&c, &login(json!({"x": "v1"}), None)).context;
    let second = build_context("auth0", &c, &login(json!({}), None), Some(&first)).unwrap();
    assert_eq!(out(&second), None);
    assert!(second.warnings.is_empty());
}

#[test]
fn on_missing_keep_reuses_the_previous_logins_value() {
    let c = with_on_missing("keep");
    let first = build(&c, &login(json!({"x": ["v1"]}), None)).context;
    let second = build_context("auth0", &c, &login(json!({}), None), Some(&first)).unwrap();
    assert_eq!(out(&second), Some(&json!(["v1"])));
    let origin = &second.context.origins["out"][0];
    assert!(origin.kept);
    assert_eq!(origin.claim, "x");
    // Kept values survive a further login, and a fresh value replaces them.
    let third = build_context("auth0", &c, &login(json!({}), None), Some(&second.context)).unwrap();
    assert_eq!(out(&third), Some(&json!(["v1"])));
    let fourth = build_context(
        "auth0",
        &c,
        &login(json!({"x": "v2"}), None),
        Some(&third.context),
    )
    .unwrap();
    assert_eq!(out(&fourth), Some(&json!("v2")));
    assert!(!fourth.context.origins["out"][0].kept);
}

#[test]
fn on_missing_keep_ignores_a_previous_context_from_another_upstream_or_claim() {
    let c = with_on_missing("keep");
    let mut first = build(&c, &login(json!({"x": "v1"}), None)).context;
    first.upstream = "google".into();
    let second = build_context("auth0", &c, &login(json!({}), None), Some(&first)).unwrap();
    assert_eq!(out(&second), None);

    let other = build(&typed("any"), &login(json!({"x": "v1"}), None)).context;
    let mut renamed = other.clone();
    renamed.origins.get_mut("out").unwrap()[0].claim = "y".into();
    let third = build_context("auth0", &c, &login(json!({}), None), Some(&renamed)).unwrap();
    assert_eq!(out(&third), None);
    let fourth = build_context("auth0", &c, &login(json!({}), None), None).unwrap();
    assert_eq!(out(&fourth), None);
}

#[test]
fn on_missing_fail_fails_the_login_naming_claim_and_source() {
    let err = build_context(
        "auth0",
        &with_on_missing("fail"),
        &login(json!({}), None),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err,
        MappingError::MissingClaim {
            upstream: "auth0".into(),
            location: Source::IdToken,
            claim: "x".into()
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("did not send the claim `x` in its ID token"),
        "{msg}"
    );
    assert!(
        msg.contains("An administrator must fix the upstream"),
        "{msg}"
    );
}

#[test]
fn required_missing_claim_fails_whatever_on_missing_says() {
    let mut c = with_on_missing("keep");
    c.attributes[0].required = true;
    let first = build(&c, &login(json!({"x": "v1"}), None)).context;
    let err =
        build_context("auth0", &c, &login(json!({"x": null}), None), Some(&first)).unwrap_err();
    assert!(matches!(err, MappingError::MissingClaim { .. }));
}

#[test]
fn userinfo_claim_is_missing_when_userinfo_was_not_fetched() {
    let c = cfg(r#"
        [[attributes]]
        claim = "dept"
        source = "userinfo"
        required = true
    "#);
    let err = build_context("auth0", &c, &login(json!({"dept": "R&D"}), None), None).unwrap_err();
    assert!(
        err.to_string().contains("in its userinfo response"),
        "{err}"
    );
}

// ---- AMR and ACR ----

#[test]
fn configured_amr_replaces_the_upstreams() {
    let c = cfg(r#"amr = ["pwd", "mfa"]"#);
    let built = build(&c, &login(json!({"amr": ["otp"]}), None));
    assert_eq!(built.context.amr, Some(vec!["pwd".into(), "mfa".into()]));
}

#[test]
fn configured_amr_applies_when_the_upstream_gave_none() {
    let c = cfg(r#"amr = "mfa""#);
    let built = build(&c, &login(json!({}), None));
    assert_eq!(built.context.amr, Some(vec!["mfa".into()]));
}

#[test]
fn upstream_amr_is_kept_when_none_is_configured() {
    let built = build(
        &UpstreamMapping::default(),
        &login(json!({"amr": ["pwd", "otp"]}), None),
    );
    assert_eq!(built.context.amr, Some(vec!["pwd".into(), "otp".into()]));
    let built = build(&UpstreamMapping::default(), &login(json!({}), None));
    assert_eq!(built.context.amr, None);
}

#[test]
fn malformed_upstream_amr_and_acr_are_ignored_with_warnings() {
    let built = build(
        &UpstreamMapping::default(),
        &login(json!({"amr": "pwd", "acr": 2}), None),
    );
    assert_eq!(built.context.amr, None);
    assert_eq!(built.context.acr, None);
    let paths: Vec<&str> = built.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(paths, ["amr", "acr"]);
}

#[test]
fn upstream_acr_is_kept_when_a_string() {
    let built = build(
        &UpstreamMapping::default(),
        &login(json!({"acr": "urn:mace:incommon:iap:silver"}), None),
    );
    assert_eq!(
        built.context.acr.as_deref(),
        Some("urn:mace:incommon:iap:silver")
    );
}

// ---- the context itself ----

#[test]
fn context_round_trips_through_json() {
    let c = with_on_missing("keep");
    let first = build(&c, &login(json!({"x": "v1"}), None)).context;
    let second = build_context(
        "auth0",
        &c,
        &login(json!({"amr": ["pwd"]}), None),
        Some(&first),
    )
    .unwrap()
    .context;
    let json = serde_json::to_string(&second).unwrap();
    assert!(json.contains(r#""kept":true"#));
    assert_eq!(serde_json::from_str::<AuthContext>(&json).unwrap(), second);
}

/// Contexts are stored as JSON and read back by later logins and admin pages, so their exact bytes are
/// part of the format: this literal was produced before origins shared their strings.
#[test]
fn stored_context_json_keeps_its_exact_form() {
    let c = cfg(r#"
        [[attributes]]
        claim = 'https://example\.com/app_metadata.tenant'
        source = "id_token"
        [[attributes]]
        claim = "groups"
        source = "id_token"
        [[attributes]]
        claim = "groups"
        source = "userinfo"
        [[attributes]]
        claim = "x"
        source = "id_token"
        on_missing = "keep"
        [[mappings]]
        from = 'https://example\.com/app_metadata.tenant'
        to = "org.tenant"
        [[mappings]]
        from = "groups"
        to = 'teams.x\.y'
        merge = "add"
        [[mappings]]
        from = "x"
        to = "out"
    "#);
    let first = build(&c, &login(json!({"x": "v1"}), None)).context;
    let second = build_context(
        "auth0",
        &c,
        &login(
            json!({
                "https://example.com/app_metadata": {"tenant": "acme"},
                "groups": ["eng"],
                "email": "a@b.c",
                "amr": ["pwd"],
                "acr": "silver",
            }),
            Some(json!({"groups": "ops", "name": "Ann"})),
        ),
        Some(&first),
    )
    .unwrap()
    .context;
    let expected = concat!(
        r#"{"upstream":"auth0","subject":"auth0|42","attributes":{"name":"Ann","email":"a@b.c","org":{"tenant":"acme"},"teams":{"x.y":["eng","ops"]},"out":"v1"},"#,
        r#""origins":{"email":[{"upstream":"auth0","source":"id_token","claim":"email","mapping":"standard","merge":"set"}],"#,
        r#""name":[{"upstream":"auth0","source":"userinfo","claim":"name","mapping":"standard","merge":"set"}],"#,
        r#""org.tenant":[{"upstream":"auth0","source":"id_token","claim":"https://example\\.com/app_metadata.tenant","mapping":"https://example\\.com/app_metadata.tenant → org.tenant","merge":"set"}],"#,
        r#""out":[{"upstream":"auth0","source":"id_token","claim":"x","mapping":"x → out","merge":"set","kept":true}],"#,
        r#""teams.x\\.y":[{"upstream":"auth0","source":"id_token","claim":"groups","mapping":"groups → teams.x\\.y","merge":"add"},{"upstream":"auth0","source":"userinfo","claim":"groups","mapping":"groups → teams.x\\.y","merge":"add"}]},"amr":["pwd"],"#,
        r#""acr":"silver"}"#,
    );
    assert_eq!(serde_json::to_string(&second).unwrap(), expected);
    assert_eq!(
        serde_json::from_str::<AuthContext>(expected).unwrap(),
        second
    );
}

/// Four attributes, one per merge strategy, each `x_{strategy}` mapped to `{strategy}`.
fn one_per_strategy() -> UpstreamMapping {
    let mut text = String::new();
    for merge in ["set", "set_if_empty", "add", "set_or_clear"] {
        text.push_str(&format!(
            "[[attributes]]\nclaim = \"x_{merge}\"\nsource = \"id_token\"\ntype = \"any\"\n\
             [[mappings]]\nfrom = \"x_{merge}\"\nto = \"{merge}\"\nmerge = \"{merge}\"\n"
        ));
    }
    cfg(&text)
}

#[test]
fn an_imported_profile_merges_with_the_stored_context_by_each_strategy() {
    let config = one_per_strategy();
    let stored = build(
        &config,
        &login(
            json!({"x_set": "old", "x_set_if_empty": "first", "x_add": ["a"], "x_set_or_clear": 1}),
            None,
        ),
    )
    .context;
    // A profile with new values for each.
    let all = login(
        json!({"x_set": "new", "x_set_if_empty": "second", "x_add": ["b"], "x_set_or_clear": 2}),
        None,
    );
    let merged = build_onto("auth0", &config, &all, Some(&stored))
        .unwrap()
        .context;
    assert_eq!(
        Value::Object(merged.attributes),
        json!({"set": "new", "set_if_empty": "first", "add": ["a", "b"], "set_or_clear": 2})
    );
    // A profile with none of them: set and set_if_empty keep, add keeps, set_or_clear clears.
    let none = login(json!({}), None);
    let merged = build_onto("auth0", &config, &none, Some(&stored))
        .unwrap()
        .context;
    assert_eq!(
        Value::Object(merged.attributes),
        json!({"set": "old", "set_if_empty": "first", "add": ["a"]})
    );
    // A login starts afresh: nothing of the stored context is kept.
    let login_only = build_context("auth0", &config, &none, Some(&stored)).unwrap();
    assert!(login_only.context.attributes.is_empty());
    // A stored context of another upstream is not merged into.
    let merged = build_onto("okta", &config, &none, Some(&stored))
        .unwrap()
        .context;
    assert!(merged.attributes.is_empty());
}

fn wildcard_config() -> UpstreamMapping {
    cfg(r#"
        [[attributes]]
        claim = 'https://example\.com/groups'
        source = "id_token"
        type = "string_array"
        [[attributes]]
        claim = 'https://example\.com/*'
        source = "id_token"
        [[attributes]]
        claim = "app_metadata.*"
        source = "userinfo"
        [[mappings]]
        from = 'https://example\.com/groups'
        to = "groups"
        [[mappings]]
        from = 'https://example\.com/*'
        to = "ext.*"
        [[mappings]]
        from = "app_metadata.*"
        to = "meta.*"
    "#)
}

#[test]
fn the_remaining_claims_of_a_namespace_land_under_the_prefix_each_with_its_origin() {
    let claims = login(
        json!({
            "https://example.com/groups": ["staff"],
            "https://example.com/plan": "gold",
            "https://example.com/seats": 3,
            "https://other.example/x": 1,
            "email": "a@example.com",
        }),
        Some(json!({"sub": "auth0|42", "app_metadata": {"region": "eu", "beta": true}})),
    );
    let built = build(&wildcard_config(), &claims);
    let attrs = Value::Object(built.context.attributes.clone());
    assert_eq!(attrs["groups"], json!(["staff"]));
    // Groups has an attribute of its own, so it is not among "the remaining".
    assert_eq!(attrs["ext"], json!({"plan": "gold", "seats": 3}));
    assert_eq!(attrs["meta"], json!({"beta": true, "region": "eu"}));
    assert_eq!(attrs["email"], "a@example.com");
    let origins: Vec<&String> = built.context.origins.keys().collect();
    for path in ["ext.plan", "ext.seats", "meta.region", "meta.beta"] {
        assert!(origins.iter().any(|o| *o == path), "{path} in {origins:?}");
    }
    let plan = &built.context.origins["ext.plan"][0];
    assert_eq!(plan.claim.as_ref(), r"https://example\.com/plan");
}

#[test]
fn a_wildcard_never_takes_the_tokens_own_claims_or_writes_a_reserved_one() {
    let config = cfg(r#"
        [[attributes]]
        claim = "*"
        source = "id_token"
        [[mappings]]
        from = "*"
        to = "*"
    "#);
    let claims = login(
        json!({"iss": "https://up", "aud": "x", "nonce": "n", "email": "a@example.com", "plan": "gold"}),
        None,
    );
    let built = build(&config, &claims);
    let attrs = Value::Object(built.context.attributes);
    assert_eq!(attrs["plan"], "gold");
    for taken in ["iss", "aud", "nonce", "sub"] {
        assert!(attrs.get(taken).is_none(), "{taken} in {attrs}");
    }
}

#[test]
fn wildcards_must_pair_and_cannot_be_required() {
    let single_target = cfg(r#"
        [[attributes]]
        claim = 'https://example\.com/*'
        source = "id_token"
        [[mappings]]
        from = 'https://example\.com/*'
        to = "ext"
    "#);
    let msg = crate::claims::validate_upstream(&single_target, false)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("`to` must end in `*`"), "{msg}");
    let wildcard_target = cfg(r#"
        [[attributes]]
        claim = "plan"
        source = "id_token"
        [[mappings]]
        from = "plan"
        to = "ext.*"
    "#);
    let msg = crate::claims::validate_upstream(&wildcard_target, false)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("only a mapping from a wildcard"), "{msg}");
    let required = cfg(r#"
        [[attributes]]
        claim = "app_metadata.*"
        source = "id_token"
        required = true
    "#);
    let msg = crate::claims::validate_upstream(&required, false)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("cannot be `required`"), "{msg}");
    assert!(crate::claims::validate_upstream(&wildcard_config(), true).is_ok());
}

#[test]
fn sum_adds_numbers_and_refuses_anything_else() {
    let config = cfg(r#"
        [[attributes]]
        claim = "points"
        source = "id_token"
        [[mappings]]
        from = "points"
        to = "points"
        merge = "sum"
    "#);
    let stored = build(&config, &login(json!({"points": 5}), None)).context;
    let more = build_onto(
        "auth0",
        &config,
        &login(json!({"points": 2.5}), None),
        Some(&stored),
    )
    .unwrap();
    assert_eq!(more.context.attributes["points"], json!(7.5));
    let words = build_onto(
        "auth0",
        &config,
        &login(json!({"points": "ten"}), None),
        Some(&stored),
    )
    .unwrap();
    assert_eq!(words.context.attributes["points"], json!(5));
    assert!(
        words
            .warnings
            .iter()
            .any(|w| w.message.contains("`sum` adds numbers")),
        "{:?}",
        words.warnings
    );
}

#[test]
fn a_wildcard_to_the_top_level_cannot_plant_a_standard_claim() {
    let config = cfg(r#"
        [[attributes]]
        claim = "user_metadata.*"
        source = "id_token"
        [[mappings]]
        from = "user_metadata.*"
        to = "*"
    "#);
    let claims = login(
        json!({
            "email": "a@example.com",
            "email_verified": false,
            "user_metadata": {"email_verified": true, "email": "victim@example.com", "shoe": 42}
        }),
        None,
    );
    let attrs = Value::Object(build(&config, &claims).context.attributes);
    assert_eq!(attrs["email_verified"], false, "{attrs}");
    assert_eq!(attrs["email"], "a@example.com");
    assert_eq!(attrs["shoe"], 42);
}

#[test]
fn an_expression_computes_a_value_from_the_claims_and_the_context() {
    let c = cfg(r#"
        [[mappings]]
        expr = "id_token['https://example.com/groups'].map(g, 'team:' + g.lowerAscii())"
        to = "teams"
        [[mappings]]
        expr = "context.teams.size()"
        to = "team_count"
    "#);
    let built = build(
        &c,
        &login(json!({"https://example.com/groups": ["Ops", "Dev"]}), None),
    );
    assert_eq!(
        built.context.attributes["teams"],
        json!(["team:ops", "team:dev"])
    );
    assert_eq!(built.context.attributes["team_count"], json!(2));
    let origin = &built.context.origins["teams"][0];
    assert_eq!(origin.source, Source::Computed);
    assert_eq!(
        origin.mapping.as_str(),
        "id_token['https://example.com/groups'].map(g, 'team:' + g.lowerAscii()) → teams"
    );
}

#[test]
fn when_skips_a_mapping_whose_condition_is_false() {
    let c = cfg(r#"
        [[attributes]]
        claim = "department"
        source = "id_token"
        [[mappings]]
        from = "department"
        to = "dept"
        when = "id_token.email_verified == true"
    "#);
    let verified = build(
        &c,
        &login(json!({"department": "ops", "email_verified": true}), None),
    );
    assert_eq!(verified.context.attributes["dept"], json!("ops"));
    let unverified = build(
        &c,
        &login(json!({"department": "ops", "email_verified": false}), None),
    );
    assert!(unverified.context.attributes.get("dept").is_none());
    // A condition that cannot be evaluated skips the mapping with a warning.
    let absent = build(&c, &login(json!({"department": "ops"}), None));
    assert!(absent.context.attributes.get("dept").is_none());
    assert!(absent.warnings.iter().any(|w| w.message.contains("`when`")));
}

#[test]
fn an_expression_error_follows_the_mappings_on_missing() {
    let mapping = |on_missing: &str| {
        cfg(&format!(
            r#"
            [[mappings]]
            expr = "id_token.plan.upperAscii()"
            to = "plan"
            on_missing = "{on_missing}"
        "#
        ))
    };
    let with_plan = login(json!({"plan": "gold"}), None);
    let without = login(json!({}), None);
    // clear: a warning and no value.
    let cleared = build(&mapping("clear"), &without);
    assert!(cleared.context.attributes.get("plan").is_none());
    assert!(cleared.warnings.iter().any(|w| w.path == "plan"));
    // keep: the previous login's value, marked kept.
    let first = build(&mapping("keep"), &with_plan);
    let kept = build_context("auth0", &mapping("keep"), &without, Some(&first.context)).unwrap();
    assert_eq!(kept.context.attributes["plan"], json!("GOLD"));
    assert!(kept.context.origins["plan"][0].kept);
    // fail: the login fails, saying which mapping.
    let err = build_context("auth0", &mapping("fail"), &without, None).unwrap_err();
    assert!(
        matches!(&err, MappingError::Computed { mapping, .. } if mapping.starts_with("id_token.plan")),
        "{err}"
    );
    // null counts as missing without a warning.
    let null = cfg(r#"
        [[mappings]]
        expr = "null"
        to = "x"
    "#);
    let built = build(&null, &with_plan);
    assert!(built.context.attributes.get("x").is_none());
    assert!(built.warnings.is_empty());
}

#[test]
fn transforms_edit_a_copied_value_and_a_preview_sees_each_step() {
    let c = cfg(r#"
        [[attributes]]
        claim = "groups"
        source = "id_token"
        type = "string_array"
        [[mappings]]
        from = "groups"
        to = "teams"
        merge = "add"
        transform = [{ keep = "^okta-" }, { replace = { pattern = "^okta-", with = "" } }, "lowercase"]
    "#);
    let claims = login(json!({"groups": ["okta-Ops", "staff"]}), None);
    assert!(
        build(&c, &claims).steps.is_empty(),
        "only a preview records steps"
    );
    let traced = build_traced("auth0", &c, &claims, None).unwrap();
    assert_eq!(traced.context.attributes["teams"], json!(["ops"]));
    let steps: Vec<(&str, &Value, &Value)> = traced
        .steps
        .iter()
        .map(|s| (s.step.as_str(), &s.input, &s.output))
        .collect();
    assert_eq!(
        steps,
        [
            (
                "keep /^okta-/",
                &json!(["okta-Ops", "staff"]),
                &json!(["okta-Ops"])
            ),
            (
                "replace /^okta-/ with \"\"",
                &json!(["okta-Ops"]),
                &json!(["Ops"])
            ),
            ("lowercase", &json!(["Ops"]), &json!(["ops"])),
        ]
    );
    // A value a transform cannot take is dropped with a warning.
    let bad = login(json!({"groups": "okta-x"}), None);
    let upper = cfg(r#"
        [[attributes]]
        claim = "age"
        source = "id_token"
        [[mappings]]
        from = "age"
        to = "age"
        transform = ["uppercase"]
    "#);
    let built = build(&upper, &login(json!({"age": 3}), None));
    assert!(built.context.attributes.get("age").is_none());
    assert!(
        built
            .warnings
            .iter()
            .any(|w| w.message.contains("could not be transformed"))
    );
    assert_eq!(build(&c, &bad).context.attributes["teams"], json!(["x"]));
}

#[test]
fn a_when_that_cannot_be_evaluated_fails_a_mapping_the_login_cannot_do_without() {
    let c = cfg(r#"
        [[mappings]]
        expr = "id_token.plan"
        when = "id_token.tier > 1"
        to = "plan"
        on_missing = "fail"
    "#);
    // `tier` is absent: the condition errs, and the mapping says the login needs it.
    let err = build_context("auth0", &c, &login(json!({"plan": "gold"}), None), None).unwrap_err();
    assert!(
        err.to_string()
            .contains("its `when` could not be evaluated"),
        "{err}"
    );
    let built = build(&c, &login(json!({"plan": "gold", "tier": 2}), None));
    assert_eq!(built.context.attributes["plan"], json!("gold"));
}
