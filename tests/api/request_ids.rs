//! Every answer carries a request id that the logs of that request carry too: made by Herald,
//! or kept from the proxy in front of it.

use crate::support::spawn_app;

#[tokio::test]
async fn every_answer_carries_a_request_id_and_each_request_gets_its_own() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for path in [
        "/healthz",
        "/.well-known/openid-configuration",
        "/no-such-page",
    ] {
        let res = app
            .api
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        let id = res
            .headers()
            .get("x-request-id")
            .unwrap_or_else(|| panic!("{path} answered without x-request-id"))
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            id.len() >= 16,
            "{path}: a request id too short to be unique: {id}"
        );
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "request ids repeat: {ids:?}");
}

#[tokio::test]
async fn a_request_id_from_the_proxy_is_kept_and_echoed() {
    let app = spawn_app().await;
    let res = app
        .api
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "proxy-7f3a9c")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "proxy-7f3a9c");
}
