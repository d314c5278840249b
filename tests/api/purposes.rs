//! Purposes and receipts (issue 16): scopes serve purposes, the consent page shows their terms in
//! the locale asked for, the record keeps the very words shown, the `consents` scope releases
//! the user's decision per purpose, decisions imported from a CMP count like Herald's, and
//! withdrawals (by the user, or with a removed client) reach the webhook as `consent.withdrawn`.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;
use crate::webhooks::{receiver, webhook};

/// Two purposes, a scope serving each (one translated), and a client that may ask for them
/// and for `consents`.
const PURPOSES: &str = r#"
[purposes.marketing]
description = "Offers and news from us"
legal_basis = "consent"
version = "2026-01"
translations = { fr = "Offres et actualités de notre part" }

[purposes.analytics]
description = "Improving the service"
legal_basis = "legitimate_interest"

[scopes.news]
description = "Our newsletter at your email address"
purpose = "marketing"
optional = true
translations = { fr = "Notre lettre d'information à votre adresse e-mail" }

[scopes.stats]
description = "How you use the app"
purpose = "analytics"

[[clients]]
client_id = "shop"
client_secret = "app-secret-for-tests"
redirect_uris = ["http://127.0.0.1:9000/cb"]
scopes = ["openid", "email", "news", "stats", "consents"]
"#;

fn shop(scope: &str) -> AuthParams {
    AuthParams::new("shop", scope)
}

