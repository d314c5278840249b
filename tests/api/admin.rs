//! The admin API: who may call it, live configuration changes (here and on another replica),
//! refusal of invalid changes with check-config's messages, the audit log, generated client
//! secrets, users, and the OpenAPI document.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// A machine client allowed to administer Herald, and an app for users.
const ADMIN_CLIENT: &str = r#"
[[clients]]
client_id = "ops"
client_secret = "ops-secret-for-tests"
redirect_uris = []
scopes = ["herald:admin", "api"]
grant_types = ["client_credentials"]
"#;

/// Every admin endpoint, with a body for those that take one.
fn endpoints() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/admin/api/openapi.json", None),
        (Method::GET, "/admin/api/upstreams", None),
        (
            Method::POST,
            "/admin/api/upstreams",
            Some(json!({"id": "x", "kind": "dev"})),
        ),
        (Method::GET, "/admin/api/upstreams/test", None),
        (
            Method::PUT,
            "/admin/api/upstreams/test",
            Some(json!({"kind": "oidc", "issuer": "https://idp.example.com", "client_id": "h"})),
        ),
        (Method::DELETE, "/admin/api/upstreams/test", None),
        (Method::GET, "/admin/api/upstreams/test/attributes", None),
        (
            Method::PUT,
            "/admin/api/upstreams/test/attributes",
            Some(json!([])),
        ),
        (Method::GET, "/admin/api/upstreams/test/mappings", None),
        (
            Method::PUT,
            "/admin/api/upstreams/test/mappings",
            Some(json!([])),
        ),
        (Method::GET, "/admin/api/clients", None),
        (
            Method::POST,
            "/admin/api/clients",
            Some(json!({"client_id": "x", "scopes": ["openid"], "redirect_uris": [APP_CB]})),
        ),
        (Method::GET, "/admin/api/clients/app", None),
        (
            Method::PUT,
            "/admin/api/clients/app",
            Some(json!({"scopes": ["openid"], "redirect_uris": [APP_CB]})),
        ),
        (Method::DELETE, "/admin/api/clients/app", None),
        (
            Method::POST,
            "/admin/api/clients/app/secret",
            Some(json!({"grace": "1h"})),
        ),
        (Method::GET, "/admin/api/scopes", None),
        (Method::PUT, "/admin/api/scopes", Some(json!({}))),
        (
            Method::POST,
            "/admin/api/preview",
            Some(json!({"id_token": {}})),
        ),
        (Method::GET, "/admin/api/lineage", None),
        (Method::GET, "/admin/api/users", None),
        (Method::GET, "/admin/api/users/someone", None),
        (Method::GET, "/admin/api/users/someone/consents", None),
        (Method::DELETE, "/admin/api/users/someone/grants/app", None),
        (Method::GET, "/admin/api/audit", None),
        (Method::GET, "/admin/api/no-such-thing", None),
    ]
}

#[tokio::test]
async fn every_admin_endpoint_refuses_missing_and_wrong_credentials_and_user_tokens() {
    let app = spawn_app_with(ADMIN_CLIENT).await;
    let user_token = app.tokens(&AuthParams::new("app", "openid profile")).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let m2m = app.client_credentials("m2m", SECRET, "api").await;
    for (method, path, body) in endpoints() {
        let res = app.admin(method.clone(), path, None, body.as_ref()).await;
        assert_eq!(res.status(), 401, "{method} {path} without credentials");
        let challenge = res.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["error"], "invalid_token");

        for wrong in ["wrong", "bootstrap-admin-token-for-test", "a.b.c"] {
            let res = app
                .admin(method.clone(), path, Some(wrong), body.as_ref())
                .await;
            assert_eq!(res.status(), 401, "{method} {path} with `{wrong}`");
            assert!(res.headers().contains_key("www-authenticate"));
        }
        let res = app
            .admin(method.clone(), path, Some(&user_token), body.as_ref())
            .await;
        assert_eq!(res.status(), 403, "{method} {path} with a user's token");
        let res = app
            .admin(method.clone(), path, Some(&m2m), body.as_ref())
            .await;
        assert_eq!(res.status(), 403, "{method} {path} without herald:admin");
    }
    // Nothing was changed by any of those.
    assert_eq!(app.state.config_version(), 1);
}

#[tokio::test]
async fn the_bootstrap_token_and_a_herald_admin_client_token_both_administer() {
    let app = spawn_app_with(ADMIN_CLIENT).await;
    let res = app
        .admin(Method::GET, "/admin/api/clients", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(res.status(), 200);
    let token = app
        .client_credentials("ops", "ops-secret-for-tests", "herald:admin")
        .await;
    let res = app
        .admin(Method::GET, "/admin/api/clients", Some(&token), None)
        .await;
    assert_eq!(res.status(), 200);
    let ids: Vec<String> = res
        .json::<Vec<Value>>()
        .await
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains(&"ops".to_string()) && ids.contains(&"app".to_string()));
    // A change by the client is audited under its name.
    let res = app
        .admin(
            Method::PUT,
            "/admin/api/clients/spa",
            Some(&token),
            Some(&json!({"client_name": "Single page", "scopes": ["openid"], "redirect_uris": [APP_CB]})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let audit = app
        .admin_ok(Method::GET, "/admin/api/audit", None, 200)
        .await;
    assert_eq!(audit[0]["actor"], "client:ops");

    // Its token stops working when the client loses the scope.
    app.admin_ok(
        Method::PUT,
        "/admin/api/clients/ops",
        Some(json!({"scopes": ["api"], "grant_types": ["client_credentials"]})),
        200,
    )
    .await;
    let res = app
        .admin(Method::GET, "/admin/api/clients", Some(&token), None)
        .await;
    assert_eq!(res.status(), 403);
}

/// A machine client for each of the editor and auditor roles.
const ROLE_CLIENTS: &str = r#"
[[clients]]
client_id = "editor-bot"
client_secret = "editor-secret-for-tests"
redirect_uris = []
scopes = ["herald:edit"]
grant_types = ["client_credentials"]

[[clients]]
client_id = "auditor-bot"
client_secret = "auditor-secret-for-tests"
redirect_uris = []
scopes = ["herald:read"]
grant_types = ["client_credentials"]
"#;

#[tokio::test]
async fn each_role_scope_does_what_its_role_may_and_a_refusal_names_the_role_it_needs() {
    let app = spawn_app_with(&format!("{ADMIN_CLIENT}{ROLE_CLIENTS}")).await;
    let editor = app
        .client_credentials("editor-bot", "editor-secret-for-tests", "herald:edit")
        .await;
    let auditor = app
        .client_credentials("auditor-bot", "auditor-secret-for-tests", "herald:read")
        .await;
    let put_app = json!({"client_name": "Edited", "scopes": ["openid"], "redirect_uris": [APP_CB]});
    let scopes = app
        .admin_ok(Method::GET, "/admin/api/scopes", None, 200)
        .await;
    // (method, path, body, editor's status, auditor's status)
    let cases: Vec<(Method, &str, Option<Value>, u16, u16)> = vec![
        (Method::GET, "/admin/api/clients", None, 200, 200),
        (
            Method::GET,
            "/admin/api/upstreams/test/mappings",
            None,
            200,
            200,
        ),
        (Method::GET, "/admin/api/lineage", None, 200, 200),
        (Method::GET, "/admin/api/audit", None, 200, 200),
        (Method::GET, "/admin/api/openapi.json", None, 200, 200),
        (
            Method::PUT,
            "/admin/api/clients/app",
            Some(put_app),
            200,
            403,
        ),
        (
            Method::POST,
            "/admin/api/clients/app/secret",
            Some(json!({})),
            200,
            403,
        ),
        (Method::PUT, "/admin/api/scopes", Some(scopes), 200, 403),
        (Method::GET, "/admin/api/users", None, 403, 200),
        (Method::GET, "/admin/api/users/someone", None, 403, 404),
        (
            Method::GET,
            "/admin/api/webhooks/deliveries",
            None,
            403,
            200,
        ),
        (
            Method::DELETE,
            "/admin/api/users/someone/grants/app",
            None,
            403,
            403,
        ),
        (Method::DELETE, "/admin/api/users/someone", None, 403, 403),
        (
            Method::POST,
            "/admin/api/upstreams/test/test",
            None,
            200,
            403,
        ),
        (
            Method::POST,
            "/admin/api/preview",
            Some(json!({"id_token": {}})),
            200,
            200,
        ),
        (
            Method::GET,
            "/admin/api/users/someone/consents",
            None,
            403,
            404,
        ),
        (
            Method::GET,
            "/admin/api/users/someone/export",
            None,
            403,
            403,
        ),
        (
            Method::POST,
            "/admin/api/clients",
            Some(json!({"client_id": "by-bot", "scopes": ["openid"], "redirect_uris": [APP_CB]})),
            201,
            403,
        ),
        (Method::DELETE, "/admin/api/clients/by-bot", None, 204, 403),
    ];
    for (method, path, body, for_editor, for_auditor) in cases {
        for (who, token, expected) in [
            ("editor", &editor, for_editor),
            ("auditor", &auditor, for_auditor),
        ] {
            let res = app
                .admin(method.clone(), path, Some(token), body.as_ref())
                .await;
            let status = res.status().as_u16();
            let challenge = res
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_string());
            let text = res.text().await.unwrap();
            assert_eq!(status, expected, "{who}: {method} {path}: {text}");
            if status == 403 {
                let err: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(err["error"], "insufficient_scope", "{text}");
                let said = str_of(&err, "error_description");
                assert!(said.contains(&format!("carries the {who} role")), "{said}");
                // The challenge names the least scope that would do (RFC 6750 §3: the scopes
                // needed, all of them), never the caller's own.
                let challenge = challenge.unwrap();
                let scope = challenge
                    .split("scope=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_else(|| panic!("no scope in {challenge}"));
                assert!(
                    ["herald:admin", "herald:edit", "herald:read"].contains(&scope),
                    "one scope, not alternatives: {challenge}"
                );
                assert!(
                    !challenge.contains(if who == "editor" {
                        "herald:edit"
                    } else {
                        "herald:read"
                    }),
                    "{challenge}"
                );
            }
        }
    }
    // The editor's changes are audited under its name.
    let audit = app
        .admin_ok(Method::GET, "/admin/api/audit", None, 200)
        .await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "client:editor-bot" && e["action"] == "client.update"),
        "{audit}"
    );
    // A role scope in the token but not in the client's registration counts for nothing.
    app.admin_ok(
        Method::PUT,
        "/admin/api/clients/editor-bot",
        Some(json!({"scopes": ["api"], "grant_types": ["client_credentials"]})),
        200,
    )
    .await;
    let res = app
        .admin(Method::GET, "/admin/api/clients", Some(&editor), None)
        .await;
    assert_eq!(res.status(), 403);
}

