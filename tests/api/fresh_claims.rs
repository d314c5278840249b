//! Issue 17: claims that stay current. With `refresh_upstream`, a refresh or `/userinfo` that
//! finds the login older than `auth_context_ttl` refreshes it at the upstream: a claim changed
//! there reaches the next tokens after the TTL and not before; a user the upstream refuses
//! (blocked there) cannot refresh; an unreachable upstream fails the refresh, or with
//! `serve_stale` serves the stored claims for `max_stale`.

use std::sync::atomic::Ordering;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const FRESH: &str = "refresh_upstream = true\nauth_context_ttl = \"10m\"";

fn scopes() -> AuthParams {
    AuthParams::new("rp", "openid profile email offline_access")
}

/// A refresh with `tokens`' refresh token: the status and the answer.
async fn refresh(app: &TestApp, tokens: &Value) -> (StatusCode, Value) {
    app.refresh_as("rp", tokens).await
}

fn name_in(tokens: &Value) -> Value {
    payload(tokens["id_token"].as_str().unwrap())["name"].clone()
}

fn upstream_refreshes(app: &TestApp) -> usize {
    app.upstream.state.refresh_requests.load(Ordering::SeqCst)
}

fn rename(app: &TestApp, name: &str) {
    app.upstream.set(|b| {
        b.id_claims.insert("name".into(), json!(name));
    });
}

