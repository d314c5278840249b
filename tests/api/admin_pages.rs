//! The admin pages: sign-in through Herald with the role a mapping grants, the upstream editor
//! (inline errors, preview of unsaved rows, save), CSRF, clients, and the read-only pages.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// `[admin]` for tests: the test upstream's default user is in `staff` and `admins`.
const ADMIN_ROLE: &str = r#"
[admin]
role_claim = "groups"
role_value = "admins"
roles = { editor = "editors", auditor = "auditors" }
"#;

async fn spawn_admin_app() -> TestApp {
    spawn_app_full(ADMIN_ROLE, "", "").await
}

impl TestApp {
    /// Opens an admin page in `browser`, signing in through the upstream first if needed.
    async fn admin_page(&self, browser: &reqwest::Client, path: &str) -> (u16, String) {
        match self.follow(browser, format!("{}{path}", self.base)).await {
            Outcome::Page(status, body) => (status.as_u16(), body),
            other => panic!("{path}: {other:?}"),
        }
    }

    /// A new browser for `sub`, a member of `group` at the upstream: its next sign-in carries
    /// that group (the roles read it).
    fn member(&self, sub: &'static str, group: &'static str) -> reqwest::Client {
        self.upstream.set(move |b| {
            b.subject = sub.into();
            b.id_claims
                .insert("https://example.com/groups".into(), json!(["staff", group]));
        });
        browser()
    }

    async fn post_form(
        &self,
        browser: &reqwest::Client,
        path: &str,
        form: &[(String, String)],
    ) -> reqwest::Response {
        browser
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

/// The sub of the first user a users page links to.
fn first_user(html: &str) -> String {
    html.split("<a href=\"/admin/users/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no user linked in {html}"))
        .to_string()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The test upstream's attributes and mappings as the editor's rows, plus `extra` rows.
fn mapping_form(
    app: &TestApp,
    csrf: &str,
    action: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let version = app.state.config_version().to_string();
    let mut form = pairs(&[
        ("csrf", csrf),
        ("version", &version),
        ("action", action),
        ("attr.0.claim", r"https://example\.com/groups"),
        ("attr.0.source", "id_token"),
        ("attr.0.type", "string_array"),
        ("attr.0.on_missing", "clear"),
        ("attr.1.claim", r"https://example\.com/tenant"),
        ("attr.1.source", "userinfo"),
        ("attr.1.type", "string"),
        ("attr.1.on_missing", "clear"),
        ("map.0.from", r"https://example\.com/groups"),
        ("map.0.to", "groups"),
        ("map.0.merge", "set"),
        ("map.1.from", r"https://example\.com/tenant"),
        ("map.1.to", "org.tenant"),
        ("map.1.merge", "set"),
        (
            "sample_id_token",
            r#"{"sub": "s1", "https://example.com/groups": ["staff"], "https://example.com/dept": "research"}"#,
        ),
        ("scopes", "openid groups"),
    ]);
    form.extend(pairs(extra));
    form
}

/// A department claim, added to `groups` by a new attribute and mapping.
const DEPT_ROWS: &[(&str, &str)] = &[
    ("attr.2.claim", r"https://example\.com/dept"),
    ("attr.2.source", "id_token"),
    ("attr.2.type", "string_array"),
    ("attr.2.on_missing", "clear"),
    ("map.2.from", r"https://example\.com/dept"),
    ("map.2.to", "groups"),
    ("map.2.merge", "add"),
];

#[tokio::test]
async fn an_admin_previews_and_saves_a_mapping_and_the_next_login_carries_the_new_claim() {
    let app = spawn_admin_app().await;
    app.upstream.set(|b| {
        b.id_claims
            .insert("https://example.com/dept".into(), json!("research"));
    });
    let admin = browser();
    let (status, html) = app.admin_page(&admin, "/admin").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Herald administration"), "{html}");
    assert!(html.contains("Signed in as Alice"), "{html}");

    let (status, html) = app.admin_page(&admin, "/admin/upstreams/test").await;
    assert_eq!(status, 200);
    assert!(html.contains(r"https://example\.com/groups"), "{html}");
    let csrf = form_field(&html, "csrf");
    let version_before = app.state.config_version();

    // Preview the unsaved rows: the sample's department lands in the ID token's groups.
    let res = app
        .post_form(
            &admin,
            "/admin/upstreams/test",
            &mapping_form(&app, &csrf, "preview", DEPT_ROWS),
        )
        .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Preview result"), "{html}");
    let id_token_preview = html
        .split("aria-label=\"Preview ID token\">")
        .nth(1)
        .unwrap()
        .split("</pre>")
        .next()
        .unwrap()
        .replace("&quot;", "\"")
        .replace("&#34;", "\"");
    let previewed: Value = serde_json::from_str(&id_token_preview).unwrap();
    assert_eq!(previewed["groups"], json!(["staff", "research"]));
    assert_eq!(
        app.state.config_version(),
        version_before,
        "a preview saves nothing"
    );

    // Before saving, a login does not carry the department.
    let p = AuthParams::new("app", "openid groups");
    let tokens = app.tokens(&p).await;
    let claims = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["groups"], json!(["staff", "admins"]));

    // Save: a new version, audited as this admin, live at once.
    let res = app
        .post_form(
            &admin,
            "/admin/upstreams/test",
            &mapping_form(&app, &csrf, "save", DEPT_ROWS),
        )
        .await;
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("/admin/upstreams/test?saved="),
        "{location}"
    );
    assert_eq!(app.state.config_version(), version_before + 1);
    let (_, html) = app.admin_page(&admin, &location).await;
    assert!(html.contains("Saved as configuration version"), "{html}");
    assert!(html.contains(r"https://example\.com/dept"), "{html}");

    // The next login at the upstream (a new browser: a browser's existing login keeps the
    // context it was built with).
    let q = app.login(&browser(), &p).await;
    let res = app.redeem(&p, &q["code"]).await;
    let tokens: Value = res.json().await.unwrap();
    let claims = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["groups"], json!(["staff", "admins", "research"]));

    let audit: Value = app
        .api
        .get(format!("{}/admin/api/audit", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = &audit[0];
    assert_eq!(entry["action"], "upstream.claims.replace");
    assert_eq!(entry["target"], "upstream:test");
    assert!(
        entry["actor"].as_str().unwrap().starts_with("user:"),
        "{entry}"
    );
    assert_eq!(entry["after"]["mappings"][2]["merge"], "add");

    // The audit page lists it.
    let (status, html) = app.admin_page(&admin, "/admin/audit").await;
    assert_eq!(status, 200);
    assert!(html.contains("upstream.claims.replace"), "{html}");
}

#[tokio::test]
async fn an_invalid_mapping_is_refused_next_to_its_row_and_nothing_is_saved() {
    let app = spawn_admin_app().await;
    let admin = browser();
    let (_, html) = app.admin_page(&admin, "/admin/upstreams/test").await;
    let csrf = form_field(&html, "csrf");
    let version = app.state.config_version();
    for action in ["save", "preview"] {
        let res = app
            .post_form(
                &admin,
                "/admin/upstreams/test",
                &mapping_form(
                    &app,
                    &csrf,
                    action,
                    &[
                        ("map.2.from", r"https://example\.com/groups"),
                        ("map.2.to", "sub"),
                        ("map.2.merge", "set"),
                    ],
                ),
            )
            .await;
        assert_eq!(res.status(), 400, "{action}");
        let html = res.text().await.unwrap();
        // The check-config message sits in the third mapping row.
        let row = html
            .split("id=\"map-2-error\">")
            .nth(1)
            .unwrap_or_else(|| panic!("no error on mapping 2: {html}"))
            .split("</span>")
            .next()
            .unwrap();
        assert!(row.contains("mappings[2]"), "{row}");
        assert!(row.contains("sub"), "{row}");
        assert!(
            html.contains("value=\"sub\""),
            "the submitted value is kept"
        );
        assert!(!html.contains("Preview result"));
    }
    // A path that does not parse is refused on its row before validation.
    let res = app
        .post_form(
            &admin,
            "/admin/upstreams/test",
            &mapping_form(
                &app,
                &csrf,
                "save",
                &[("attr.2.claim", "a..b"), ("attr.2.source", "id_token")],
            ),
        )
        .await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"attr-2-error\""), "{html}");
    assert_eq!(app.state.config_version(), version);
}

