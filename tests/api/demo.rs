//! The demo app on the home page: offered only when it works, and when it does not, its page
//! says what to change (a rough edge of issue 19: after the issuer's port changed, `/demo/login`
//! said only "The demo app is not configured.").

use reqwest::Method;
use serde_json::json;

use crate::support::*;

/// A demo client registered for the default port, not for this test's issuer.
const DEMO_ON_8080: &str = r#"
[[clients]]
client_id = "demo"
client_name = "Herald demo app"
redirect_uris = ["http://127.0.0.1:8080/demo/callback"]
scopes = ["openid", "profile"]
"#;

async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let res = app
        .browser
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn the_demo_is_offered_only_when_it_works_and_otherwise_says_what_to_change() {
    let app = spawn_app_with(DEMO_ON_8080).await;
    let (_, home) = get(&app, "/").await;
    assert!(!home.contains("Try a login with the demo app"), "{home}");
    let (status, page) = get(&app, "/demo/login").await;
    assert_eq!(status, 404);
    assert!(page.contains("The demo app cannot run here"), "{page}");
    assert!(page.contains(&format!("issuer is {}", app.base)), "{page}");
    assert!(
        page.contains(&format!(
            "may not be sent back to {}/demo/callback",
            app.base
        )),
        "{page}"
    );
    assert!(
        !page.contains("127.0.0.1:8080"),
        "the configured addresses are not shown: {page}"
    );

    // Doing what it says makes the demo work, and the home page offers it.
    let callback = format!("{}/demo/callback", app.base);
    app.admin_ok(
        Method::PUT,
        "/admin/api/clients/demo",
        Some(
            json!({"client_name": "Herald demo app", "scopes": ["openid", "profile"],
                    "redirect_uris": ["http://127.0.0.1:8080/demo/callback", callback]}),
        ),
        200,
    )
    .await;
    let (_, home) = get(&app, "/").await;
    assert!(home.contains("Try a login with the demo app"), "{home}");
    let res = app
        .browser
        .get(format!("{}/demo/login", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap();
    assert!(location.contains("/authorize?"), "{location}");
    assert!(
        location.contains("code_challenge_method=S256"),
        "{location}"
    );
}

#[tokio::test]
async fn without_a_demo_client_its_page_says_how_to_add_one() {
    let app = spawn_app().await;
    let (_, home) = get(&app, "/").await;
    assert!(!home.contains("Try a login with the demo app"), "{home}");
    let (status, page) = get(&app, "/demo/login").await;
    assert_eq!(status, 404);
    assert!(page.contains("has no client “demo”"), "{page}");
}