/// The review's privilege escalation: an editor may change clients and mappings, but never in a
/// way that reaches a role (a client holding a herald: scope, a mapping to the role claim).
#[tokio::test]
async fn an_editor_cannot_reach_a_role_through_a_client_or_a_mapping() {
    let both = r#"
[[clients]]
client_id = "both-bot"
client_secret = "both-secret-for-tests"
redirect_uris = []
scopes = ["herald:edit", "herald:read"]
grant_types = ["client_credentials"]
"#;
    let app = spawn_app_full(
        "[admin]\nrole_claim = \"groups\"\nroles = { admin = \"admins\" }",
        "",
        &format!("{ADMIN_CLIENT}{ROLE_CLIENTS}{both}"),
    )
    .await;
    let editor = app
        .client_credentials("editor-bot", "editor-secret-for-tests", "herald:edit")
        .await;
    let refused = |res: reqwest::Response| async move {
        assert_eq!(res.status(), 403);
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["error"], "insufficient_scope");
        let said = str_of(&err, "error_description");
        assert!(said.contains("only an admin may"), "{said}");
        assert!(said.contains("herald:admin"), "{said}");
    };
    let version = app.state.config_version();
    let sneaky = json!({"client_id": "sneaky", "scopes": ["herald:admin"],
                        "grant_types": ["client_credentials"]});
    let res = app
        .admin(
            Method::POST,
            "/admin/api/clients",
            Some(&editor),
            Some(&sneaky),
        )
        .await;
    refused(res).await;
    let res = app
        .admin(
            Method::POST,
            "/admin/api/clients/ops/secret",
            Some(&editor),
            Some(&json!({})),
        )
        .await;
    refused(res).await;
    let res = app
        .admin(
            Method::PUT,
            "/admin/api/clients/editor-bot",
            Some(&editor),
            Some(&json!({"scopes": ["herald:admin"], "grant_types": ["client_credentials"]})),
        )
        .await;
    refused(res).await;
    let res = app
        .admin(
            Method::DELETE,
            "/admin/api/clients/ops",
            Some(&editor),
            None,
        )
        .await;
    refused(res).await;
    let mappings = app
        .admin_ok(Method::GET, "/admin/api/upstreams/test/mappings", None, 200)
        .await;
    let mut to_groups = mappings.as_array().unwrap().clone();
    to_groups.push(json!({"from": "https://example\\.com/tenant", "to": "groups"}));
    let res = app
        .admin(
            Method::PUT,
            "/admin/api/upstreams/test/mappings",
            Some(&editor),
            Some(&Value::Array(to_groups)),
        )
        .await;
    refused(res).await;
    assert_eq!(app.state.config_version(), version, "nothing was changed");
    // The admin client's secret still works.
    app.client_credentials("ops", "ops-secret-for-tests", "herald:admin")
        .await;

    // What reaches no role stays the editor's: a mapping to another claim.
    let mut to_team = mappings.as_array().unwrap().clone();
    to_team.push(json!({"from": "https://example\\.com/tenant", "to": "team"}));
    let res = app
        .admin(
            Method::PUT,
            "/admin/api/upstreams/test/mappings",
            Some(&editor),
            Some(&Value::Array(to_team)),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    // And an admin may do what the editor may not.
    app.admin_ok(Method::POST, "/admin/api/clients", Some(sneaky), 201)
        .await;

    // A client holding both the editor's and the auditor's scope may do what either may.
    let both = app
        .client_credentials(
            "both-bot",
            "both-secret-for-tests",
            "herald:edit herald:read",
        )
        .await;
    for (method, path, body, status) in [
        (Method::GET, "/admin/api/users", None, 200),
        (
            Method::PUT,
            "/admin/api/clients/app",
            Some(json!({"scopes": ["openid"], "redirect_uris": [APP_CB]})),
            200,
        ),
        (
            Method::DELETE,
            "/admin/api/users/someone/grants/app",
            None,
            403,
        ),
    ] {
        let res = app
            .admin(method.clone(), path, Some(&both), body.as_ref())
            .await;
        assert_eq!(res.status(), status, "{method} {path}");
    }
}

#[tokio::test]
async fn a_mapping_changed_through_the_api_shows_in_the_next_logins_id_token() {
    let app = spawn_app().await;
    app.upstream.set(|b| {
        b.id_claims
            .insert("https://example.com/dept".into(), json!("finance"));
    });
    let p = AuthParams::new("app", "openid groups");
    let before = payload(app.tokens(&p).await["id_token"].as_str().unwrap());
    assert_eq!(before["groups"], json!(["staff", "admins"]));

    let mut attributes = app
        .admin_ok(
            Method::GET,
            "/admin/api/upstreams/test/attributes",
            None,
            200,
        )
        .await;
    attributes.as_array_mut().unwrap().push(json!({
        "claim": "https://example\\.com/dept", "source": "id_token", "type": "string"
    }));
    app.admin_ok(
        Method::PUT,
        "/admin/api/upstreams/test/attributes",
        Some(attributes),
        200,
    )
    .await;
    let mappings = app
        .admin_ok(
            Method::PUT,
            "/admin/api/upstreams/test/mappings",
            Some(json!([
                {"from": "https://example\\.com/dept", "to": "groups"},
                {"from": "https://example\\.com/tenant", "to": "org.tenant"}
            ])),
            200,
        )
        .await;
    assert_eq!(mappings[0]["to"], "groups");
    assert_eq!(app.state.config_version(), 3);

    // The next login at the upstream (a new browser: the first one's login is reused).
    let p = AuthParams::new("app", "openid groups");
    let q = app.login(&browser(), &p).await;
    let res = app.redeem(&p, &q["code"]).await;
    let tokens: Value = res.json().await.unwrap();
    let after = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(after["groups"], "finance");
}

#[tokio::test]
async fn an_invalid_change_is_refused_with_the_check_config_message_and_changes_nothing() {
    let app = spawn_app_with("[[upstreams]]\nid = \"dev\"\nkind = \"dev\"\n").await;
    let before = app
        .admin_ok(Method::GET, "/admin/api/upstreams/test/mappings", None, 200)
        .await;

    let err = app
        .admin_ok(
            Method::PUT,
            "/admin/api/upstreams/test/mappings",
            Some(json!([{"from": "https://example\\.com/groups", "to": "sub"}])),
            400,
        )
        .await;
    assert_eq!(err["error"], "invalid_configuration");
    let msg = err["error_description"].as_str().unwrap();
    assert!(msg.starts_with("upstreams[0]: mappings[0]"), "{msg}");
    assert!(msg.contains("reserved claim `sub`"), "{msg}");
    // The same words check-config prints for the same file.
    let file = app.config.replace("to = \"groups\"", "to = \"sub\"");
    let check = herald::config::from_toml(&file).unwrap_err().to_string();
    assert!(check.contains(msg), "check-config: {check}\napi: {msg}");

    let err = app
        .admin_ok(
            Method::PUT,
            "/admin/api/upstreams/dev/attributes",
            Some(json!([{"claim": "groups", "source": "userinfo"}])),
            400,
        )
        .await;
    let msg = err["error_description"].as_str().unwrap();
    assert!(msg.contains("upstreams[1]: attributes[0]"), "{msg}");
    assert!(msg.contains("userinfo is off for this upstream"), "{msg}");

    // Malformed input is a 400 too, before any validation.
    let err = app
        .admin_ok(
            Method::PUT,
            "/admin/api/upstreams/test/mappings",
            Some(json!([{"from": "a..b", "to": "x"}])),
            400,
        )
        .await;
    assert_eq!(err["error"], "invalid_request");
    let err = app
        .admin_ok(
            Method::POST,
            "/admin/api/clients",
            Some(json!({"client_id": "bad", "scopes": ["openid"], "redirect_uris": ["https://x.example/cb#frag"]})),
            400,
        )
        .await;
    assert!(
        err["error_description"]
            .as_str()
            .unwrap()
            .contains("redirect_uris[0]: `https://x.example/cb#frag` must not contain a fragment"),
        "{err}"
    );

    let after = app
        .admin_ok(Method::GET, "/admin/api/upstreams/test/mappings", None, 200)
        .await;
    assert_eq!(before, after);
    assert_eq!(app.state.config_version(), 1);
    assert_eq!(
        app.state.store.latest_config_version().await.unwrap(),
        Some(1)
    );
    let audit = app
        .admin_ok(Method::GET, "/admin/api/audit", None, 200)
        .await;
    assert_eq!(audit, json!([]));
}