#[tokio::test]
async fn admin_forms_need_the_sessions_csrf_token() {
    let app = spawn_admin_app().await;
    let admin = browser();
    let (_, html) = app.admin_page(&admin, "/admin/upstreams/test").await;
    let csrf = form_field(&html, "csrf");
    let version = app.state.config_version();
    for token in ["", "forged", &csrf[..csrf.len() - 1]] {
        let res = app
            .post_form(
                &admin,
                "/admin/upstreams/test",
                &mapping_form(&app, token, "save", DEPT_ROWS),
            )
            .await;
        assert_eq!(res.status(), 403, "csrf {token:?}");
        assert!(res.text().await.unwrap().contains("security token"));
    }
    // The same form with the right token goes through: the refusals were the token's.
    let res = app
        .post_form(
            &admin,
            "/admin/upstreams/test",
            &mapping_form(&app, &csrf, "preview", DEPT_ROWS),
        )
        .await;
    assert_eq!(res.status(), 200);
    // Another admin's session, with this one's token: refused too.
    let other = browser();
    let (status, _) = app.admin_page(&other, "/admin").await;
    assert_eq!(status, 200, "the other admin is signed in");
    let res = app
        .post_form(
            &other,
            "/admin/upstreams/test",
            &mapping_form(&app, &csrf, "save", DEPT_ROWS),
        )
        .await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("security token"));
    // No session at all: refused, not a sign-in.
    let res = app
        .post_form(
            &browser(),
            "/admin/clients",
            &pairs(&[("csrf", &csrf), ("client_id", "x")]),
        )
        .await;
    assert_eq!(res.status(), 403);
    assert_eq!(app.state.config_version(), version);
}

#[tokio::test]
async fn a_user_without_the_admin_role_is_refused() {
    let app = spawn_admin_app().await;
    app.upstream.set(|b| {
        b.subject = "auth0|bob".into();
        b.id_claims
            .insert("https://example.com/groups".into(), json!(["staff"]));
        b.id_claims.insert("name".into(), json!("Bob"));
    });
    let bob = browser();
    let (status, html) = app.admin_page(&bob, "/admin").await;
    assert_eq!(status, 403);
    assert!(html.contains("You are not an admin"), "{html}");
    assert!(html.contains("Bob"), "{html}");
    for path in [
        "/admin/upstreams/test",
        "/admin/clients",
        "/admin/audit",
        "/admin/nothing",
    ] {
        let res = bob.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(res.status(), 403, "{path}");
    }
    let res = app
        .post_form(
            &bob,
            "/admin/clients",
            &pairs(&[("csrf", "x"), ("client_id", "x")]),
        )
        .await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("You are not an admin"));
}

/// An editor changes clients but cannot see users; an auditor sees users and the configuration
/// but changes nothing; the pages show each only what their role allows.
#[tokio::test]
async fn editors_change_the_configuration_and_auditors_only_read() {
    let app = spawn_admin_app().await;
    let erin = app.member("auth0|erin", "editors");
    let (status, html) = app.admin_page(&erin, "/admin/clients").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("(editor)"), "{html}");
    assert!(
        html.contains(&format!("href=\"{}/logout\"", app.base)),
        "a sign-out link: {html}"
    );
    assert!(html.contains("Register a client"), "{html}");
    assert!(
        !html.contains("href=\"/admin/users\""),
        "no Users link for an editor: {html}"
    );
    let csrf = form_field(&html, "csrf");
    let res = app
        .post_form(
            &erin,
            "/admin/clients",
            &pairs(&[
                ("csrf", &csrf),
                ("client_id", "by-erin"),
                ("redirect_uris", "http://127.0.0.1:9000/cb"),
                ("scopes", "openid"),
                ("authorization_code", "on"),
            ]),
        )
        .await;
    assert_eq!(res.status(), 201);
    assert!(app.state.settings().client("by-erin").is_some());
    for path in ["/admin/users", "/admin/users/auth0%7Cerin"] {
        let (status, html) = app.admin_page(&erin, path).await;
        assert_eq!(status, 403, "{path}");
        assert!(
            html.contains("with the editor role; this needs the admin or auditor role"),
            "{html}"
        );
    }

    let avery = app.member("auth0|avery", "auditors");
    let (status, html) = app.admin_page(&avery, "/admin/clients/app").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("(auditor)"), "{html}");
    assert!(
        html.contains("may read these pages but not change anything"),
        "{html}"
    );
    assert!(!html.contains("value=\"save\""), "no Save button: {html}");
    assert!(!html.contains("value=\"rotate\""), "{html}");
    assert!(!html.contains("value=\"delete\""), "{html}");
    let csrf = form_field(&html, "csrf");
    let (status, html) = app.admin_page(&avery, "/admin/users").await;
    assert_eq!(status, 200, "{html}");
    let (status, _) = app.admin_page(&avery, "/admin/upstreams/test").await;
    assert_eq!(status, 200);
    // A form posted all the same (the buttons are only hidden) is refused and changes nothing.
    let version = app.state.config_version();
    for (path, form) in [
        (
            "/admin/clients",
            pairs(&[
                ("csrf", &csrf),
                ("client_id", "by-avery"),
                ("scopes", "openid"),
            ]),
        ),
        (
            "/admin/clients/app",
            pairs(&[("csrf", &csrf), ("action", "delete")]),
        ),
        (
            "/admin/clients/app",
            pairs(&[("csrf", &csrf), ("action", "rotate")]),
        ),
    ] {
        let res = app.post_form(&avery, path, &form).await;
        assert_eq!(res.status(), 403, "{path}");
        let html = res.text().await.unwrap();
        assert!(
            html.contains("this needs the admin or editor role"),
            "{html}"
        );
    }
    assert_eq!(app.state.config_version(), version);
    assert!(app.state.settings().client("app").is_some());
}

/// The role check, not the CSRF check, refuses a user who lost the role: Carol's form token
/// from when she was an admin is still hers and valid, and her POST is refused all the same.
#[tokio::test]
async fn a_valid_form_token_does_not_outlive_the_admin_role() {
    let app = spawn_admin_app().await;
    app.upstream.set(|b| b.subject = "auth0|carol".into());
    let carol = browser();
    let (status, html) = app.admin_page(&carol, "/admin/clients").await;
    assert_eq!(status, 200, "{html}");
    let csrf = form_field(&html, "csrf");

    // Carol leaves the admin group at the upstream and signs in again in the same browser.
    app.upstream.set(|b| {
        b.id_claims
            .insert("https://example.com/groups".into(), json!(["staff"]));
    });
    let again = AuthParams::new("trusted", "openid").with("prompt", "login");
    assert!(matches!(
        app.start(&carol, &again).await,
        Outcome::Client(_)
    ));

    let res = app
        .post_form(
            &carol,
            "/admin/clients",
            &pairs(&[("csrf", csrf.as_str()), ("client_id", "sneaky")]),
        )
        .await;
    assert_eq!(res.status(), 403);
    let html = res.text().await.unwrap();
    assert!(html.contains("You are not an admin"), "{html}");
    assert!(app.state.settings().client("sneaky").is_none());
}

