//! Serving the single-page app: history-API fallback, JSON 404s under /api, safe headers.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn any_app_route_serves_the_shell_for_client_side_routing() {
    let app = spawn_app().await;
    for path in ["/", "/login", "/signup", "/rooms/42"] {
        let resp = bot().get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let headers = resp.headers().clone();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'")
        );
        assert_eq!(headers["x-frame-options"], "DENY");
        assert!(resp.text().await.unwrap().contains("<title>Natter</title>"));
    }
}

#[tokio::test]
async fn unknown_api_routes_are_json_404s_and_missing_assets_are_404s() {
    let app = spawn_app().await;
    let resp = bot().get(app.url("/api/nope")).send().await.unwrap();
    assert_eq!(error_code(resp, StatusCode::NOT_FOUND).await, "not_found");
    let resp = bot().get(app.url("/pkg/missing.js")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = bot().get(app.url("/pkg/natter.js")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_health_endpoint_answers() {
    let app = spawn_app().await;
    let body: Value = bot()
        .get(app.url("/api/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn api_responses_are_never_cached() {
    let app = spawn_app().await;
    let resp = bot()
        .get(app.url("/api/auth/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["cache-control"], "no-store");
}