#[tokio::test]
async fn audit_entries_name_the_actor_and_carry_the_state_before_and_after() {
    let app = spawn_app().await;
    app.admin_ok(
        Method::PUT,
        "/admin/api/clients/spa",
        Some(json!({"client_name": "SPA", "scopes": ["openid", "profile"], "redirect_uris": ["http://127.0.0.1:9000/new"]})),
        200,
    )
    .await;
    app.admin_ok(Method::DELETE, "/admin/api/clients/trusted", None, 204)
        .await;
    let audit = app
        .admin_ok(Method::GET, "/admin/api/audit?target=client:spa", None, 200)
        .await;
    let e = &audit.as_array().unwrap()[0];
    assert_eq!(audit.as_array().unwrap().len(), 1);
    assert_eq!(e["actor"], "bootstrap-token");
    assert_eq!(e["action"], "client.update");
    assert_eq!(e["config_version"], 2);
    assert_eq!(e["before"]["redirect_uris"], json!([APP_CB]));
    assert_eq!(
        e["after"]["redirect_uris"],
        json!(["http://127.0.0.1:9000/new"])
    );
    assert_eq!(e["after"]["client_name"], "SPA");

    let all = app
        .admin_ok(Method::GET, "/admin/api/audit", None, 200)
        .await;
    let deleted = &all[0];
    assert_eq!(deleted["action"], "client.delete");
    assert_eq!(deleted["after"], Value::Null);
    // A confidential client's hash is never shown, even to admins.
    assert_eq!(deleted["before"]["client_secret_hash"], "[hashed]");
    let since = all[0]["at"].as_i64().unwrap() + 1;
    let none = app
        .admin_ok(
            Method::GET,
            &format!("/admin/api/audit?since={since}"),
            None,
            200,
        )
        .await;
    assert_eq!(none, json!([]));
    let res = app
        .admin(
            Method::GET,
            "/admin/api/clients/trusted",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn a_generated_client_secret_is_shown_once_works_at_the_token_endpoint_and_is_stored_hashed()
{
    let app = spawn_app().await;
    let created = app
        .admin_ok(
            Method::POST,
            "/admin/api/clients",
            Some(json!({
                "client_id": "reporter",
                "scopes": ["reports"],
                "grant_types": ["client_credentials"]
            })),
            201,
        )
        .await;
    let secret = created["client_secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 43, "256 bits, base64url");
    assert_eq!(created["confidential"], true);
    let token = app.client_credentials("reporter", &secret, "reports").await;
    assert!(!token.is_empty());

    let again = app
        .admin_ok(Method::GET, "/admin/api/clients/reporter", None, 200)
        .await;
    assert!(again.get("client_secret").is_none(), "{again}");
    let listed = app
        .admin_ok(Method::GET, "/admin/api/clients", None, 200)
        .await;
    assert!(!listed.to_string().contains(&secret));
    let audit = app
        .admin_ok(Method::GET, "/admin/api/audit", None, 200)
        .await;
    assert!(!audit.to_string().contains(&secret));
    let stored = app.state.store.latest_config().await.unwrap().unwrap();
    assert!(!stored.document.contains(&secret));
    assert!(
        !stored.document.contains(SECRET),
        "file secrets are hashed too"
    );
    assert!(stored.document.contains("client_secret_hash = \"sha256:"));

    // Creating it twice is a conflict, not a silent overwrite.
    app.admin_ok(
        Method::POST,
        "/admin/api/clients",
        Some(json!({"client_id": "reporter", "scopes": ["reports"], "grant_types": ["client_credentials"]})),
        409,
    )
    .await;
    // A public client gets no secret.
    let public = app
        .admin_ok(
            Method::POST,
            "/admin/api/clients",
            Some(json!({"client_id": "mobile", "public": true, "scopes": ["openid"], "redirect_uris": ["com.example.app:/cb"]})),
            201,
        )
        .await;
    assert!(public.get("client_secret").is_none());
    assert_eq!(public["confidential"], false);
}

#[tokio::test]
async fn a_rotated_secret_keeps_the_old_one_working_for_its_grace_period_and_leaves_grants_alone() {
    let app = spawn_app().await;
    app.clock.freeze();
    let p = AuthParams::new("rp", OFFLINE);
    let q = app.login(&app.browser, &p).await;
    let tokens: Value = app.redeem(&p, &q["code"]).await.json().await.unwrap();
    let mut refresh = str_of(&tokens, "refresh_token");

    let rotated = app
        .admin_ok(
            Method::POST,
            "/admin/api/clients/rp/secret",
            Some(json!({"grace": "30m"})),
            200,
        )
        .await;
    let new = str_of(&rotated, "client_secret");
    assert_eq!(new.len(), 43, "256 bits, base64url: {rotated}");
    assert_ne!(new, SECRET);
    let until = app.state.now() + 1800;
    assert_eq!(rotated["previous_secret_expires_at"], until, "{rotated}");
    let shown = app
        .admin_ok(Method::GET, "/admin/api/clients/rp", None, 200)
        .await;
    assert_eq!(shown["previous_secret_expires_at"], until, "{shown}");
    assert!(!shown.to_string().contains(&new));

    // During the grace period both secrets work, and the login's refresh token still refreshes.
    for secret in [SECRET, new.as_str()] {
        assert!(is_active(&app.base, "rp", secret, &refresh).await);
        let (status, v) = refresh_at(&app.base, "rp", secret, &refresh).await;
        assert_eq!(status, 200, "{secret}: {v}");
        refresh = str_of(&v, "refresh_token");
    }
    // The new secret is stored as a digest, and neither appears in the audit log.
    let stored = app.state.store.latest_config().await.unwrap().unwrap();
    assert!(!stored.document.contains(&new));
    assert!(stored.document.contains("previous_secret_hash = "));
    let audit = app
        .admin_ok(Method::GET, "/admin/api/audit", None, 200)
        .await;
    let entry = &audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "client.secret_rotate")
        .unwrap_or_else(|| panic!("no rotation in {audit}"))
        .clone();
    assert!(!audit.to_string().contains(&new));
    assert!(entry.to_string().contains("[hashed]"), "{entry}");

    // After it, the old secret is refused and the new one goes on working.
    app.clock.advance(1801);
    let (status, v) = refresh_at(&app.base, "rp", SECRET, &refresh).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("invalid_client")),
        "{v}"
    );
    let (status, v) = refresh_at(&app.base, "rp", &new, &refresh).await;
    assert_eq!(status, 200, "{v}");
    refresh = str_of(&v, "refresh_token");
    let shown = app
        .admin_ok(Method::GET, "/admin/api/clients/rp", None, 200)
        .await;
    assert!(shown.get("previous_secret_expires_at").is_none(), "{shown}");

    // A grace of 0s stops the replaced secret at once; an empty body means 24 hours.
    let second = app
        .admin_ok(
            Method::POST,
            "/admin/api/clients/rp/secret",
            Some(json!({"grace": "0s"})),
            200,
        )
        .await;
    assert!(
        second.get("previous_secret_expires_at").is_none(),
        "{second}"
    );
    let newest = str_of(&second, "client_secret");
    let (status, _) = refresh_at(&app.base, "rp", &new, &refresh).await;
    assert_eq!(status, 401);
    let (status, v) = refresh_at(&app.base, "rp", &newest, &refresh).await;
    assert_eq!(status, 200, "{v}");
    let res = reqwest::Client::new()
        .post(format!("{}/admin/api/clients/rp/secret", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let third: Value = res.json().await.unwrap();
    assert_eq!(
        third["previous_secret_expires_at"],
        app.state.now() + 24 * 3600
    );
}

#[tokio::test]
async fn a_secret_rotation_is_refused_for_a_bad_grace_a_public_client_or_an_unknown_one() {
    let app = spawn_app().await;
    for (grace, says) in [("8d", "longer than the 7 days"), ("soon", "not a duration")] {
        let v = app
            .admin_ok(
                Method::POST,
                "/admin/api/clients/rp/secret",
                Some(json!({ "grace": grace })),
                400,
            )
            .await;
        assert_eq!(v["error"], "invalid_request");
        assert!(str_of(&v, "error_description").contains(says), "{v}");
    }
    app.admin_ok(
        Method::POST,
        "/admin/api/clients/mobile/secret",
        Some(json!({})),
        404,
    )
    .await;
    app.admin_ok(
        Method::POST,
        "/admin/api/clients",
        Some(json!({"client_id": "mobile", "public": true, "scopes": ["openid"], "redirect_uris": ["com.example.app:/cb"]})),
        201,
    )
    .await;
    let v = app
        .admin_ok(
            Method::POST,
            "/admin/api/clients/mobile/secret",
            Some(json!({})),
            409,
        )
        .await;
    assert!(
        str_of(&v, "error_description").contains("no secret to rotate"),
        "{v}"
    );
    // The refused rotations changed nothing: the file's secret still works.
    let (status, _) = refresh_at(&app.base, "rp", SECRET, "not-a-token").await;
    assert_eq!(
        status, 400,
        "the client authenticated; the token is what is wrong"
    );
}

#[tokio::test]
async fn users_are_listed_by_page_and_search_and_shown_with_identity_and_grants() {
    let app = spawn_app().await;
    let tokens = app.tokens(&AuthParams::new("app", "openid profile")).await;
    let access_token = tokens["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.userinfo(&access_token).await.status(), 200);
    for (i, name) in ["bob@example.com", "carol@example.com", "dave@example.org"]
        .iter()
        .enumerate()
    {
        app.state
            .store
            .link_user(
                "test",
                name,
                &format!("user-{i}"),
                app.state.now() - 100 + i as i64,
            )
            .await
            .unwrap();
    }
    let page = app
        .admin_ok(
            Method::GET,
            "/admin/api/users?per_page=2&page=0&include_totals=true&sort=last_login_at:-1",
            None,
            200,
        )
        .await;
    assert_eq!(page["total"], 4);
    assert_eq!(page["length"], 2);
    assert_eq!(page["users"][0]["upstream_subject"], "auth0|alice");
    let page2 = app
        .admin_ok(Method::GET, "/admin/api/users?per_page=2&page=1", None, 200)
        .await;
    assert_eq!(page2.as_array().unwrap().len(), 2);
    let found = app
        .admin_ok(
            Method::GET,
            "/admin/api/users?q=EXAMPLE.COM&upstream=test&fields=sub,upstream_subject",
            None,
            200,
        )
        .await;
    let found = found.as_array().unwrap();
    // bob and carol by their upstream subjects, and alice by the email her login carried.
    assert_eq!(found.len(), 3);
    assert_eq!(found[0].as_object().unwrap().len(), 2);
    let without = app
        .admin_ok(
            Method::GET,
            "/admin/api/users?fields=sub&include_fields=false&per_page=1",
            None,
            200,
        )
        .await;
    assert!(without[0].get("sub").is_none() && without[0].get("upstream").is_some());
    app.admin_ok(Method::GET, "/admin/api/users?sort=password:1", None, 400)
        .await;
    app.admin_ok(Method::GET, "/admin/api/users?per_page=1000", None, 400)
        .await;

    let alice = page["users"][0]["sub"].as_str().unwrap().to_string();
    let detail = app
        .admin_ok(Method::GET, &format!("/admin/api/users/{alice}"), None, 200)
        .await;
    assert_eq!(detail["identity"]["upstream"], "test");
    assert_eq!(detail["identity"]["subject"], "auth0|alice");
    assert_eq!(detail["grants"][0]["client_id"], "app");
    assert!(detail["last_login_at"].as_i64().unwrap() > 0);
    app.admin_ok(Method::GET, "/admin/api/users/nobody", None, 404)
        .await;

    // Withdrawing for the user: the grant goes, a record says an admin did it, it is audited.
    let w = app
        .admin_ok(
            Method::DELETE,
            &format!("/admin/api/users/{alice}/grants/app"),
            None,
            200,
        )
        .await;
    assert_eq!(w["withdrawn"], json!(["openid", "profile"]));
    // What the grant allowed ends with it.
    assert_eq!(
        app.userinfo(&access_token).await.status(),
        401,
        "the access token outlived the withdrawal"
    );
    let consents = app
        .admin_ok(
            Method::GET,
            &format!("/admin/api/users/{alice}/consents"),
            None,
            200,
        )
        .await;
    let last = consents["records"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["method"], "admin");
    assert_eq!(last["denied"], json!(["openid", "profile"]));
    let audit = app
        .admin_ok(Method::GET, "/admin/api/audit", None, 200)
        .await;
    assert_eq!(audit[0]["action"], "grant.withdraw");
    assert_eq!(audit[0]["target"], format!("user:{alice}"));
}

#[tokio::test]
async fn the_openapi_document_parses_and_describes_every_path() {
    let app = spawn_app().await;
    let doc = app
        .admin_ok(Method::GET, "/admin/api/openapi.json", None, 200)
        .await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/admin/api/upstreams", &["get", "post"][..]),
        ("/admin/api/upstreams/{id}", &["get", "put", "delete"]),
        ("/admin/api/upstreams/{id}/attributes", &["get", "put"]),
        ("/admin/api/upstreams/{id}/mappings", &["get", "put"]),
        ("/admin/api/clients", &["get", "post"]),
        ("/admin/api/clients/{client_id}", &["get", "put", "delete"]),
        ("/admin/api/scopes", &["get", "put"]),
        ("/admin/api/preview", &["post"]),
        ("/admin/api/lineage", &["get"]),
        ("/admin/api/users", &["get"]),
        ("/admin/api/users/{sub}", &["get"]),
        ("/admin/api/users/{sub}/consents", &["get"]),
        ("/admin/api/users/{sub}/grants/{client_id}", &["delete"]),
        ("/admin/api/audit", &["get"]),
    ] {
        for m in methods {
            assert!(paths[path].get(*m).is_some(), "{m} {path} missing");
            assert!(
                paths[path][*m]["responses"].get("401").is_some(),
                "{m} {path}: 401"
            );
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // The typed secret is offered as a password (write-only: no answer schema carries it).
    let upstream = &doc["components"]["schemas"]["UpstreamSettings"]["properties"];
    assert!(upstream.get("client_secret_env").is_some(), "{upstream}");
    assert_eq!(
        upstream["client_secret"]["format"], "password",
        "{upstream}"
    );
    let detail = &doc["components"]["schemas"]["UpstreamDetail"]["properties"];
    assert!(detail.get("client_secret").is_none(), "{detail}");
}

#[tokio::test]
async fn preview_and_lineage_answer_from_the_configuration_in_effect() {
    let app = spawn_app().await;
    let preview = app
        .admin_ok(
            Method::POST,
            "/admin/api/preview",
            Some(json!({
                "id_token": {"sub": "u1", "https://example.com/groups": ["a"]},
                "userinfo": {"sub": "u1", "https://example.com/tenant": "acme"},
                "scopes": ["openid", "groups", "org"]
            })),
            200,
        )
        .await;
    assert_eq!(preview["id_token"]["groups"], json!(["a"]));
    assert_eq!(preview["id_token"]["org"]["tenant"], "acme");
    let lineage = app
        .admin_ok(Method::GET, "/admin/api/lineage", None, 200)
        .await;
    assert!(
        lineage.as_array().unwrap().iter().any(
            |r| r["claim"] == "groups" && r["upstream_claim"] == "https://example\\.com/groups"
        )
    );
}

#[tokio::test]
async fn a_change_on_one_replica_is_in_effect_on_another_within_seconds() {
    let Some(schema) = crate::replicas::schema().await else {
        return;
    };
    let r = crate::replicas::two_replicas_with(
        &schema,
        5432,
        r#"
[[upstreams.attributes]]
claim = "https://example\\.com/groups"
source = "id_token"
type = "string_array"
[[upstreams.mappings]]
from = "https://example\\.com/groups"
to = "groups"
"#,
        true,
    )
    .await;
    let (base, b_base) = (r.a.base.clone(), r.b_base.clone());
    let http = reqwest::Client::new();
    let get_b = || {
        http.get(format!("{b_base}/admin/api/upstreams/test/mappings"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
    };
    let before: Value = get_b().await.unwrap().json().await.unwrap();
    assert_eq!(before[0]["to"], "groups");

    let res = http
        .put(format!("{base}/admin/api/upstreams/test/mappings"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!([{"from": "https://example\\.com/groups", "to": "teams"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let started = Instant::now();
    loop {
        let now: Value = get_b().await.unwrap().json().await.unwrap();
        if now[0]["to"] == "teams" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "replica B still has {now} after 6 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(r.b_state.config_version(), 2);
    // B's own poll sees nothing newer and keeps the version.
    r.b_state.reload_config().await.unwrap();
    assert_eq!(r.b_state.config_version(), 2);
}

/// A second upstream at the test IdP, as an admin would add it.
fn second_upstream(app: &TestApp) -> Value {
    json!({
        "id": "second",
        "kind": "oidc",
        "issuer": app.upstream.issuer(),
        "client_id": "herald-second",
        "display_name": "Second",
        "attributes": [{"claim": "https://example\\.com/groups", "source": "id_token", "type": "string_array"}],
        "mappings": [{"from": "https://example\\.com/groups", "to": "groups"}]
    })
}

#[tokio::test]
async fn an_upstream_is_created_used_replaced_and_deleted_and_every_change_is_audited() {
    let app = spawn_app().await;
    let created = app
        .admin_ok(
            Method::POST,
            "/admin/api/upstreams",
            Some(second_upstream(&app)),
            201,
        )
        .await;
    assert_eq!(created["id"], "second");
    assert_eq!(created["kind"], "oidc");
    assert_eq!(created["issuer"], app.upstream.issuer());
    assert_eq!(
        created["callback_url"],
        format!("{}/callback/second", app.base)
    );
    assert_eq!(created["client_secret_source"], "none");
    assert_eq!(created["scopes"], json!(["openid", "profile", "email"]));
    assert_eq!(created["mappings"][0]["to"], "groups");
    let listed = app
        .admin_ok(Method::GET, "/admin/api/upstreams", None, 200)
        .await;
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["test", "second"]);

    // It is live: a login through it links a user of that upstream and maps its claims.
    let p = AuthParams::new("app", "openid groups").with("idp_hint", "second");
    let q = app.login(&browser(), &p).await;
    let tokens: Value = app.redeem(&p, &q["code"]).await.json().await.unwrap();
    let id_token = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["groups"], json!(["staff", "admins"]));
    let users = app
        .admin_ok(Method::GET, "/admin/api/users?upstream=second", None, 200)
        .await;
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");

    // Replacing keeps attributes and mappings that the body leaves out.
    let mut renamed = second_upstream(&app);
    let body = renamed.as_object_mut().unwrap();
    body.remove("attributes");
    body.remove("mappings");
    body.insert("display_name".into(), json!("Renamed"));
    // A variable the test process has (.cargo/config.toml); only its name is stored.
    body.insert(
        "client_secret_env".into(),
        json!("HERALD_UPSTREAM_TEST_SECRET"),
    );
    let replaced = app
        .admin_ok(
            Method::PUT,
            "/admin/api/upstreams/second",
            Some(renamed),
            200,
        )
        .await;
    assert_eq!(replaced["display_name"], "Renamed");
    assert_eq!(replaced["client_secret_source"], "env");
    assert_eq!(replaced["client_secret_env"], "HERALD_UPSTREAM_TEST_SECRET");
    assert_eq!(replaced["mappings"], created["mappings"]);
    assert_eq!(
        app.admin_ok(Method::GET, "/admin/api/upstreams/second", None, 200)
            .await,
        replaced
    );

    app.admin_ok(Method::DELETE, "/admin/api/upstreams/second", None, 204)
        .await;
    app.admin_ok(Method::GET, "/admin/api/upstreams/second", None, 404)
        .await;
    app.admin_ok(Method::DELETE, "/admin/api/upstreams/second", None, 404)
        .await;
    assert_eq!(app.state.config_version(), 4);

    let audit = app
        .admin_ok(
            Method::GET,
            "/admin/api/audit?target=upstream:second",
            None,
            200,
        )
        .await;
    let actions = audit_actions(&audit);
    assert_eq!(
        actions,
        ["upstream.delete", "upstream.update", "upstream.create"]
    );
    assert_eq!(audit[1]["before"]["display_name"], "Second");
    assert_eq!(audit[1]["after"]["display_name"], "Renamed");
    assert_eq!(
        audit[0]["before"]["client_secret_env"],
        "HERALD_UPSTREAM_TEST_SECRET"
    );
    assert_eq!(audit[0]["after"], Value::Null);
    // The variable's name is stored, never its value.
    let path = std::env::var("HERALD_UPSTREAM_TEST_SECRET").unwrap();
    assert!(!audit.to_string().contains(&path));
    let stored = app.state.store.latest_config().await.unwrap().unwrap();
    assert!(!stored.document.contains(&path));
}

/// Issue 19: a secret typed in is stored sealed with the key-encryption key, sent to the
/// upstream it was given for, and never shown: not in an answer, the stored document or the
/// audit log; it never follows the upstream to another provider.
#[tokio::test]
async fn an_upstream_secret_typed_in_is_stored_sealed_used_and_never_shown() {
    let app = spawn_app().await;
    let secret = "upstream-secret";
    let mut body = second_upstream(&app);
    body["client_secret"] = json!(secret);
    body["client_secret_env"] = json!("HERALD_UPSTREAM_TEST_SECRET");
    let err = app
        .admin_ok(
            Method::POST,
            "/admin/api/upstreams",
            Some(body.clone()),
            400,
        )
        .await;
    assert!(
        err["error_description"]
            .as_str()
            .unwrap()
            .starts_with("client_secret and client_secret_env: give one"),
        "{err}"
    );
    body.as_object_mut().unwrap().remove("client_secret_env");
    let res = app
        .admin(
            Method::POST,
            "/admin/api/upstreams",
            Some(ADMIN_TOKEN),
            Some(&body),
        )
        .await;
    assert_eq!(res.status(), 201);
    let text = res.text().await.unwrap();
    assert!(!text.contains(secret), "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(created["client_secret_source"], "stored");
    let stored = app.state.store.latest_config().await.unwrap().unwrap();
    assert!(!stored.document.contains(secret), "{}", stored.document);
    assert!(
        stored
            .document
            .contains("client_secret_sealed = \"aes256gcm:"),
        "{}",
        stored.document
    );

    // It is sent: the upstream (which refuses any other secret) sees HTTP Basic, and the
    // login works.
    let p = AuthParams::new("app", "openid groups").with("idp_hint", "second");
    let q = app.login(&browser(), &p).await;
    assert!(q.contains_key("code"), "{q:?}");
    assert_eq!(
        app.upstream.state.token_auth.lock().unwrap().last(),
        Some(&"basic")
    );

    // Replaced without a secret, the upstream keeps the stored one.
    let mut renamed = second_upstream(&app);
    renamed["display_name"] = json!("Renamed");
    let replaced = app
        .admin_ok(
            Method::PUT,
            "/admin/api/upstreams/second",
            Some(renamed),
            200,
        )
        .await;
    assert_eq!(replaced["client_secret_source"], "stored");
    // Pointed at another provider without a new secret, it is refused: the stored secret is
    // never sent elsewhere.
    let mut moved = second_upstream(&app);
    moved["issuer"] = json!("https://other-idp.example.com");
    let err = app
        .admin_ok(Method::PUT, "/admin/api/upstreams/second", Some(moved), 400)
        .await;
    assert!(
        err["error_description"]
            .as_str()
            .unwrap()
            .contains("another provider"),
        "{err}"
    );

    // The audit log says a secret was stored, without it or its ciphertext.
    let audit = app
        .admin_ok(
            Method::GET,
            "/admin/api/audit?target=upstream:second",
            None,
            200,
        )
        .await;
    assert_eq!(audit[1]["after"]["client_secret_sealed"], "[sealed]");
    let audit = audit.to_string();
    assert!(
        !audit.contains(secret) && !audit.contains("aes256gcm"),
        "{audit}"
    );
    let detail = app
        .admin_ok(Method::GET, "/admin/api/upstreams/second", None, 200)
        .await
        .to_string();
    assert!(!detail.contains("aes256gcm"), "{detail}");

    app.admin_ok(Method::DELETE, "/admin/api/upstreams/second", None, 204)
        .await;
    let mut body = second_upstream(&app);
    // A secret of another type is refused, not echoed by a parser.
    body["client_secret"] = json!({"value": secret});
    let err = app
        .admin_ok(Method::POST, "/admin/api/upstreams", Some(body), 400)
        .await;
    assert!(!err.to_string().contains(secret), "{err}");

    // Nor may an upstream be told to send one of Herald's own secrets.
    let mut body = second_upstream(&app);
    body["client_secret_env"] = json!("HERALD_ADMIN_TOKEN");
    let err = app
        .admin_ok(Method::POST, "/admin/api/upstreams", Some(body), 400)
        .await;
    assert!(
        err["error_description"]
            .as_str()
            .unwrap()
            .contains("one of Herald's own secrets"),
        "{err}"
    );
    // A variable this replica lacks is check-config's problem, named by its key.
    let mut body = second_upstream(&app);
    body["client_secret_env"] = json!("HERALD_UPSTREAM_VARIABLE_THAT_IS_NOT_SET");
    let err = app
        .admin_ok(Method::POST, "/admin/api/upstreams", Some(body), 400)
        .await;
    assert_eq!(err["error"], "invalid_configuration");
    assert_eq!(
        err["problems"],
        json!(["upstreams[1].client_secret: client_secret_env names \
             `HERALD_UPSTREAM_VARIABLE_THAT_IS_NOT_SET`, but that environment variable is not set \
             (or empty); export it before starting Herald"])
    );
    // Keys the file does not have, such as a hash, are unknown fields.
    let mut body = second_upstream(&app);
    body["client_secret_hash"] = json!("sha256:AAAA");
    let err = app
        .admin_ok(Method::POST, "/admin/api/upstreams", Some(body), 400)
        .await;
    assert_eq!(err["error"], "invalid_request");
    assert!(
        err["error_description"]
            .as_str()
            .unwrap()
            .contains("unknown field `client_secret_hash`"),
        "{err}"
    );

    // Created, replaced and deleted; none of the refusals stored a version.
    assert_eq!(app.state.config_version(), 4);
    let stored = app.state.store.latest_config().await.unwrap().unwrap();
    assert!(!stored.document.contains(secret));
    assert!(
        !stored.document.contains("upstream-secret"),
        "the file's inline secret is held back"
    );
}

#[tokio::test]
async fn deleting_the_last_upstream_is_refused_with_the_check_config_message() {
    let app = spawn_app().await;
    let err = app
        .admin_ok(Method::DELETE, "/admin/api/upstreams/test", None, 400)
        .await;
    assert_eq!(err["error"], "invalid_configuration");
    let msg = err["error_description"].as_str().unwrap();
    assert!(
        msg.starts_with("upstreams: at least one [[upstreams]] is needed"),
        "{msg}"
    );
    // The same words check-config prints for a file without upstreams.
    let (head, _) = app.config.split_once("[[upstreams]]").unwrap();
    let (_, clients) = app.config.split_once("[[clients]]").unwrap();
    let file = format!("{head}[[clients]]{clients}");
    let check = herald::config::from_toml(&file).unwrap_err().to_string();
    assert_eq!(check, msg);

    app.admin_ok(Method::GET, "/admin/api/upstreams/test", None, 200)
        .await;
    assert_eq!(app.state.config_version(), 1);
    let audit = app
        .admin_ok(Method::GET, "/admin/api/audit", None, 200)
        .await;
    assert_eq!(audit, json!([]));
}

#[tokio::test]
async fn an_upstream_change_is_refused_when_malformed_conflicting_or_invalid() {
    let app = spawn_app().await;
    let test =
        json!({"kind": "oidc", "issuer": app.upstream.issuer(), "client_id": "herald-at-upstream"});
    // Creating an existing one, renaming through PUT, an unknown one, no id, an unknown kind.
    let mut again = test.clone();
    again["id"] = json!("test");
    app.admin_ok(Method::POST, "/admin/api/upstreams", Some(again), 409)
        .await;
    let mut renamed = test.clone();
    renamed["id"] = json!("other");
    let err = app
        .admin_ok(Method::PUT, "/admin/api/upstreams/test", Some(renamed), 400)
        .await;
    assert!(
        err["error_description"]
            .as_str()
            .unwrap()
            .contains("cannot be changed"),
        "{err}"
    );
    app.admin_ok(
        Method::PUT,
        "/admin/api/upstreams/nope",
        Some(test.clone()),
        404,
    )
    .await;
    let err = app
        .admin_ok(Method::POST, "/admin/api/upstreams", Some(test), 400)
        .await;
    assert!(
        err["error_description"]
            .as_str()
            .unwrap()
            .starts_with("id: required")
    );
    let err = app
        .admin_ok(
            Method::POST,
            "/admin/api/upstreams",
            Some(json!({"id": "saml", "kind": "saml"})),
            400,
        )
        .await;
    assert_eq!(err["error"], "invalid_request");
    // What check-config refuses, the API refuses with its words.
    let err = app
        .admin_ok(
            Method::POST,
            "/admin/api/upstreams",
            Some(json!({"id": "bad id", "kind": "oidc", "client_id": "h"})),
            400,
        )
        .await;
    assert_eq!(err["error"], "invalid_configuration");
    assert_eq!(
        err["problems"],
        json!([
            "upstreams[1].id: `bad id` must be letters, digits, - or _ (it appears in the callback URL)",
            "upstreams[1].issuer: kind = \"oidc\" needs the provider's issuer, like \"https://idp.example.com\""
        ])
    );
    assert_eq!(app.state.config_version(), 1);
}

#[tokio::test]
async fn the_files_upstream_secret_stays_only_while_the_upstream_points_at_the_same_issuer() {
    let app = spawn_app().await;
    let detail = app
        .admin_ok(Method::GET, "/admin/api/upstreams/test", None, 200)
        .await;
    assert_eq!(detail["client_secret_source"], "file");
    assert!(!detail.to_string().contains("upstream-secret"));

    let same = json!({
        "kind": "oidc", "issuer": app.upstream.issuer(), "client_id": "herald-at-upstream",
        "display_name": "Test IdP", "userinfo": true
    });
    let replaced = app
        .admin_ok(Method::PUT, "/admin/api/upstreams/test", Some(same), 200)
        .await;
    assert_eq!(replaced["client_secret_source"], "file");
    assert_eq!(replaced["display_name"], "Test IdP");
    let secret = app
        .state
        .settings()
        .upstream("test")
        .unwrap()
        .client_secret
        .as_ref()
        .map(|s| s.expose().to_string());
    assert_eq!(secret.as_deref(), Some("upstream-secret"));

    // Pointed at another provider, the file's secret is not sent there.
    let elsewhere = json!({
        "kind": "oidc", "issuer": "https://elsewhere.example.com", "client_id": "herald-at-upstream",
        "userinfo": true
    });
    let moved = app
        .admin_ok(
            Method::PUT,
            "/admin/api/upstreams/test",
            Some(elsewhere),
            200,
        )
        .await;
    assert_eq!(moved["client_secret_source"], "none");
    assert!(
        app.state
            .settings()
            .upstream("test")
            .unwrap()
            .client_secret
            .is_none()
    );
}

/// Scopes that give `rp` a refresh token.
const OFFLINE: &str = "openid email offline_access";

/// A form post to `{base}{path}` as `client` (Basic `secret`): status and JSON body.
async fn as_client(
    base: &str,
    path: &str,
    client: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .basic_auth(client, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn refresh_at(base: &str, client: &str, secret: &str, token: &str) -> (u16, Value) {
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    as_client(base, "/token", client, secret, &form).await
}

async fn is_active(base: &str, client: &str, secret: &str, token: &str) -> bool {
    let (status, v) = as_client(base, "/introspect", client, secret, &[("token", token)]).await;
    assert_eq!(status, 200, "{v}");
    v["active"].as_bool().unwrap()
}

async fn userinfo_status(base: &str, access_token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Where `/authorize` on `base` sends `browser` first (the Location of its redirect).
async fn authorize_location(
    app: &TestApp,
    base: &str,
    browser: &reqwest::Client,
    p: &AuthParams,
) -> String {
    let url = app.authorize_url(p).replacen(&app.base, base, 1);
    let res = browser.get(url).send().await.unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    res.headers()["location"].to_str().unwrap().to_string()
}

fn str_of(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no {k} in {v}"))
        .to_string()
}

#[tokio::test]
async fn deleting_a_client_ends_its_tokens_codes_and_grants_even_when_it_is_registered_again() {
    let app = spawn_app().await;
    let p = AuthParams::new("rp", OFFLINE);
    let q = app.login(&app.browser, &p).await;
    let tokens: Value = app.redeem(&p, &q["code"]).await.json().await.unwrap();
    let (access, refresh) = (
        str_of(&tokens, "access_token"),
        str_of(&tokens, "refresh_token"),
    );
    let sub = str_of(&payload(&str_of(&tokens, "id_token")), "sub");
    // A second login in the same browser skips consent; its code is not redeemed yet.
    let unredeemed = AuthParams::new("rp", OFFLINE);
    let q2 = app.login(&app.browser, &unredeemed).await;
    assert!(is_active(&app.base, "rp", SECRET, &refresh).await);

    app.admin_ok(Method::DELETE, "/admin/api/clients/rp", None, 204)
        .await;
    // The same client_id registered again, with a new secret, must not bring anything back.
    let created = app
        .admin_ok(
            Method::POST,
            "/admin/api/clients",
            Some(json!({
                "client_id": "rp", "scopes": ["openid", "email", "offline_access"],
                "redirect_uris": [APP_CB], "grant_types": ["authorization_code", "refresh_token"]
            })),
            201,
        )
        .await;
    let secret = str_of(&created, "client_secret");
    assert!(!is_active(&app.base, "rp", &secret, &access).await);
    assert!(!is_active(&app.base, "rp", &secret, &refresh).await);
    let (status, err) = refresh_at(&app.base, "rp", &secret, &refresh).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let form = [
        ("grant_type", "authorization_code"),
        ("code", q2["code"].as_str()),
        ("redirect_uri", APP_CB),
        ("code_verifier", unredeemed.verifier.as_deref().unwrap()),
    ];
    let (status, err) = as_client(&app.base, "/token", "rp", &secret, &form).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant")),
        "{err}"
    );
    assert_eq!(userinfo_status(&app.base, &access).await, 401);

    // The grant is gone and the user's records say an admin ended it.
    let detail = app
        .admin_ok(Method::GET, &format!("/admin/api/users/{sub}"), None, 200)
        .await;
    assert_eq!(detail["grants"], json!([]), "{detail}");
    let consents = app
        .admin_ok(
            Method::GET,
            &format!("/admin/api/users/{sub}/consents"),
            None,
            200,
        )
        .await;
    let records = consents["records"].as_array().unwrap();
    let last = records.last().unwrap();
    assert_eq!(last["method"], "client_deleted");
    assert_eq!(last["decision"], "withdrawn");
    assert_eq!(last["client_id"], "rp");
    assert_eq!(last["allowed"], json!([]));
    assert_eq!(last["denied"], json!(["email", "offline_access", "openid"]));
    assert_eq!(records[0]["method"], "page", "earlier records stay");
    // So the app's next login asks again.
    match app
        .start(&app.browser, &AuthParams::new("rp", OFFLINE))
        .await
    {
        Outcome::Consent(_) => {}
        other => panic!("expected the consent page, got {other:?}"),
    }
}

#[tokio::test]
async fn removing_an_upstream_sends_its_users_to_log_in_again_and_ends_their_tokens() {
    let app = spawn_app().await;
    app.admin_ok(
        Method::POST,
        "/admin/api/upstreams",
        Some(second_upstream(&app)),
        201,
    )
    .await;
    let via_second = browser();
    let p = AuthParams::new("rp", OFFLINE).with("idp_hint", "second");
    let q = app.login(&via_second, &p).await;
    let gone: Value = app.redeem(&p, &q["code"]).await.json().await.unwrap();
    let p = AuthParams::new("rp", OFFLINE).with("idp_hint", "test");
    let q = app.login(&app.browser, &p).await;
    let kept: Value = app.redeem(&p, &q["code"]).await.json().await.unwrap();
    assert_eq!(
        userinfo_status(&app.base, &str_of(&gone, "access_token")).await,
        200
    );

    app.admin_ok(Method::DELETE, "/admin/api/upstreams/second", None, 204)
        .await;
    let (status, err) = refresh_at(&app.base, "rp", SECRET, &str_of(&gone, "refresh_token")).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        userinfo_status(&app.base, &str_of(&gone, "access_token")).await,
        401
    );
    assert!(!is_active(&app.base, "rp", SECRET, &str_of(&gone, "access_token")).await);
    // Logins through the other upstream go on.
    let (status, _) = refresh_at(&app.base, "rp", SECRET, &str_of(&kept, "refresh_token")).await;
    assert_eq!(status, 200);

    // The browser whose login came from the removed upstream is sent to log in again...
    let again = AuthParams::new("rp", OFFLINE);
    let location = authorize_location(&app, &app.base, &via_second, &again).await;
    assert!(sent_to_log_in(&location), "{location}");
    // ...while the other browser's login is reused: straight back to the app with a code.
    let location = authorize_location(&app, &app.base, &app.browser, &again).await;
    assert!(location.starts_with(APP_CB), "{location}");
    assert!(query_of(&location).contains_key("code"));
}

/// Whether `/authorize` sent the browser to log in: to the chooser, or straight to an
/// upstream's authorization endpoint (with Herald's PKCE challenge), not back to the app.
fn sent_to_log_in(location: &str) -> bool {
    !location.starts_with(APP_CB)
        && (location.starts_with("/login/") || location.contains("code_challenge="))
}

#[tokio::test]
async fn removals_are_revoked_in_the_database_so_a_replica_on_the_old_configuration_refuses_too() {
    let Some(schema) = crate::replicas::schema().await else {
        return;
    };
    let r = crate::replicas::two_replicas_with(&schema, 5432, "", true).await;
    let app = &r.a;
    app.admin_ok(
        Method::POST,
        "/admin/api/upstreams",
        Some(second_upstream(app)),
        201,
    )
    .await;
    let rp = app
        .admin_ok(
            Method::POST,
            "/admin/api/clients",
            Some(json!({
                "client_id": "rp", "scopes": ["openid", "offline_access"],
                "redirect_uris": [APP_CB], "grant_types": ["authorization_code", "refresh_token"]
            })),
            201,
        )
        .await;
    let rp_secret = str_of(&rp, "client_secret");
    let before = app.state.store.latest_config().await.unwrap().unwrap();

    // `app` logs in through the upstream that will go; `rp`, the client that will go, through
    // the upstream that stays.
    let via_second = browser();
    let p = AuthParams::new("app", "openid").with("idp_hint", "second");
    let q = app.login(&via_second, &p).await;
    let app_tokens: Value = app.redeem(&p, &q["code"]).await.json().await.unwrap();
    let pending = AuthParams::new("app", "openid").with("idp_hint", "second");
    let pending_code = app.login(&via_second, &pending).await["code"].clone();
    let p = AuthParams::new("rp", "openid offline_access").with("idp_hint", "test");
    let q = app.login(&browser(), &p).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", q["code"].as_str()),
        ("redirect_uri", APP_CB),
        ("code_verifier", p.verifier.as_deref().unwrap()),
    ];
    let (status, rp_tokens) = as_client(&app.base, "/token", "rp", &rp_secret, &form).await;
    assert_eq!(status, 200, "{rp_tokens}");

    app.admin_ok(Method::DELETE, "/admin/api/upstreams/second", None, 204)
        .await;
    app.admin_ok(Method::DELETE, "/admin/api/clients/rp", None, 204)
        .await;
    // Replica B as it would be if it had not yet polled: its memory still has both.
    let started = Instant::now();
    while r.b_state.config_version() < 5 {
        assert!(started.elapsed() < Duration::from_secs(6), "B never polled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let live = r.b_state.live_config().unwrap();
    let (old, _) = live
        .settings(&herald::config::ManagedConfig::parse(&before.document).unwrap())
        .unwrap();
    r.b_state.replace_settings(old);
    assert!(r.b_state.settings().upstream("second").is_some());
    assert!(r.b_state.settings().client("rp").is_some());

    let b = &r.b_base;
    assert_eq!(
        userinfo_status(b, &str_of(&app_tokens, "access_token")).await,
        401
    );
    let form = [
        ("grant_type", "authorization_code"),
        ("code", pending_code.as_str()),
        ("redirect_uri", APP_CB),
        ("code_verifier", pending.verifier.as_deref().unwrap()),
    ];
    let (status, err) = as_client(b, "/token", "app", SECRET, &form).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant")),
        "{err}"
    );
    let location = authorize_location(app, b, &via_second, &AuthParams::new("app", "openid")).await;
    assert!(sent_to_log_in(&location), "{location}");

    let (status, err) = refresh_at(b, "rp", &rp_secret, &str_of(&rp_tokens, "refresh_token")).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant")),
        "{err}"
    );
    assert!(!is_active(b, "rp", &rp_secret, &str_of(&rp_tokens, "access_token")).await);
}

#[tokio::test]
async fn a_login_from_an_upstream_this_replica_does_not_have_refreshes_nothing() {
    // What a replica still on the previous configuration could store after a removal was
    // revoked: a login, not revoked, from an upstream the configuration no longer has.
    let app = spawn_app().await;
    let now = app.state.now();
    let store = &app.state.store;
    store
        .insert_context(&stored_login("ctx-ghost", "sub-ghost", "ghost", now))
        .await
        .unwrap();
    let scope = "openid offline_access";
    store
        .insert_code(&stored_code(
            "code-ghost",
            "sub-ghost",
            scope,
            "ctx-ghost",
            now,
        ))
        .await
        .unwrap();
    let value = herald::tokens::random_token();
    store
        .redeem_code(
            "code-ghost",
            now,
            &herald::store::AccessTokenRecord {
                jti: "jti-ghost".into(),
                client_id: "rp".into(),
                sub: "sub-ghost".into(),
                scope: "openid".into(),
                auth_context_id: "ctx-ghost".into(),
                code_hash: Some("code-ghost".into()),
                issued_at: now,
                expires_at: now + 3600,
                revoked_at: None,
                family_id: Some("fam-ghost".into()),
            },
            Some(&herald::store::RefreshTokenRecord {
                token_hash: herald::tokens::hashing::digest_hex(&value),
                family_id: "fam-ghost".into(),
                client_id: "rp".into(),
                sub: "sub-ghost".into(),
                scope: "openid offline_access".into(),
                auth_context_id: "ctx-ghost".into(),
                auth_time: now,
                code_hash: Some("code-ghost".into()),
                issued_at: now,
                expires_at: now + 3600,
                family_expires_at: now + 7200,
                rotated_at: None,
                revoked_at: None,
                grace_used_at: None,
                dpop_jkt: None,
                resources: None,
            }),
        )
        .await
        .unwrap();
    // Introspection says so too, for the refresh token (before the refresh below) and the
    // access token.
    assert!(!is_active(&app.base, "rp", SECRET, &value).await);
    let (status, err) = refresh_at(&app.base, "rp", SECRET, &value).await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"], "invalid_grant");
    assert!(
        err["error_description"]
            .as_str()
            .unwrap()
            .contains("has ended"),
        "{err}"
    );
}

/// Requests whose path or query holds a NUL character (`%00`), one per way it reaches the store.
fn nul_requests() -> Vec<(Method, &'static str)> {
    vec![
        (Method::GET, "/admin/api/users/%00"),
        (Method::GET, "/admin/api/users/%00/consents"),
        (Method::DELETE, "/admin/api/users/%00/grants/app"),
        (Method::GET, "/admin/api/users?q=%00"),
        (Method::GET, "/admin/api/users?upstream=%00"),
        (Method::GET, "/admin/api/audit?actor=%00"),
        (Method::GET, "/admin/api/audit?target=%00"),
        (Method::GET, "/admin/api/clients/%00"),
    ]
}

async fn assert_nul_is_a_bad_request(base: &str) {
    let http = reqwest::Client::new();
    for (method, path) in nul_requests() {
        let res = http
            .request(method.clone(), format!("{base}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 400, "{method} {path}: {body}");
        assert_eq!(body["error"], "invalid_request", "{method} {path}");
    }
}

#[tokio::test]
async fn a_nul_character_in_a_path_or_query_is_a_bad_request_on_sqlite_and_postgresql() {
    // PostgreSQL refuses NUL in text parameters: these were 500s there (schema test finding).
    let app = spawn_app().await;
    assert_nul_is_a_bad_request(&app.base).await;
    let Some(schema) = crate::replicas::schema().await else {
        return;
    };
    let r = crate::replicas::two_replicas_with(&schema, 5432, "", true).await;
    assert_nul_is_a_bad_request(&r.a.base).await;
    // A `%` that does not spell NUL still works.
    let res =
        r.a.admin(
            Method::GET,
            "/admin/api/audit?actor=50%2500",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
}

/// `path` with every `{parameter}` replaced by `value`.
fn each_parameter_as(path: &str, value: &str) -> String {
    let (mut out, mut rest) = (String::new(), path);
    while let Some((before, after)) = rest.split_once('{') {
        out.push_str(before);
        out.push_str(value);
        rest = after.split_once('}').map_or("", |(_, r)| r);
    }
    out + rest
}

#[tokio::test]
async fn every_answer_an_operation_can_give_is_in_the_openapi_document() {
    let app = spawn_app().await;
    let doc = app
        .admin_ok(Method::GET, "/admin/api/openapi.json", None, 200)
        .await;
    let mut with_path_parameter = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            // Any operation may find the database down, if only to check a client's token.
            assert!(responses.contains_key("503"), "{method} {path}: 503");
            // And any may be refused by the rate limit per address.
            assert!(responses.contains_key("429"), "{method} {path}: 429");
            if !path.contains('{') {
                continue;
            }
            with_path_parameter += 1;
            // A path parameter that is not UTF-8 is refused before the handler runs (these
            // GETs and DELETEs used to answer an undocumented 400; schema test finding).
            assert!(responses.contains_key("400"), "{method} {path}: 400");
            let url = each_parameter_as(path, "%FF");
            let res = app
                .admin(
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    &url,
                    Some(ADMIN_TOKEN),
                    Some(&json!({})),
                )
                .await;
            assert_eq!(res.status(), 400, "{method} {url}");
            let err: Value = res.json().await.unwrap();
            assert_eq!(err["error"], "invalid_request", "{method} {url}");
            let description = err["error_description"].as_str().unwrap();
            assert!(
                description.contains("UTF-8"),
                "{method} {url}: {description}"
            );
        }
    }
    assert_eq!(with_path_parameter, 24);
}

#[tokio::test]
async fn admin_answers_are_never_cached_since_they_carry_secrets_and_user_data() {
    // Successful answers lacked `Cache-Control: no-store`, even the one with a new secret.
    let app = spawn_app().await;
    let created = app
        .admin(
            Method::POST,
            "/admin/api/clients",
            Some(ADMIN_TOKEN),
            Some(&json!({"client_id": "reporter", "scopes": ["reports"],
                         "grant_types": ["client_credentials"]})),
        )
        .await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["cache-control"], "no-store");
    for (method, path, body) in endpoints() {
        let res = app
            .admin(method.clone(), path, Some(ADMIN_TOKEN), body.as_ref())
            .await;
        assert_eq!(
            res.headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{method} {path} answered {}",
            res.status()
        );
    }
}

#[tokio::test]
async fn the_user_list_and_its_page_bound_are_what_the_document_says() {
    let app = spawn_app().await;
    app.tokens(&AuthParams::new("app", "openid profile")).await;
    let doc = app
        .admin_ok(Method::GET, "/admin/api/openapi.json", None, 200)
        .await;
    let op = &doc["paths"]["/admin/api/users"]["get"];
    // The answer was documented as any JSON value, and `page` without its upper bound.
    assert_eq!(
        op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/UserList"
    );
    let page = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "page")
        .unwrap();
    let max = page["schema"]["maximum"].as_i64().unwrap();
    app.admin_ok(
        Method::GET,
        &format!("/admin/api/users?page={max}"),
        None,
        200,
    )
    .await;
    app.admin_ok(
        Method::GET,
        &format!("/admin/api/users?page={}", max + 1),
        None,
        400,
    )
    .await;
    // A projection leaves out what it does not choose, as the optional fields of UserView say.
    let some = app
        .admin_ok(
            Method::GET,
            "/admin/api/users?include_totals=true&fields=sub,created_at",
            None,
            200,
        )
        .await;
    let user = some["users"][0].as_object().unwrap();
    assert_eq!(
        user.keys().collect::<Vec<_>>(),
        ["sub", "created_at"],
        "{some}"
    );
    assert_eq!(some["length"], 1);
    let consents = &doc["paths"]["/admin/api/users/{sub}/consents"]["get"]["responses"]["200"];
    assert_eq!(
        consents["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ConsentRecords"
    );
}

/// Whether `value` has every property `schema` (a component of `doc`) requires and no property it
/// does not document; the schema test checks the rest (types, nested schemas).
fn assert_fits(doc: &Value, component: &str, value: &Value) {
    let schema = &doc["components"]["schemas"][component];
    assert_eq!(schema["type"], "object", "{component}: {schema}");
    let properties = schema["properties"].as_object().unwrap();
    for key in schema["required"].as_array().into_iter().flatten() {
        let key = key.as_str().unwrap();
        assert!(
            value.get(key).is_some(),
            "{value} lacks {key} ({component})"
        );
    }
    for key in value.as_object().unwrap().keys() {
        assert!(
            properties.contains_key(key),
            "{value}: {key} is not in {component}"
        );
    }
}

#[tokio::test]
async fn lineage_rows_with_and_without_an_origin_fit_the_documented_row() {
    let app = spawn_app().await;
    // A scope releasing a claim no upstream maps: its row has no origin fields at all, which
    // the derived schema (the row is an origin or null) would have refused.
    let mut scopes = app
        .admin_ok(Method::GET, "/admin/api/scopes", None, 200)
        .await;
    scopes["unmapped"] = json!({"description": "Nothing", "claims": ["nobody_sets_this"]});
    app.admin_ok(Method::PUT, "/admin/api/scopes", Some(scopes), 200)
        .await;
    let doc = app
        .admin_ok(Method::GET, "/admin/api/openapi.json", None, 200)
        .await;
    let rows = app
        .admin_ok(Method::GET, "/admin/api/lineage", None, 200)
        .await;
    let rows = rows.as_array().unwrap();
    assert!(rows.iter().any(|r| r.get("upstream").is_some()));
    let unmapped = rows
        .iter()
        .find(|r| r["claim"] == "nobody_sets_this")
        .unwrap();
    assert!(unmapped.get("upstream").is_none(), "{unmapped}");
    for row in rows {
        assert_fits(&doc, "LineageRow", row);
    }
}

#[tokio::test]
async fn previews_that_map_and_that_fail_fit_the_documented_preview() {
    // The answer was documented as any object.
    let app = spawn_app().await;
    let doc = app
        .admin_ok(Method::GET, "/admin/api/openapi.json", None, 200)
        .await;
    let mapped = app
        .admin_ok(
            Method::POST,
            "/admin/api/preview",
            Some(json!({"id_token": {"sub": "u1", "https://example.com/groups": ["a"]}})),
            200,
        )
        .await;
    assert_fits(&doc, "Preview", &mapped);
    assert_fits(&doc, "AuthContext", &mapped["context"]);
    // No `sub`: the mapping fails, the preview says why and has no context.
    let failed = app
        .admin_ok(
            Method::POST,
            "/admin/api/preview",
            Some(json!({"id_token": {}})),
            200,
        )
        .await;
    assert!(failed["error"].is_string(), "{failed}");
    assert_eq!(failed["context"], Value::Null);
    assert_fits(&doc, "Preview", &failed);
}

#[tokio::test]
async fn custom_scopes_are_documented_as_scope_definitions() {
    // Request and answers were documented as any object.
    let app = spawn_app().await;
    let doc = app
        .admin_ok(Method::GET, "/admin/api/openapi.json", None, 200)
        .await;
    let op = &doc["paths"]["/admin/api/scopes"]["put"];
    assert_eq!(
        op["requestBody"]["content"]["application/json"]["schema"]["additionalProperties"]["$ref"],
        "#/components/schemas/ScopeDef"
    );
    let mut scopes = app
        .admin_ok(Method::GET, "/admin/api/scopes", None, 200)
        .await;
    scopes["reports"] = json!({
        "description": "Your reports",
        "claims": ["groups", {"claim": "org.tenant", "to": ["access_token"]}],
        "optional": true
    });
    let answer = app
        .admin_ok(Method::PUT, "/admin/api/scopes", Some(scopes), 200)
        .await;
    for def in answer.as_object().unwrap().values() {
        assert_fits(&doc, "ScopeDef", def);
    }
    let detailed = &answer["reports"]["claims"][1];
    let entry = &doc["components"]["schemas"]["ReleaseEntry"]["oneOf"][1];
    assert_eq!(entry["type"], "object");
    for key in detailed.as_object().unwrap().keys() {
        assert!(entry["properties"].get(key).is_some(), "{detailed}: {key}");
    }
}

#[tokio::test]
async fn the_api_names_only_upstream_secret_variables_and_a_secret_never_follows_a_new_issuer() {
    let app = spawn_app().await;
    let mut body = second_upstream(&app);
    body["client_secret_env"] = json!("PGPASSWORD");
    let err = app
        .admin_ok(
            Method::POST,
            "/admin/api/upstreams",
            Some(body.clone()),
            400,
        )
        .await;
    assert!(
        err["error_description"]
            .as_str()
            .unwrap()
            .contains("HERALD_UPSTREAM_"),
        "{err}"
    );
    body["client_secret_env"] = json!("HERALD_UPSTREAM_TEST_SECRET");
    let created = app
        .admin_ok(
            Method::POST,
            "/admin/api/upstreams",
            Some(body.clone()),
            201,
        )
        .await;
    assert_eq!(created["client_secret_source"], "env");

    // Replacing it while naming the same variable keeps it...
    app.admin_ok(
        Method::PUT,
        "/admin/api/upstreams/second",
        Some(body.clone()),
        200,
    )
    .await;
    // ...but pointed at another issuer, without naming it again, the secret does not follow.
    let mut moved = body.clone();
    moved.as_object_mut().unwrap().remove("client_secret_env");
    moved["issuer"] = json!("http://127.0.0.1:9/elsewhere");
    let replaced = app
        .admin_ok(Method::PUT, "/admin/api/upstreams/second", Some(moved), 200)
        .await;
    assert_eq!(replaced["client_secret_source"], "none", "{replaced}");
    // And a PUT cannot switch to another process variable either.
    body["client_secret_env"] = json!("PATH");
    app.admin_ok(Method::PUT, "/admin/api/upstreams/second", Some(body), 400)
        .await;
}

#[tokio::test]
async fn a_deleted_clients_own_tokens_do_not_come_back_when_its_id_is_registered_again() {
    let app = spawn_app_with(ADMIN_CLIENT).await;
    // The machine client registered through the API (not from the file), with herald:admin.
    let created = app
        .admin_ok(
            Method::POST,
            "/admin/api/clients",
            Some(json!({"client_id": "robot", "scopes": ["herald:admin"],
                        "grant_types": ["client_credentials"]})),
            201,
        )
        .await;
    let secret = str_of(&created, "client_secret");
    let old = app
        .client_credentials("robot", &secret, "herald:admin")
        .await;
    app.admin_ok(Method::DELETE, "/admin/api/clients/robot", None, 204)
        .await;
    // One second later (the token's iat has second precision), the id is registered again.
    app.clock.advance(1);
    let again = app
        .admin_ok(
            Method::POST,
            "/admin/api/clients",
            Some(json!({"client_id": "robot", "scopes": ["herald:admin"],
                        "grant_types": ["client_credentials"]})),
            201,
        )
        .await;
    let res = app
        .admin(Method::GET, "/admin/api/clients", Some(&old), None)
        .await;
    assert_eq!(res.status(), 401, "the old registration's token is refused");
    assert!(!is_active(&app.base, "robot", &str_of(&again, "client_secret"), &old).await);
    // The new registration's own tokens work.
    let new = app
        .client_credentials("robot", &str_of(&again, "client_secret"), "herald:admin")
        .await;
    let res = app
        .admin(Method::GET, "/admin/api/clients", Some(&new), None)
        .await;
    assert_eq!(res.status(), 200);
    assert!(is_active(&app.base, "robot", &str_of(&again, "client_secret"), &new).await);
}
