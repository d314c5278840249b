//! Issue 17: profile imports. Through the admin API, from a JSON-lines file with
//! `herald import`, and from a stand-in for Auth0's Management API (a real HTTP server on
//! loopback that `herald import --from-upstream` pages through): every line goes through the
//! upstream's mappings with their merge strategies, users are matched by identity and created
//! only when allowed, and the report counts created, updated, unchanged and failed lines.

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// Badges add up across imports and logins (merge = "add").
const BADGES: &str = r#"
[[upstreams.attributes]]
claim = "https://example\\.com/badges"
source = "id_token"
type = "string_array"

[[upstreams.mappings]]
from = "https://example\\.com/badges"
to = "badges"
merge = "add"
"#;

async fn import(app: &TestApp, body: Value) -> Value {
    app.admin_ok(Method::POST, "/admin/api/users/import", Some(body), 200)
        .await
}

/// The attributes of user `sub`'s stored context, from their export.
async fn stored_attributes(app: &TestApp, sub: &str) -> Value {
    let export = app
        .admin_ok(
            Method::GET,
            &format!("/admin/api/users/{sub}/export"),
            None,
            200,
        )
        .await;
    export["profile"]["last_context"]["attributes"].clone()
}

async fn total_users(app: &TestApp) -> i64 {
    app.admin_ok(
        Method::GET,
        "/admin/api/users?include_totals=true",
        None,
        200,
    )
    .await["total"]
        .as_i64()
        .unwrap()
}

fn alice(badges: &[&str]) -> Value {
    json!({
        "sub": "auth0|alice",
        "email": "alice@example.com",
        "email_verified": true,
        "https://example.com/groups": ["staff"],
        "https://example.com/badges": badges,
    })
}

#[tokio::test]
async fn the_api_imports_through_the_mappings_and_reports_every_line() {
    let app = spawn_app_configured(BADGES, "").await;
    app.tokens(&AuthParams::new("app", "openid")).await;
    let sub = app
        .admin_ok(
            Method::GET,
            "/admin/api/users-by-email?email=alice@example.com",
            None,
            200,
        )
        .await[0]["sub"]
        .as_str()
        .unwrap()
        .to_string();

    // A dry run reports and stores nothing.
    let zed = json!({ "id_token": { "sub": "auth0|zed", "email": "zed@example.com" } });
    let dry = import(
        &app,
        json!({ "upstream": "test", "allow_create": true, "dry_run": true,
                "users": [alice(&["gold"]), zed] }),
    )
    .await;
    assert_eq!(
        (dry["updated"].as_i64(), dry["created"].as_i64()),
        (Some(1), Some(1)),
        "{dry}"
    );
    assert_eq!(dry["dry_run"], true);
    assert_eq!(total_users(&app).await, 1);
    assert_eq!(stored_attributes(&app, &sub).await.get("badges"), None);

    // Without allow_create a stranger fails, and so does a line that is no profile.
    let report = import(
        &app,
        json!({ "upstream": "test",
                "users": [alice(&["gold"]), zed, 42, { "name": "no subject" }] }),
    )
    .await;
    assert_eq!(report["updated"], 1, "{report}");
    assert_eq!(report["failed"], 3, "{report}");
    let failed: Vec<i64> = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["line"].as_i64().unwrap())
        .collect();
    assert_eq!(failed, [2, 3, 4]);
    assert!(
        report["failures"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("allow creating users"),
        "{report}"
    );
    let changed = report["changes"][0]["changed"].as_array().unwrap();
    assert!(
        changed.contains(&json!("badges")) && changed.contains(&json!("groups")),
        "{report}"
    );
    let attrs = stored_attributes(&app, &sub).await;
    assert_eq!(attrs["badges"], json!(["gold"]));
    assert_eq!(attrs["groups"], json!(["staff"]));

    // The same line again changes nothing; another badge adds up (merge = "add").
    let again = import(
        &app,
        json!({ "upstream": "test", "users": [alice(&["gold"])] }),
    )
    .await;
    assert_eq!(again["unchanged"], 1, "{again}");
    import(
        &app,
        json!({ "upstream": "test", "users": [alice(&["silver"])] }),
    )
    .await;
    assert_eq!(
        stored_attributes(&app, &sub).await["badges"],
        json!(["gold", "silver"])
    );

    // With allow_create, Zed becomes a user with that identity.
    let created = import(
        &app,
        json!({ "upstream": "test", "allow_create": true, "users": [zed] }),
    )
    .await;
    assert_eq!(created["created"], 1, "{created}");
    let zed_sub = created["changes"][0]["sub"].as_str().unwrap();
    let user = app
        .admin_ok(
            Method::GET,
            &format!("/admin/api/users/{zed_sub}"),
            None,
            200,
        )
        .await;
    assert_eq!(user["identity"]["subject"], "auth0|zed");
    assert_eq!(user["email"], "zed@example.com");
    let audit = app
        .admin_ok(Method::GET, "/admin/api/audit?limit=5", None, 200)
        .await;
    assert_eq!(audit_actions(&audit)[0], "user.import");

    // An unknown upstream is a clear 400.
    let res = app
        .admin(
            Method::POST,
            "/admin/api/users/import",
            Some(ADMIN_TOKEN),
            Some(&json!({ "upstream": "nowhere", "users": [] })),
        )
        .await;
    assert_eq!(res.status(), 400);
}