#[tokio::test]
async fn without_a_configured_role_nobody_can_use_the_pages() {
    let app = spawn_app().await;
    let res = app
        .browser
        .get(format!("{}/admin", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let html = res.text().await.unwrap();
    assert!(html.contains("Admin pages are off"), "{html}");
    assert!(html.contains("role_claim"), "{html}");
}

#[tokio::test]
async fn pages_deny_framing_and_are_not_cached() {
    let app = spawn_admin_app().await;
    let admin = browser();
    app.admin_page(&admin, "/admin").await;
    for path in [
        "/admin",
        "/admin/upstreams/test",
        "/admin/clients",
        "/admin/lineage",
    ] {
        let res = admin
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["x-frame-options"], "DENY");
        assert!(
            res.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(res.headers()["cache-control"], "no-store");
    }
}

#[tokio::test]
async fn an_admin_registers_edits_and_deletes_a_client_through_the_pages() {
    let app = spawn_admin_app().await;
    let admin = browser();
    let (_, html) = app.admin_page(&admin, "/admin/clients").await;
    let csrf = form_field(&html, "csrf");
    let res = app
        .post_form(
            &admin,
            "/admin/clients",
            &pairs(&[
                ("csrf", &csrf),
                ("client_id", "reports"),
                ("client_name", "Reports"),
                ("redirect_uris", "http://127.0.0.1:9000/cb\n"),
                ("scopes", "openid profile"),
                ("authorization_code", "on"),
                ("id_token_signed_response_alg", "ES256"),
            ]),
        )
        .await;
    assert_eq!(res.status(), 201);
    let html = res.text().await.unwrap();
    let secret = html
        .split("aria-label=\"Client secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(secret.len(), 43, "{secret}");
    // The secret works at the token endpoint (the client may use client_credentials? no:
    // authorization_code only, so the grant is refused as unauthorized_client, not as bad auth).
    let res = app
        .api
        .post(format!("{}/token", app.base))
        .basic_auth("reports", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client", "{body}");
    // Shown once: the client's page does not show it.
    let (_, html) = app.admin_page(&admin, "/admin/clients/reports").await;
    assert!(!html.contains(&secret));
    assert!(html.contains("<option selected>ES256</option>"), "{html}");

    // An invalid change comes back with check-config's message and the typed values.
    let res = app
        .post_form(
            &admin,
            "/admin/clients/reports",
            &pairs(&[
                ("csrf", &csrf),
                ("version", &app.state.config_version().to_string()),
                ("action", "save"),
                ("redirect_uris", "not a url"),
                ("scopes", "openid"),
                ("authorization_code", "on"),
            ]),
        )
        .await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("redirect_uris"), "{html}");
    assert!(html.contains("not a url"), "{html}");

    let res = app
        .post_form(
            &admin,
            "/admin/clients/reports",
            &pairs(&[
                ("csrf", &csrf),
                ("version", &app.state.config_version().to_string()),
                ("action", "save"),
                ("client_name", "Monthly reports"),
                ("redirect_uris", "http://127.0.0.1:9000/cb"),
                ("scopes", "openid"),
                ("authorization_code", "on"),
                ("trusted", "on"),
            ]),
        )
        .await;
    assert_eq!(res.status(), 303);
    let c = app.state.settings().client("reports").cloned().unwrap();
    assert_eq!(c.client_name, "Monthly reports");
    assert!(c.trusted);
    // The secret survives an edit.
    let res = app
        .api
        .post(format!("{}/token", app.base))
        .basic_auth("reports", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client", "{body}");

    // Rotate secret: the new one is shown once on the answer, the old one works for the grace
    // period chosen, and the page says until when.
    let (_, html) = app.admin_page(&admin, "/admin/clients/reports").await;
    assert!(html.contains("value=\"rotate\""), "{html}");
    let rotate = pairs(&[
        ("csrf", &csrf),
        ("version", &form_field(&html, "version")),
        ("action", "rotate"),
        ("grace", "1h"),
    ]);
    let res = app
        .post_form(&admin, "/admin/clients/reports", &rotate)
        .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let rotated = html
        .split("aria-label=\"New client secret\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no new secret on {html}"))
        .split('<')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(rotated.len(), 43);
    assert_ne!(rotated, secret);
    assert!(
        html.contains("The previous secret keeps working until"),
        "{html}"
    );
    // The same form submitted again rotates nothing: the secret still deployed keeps working
    // and the one just shown stays the current one.
    let res = app
        .post_form(&admin, "/admin/clients/reports", &rotate)
        .await;
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("Not rotated"));
    for s in [&secret, &rotated] {
        let body: Value = app
            .api
            .post(format!("{}/token", app.base))
            .basic_auth("reports", Some(s))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            body["error"], "unauthorized_client",
            "both secrets authenticate: {body}"
        );
    }
    let (_, html) = app.admin_page(&admin, "/admin/clients/reports").await;
    assert!(!html.contains(&rotated), "shown once");
    assert!(html.contains("works until"), "{html}");

    let res = app
        .post_form(
            &admin,
            "/admin/clients/reports",
            &pairs(&[("csrf", &csrf), ("action", "delete")]),
        )
        .await;
    assert_eq!(res.status(), 303);
    assert!(app.state.settings().client("reports").is_none());
}

#[tokio::test]
async fn lineage_users_and_a_users_grants_are_listed() {
    let app = spawn_admin_app().await;
    let admin = browser();
    app.tokens(&AuthParams::new("app", "openid groups")).await;
    let (status, html) = app.admin_page(&admin, "/admin/lineage").await;
    assert_eq!(status, 200);
    assert!(html.contains(r"https://example\.com/groups"), "{html}");
    assert!(html.contains("org.tenant"), "{html}");

    let (status, html) = app.admin_page(&admin, "/admin/users?q=alice").await;
    assert_eq!(status, 200);
    assert!(html.contains("auth0|alice"), "{html}");
    let sub = first_user(&html);
    let (status, html) = app.admin_page(&admin, &format!("/admin/users/{sub}")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Test &lt;App&gt;") || html.contains("Test &#60;App&#62;"),
        "{html}"
    );

    let (status, html) = app
        .admin_page(&admin, "/admin/users?q=nobody-like-this")
        .await;
    assert_eq!(status, 200);
    assert!(html.contains("No users match"), "{html}");
    let (status, _) = app.admin_page(&admin, "/admin/users/no-such-user").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn with_an_admin_listener_the_admin_surface_is_served_only_there() {
    let (app, admin) =
        spawn_app_with_admin_listener("role_claim = \"groups\"\nrole_value = \"admins\"").await;
    let api = reqwest::Client::new();

    // The public listener has no /admin at all: 404, no challenge, nothing changed.
    for path in [
        "/admin",
        "/admin/",
        "/admin/clients",
        "/admin/api/openapi.json",
        "/admin/api/upstreams",
        "/admin/api/no-such-thing",
    ] {
        let res = api
            .get(format!("{}{path}", app.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "public {path}");
        assert!(!res.headers().contains_key("www-authenticate"), "{path}");
    }
    let res = api
        .post(format!("{}/admin/api/upstreams", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"id": "x", "kind": "dev"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = api
        .delete(format!("{}/admin/api/clients/app", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(app.state.config_version(), 1);
    // The pages' stylesheet is on the admin listener too.
    let res = api
        .get(format!("{admin}/static/herald.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Everything else stays public.
    let res = api
        .get(format!("{}/.well-known/openid-configuration", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // The admin listener has the API, with the same credentials...
    let res = api
        .get(format!("{admin}/admin/api/upstreams"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = api
        .get(format!("{admin}/admin/api/upstreams"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let listed: Value = res.json().await.unwrap();
    assert_eq!(listed[0]["id"], "test");
    // ...and the pages: the sign-in goes through the upstream and the issuer's callback, then
    // back to the admin listener.
    let browser = browser();
    let (status, html) = match app.follow(&browser, format!("{admin}/admin")).await {
        Outcome::Page(status, html) => (status.as_u16(), html),
        other => panic!("{other:?}"),
    };
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Herald administration"), "{html}");
    let res = browser
        .get(format!("{admin}/admin/clients"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The same browser still finds no admin pages on the public listener.
    let res = browser
        .get(format!("{}/admin", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // Nor does the admin listener serve the provider's endpoints.
    let res = api
        .get(format!("{admin}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // The home page points to where the admin pages are.
    let home = api
        .get(&app.base)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains(&format!("href=\"{admin}/admin\"")), "{home}");
}

#[tokio::test]
async fn a_nul_character_in_an_admin_page_address_is_a_bad_request() {
    // PostgreSQL refuses NUL in text parameters; the pages refuse it first, like the API.
    let app = spawn_admin_app().await;
    let admin = browser();
    app.admin_page(&admin, "/admin").await;
    for path in [
        "/admin/users/%00",
        "/admin/users?q=%00",
        "/admin/audit?actor=a%00",
    ] {
        let res = admin
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{path}");
    }
    // A search that merely contains `error=` is a search, not a failed sign-in.
    let (status, html) = app.admin_page(&admin, "/admin/users?q=error%3D").await;
    assert_eq!(status, 200);
    assert!(html.contains("No users match"), "{html}");
}

#[tokio::test]
async fn an_admin_removed_from_the_group_at_the_upstream_loses_the_pages_within_max_auth_age() {
    let app = spawn_app_full(&format!("{ADMIN_ROLE}max_auth_age = \"10m\"\n"), "", "").await;
    let admin = browser();
    let (status, _) = app.admin_page(&admin, "/admin").await;
    assert_eq!(status, 200);
    // The identity provider drops the user from the admins group.
    app.upstream.set(|b| {
        b.id_claims
            .insert("https://example.com/groups".into(), json!(["staff"]));
    });
    // Within max_auth_age the sign-in stands (the role was read at sign-in)...
    app.clock.advance(9 * 60);
    let (status, _) = app.admin_page(&admin, "/admin").await;
    assert_eq!(status, 200);
    // ...a form posted with a sign-in past it changes nothing...
    app.clock.advance(2 * 60);
    let res = admin
        .post(format!("{}/admin/clients", app.base))
        .form(&[("csrf", "x"), ("client_id", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("too old"));
    // ...and the next page signs in at the upstream afresh, which no longer grants the role.
    let (status, html) = app.admin_page(&admin, "/admin").await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("You are not an admin"), "{html}");
}

#[tokio::test]
async fn a_save_from_a_page_read_before_another_change_is_stopped_not_silently_merged() {
    let app = spawn_admin_app().await;
    let admin = browser();
    let (_, html) = app.admin_page(&admin, "/admin/upstreams/test").await;
    let csrf = form_field(&html, "csrf");
    let read_at = form_field(&html, "version");
    // Meanwhile another admin changes the configuration through the API.
    app.api
        .put(format!("{}/admin/api/scopes", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(
            &json!({"groups": {"description": "Your groups", "claims": ["groups"]},
                      "org": {"description": "Your organisation", "claims": ["org.tenant"]},
                      "api": {"description": "The API"}, "reports": {"description": "Reports"}}),
        )
        .send()
        .await
        .unwrap();
    let mut form = mapping_form(&app, &csrf, "save", DEPT_ROWS);
    form.retain(|(k, _)| k != "version");
    form.push(("version".into(), read_at.clone()));
    let res = app.post_form(&admin, "/admin/upstreams/test", &form).await;
    assert_eq!(res.status(), 409);
    let html = res.text().await.unwrap();
    assert!(html.contains("the configuration changed"), "{html}");
    assert!(
        html.contains(r"https://example\.com/dept"),
        "the typed rows are kept"
    );
    let now_at = form_field(&html, "version");
    assert_ne!(now_at, read_at);
    assert!(
        app.state
            .settings()
            .upstream("test")
            .unwrap()
            .mapping
            .mappings
            .len()
            == 2
    );
    // Saving again from that answer (it carries the current version) goes through.
    form.retain(|(k, _)| k != "version");
    form.push(("version".into(), now_at));
    let res = app.post_form(&admin, "/admin/upstreams/test", &form).await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        app.state
            .settings()
            .upstream("test")
            .unwrap()
            .mapping
            .mappings
            .len(),
        3
    );
}

#[tokio::test]
async fn a_client_form_posted_as_shown_saves_and_refresh_settings_follow_the_refresh_grant() {
    let app = spawn_admin_app().await;
    let admin = browser();
    // `app` has no refresh_token grant: its page shows no refresh lifetimes.
    let (_, html) = app.admin_page(&admin, "/admin/clients/app").await;
    assert!(
        html.contains("name=\"refresh_token_idle_ttl\" value=\"\""),
        "{html}"
    );
    let csrf = form_field(&html, "csrf");
    let version = form_field(&html, "version");
    // Lifetimes typed while the grant is unticked are not sent (check-config would refuse them).
    let form = pairs(&[
        ("csrf", &csrf),
        ("version", &version),
        ("action", "save"),
        ("client_name", "Test app"),
        ("redirect_uris", APP_CB),
        ("scopes", "openid profile"),
        ("authorization_code", "on"),
        ("refresh_token_idle_ttl", "1h"),
        ("refresh_token_grace_period", "3s"),
    ]);
    let res = app.post_form(&admin, "/admin/clients/app", &form).await;
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    // With the grant ticked they are saved, the grace period included.
    let mut form = form;
    form.retain(|(k, _)| k != "version");
    form.push(("version".into(), app.state.config_version().to_string()));
    form.push(("refresh_token".into(), "on".into()));
    form.retain(|(k, _)| k != "scopes");
    form.push(("scopes".into(), "openid profile offline_access".into()));
    let res = app.post_form(&admin, "/admin/clients/app", &form).await;
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    let c = app.state.settings().client("app").cloned().unwrap();
    assert_eq!(c.refresh_token_idle_ttl.as_secs(), 3600);
    assert_eq!(c.refresh_token_grace_period.as_secs(), 3);
}

/// Issue 19: an upstream is added on a page (with the callback URL to register there), tested
/// for real, and deleted, without the API.
#[tokio::test]
async fn an_admin_adds_tests_and_deletes_an_upstream_through_the_pages() {
    let app = spawn_admin_app().await;
    let admin = browser();
    let (status, html) = app.admin_page(&admin, "/admin/upstreams").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(&format!("{}/callback/test", app.base)),
        "{html}"
    );
    let csrf = form_field(&html, "csrf");
    let avery = app.member("auth0|avery", "auditors");
    let (_, html) = app.admin_page(&avery, "/admin/upstreams").await;
    assert!(!html.contains("Add upstream"), "{html}");

    // Refused: an OpenID provider without its issuer; the typed values come back.
    let res = app
        .post_form(
            &admin,
            "/admin/upstreams",
            &pairs(&[
                ("csrf", &csrf),
                ("id", "second"),
                ("kind", "oidc"),
                ("client_id", "herald-second"),
                ("scopes", "openid"),
            ]),
        )
        .await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("issuer"), "{html}");
    assert!(html.contains("value=\"herald-second\""), "{html}");
    assert!(app.state.settings().upstream("second").is_none());

    let issuer = app.upstream.issuer();
    let res = app
        .post_form(
            &admin,
            "/admin/upstreams",
            &pairs(&[
                ("csrf", &csrf),
                ("id", "second"),
                ("display_name", "Second"),
                ("kind", "oidc"),
                ("issuer", issuer),
                ("client_id", "herald-second"),
                ("scopes", "openid profile"),
            ]),
        )
        .await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("/admin/upstreams/second?created="),
        "{location}"
    );
    let up = app.state.settings().upstream("second").cloned().unwrap();
    assert_eq!(up.endpoint.issuer, issuer);
    assert_eq!(up.scopes, ["openid", "profile"]);
    let (_, html) = app.admin_page(&admin, &location).await;
    assert!(html.contains("Upstream “second” is added"), "{html}");
    assert!(
        html.contains(&format!("{}/callback/second", app.base)),
        "{html}"
    );

    // Test connection reaches the upstream and says what each step found.
    let version = app.state.config_version().to_string();
    let res = app
        .post_form(
            &admin,
            "/admin/upstreams/second",
            &pairs(&[("csrf", &csrf), ("version", &version), ("action", "test")]),
        )
        .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("aria-label=\"Connection test\""), "{html}");
    for step in ["discovery", "jwks", "credentials"] {
        assert!(html.contains(&format!(" {step}: ")), "{step}: {html}");
    }
    assert!(html.contains("✓ discovery"), "{html}");

    // An auditor (signed in before there were two upstreams to choose from) sees the page
    // without its buttons and cannot post them.
    let (_, html) = app.admin_page(&avery, "/admin/upstreams/second").await;
    assert!(!html.contains("value=\"delete\""), "{html}");
    let avery_csrf = form_field(&html, "csrf");
    let res = app
        .post_form(
            &avery,
            "/admin/upstreams/second",
            &pairs(&[("csrf", &avery_csrf), ("action", "delete")]),
        )
        .await;
    assert_eq!(res.status(), 403);
    assert!(app.state.settings().upstream("second").is_some());

    // Delete, back to the list.
    let res = app
        .post_form(
            &admin,
            "/admin/upstreams/second",
            &pairs(&[("csrf", &csrf), ("action", "delete")]),
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/upstreams");
    assert!(app.state.settings().upstream("second").is_none());
}

/// Issue 19: Herald's secret at an upstream is typed into its page and stored sealed (never in
/// a page, the stored document or the audit log), the upstream's own settings change on its
/// page, and what the form does not show keeps its value.
#[tokio::test]
async fn an_admin_types_an_upstream_secret_and_changes_its_settings_on_its_page() {
    let app = spawn_admin_app().await;
    let admin = browser();
    let (_, html) = app.admin_page(&admin, "/admin/upstreams").await;
    assert!(
        html.contains("type=\"password\" id=\"up-secret\" name=\"client_secret\""),
        "{html}"
    );
    for field in ["name=\"kind\"", "name=\"issuer\"", "name=\"domain\""] {
        assert!(html.contains(field), "{field}: {html}");
    }
    let csrf = form_field(&html, "csrf");
    // An auditor signs in now, while the development upstream is the only one.
    let avery = app.member("auth0|avery", "auditors");
    app.admin_page(&avery, "/admin").await;
    // Created through the API with a timeout and a parameter the page does not show, and a
    // secret the upstream refuses.
    let wrong = "typed-but-wrong-secret";
    app.admin_ok(
        Method::POST,
        "/admin/api/upstreams",
        Some(json!({
            "id": "second", "kind": "oidc", "issuer": app.upstream.issuer(),
            "client_id": "herald-second", "client_secret": wrong,
            "timeout": "7s", "extra_authorize_params": {"audience": "api"}
        })),
        201,
    )
    .await;
    let page = "/admin/upstreams/second";
    let (_, html) = app.admin_page(&admin, page).await;
    assert!(
        html.contains("Now from stored, encrypted with the key-encryption key"),
        "{html}"
    );
    assert!(!html.contains(wrong), "{html}");
    let test_connection = || async {
        let version = app.state.config_version().to_string();
        let res = app
            .post_form(
                &admin,
                page,
                &pairs(&[("csrf", &csrf), ("version", &version), ("action", "test")]),
            )
            .await;
        res.text().await.unwrap()
    };
    // The upstream refuses the stored secret: it is the one sent.
    let html = test_connection().await;
    assert!(html.contains("✗ credentials"), "{html}");

    let settings = |version: String, secret: &'static str| {
        pairs(&[
            ("csrf", &csrf),
            ("version", &version),
            ("display_name", "Second IdP"),
            ("kind", "oidc"),
            ("issuer", app.upstream.issuer()),
            ("client_id", "herald-second"),
            ("client_secret", secret),
            ("client_secret_env", ""),
            ("scopes", "openid email"),
            ("userinfo", "on"),
        ])
    };
    let save = format!("{page}/settings");
    let res = app
        .post_form(
            &admin,
            &save,
            &settings(app.state.config_version().to_string(), "upstream-secret"),
        )
        .await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("/admin/upstreams/second?saved="),
        "{location}"
    );
    let up = app.state.settings().upstream("second").cloned().unwrap();
    assert_eq!(up.display_name, "Second IdP");
    assert_eq!(up.scopes, ["openid", "email"]);
    assert!(up.userinfo && up.client_secret_sealed);
    assert_eq!(up.timeout, std::time::Duration::from_secs(7));
    assert_eq!(up.extra_authorize_params["audience"], "api");
    let html = test_connection().await;
    assert!(html.contains("✓ credentials"), "{html}");

    // Saved again with the secret left empty, the stored one stays.
    let res = app
        .post_form(
            &admin,
            &save,
            &settings(app.state.config_version().to_string(), ""),
        )
        .await;
    assert_eq!(res.status(), 303);
    assert!(
        app.state
            .settings()
            .upstream("second")
            .unwrap()
            .client_secret_sealed
    );
    assert!(test_connection().await.contains("✓ credentials"));

    // A save from a page opened before another change is stopped, with the typed values.
    let res = app
        .post_form(&admin, &save, &settings("1".into(), ""))
        .await;
    assert_eq!(res.status(), 409);
    let html = res.text().await.unwrap();
    assert!(html.contains("Settings not saved."), "{html}");
    assert!(html.contains("version 1 →"), "{html}");
    // Another issuer without the secret again is refused on the page.
    let mut moved = settings(app.state.config_version().to_string(), "");
    moved.retain(|(k, _)| k != "issuer");
    moved.push(("issuer".into(), "https://other-idp.example.com".into()));
    let res = app.post_form(&admin, &save, &moved).await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("another provider"), "{html}");
    assert!(
        html.contains("value=\"https://other-idp.example.com\""),
        "{html}"
    );

    let stored = app.state.store.latest_config().await.unwrap().unwrap();
    for secret in [wrong, "upstream-secret"] {
        assert!(!stored.document.contains(secret));
    }
    let audit = app
        .admin_ok(
            Method::GET,
            "/admin/api/audit?target=upstream:second",
            None,
            200,
        )
        .await
        .to_string();
    assert!(
        !audit.contains("upstream-secret") && !audit.contains(wrong),
        "{audit}"
    );

    // An auditor reads the settings and where the secret comes from, with no form.
    let (_, html) = app.admin_page(&avery, page).await;
    assert!(html.contains("secret from stored, encrypted"), "{html}");
    assert!(!html.contains("name=\"client_secret\""), "{html}");
}

/// Issue 19: the scopes page lists every scope with where it comes from; a scope is added,
/// worded per language, given back to Herald's definition and removed on its pages; a scope a
/// client may ask for cannot be removed; an auditor reads but changes nothing.
#[tokio::test]
async fn an_admin_adds_words_and_removes_scopes_on_the_scopes_pages() {
    let app = spawn_admin_app().await;
    let admin = browser();
    let (status, html) = app.admin_page(&admin, "/admin/scopes").await;
    assert_eq!(status, 200, "{html}");
    for row in [
        "groups</a> <span class=\"muted\">(custom)",
        "email</a> <span class=\"muted\">(built-in)",
    ] {
        assert!(html.contains(row), "{row}: {html}");
    }
    // Herald's own German for a built-in scope counts as a language it has.
    assert!(html.contains("de (Herald&#39;s)"), "{html}");
    let csrf = form_field(&html, "csrf");

    // A claims line that is not a path is refused with its line, the typed values kept.
    let add = |name: &str, claims: &str| {
        pairs(&[
            ("csrf", &csrf),
            ("name", name),
            ("description", "Read your reports"),
            ("translation.de", "Ihre Berichte lesen"),
            ("claims", claims),
            ("purpose", ""),
        ])
    };
    let res = app
        .post_form(
            &admin,
            "/admin/scopes",
            &add("read:reports", "groups\nroles -> id_tokens"),
        )
        .await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Claims, line 2: “id_tokens” is not a token"),
        "{html}"
    );
    assert!(html.contains("value=\"Ihre Berichte lesen\""), "{html}");
    let res = app
        .post_form(
            &admin,
            "/admin/scopes",
            &add("read:reports", "groups -> access_token"),
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        format!(
            "/admin/scopes/read%3Areports?saved={}",
            app.state.config_version()
        )
    );
    let settings = app.state.settings();
    let def = settings.scopes.get("read:reports").unwrap();
    assert_eq!(def.claims[0].claim().segments(), ["groups"]);
    assert_eq!(
        settings.scopes.scope_text("read:reports", "de"),
        "Ihre Berichte lesen"
    );
    // A second scope of that name, or of a built-in's, is refused.
    let res = app
        .post_form(&admin, "/admin/scopes", &add("email", "email"))
        .await;
    assert_eq!(res.status(), 409);

    // A built-in scope reworded becomes "redefined", and goes back to Herald's words.
    let (_, html) = app.admin_page(&admin, "/admin/scopes/email").await;
    assert!(
        html.contains("placeholder=\"Ihre E-Mail-Adresse\""),
        "{html}"
    );
    let version = app.state.config_version().to_string();
    let res = app
        .post_form(
            &admin,
            "/admin/scopes/email",
            &pairs(&[
                ("csrf", &csrf),
                ("version", &version),
                ("action", "save"),
                ("description", "Your work email"),
                ("translation.de", "Ihre geschäftliche E-Mail-Adresse"),
                ("claims", "email\nemail_verified"),
            ]),
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        app.state.settings().scopes.scope_text("email", "de"),
        "Ihre geschäftliche E-Mail-Adresse"
    );
    let (_, html) = app.admin_page(&admin, "/admin/scopes/email").await;
    assert!(html.contains("(built-in, redefined)"), "{html}");
    assert!(html.contains("Restore Herald's definition"), "{html}");
    // A save from a page opened before that change is stopped.
    let res = app
        .post_form(
            &admin,
            "/admin/scopes/email",
            &pairs(&[
                ("csrf", &csrf),
                ("version", &version),
                ("description", "Stale"),
            ]),
        )
        .await;
    assert_eq!(res.status(), 409);
    let version = app.state.config_version().to_string();
    let res = app
        .post_form(
            &admin,
            "/admin/scopes/email",
            &pairs(&[("csrf", &csrf), ("version", &version), ("action", "delete")]),
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        app.state.settings().scopes.scope_text("email", "de"),
        "Ihre E-Mail-Adresse"
    );

    // A scope a client may ask for stays; the page says why.
    let version = app.state.config_version().to_string();
    let res = app
        .post_form(
            &admin,
            "/admin/scopes/groups",
            &pairs(&[("csrf", &csrf), ("version", &version), ("action", "delete")]),
        )
        .await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("groups"), "{html}");
    assert!(app.state.settings().scopes.get("groups").is_some());
    // One no client asks for goes.
    let res = app
        .post_form(
            &admin,
            "/admin/scopes/read%3Areports",
            &pairs(&[("csrf", &csrf), ("version", &version), ("action", "delete")]),
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/scopes");
    assert!(app.state.settings().scopes.get("read:reports").is_none());

    let audit = app
        .admin_ok(
            Method::GET,
            "/admin/api/audit?target=scope:email",
            None,
            200,
        )
        .await;
    let actions = audit_actions(&audit);
    assert_eq!(actions, ["scope.delete", "scope.update"]);

    // An auditor reads the scope, in a form that cannot be sent, and is refused a change.
    let avery = app.member("auth0|avery", "auditors");
    let (_, html) = app.admin_page(&avery, "/admin/scopes/groups").await;
    assert!(html.contains("<fieldset disabled>"), "{html}");
    assert!(!html.contains("Save scope"), "{html}");
    let (_, clients) = app.admin_page(&avery, "/admin/clients/app").await;
    let csrf = form_field(&clients, "csrf");
    let version = app.state.config_version().to_string();
    let res = app
        .post_form(
            &avery,
            "/admin/scopes/groups",
            &pairs(&[
                ("csrf", &csrf),
                ("version", &version),
                ("description", "Mine"),
            ]),
        )
        .await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        app.state
            .settings()
            .scopes
            .get("groups")
            .unwrap()
            .description,
        "Your groups"
    );
}

/// Issue 19: the keys page lists the published keys and their lives; an admin rotates one, it
/// signs the next tokens and the audit log records it; an editor cannot.
#[tokio::test]
async fn an_admin_rotates_a_signing_key_on_the_keys_page() {
    let app = spawn_admin_app().await;
    let admin = browser();
    let jwks_kids = || async {
        app.jwks()
            .await
            .keys
            .into_iter()
            .map(|k| k.common.key_id.unwrap())
            .collect::<Vec<_>>()
    };
    let before = jwks_kids().await;
    let (status, html) = app.admin_page(&admin, "/admin/keys").await;
    assert_eq!(status, 200, "{html}");
    for kid in &before {
        assert!(html.contains(kid.as_str()), "{kid}: {html}");
    }
    assert!(html.contains("<td>signing</td>"), "{html}");
    let csrf = form_field(&html, "csrf");
    let res = app
        .post_form(
            &admin,
            "/admin/keys",
            &pairs(&[("csrf", &csrf), ("alg", "RS256"), ("activate_in", "0")]),
        )
        .await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let kid = location.split("rotated=").nth(1).unwrap().to_string();
    assert!(!before.contains(&kid));
    let (_, html) = app.admin_page(&admin, &location).await;
    assert!(html.contains(&format!("Key {kid} is published")), "{html}");
    assert!(html.contains("retired: verifies what it signed"), "{html}");
    let after = jwks_kids().await;
    assert!(
        after.contains(&kid) && before.iter().all(|k| after.contains(k)),
        "{after:?}"
    );
    // The next tokens are signed with it.
    let tokens = app.tokens(&AuthParams::new("app", "openid")).await;
    assert_eq!(kid_of(tokens["id_token"].as_str().unwrap()), kid);
    let audit = app
        .admin_ok(reqwest::Method::GET, "/admin/api/audit", None, 200)
        .await;
    let entry = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "keys.rotate")
        .unwrap_or_else(|| panic!("no rotation in {audit}"));
    assert!(
        entry["actor"].as_str().unwrap().starts_with("user:"),
        "{entry}"
    );
    assert_eq!(entry["after"]["new_kid"], kid.as_str(), "{entry}");

    // An editor sees the keys but may not rotate them.
    let erin = app.member("auth0|erin", "editors");
    let (status, html) = app.admin_page(&erin, "/admin/keys").await;
    assert_eq!(status, 200);
    assert!(!html.contains("Rotate key"), "{html}");
    let (_, clients) = app.admin_page(&erin, "/admin/clients").await;
    let erin_csrf = form_field(&clients, "csrf");
    let res = app
        .post_form(
            &erin,
            "/admin/keys",
            &pairs(&[("csrf", &erin_csrf), ("alg", "ES256"), ("activate_in", "0")]),
        )
        .await;
    assert_eq!(res.status(), 403);
    assert_eq!(jwks_kids().await.len(), after.len());
}

/// Issue 19: an admin withdraws a user's consent and erases the user from the user's page,
/// through the same operations as the API; an auditor sees the page without those buttons.
#[tokio::test]
async fn an_admin_withdraws_a_consent_and_erases_a_user_from_their_page() {
    let app = spawn_admin_app().await;
    let admin = browser();
    app.tokens(&AuthParams::new("app", "openid groups")).await;
    let (_, html) = app.admin_page(&admin, "/admin/users?q=alice").await;
    let sub = first_user(&html);
    let page = format!("/admin/users/{sub}");
    let (_, html) = app.admin_page(&admin, &page).await;
    assert!(html.contains("value=\"withdraw\""), "{html}");
    let csrf = form_field(&html, "csrf");
    let res = app
        .post_form(
            &admin,
            &page,
            &pairs(&[
                ("csrf", &csrf),
                ("action", "withdraw"),
                ("client_id", "app"),
            ]),
        )
        .await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let (_, html) = app.admin_page(&admin, &location).await;
    assert!(html.contains("was withdrawn"), "{html}");
    assert!(app.state.store.grant(&sub, "app").await.unwrap().is_none());
    let records = app.state.store.consent_records(&sub).await.unwrap();
    assert_eq!(records.last().unwrap().method.to_string(), "admin");
    // The audit log names the user, not only their opaque sub.
    let (_, html) = app.admin_page(&admin, "/admin/audit").await;
    assert!(html.contains(&format!("user:{sub}")), "{html}");
    assert!(
        html.contains("<span class=\"muted\">Alice</span>"),
        "{html}"
    );

    // An auditor reads the page but has no buttons, and a post is refused.
    let avery = app.member("auth0|avery", "auditors");
    let (status, html) = app.admin_page(&avery, &page).await;
    assert_eq!(status, 200);
    assert!(
        !html.contains("Erase user") && !html.contains("value=\"withdraw\""),
        "{html}"
    );
    let (_, client) = app.admin_page(&avery, "/admin/clients/app").await;
    let avery_csrf = form_field(&client, "csrf");
    let res = app
        .post_form(
            &avery,
            &page,
            &pairs(&[
                ("csrf", &avery_csrf),
                ("action", "erase"),
                ("confirm", "on"),
            ]),
        )
        .await;
    assert_eq!(res.status(), 403);

    // Erasing needs the confirmation, then the user is gone.
    let res = app
        .post_form(
            &admin,
            &page,
            &pairs(&[("csrf", &csrf), ("action", "erase")]),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert!(app.state.store.user(&sub).await.unwrap().is_some());
    let res = app
        .post_form(
            &admin,
            &page,
            &pairs(&[("csrf", &csrf), ("action", "erase"), ("confirm", "on")]),
        )
        .await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let (_, html) = app.admin_page(&admin, &location).await;
    assert!(html.contains("was erased"), "{html}");
    assert!(app.state.store.user(&sub).await.unwrap().is_none());
    let audit = app
        .admin_ok(reqwest::Method::GET, "/admin/api/audit", None, 200)
        .await;
    let actions = audit_actions(&audit);
    assert!(
        actions.contains(&"user.erase") && actions.contains(&"grant.withdraw"),
        "{actions:?}"
    );
}

/// Issue 19: an admin finds a user by email on the users page, blocks them from their page, and
/// reads the refusal on the login events page; an auditor reads but cannot block.
#[tokio::test]
async fn an_admin_finds_blocks_and_reads_the_login_events_of_a_user() {
    let app = spawn_admin_app().await;
    let admin = browser();
    app.admin_page(&admin, "/admin").await;
    // Bob signs in to the app (the admin is alice).
    app.upstream.set(|b| {
        b.subject = "auth0|bob".into();
        b.id_claims.insert("email".into(), json!("bob@example.com"));
    });
    let bob = browser();
    app.login(&bob, &AuthParams::new("app", "openid")).await;
    let (status, html) = app.admin_page(&admin, "/admin/users?q=BOB%40example").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("bob@example.com"), "{html}");
    assert!(!html.contains("alice@example.com"), "{html}");
    let sub = first_user(&html);
    let page = format!("/admin/users/{sub}");
    let (_, html) = app.admin_page(&admin, &page).await;
    assert!(html.contains("bob@example.com (verified)"), "{html}");
    // The stored context says where each value came from.
    assert!(html.contains("Where each value came from"), "{html}");
    assert!(html.contains("id_token email of test (standard)"), "{html}");
    assert!(html.contains("Block user"), "{html}");
    let csrf = form_field(&html, "csrf");
    let res = app
        .post_form(
            &admin,
            &page,
            &pairs(&[("csrf", &csrf), ("action", "block")]),
        )
        .await;
    assert_eq!(res.status(), 303);
    assert!(app.state.store.user(&sub).await.unwrap().unwrap().blocked);
    let (_, html) = app
        .admin_page(&admin, &format!("{page}?blocked=true"))
        .await;
    assert!(html.contains("The user is blocked"), "{html}");
    assert!(html.contains("Unblock user"), "{html}");

    // The blocked user's next login is refused, and the events page says so.
    let status = match app.start(&bob, &AuthParams::new("app", "openid")).await {
        Outcome::Page(status, _) => status,
        other => panic!("{other:?}"),
    };
    assert_eq!(status, 403);
    let mut html = String::new();
    for _ in 0..40 {
        html = app
            .admin_page(&admin, "/admin/logins?result=blocked")
            .await
            .1;
        if html.contains("the user is blocked") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(html.contains("the user is blocked"), "{html}");
    assert!(html.contains("<strong>blocked</strong>"), "{html}");
    let (status, html) = app.admin_page(&admin, "/admin/logins?result=maybe").await;
    assert_eq!(status, 200);
    assert!(html.contains("result: one of success"), "{html}");

    // An auditor reads the user and the events, and cannot unblock.
    let avery = app.member("auth0|avery", "auditors");
    let (status, html) = app.admin_page(&avery, &page).await;
    assert_eq!(status, 200);
    assert!(!html.contains("Unblock user"), "{html}");
    let (status, _) = app.admin_page(&avery, "/admin/logins").await;
    assert_eq!(status, 200);
    let (_, clients) = app.admin_page(&avery, "/admin/clients/app").await;
    let csrf = form_field(&clients, "csrf");
    let res = app
        .post_form(
            &avery,
            &page,
            &pairs(&[("csrf", &csrf), ("action", "unblock")]),
        )
        .await;
    assert_eq!(res.status(), 403);
    assert!(app.state.store.user(&sub).await.unwrap().unwrap().blocked);
}

/// Issue 17: a user's page lists their identities, and an admin unlinks one there.
#[tokio::test]
async fn a_users_page_lists_their_identities_and_unlinks_one() {
    let app = spawn_admin_app().await;
    let admin = browser();
    app.admin_page(&admin, "/admin").await;
    let created = app
        .admin_ok(
            reqwest::Method::POST,
            "/admin/api/users",
            Some(json!({
                "email": "dee@example.com",
                "identity": { "upstream": "test", "subject": "auth0|dee" }
            })),
            201,
        )
        .await;
    let sub = created["sub"].as_str().unwrap().to_string();
    app.admin_ok(
        reqwest::Method::POST,
        &format!("/admin/api/users/{sub}/identities"),
        Some(json!({ "upstream": "test", "subject": "google-oauth2|dee" })),
        201,
    )
    .await;
    let page = format!("/admin/users/{sub}");
    let (status, html) = app.admin_page(&admin, &page).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<strong>auth0|dee</strong>"), "{html}");
    assert!(
        html.contains("<strong>google-oauth2|dee</strong>"),
        "{html}"
    );
    let csrf = form_field(&html, "csrf");
    let res = app
        .post_form(
            &admin,
            &page,
            &pairs(&[
                ("csrf", &csrf),
                ("action", "unlink"),
                ("upstream", "test"),
                ("subject", "google-oauth2|dee"),
            ]),
        )
        .await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let (_, html) = app.admin_page(&admin, &location).await;
    assert!(html.contains("was unlinked"), "{html}");
    assert!(
        !html.contains("<strong>google-oauth2|dee</strong>"),
        "{html}"
    );
    let identities = app.state.store.identities(&sub).await.unwrap();
    assert_eq!(identities.len(), 1);
    assert_eq!(identities[0].subject, "auth0|dee");
    // Without the csrf token nothing is unlinked.
    let res = app
        .post_form(
            &admin,
            &page,
            &pairs(&[
                ("action", "unlink"),
                ("upstream", "test"),
                ("subject", "auth0|dee"),
            ]),
        )
        .await;
    assert_ne!(res.status(), 303);
    assert_eq!(app.state.store.identities(&sub).await.unwrap().len(), 1);
}

/// Issue 18: a client's access policy is set on its page, shown again, and a bad one is refused
/// there with check-config's message.
#[tokio::test]
async fn a_clients_access_policy_is_edited_on_its_page() {
    let app = spawn_admin_app().await;
    let admin = browser();
    let (_, html) = app.admin_page(&admin, "/admin/clients/app").await;
    let csrf = form_field(&html, "csrf");
    let save = |version: String, policy: &str| {
        pairs(&[
            ("csrf", &csrf),
            ("version", &version),
            ("action", "save"),
            ("client_name", "Test app"),
            ("redirect_uris", APP_CB),
            ("scopes", "openid profile"),
            ("authorization_code", "on"),
            ("access_policy", policy),
        ])
    };
    let version = form_field(&html, "version");
    let res = app
        .post_form(
            &admin,
            "/admin/clients/app",
            &save(version, "context.groups.exists(g, g =="),
        )
        .await;
    assert_eq!(res.status(), 400);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("access_policy: not a CEL condition"),
        "{page}"
    );
    assert!(
        app.state
            .settings()
            .client("app")
            .unwrap()
            .access_policy
            .is_none()
    );

    let version = app.state.config_version().to_string();
    let res = app
        .post_form(
            &admin,
            "/admin/clients/app",
            &save(version, "'staff' in context.groups"),
        )
        .await;
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    let policy = app
        .state
        .settings()
        .client("app")
        .unwrap()
        .access_policy
        .clone();
    assert_eq!(policy.unwrap().source(), "'staff' in context.groups");
    let (_, html) = app.admin_page(&admin, "/admin/clients/app").await;
    assert!(
        html.contains("value=\"&#39;staff&#39; in context.groups\""),
        "{html}"
    );
}

#[tokio::test]
async fn an_admin_writes_a_computed_mapping_on_the_page_and_its_transforms_survive_the_save() {
    let app = spawn_admin_app().await;
    let admin = browser();
    let (_, html) = app.admin_page(&admin, "/admin/upstreams/test").await;
    let csrf = form_field(&html, "csrf");
    let computed: &[(&str, &str)] = &[
        ("map.2.expr", "id_token['https://example.com/dept'] + '!'"),
        ("map.2.when", "has(id_token.sub)"),
        ("map.2.to", "dept"),
        ("map.2.merge", "set"),
        // What the page sends back for a mapping with transforms it does not edit.
        ("map.2.kept", r#"{"transform": ["uppercase"]}"#),
    ];
    // The preview shows each step with its input and output.
    let res = app
        .post_form(
            &admin,
            "/admin/upstreams/test",
            &mapping_form(&app, &csrf, "preview", computed),
        )
        .await;
    let html = res.text().await.unwrap();
    assert!(html.contains("aria-label=\"Preview steps\""), "{html}");
    assert!(
        html.contains("&quot;RESEARCH!&quot;") || html.contains("&#34;RESEARCH!&#34;"),
        "{html}"
    );
    // A bad expression is refused next to its row, with its place.
    let mut bad = computed.to_vec();
    bad[0] = ("map.2.expr", "lower(id_token.sub)");
    let res = app
        .post_form(
            &admin,
            "/admin/upstreams/test",
            &mapping_form(&app, &csrf, "save", &bad),
        )
        .await;
    let html = res.text().await.unwrap();
    assert!(html.contains("unknown function `lower`"), "{html}");
    // Saved, the mapping keeps its expression, condition and transform.
    let res = app
        .post_form(
            &admin,
            "/admin/upstreams/test",
            &mapping_form(&app, &csrf, "save", computed),
        )
        .await;
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    let saved = app
        .admin_ok(Method::GET, "/admin/api/upstreams/test", None, 200)
        .await;
    let mapping = &saved["mappings"][2];
    assert_eq!(
        mapping["expr"],
        "id_token['https://example.com/dept'] + '!'"
    );
    assert_eq!(mapping["when"], "has(id_token.sub)");
    assert_eq!(mapping["transform"], json!(["uppercase"]));
    assert!(mapping.get("from").is_none(), "{mapping}");
    // The page shows them again, the transform described.
    let (_, html) = app.admin_page(&admin, "/admin/upstreams/test").await;
    assert!(html.contains(">has(id_token.sub)</textarea>"), "{html}");
    assert!(html.contains("then uppercase"), "{html}");
}

/// The test upstream's mapping targets, declared; `strict_context` makes others errors.
const DECLARED: &str = r#"
strict_context = true

[[context]]
path = "groups"
type = "string_array"
description = "The groups the user belongs to at the upstream"

[[context]]
path = "org"
type = "object"
description = "The user's organisation"
"#;

#[tokio::test]
async fn the_declared_context_is_shown_and_strict_context_refuses_an_undeclared_target() {
    let app = spawn_app_full(&format!("{DECLARED}{ADMIN_ROLE}"), "", "").await;
    let admin = browser();
    let (status, html) = app.admin_page(&admin, "/admin/lineage").await;
    assert_eq!(status, 200);
    assert!(html.contains("aria-label=\"Declared context\""), "{html}");
    assert!(
        html.contains("The groups the user belongs to at the upstream"),
        "{html}"
    );
    // `org` is written by the tenant mapping, inside it.
    assert!(
        html.contains(r"test: https://example\.com/tenant → org.tenant"),
        "{html}"
    );

    // A mapping to an undeclared path is refused with check-config's words.
    let mut mappings = app
        .admin_ok(Method::GET, "/admin/api/upstreams/test/mappings", None, 200)
        .await;
    mappings.as_array_mut().unwrap().push(json!({
        "expr": "id_token.email.split('@')[1]",
        "to": "email_domain"
    }));
    let res = app
        .admin(
            Method::PUT,
            "/admin/api/upstreams/test/mappings",
            Some(ADMIN_TOKEN),
            Some(&mappings),
        )
        .await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body.to_string().contains(
            "upstreams[0].mappings[2] (→ `email_domain`): writes `email_domain`, which no [[context]] entry declares"
        ),
        "{body}"
    );
}

#[test]
fn without_strict_context_an_undeclared_target_is_a_warning() {
    let toml = config_with_upstream(
        r#"
[[upstreams.mappings]]
expr = "id_token.email"
to = "mail"

[[context]]
path = "groups"
"#,
    );
    let (_, warnings) = herald::config::from_toml(&toml).unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("writes `mail`, which no [[context]] entry declares")),
        "{warnings:?}"
    );
}