#[tokio::test]
async fn a_claim_changed_at_the_upstream_reaches_tokens_after_the_ttl_and_not_before() {
    let app = spawn_app_configured(FRESH, "").await;
    let tokens = app.tokens(&scopes()).await;
    // Herald asked the upstream for a refresh token.
    let asked = app.upstream.state.authorize_requests.lock().unwrap()[0]["scope"].clone();
    assert!(asked.split(' ').any(|s| s == "offline_access"), "{asked}");
    rename(&app, "Alice Renamed");

    // Within the TTL the stored login serves, and the upstream is not asked.
    let (status, within) = refresh(&app, &tokens).await;
    assert_eq!(status, 200, "{within}");
    assert_eq!(name_in(&within), "Alice");
    assert_eq!(upstream_refreshes(&app), 0);

    // Past it, the refresh goes to the upstream first and the new name is in the tokens.
    app.clock.advance(11 * 60);
    let (status, after) = refresh(&app, &within).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(name_in(&after), "Alice Renamed");
    assert_eq!(upstream_refreshes(&app), 1);
    let info: Value = app
        .userinfo(after["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["name"], "Alice Renamed");
    // The login is fresh again: the next refresh does not go upstream.
    let (status, again) = refresh(&app, &after).await;
    assert_eq!(status, 200);
    assert_eq!(upstream_refreshes(&app), 1);

    // /userinfo refreshes a stale login too.
    rename(&app, "Alice Again");
    app.clock.advance(11 * 60);
    let info: Value = app
        .userinfo(again["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["name"], "Alice Again");
    assert_eq!(upstream_refreshes(&app), 2);
}

#[tokio::test]
async fn without_refresh_upstream_the_stored_claims_serve_as_before() {
    let app = spawn_app_configured("auth_context_ttl = \"10m\"", "").await;
    let tokens = app.tokens(&scopes()).await;
    rename(&app, "Alice Renamed");
    app.clock.advance(11 * 60);
    let (status, after) = refresh(&app, &tokens).await;
    assert_eq!(status, 200);
    assert_eq!(name_in(&after), "Alice");
    assert_eq!(upstream_refreshes(&app), 0);
}

#[tokio::test]
async fn a_user_the_upstream_refuses_cannot_refresh_and_the_login_ends() {
    let app = spawn_app_configured(FRESH, "").await;
    let tokens = app.tokens(&scopes()).await;
    let (_, fresh) = refresh(&app, &tokens).await;
    app.upstream.set(|b| b.refuse_refresh = true);
    app.clock.advance(11 * 60);

    let (status, refused) = refresh(&app, &fresh).await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"], "invalid_grant");
    let why = refused["error_description"].as_str().unwrap();
    assert!(why.contains("no longer accepts this login"), "{why}");
    // Everything issued from the login ended with it, even once the upstream relents.
    app.upstream.set(|b| b.refuse_refresh = false);
    let (status, _) = refresh(&app, &fresh).await;
    assert_eq!(status, 400);
    let res = app.userinfo(fresh["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        upstream_refreshes(&app),
        1,
        "the ended login went upstream again"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_fails_the_refresh_and_loses_nothing() {
    let app = spawn_app_configured(FRESH, "").await;
    let tokens = app.tokens(&scopes()).await;
    app.clock.advance(11 * 60);
    app.upstream.set(|b| b.token_status = Some(503));
    let (status, down) = refresh(&app, &tokens).await;
    assert_eq!(status, 503, "{down}");
    assert_eq!(down["error"], "temporarily_unavailable");
    // The refresh token was not spent: once the upstream is back, it works.
    app.upstream.set(|b| b.token_status = None);
    rename(&app, "Alice Back");
    let (status, back) = refresh(&app, &tokens).await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(name_in(&back), "Alice Back");
}

#[tokio::test]
async fn serve_stale_serves_the_stored_claims_for_max_stale_only() {
    let app = spawn_app_configured(
        &format!("{FRESH}\non_upstream_unavailable = \"serve_stale\"\nmax_stale = \"30m\""),
        "",
    )
    .await;
    let tokens = app.tokens(&scopes()).await;
    app.upstream.set(|b| b.token_status = Some(503));
    app.clock.advance(11 * 60);
    let (status, stale) = refresh(&app, &tokens).await;
    assert_eq!(status, 200, "{stale}");
    assert_eq!(name_in(&stale), "Alice");
    // 41 minutes after the login: 31 past the TTL, beyond max_stale.
    app.clock.advance(30 * 60);
    let (status, too_old) = refresh(&app, &stale).await;
    assert_eq!(status, 503, "{too_old}");
}

#[tokio::test]
async fn check_config_explains_the_freshness_keys() {
    for (keys, says) in [
        (
            "on_upstream_unavailable = \"maybe\"",
            "on_upstream_unavailable: `maybe`",
        ),
        (
            "on_upstream_unavailable = \"serve_stale\"\nmax_stale = \"soon\"",
            "max_stale: `soon` is not a duration",
        ),
    ] {
        let toml = config_with_upstream(keys);
        let err = herald::config::from_toml(&toml).unwrap_err().to_string();
        assert!(err.contains(says), "{keys}: {err}");
    }
    let toml = config_with_upstream("refresh_upstream = true");
    let (_, warnings) = herald::config::from_toml(&toml).unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("without auth_context_ttl")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn an_admin_refetch_reads_the_user_from_the_upstream_now() {
    let app = spawn_app_configured(FRESH, "").await;
    let tokens = app.tokens(&scopes()).await;
    let sub = payload(tokens["id_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_string();
    rename(&app, "Alice Renamed");
    let path = format!("/admin/api/users/{sub}/refresh");
    let refetched = app.admin_ok(reqwest::Method::POST, &path, None, 200).await;
    assert_eq!(refetched["source"], "refresh_token", "{refetched}");
    assert_eq!(refetched["upstream"], "test");
    assert_eq!(refetched["changed"], json!(["name"]));
    // Within the TTL the next tokens carry the new name without going upstream again.
    let (status, after) = refresh(&app, &tokens).await;
    assert_eq!(status, 200);
    assert_eq!(name_in(&after), "Alice Renamed");
    assert_eq!(upstream_refreshes(&app), 1);

    // Refused at the upstream: 409, and the login has ended.
    app.upstream.set(|b| b.refuse_refresh = true);
    let res = app
        .admin(reqwest::Method::POST, &path, Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(res.status(), 409);
    let (status, _) = refresh(&app, &after).await;
    assert_eq!(status, 400);
    // With no live login left to refresh and no Auth0 identity, there is no way to re-read.
    let res = app
        .admin(reqwest::Method::POST, &path, Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("no way to re-read"),
        "{body}"
    );
}

#[tokio::test]
async fn two_requests_on_one_stale_login_refresh_it_once_and_both_get_the_new_claims() {
    let app = spawn_app_configured(FRESH, "").await;
    let tokens = app.tokens(&scopes()).await;
    rename(&app, "Alice Renamed");
    app.clock.advance(11 * 60);
    // The test upstream rotates its refresh tokens: a second use of the first is invalid_grant,
    // which would end the login if both requests went upstream with it.
    let access = tokens["access_token"].as_str().unwrap();
    let (refreshed, info) = tokio::join!(refresh(&app, &tokens), app.userinfo(access));
    assert_eq!(refreshed.0, 200, "{}", refreshed.1);
    assert_eq!(name_in(&refreshed.1), "Alice Renamed");
    assert_eq!(info.status(), 200);
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["name"], "Alice Renamed");
    assert_eq!(upstream_refreshes(&app), 1);
}

#[tokio::test]
async fn a_userinfo_failure_after_a_refresh_is_waited_out_not_a_refusal() {
    let app = spawn_app_configured(FRESH, "").await;
    let tokens = app.tokens(&scopes()).await;
    app.clock.advance(11 * 60);
    // Rate-limited userinfo: the refresh token was accepted, the claims could not be read.
    app.upstream.set(|b| b.userinfo_status = Some(429));
    let (status, _) = refresh(&app, &tokens).await;
    assert_eq!(status, 503);
    app.upstream.set(|b| b.userinfo_status = None);
    let res = app.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200, "the login was ended by a rate limit");
}