/// Runs `herald ARGS`; (exit status success, stdout, stderr).
async fn herald(args: Vec<String>) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_herald"));
    cmd.args(args).env("RUST_LOG", "off");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn temp_file(name: &str, text: &str) -> String {
    let path = std::env::temp_dir().join(format!(
        "herald-import-{}-{name}",
        herald::tokens::random_token()
    ));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test]
async fn herald_import_reads_a_json_lines_file_with_a_dry_run_first() {
    let app = spawn_app_configured(BADGES, "").await;
    let config = temp_file("herald.toml", &app.config);
    let lines = [
        json!({ "sub": "auth0|ann", "email": "ann@example.com", "https://example.com/badges": ["a"] })
            .to_string(),
        String::new(),
        "{not json".to_string(),
        json!({ "user_id": "auth0|bob", "name": "Bob" }).to_string(),
    ]
    .join("\n");
    let file = temp_file("users.jsonl", &lines);
    let run = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "import",
            "--config",
            &config,
            "--upstream",
            "test",
            &file,
            "--allow-create",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        herald(args)
    };

    let (ok, stdout, stderr) = run(&["--dry-run"]).await;
    assert!(!ok, "a failed line fails the run: {stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["created"], 2, "{report}");
    assert_eq!(report["dry_run"], true);
    assert!(
        stderr.contains("2 created, 0 updated, 0 unchanged, 1 failed (dry run"),
        "{stderr}"
    );
    assert_eq!(total_users(&app).await, 0);

    let (_, stdout, _) = run(&[]).await;
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["created"], 2, "{report}");
    assert_eq!(
        report["failures"][0]["line"], 3,
        "the line number in the file"
    );
    assert!(
        report["failures"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not JSON")
    );
    assert_eq!(total_users(&app).await, 2);
    let bob = app
        .admin_ok(Method::GET, "/admin/api/users?q=bob&fields=sub", None, 200)
        .await;
    assert_eq!(bob.as_array().unwrap().len(), 1, "{bob}");

    // Run again: both known, nothing changes.
    let (_, stdout, _) = run(&[]).await;
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["unchanged"], 2, "{report}");
}

/// What the Management API stand-in saw.
#[derive(Default)]
struct Seen {
    token_requests: Vec<Vec<(String, String)>>,
    pages: Vec<Vec<(String, String)>>,
}

const USERS: usize = 120;