fn sub_of(tokens: &Value) -> String {
    payload(tokens["id_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn redeem(
    app: &TestApp,
    p: &AuthParams,
    q: &std::collections::HashMap<String, String>,
) -> Value {
    let res = app.redeem(p, &q["code"]).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn the_page_shows_purposes_in_the_asked_locale_and_the_record_keeps_those_words() {
    let app = spawn_app_with(PURPOSES).await;
    let discovery: Value = app
        .api
        .get(format!("{}/.well-known/openid-configuration", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["ui_locales_supported"], json!(["de", "en", "fr"]));
    assert!(
        discovery["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("consents"))
    );
    assert!(
        discovery["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("purposes"))
    );
    let p = shop("openid news stats consents").with("ui_locales", "fr-CA en");
    let html = match app.start(&app.browser, &p).await {
        Outcome::Consent(html) => html,
        other => panic!("{other:?}"),
    };
    assert!(
        html.contains("Notre lettre d&#39;information à votre adresse e-mail")
            || html.contains("Notre lettre d&#x27;information à votre adresse e-mail"),
        "{html}"
    );
    assert!(
        html.contains("Used for: Offres et actualités de notre part"),
        "{html}"
    );
    assert!(html.contains("(legal basis: consent)"), "{html}");
    assert!(
        html.contains("(legal basis: legitimate interest)"),
        "{html}"
    );
    // Allow, leaving the optional newsletter checked. The form carries the locale shown, and
    // its token vouches for it: a form claiming another locale is refused.
    let (request, csrf) = consent_fields(&html);
    assert_eq!(form_field(&html, "locale"), "fr");
    let forged = app
        .browser
        .post(format!("{}/consent", app.base))
        .form(&[
            ("request", request.as_str()),
            ("csrf", csrf.as_str()),
            ("locale", "en"),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let res = app
        .browser
        .post(format!("{}/consent", app.base))
        .form(&[
            ("request", request.as_str()),
            ("csrf", csrf.as_str()),
            ("locale", "fr"),
            ("decision", "allow"),
            ("scope", "news"),
        ])
        .send()
        .await
        .unwrap();
    let q = match app.after(&app.browser, res).await {
        Outcome::Client(q) => q,
        other => panic!("{other:?}"),
    };
    let tokens = redeem(&app, &p, &q).await;
    let sub = sub_of(&tokens);
    // The ID token and userinfo carry the user's decision per purpose.
    let id = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(
        id["purposes"],
        json!({"marketing": true, "analytics": true})
    );
    let info: Value = app
        .userinfo(tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        info["purposes"],
        json!({"marketing": true, "analytics": true})
    );

    // The receipt: the locale shown, the exact French words, each purpose's decision.
    let records = app
        .admin_ok(
            Method::GET,
            &format!("/admin/api/users/{sub}/consents"),
            None,
            200,
        )
        .await;
    let r = &records["records"][0];
    assert_eq!(r["locale"], "fr");
    assert_eq!(r["decision"], "granted");
    assert_eq!(
        r["wording"]["scopes"]["news"],
        "Notre lettre d'information à votre adresse e-mail"
    );
    // No French text for `stats`: the words shown were the English ones, and the record says so.
    assert_eq!(r["wording"]["scopes"]["stats"], "How you use the app");
    assert_eq!(
        r["wording"]["purposes"]["marketing"],
        "Offres et actualités de notre part"
    );
    assert_eq!(
        r["purposes"]["marketing"],
        json!({"decision": "granted", "version": "2026-01", "legal_basis": "consent"})
    );
}

#[tokio::test]
async fn unticking_a_purposes_scope_denies_the_purpose_and_the_claim_says_so() {
    let app = spawn_app_with(PURPOSES).await;
    let p = shop("openid news consents");
    let html = match app.start(&app.browser, &p).await {
        Outcome::Consent(html) => html,
        other => panic!("{other:?}"),
    };
    // English by default, and the newsletter left unticked.
    assert!(
        html.contains("Our newsletter at your email address"),
        "{html}"
    );
    let q = match app.decide(&app.browser, &html, "allow").await {
        Outcome::Client(q) => q,
        other => panic!("{other:?}"),
    };
    let tokens = redeem(&app, &p, &q).await;
    let id = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(
        id["purposes"],
        json!({"marketing": false, "analytics": true})
    );
    let records = app
        .state
        .store
        .consent_records(&sub_of(&tokens))
        .await
        .unwrap();
    assert_eq!(records[0].locale, "en");
    assert!(
        records[0].purposes.contains(r#""decision":"denied""#),
        "{:?}",
        records[0]
    );
    // Without the consents scope there is no purposes claim.
    let plain = shop("openid");
    let q = app.login(&app.browser, &plain).await;
    let tokens = redeem(&app, &plain, &q).await;
    assert!(
        payload(tokens["id_token"].as_str().unwrap())
            .get("purposes")
            .is_none()
    );
}

#[tokio::test]
async fn imported_decisions_count_like_herald_ones_and_reach_the_webhook() {
    let (url, received) = receiver().await;
    let app = spawn_app_with(&format!("{PURPOSES}\n{}", webhook(&url))).await;
    let p = shop("openid consents");
    let tokens = app.tokens(&p).await;
    let sub = sub_of(&tokens);
    assert_eq!(
        payload(tokens["id_token"].as_str().unwrap())["purposes"],
        json!({"marketing": false, "analytics": true})
    );

    let path = format!("/admin/api/users/{sub}/consents");
    let body = json!({
        "source": "onetrust",
        "decisions": [
            {"purpose": "marketing", "decision": "granted", "reference": "rcpt-42",
             "wording": "Yes, send me offers", "locale": "en-GB"},
            {"purpose": "analytics", "decision": "withdrawn"},
        ]
    });
    let imported = app.admin_ok(Method::POST, &path, Some(body), 201).await;
    assert_eq!(imported["record_ids"].as_array().unwrap().len(), 2);

    // The next token carries them.
    let q = app.login(&app.browser, &p).await;
    let tokens = redeem(&app, &p, &q).await;
    assert_eq!(
        payload(tokens["id_token"].as_str().unwrap())["purposes"],
        json!({"marketing": true, "analytics": false})
    );
    let records = app.admin_ok(Method::GET, &path, None, 200).await;
    let records = records["records"].as_array().unwrap();
    let marketing = records.iter().find(|r| r["method"] == "import").unwrap();
    assert_eq!(marketing["source"], "onetrust");
    assert_eq!(marketing["source_reference"], "rcpt-42");
    assert_eq!(marketing["locale"], "en-GB");
    assert_eq!(
        marketing["wording"]["purposes"]["marketing"],
        "Yes, send me offers"
    );

    // The webhook hears both, as made elsewhere.
    wait_until("the imported decisions", Duration::from_secs(15), || {
        received
            .accepted()
            .iter()
            .filter(|e| e["data"]["method"] == "import")
            .count()
            >= 2
    })
    .await;
    let events = received.accepted();
    let granted = events
        .iter()
        .find(|e| e["type"] == "consent.granted" && e["data"]["method"] == "import")
        .unwrap();
    assert_eq!(granted["data"]["source"], "onetrust");
    assert_eq!(granted["data"]["source_reference"], "rcpt-42");
    assert_eq!(
        granted["data"]["purposes"]["marketing"]["decision"],
        "granted"
    );
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "consent.withdrawn" && e["data"]["method"] == "import")
    );

    // A purpose Herald does not know, a bad decision, and an unknown user are refused whole.
    let (app, path) = (&app, &path);
    let refused = |body: Value| async move {
        let res = app
            .admin(Method::POST, path, Some(ADMIN_TOKEN), Some(&body))
            .await;
        let status = res.status().as_u16();
        let err: Value = res.json().await.unwrap();
        (
            status,
            err["error_description"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    let (status, why) = refused(json!({"source": "onetrust", "decisions": [
        {"purpose": "marketing", "decision": "granted"},
        {"purpose": "ads", "decision": "granted"}]}))
    .await;
    assert_eq!(status, 400);
    assert_eq!(why, "decisions[1].purpose: `ads` is not a defined purpose");
    let (status, why) = refused(json!({"source": "onetrust", "decisions": [
        {"purpose": "marketing", "decision": "maybe"}]}))
    .await;
    assert_eq!(
        (status, why.as_str()),
        (
            400,
            "decisions[0].decision: use \"granted\", \"denied\" or \"withdrawn\""
        )
    );
    let (status, _) = refused(json!({"source": "", "decisions": []})).await;
    assert_eq!(status, 400);
    assert_eq!(
        app.state.store.consent_records(&sub).await.unwrap().len(),
        3,
        "refused imports record nothing"
    );
    let res = app
        .admin(
            Method::POST,
            "/admin/api/users/nobody/consents",
            Some(ADMIN_TOKEN),
            Some(&json!({"source": "x", "decisions": [{"purpose": "marketing", "decision": "granted"}]})),
        )
        .await;
    assert_eq!(res.status(), 404);

    // Erased, the records stay as evidence without the CMP's receipt id, which leads back to
    // the person.
    let erased = app
        .admin_ok(
            Method::DELETE,
            &format!("/admin/api/users/{sub}"),
            None,
            200,
        )
        .await;
    let pseudonym = erased["pseudonym"].as_str().unwrap();
    let kept = app.state.store.consent_records(pseudonym).await.unwrap();
    let kept = kept
        .iter()
        .find(|r| r.method == herald::store::ConsentMethod::Import)
        .unwrap();
    assert_eq!(kept.source.as_deref(), Some("onetrust"));
    assert_eq!(kept.source_reference, None);
}

#[tokio::test]
async fn withdrawals_reach_the_webhook_with_who_withdrew() {
    let (url, received) = receiver().await;
    let app = spawn_app_with(&format!("{PURPOSES}\n{}", webhook(&url))).await;
    // Consent to the shop (in the consent center's browser) and to `rp`.
    let tokens = app.tokens(&shop("openid stats")).await;
    let sub = sub_of(&tokens);
    app.tokens(&AuthParams::new("rp", "openid email")).await;

    // The user withdraws in the consent center.
    let html = app
        .browser
        .get(format!("{}/account", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_field(&html, "csrf");
    let res = app
        .browser
        .post(format!("{}/account", app.base))
        .form(&[("csrf", csrf.as_str()), ("withdraw", "shop")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    // The client `rp` is removed by an admin: its grant is withdrawn with it.
    app.admin_ok(Method::DELETE, "/admin/api/clients/rp", None, 204)
        .await;

    wait_until("two withdrawals", Duration::from_secs(15), || {
        received
            .accepted()
            .iter()
            .filter(|e| e["type"] == "consent.withdrawn")
            .count()
            >= 2
    })
    .await;
    let events = received.accepted();
    let withdrawn = |client: &str| {
        events
            .iter()
            .find(|e| e["type"] == "consent.withdrawn" && e["data"]["client_id"] == client)
            .unwrap()
            .clone()
    };
    let by_user = withdrawn("shop");
    assert_eq!(by_user["data"]["method"], "user");
    assert_eq!(by_user["data"]["sub"], sub.as_str());
    assert_eq!(by_user["data"]["scopes"], json!(["openid", "stats"]));
    assert_eq!(
        by_user["data"]["purposes"]["analytics"]["decision"],
        "withdrawn"
    );
    let with_client = withdrawn("rp");
    assert_eq!(with_client["data"]["method"], "client_deleted");
    assert_eq!(with_client["data"]["scopes"], json!(["email", "openid"]));
    // The purpose withdrawn is off now, though its legal basis is not consent.
    let states = app.state.store.purpose_states(&sub).await.unwrap();
    assert_eq!(states[0].purpose, "analytics");
    assert_eq!(states[0].decision, herald::store::ConsentOutcome::Withdrawn);
}