async fn mgmt_token(
    State(seen): State<Arc<Mutex<Seen>>>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let ok = form.contains(&("client_secret".into(), "mgmt-secret".into()))
        && form.contains(&("grant_type".into(), "client_credentials".into()));
    seen.lock().unwrap().token_requests.push(form);
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "access_denied"})),
        )
            .into_response();
    }
    Json(json!({ "access_token": "mgmt-token", "token_type": "Bearer" })).into_response()
}

async fn mgmt_users(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    seen.lock().unwrap().pages.push(q.clone());
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer mgmt-token") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let param = |name: &str| {
        q.iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0)
    };
    let (page, per_page) = (param("page"), param("per_page").max(1));
    let users: Vec<Value> = (page * per_page..USERS.min((page + 1) * per_page))
        .map(|i| {
            json!({
                "user_id": format!("auth0|u{i}"),
                "email": format!("u{i}@example.com"),
                "email_verified": true,
                "name": format!("User {i}"),
            })
        })
        .collect();
    Json(json!({
        "start": page * per_page, "limit": per_page, "length": users.len(),
        "total": USERS, "users": users,
    }))
    .into_response()
}

/// One user, renamed since the import.
async fn mgmt_user(
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer mgmt-token") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let n = id.trim_start_matches("auth0|u");
    Json(json!({
        "user_id": id,
        "email": format!("u{n}@example.com"),
        "email_verified": true,
        "name": format!("User {n} (renamed)"),
    }))
    .into_response()
}

#[tokio::test]
async fn herald_import_pages_through_auth0s_management_api() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mgmt = format!("http://{}", listener.local_addr().unwrap());
    let api = Router::new()
        .route("/oauth/token", post(mgmt_token))
        .route("/api/v2/users", get(mgmt_users))
        .route("/api/v2/users/{id}", get(mgmt_user))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });

    let tenant = format!(
        r#"
[[upstreams]]
id = "tenant"
kind = "auth0"
domain = "tenant.example"
client_id = "herald-mgmt"
client_secret = "mgmt-secret"
management_api_url = "{mgmt}"
"#
    );
    let app = spawn_app_configured("", &tenant).await;
    let config = temp_file("herald.toml", &app.config);
    let (ok, stdout, stderr) = herald(
        [
            "import",
            "--config",
            &config,
            "--upstream",
            "tenant",
            "--from-upstream",
            "--allow-create",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    )
    .await;
    assert!(ok, "{stderr}\n{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["created"], USERS, "{report}");
    assert_eq!(total_users(&app).await, USERS as i64);

    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let token = &seen.token_requests[0];
    assert!(
        token.contains(&("audience".into(), format!("{mgmt}/api/v2/"))),
        "{token:?}"
    );
    assert!(token.contains(&("client_id".into(), "herald-mgmt".into())));
    let pages: Vec<&str> = seen
        .pages
        .iter()
        .map(|q| q.iter().find(|(k, _)| k == "page").unwrap().1.as_str())
        .collect();
    assert_eq!(pages, ["0", "1"]);
    assert!(seen.pages[0].contains(&("include_totals".into(), "true".into())));
    assert!(seen.pages[0].contains(&("per_page".into(), "100".into())));

    // A user found by email has the tenant's identity.
    let found = app
        .admin_ok(
            Method::GET,
            "/admin/api/users-by-email?email=u7@example.com",
            None,
            200,
        )
        .await;
    assert_eq!(found[0]["upstream_subject"], "auth0|u7");
    assert_eq!(found[0]["name"], "User 7");

    // "This profile changed": the admin API re-reads the user from the Management API.
    let sub = found[0]["sub"].as_str().unwrap();
    let refetched = app
        .admin_ok(
            Method::POST,
            &format!("/admin/api/users/{sub}/refresh"),
            None,
            200,
        )
        .await;
    assert_eq!(refetched["source"], "management_api", "{refetched}");
    assert_eq!(refetched["upstream"], "tenant");
    assert_eq!(refetched["changed"], json!(["name"]));
    assert_eq!(
        stored_attributes(&app, sub).await["name"],
        "User 7 (renamed)"
    );
}
