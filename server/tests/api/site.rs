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

#[tokio::test]
async fn precompressed_assets_are_served_when_accepted() {
    let app = spawn_app().await;
    let pkg = app.site_dir().join("pkg");
    std::fs::write(pkg.join("natter.wasm"), b"\0asm raw").unwrap();
    std::fs::write(pkg.join("natter.wasm.br"), b"brotli bytes").unwrap();
    std::fs::write(pkg.join("natter.wasm.gz"), b"gzip bytes").unwrap();
    let get = |encoding: &'static str| {
        let url = app.url("/pkg/natter.wasm");
        async move {
            reqwest::Client::builder()
                .no_brotli()
                .no_gzip()
                .build()
                .unwrap()
                .get(url)
                .header("accept-encoding", encoding)
                .send()
                .await
                .unwrap()
        }
    };
    let br = get("br, gzip").await;
    assert_eq!(br.headers()["content-encoding"], "br");
    assert_eq!(br.bytes().await.unwrap().as_ref(), b"brotli bytes");
    let gz = get("gzip").await;
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(gz.bytes().await.unwrap().as_ref(), b"gzip bytes");
    let plain = get("identity").await;
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.bytes().await.unwrap().as_ref(), b"\0asm raw");
}

#[tokio::test]
async fn the_emoji_list_has_names_shortcodes_and_groups_and_is_cacheable() {
    let app = spawn_app().await;
    let resp = bot().get(app.url("/emoji.json")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let list: Vec<Value> = resp.json().await.unwrap();
    assert!(list.len() > 1500, "{}", list.len());
    let tada = list.iter().find(|e| e["e"] == "🎉").unwrap();
    assert_eq!(tada["s"][0], "tada");
    assert_eq!(tada["g"], "Activities");
    assert!(
        list.iter()
            .any(|e| e["n"] == "grinning face" && e["g"] == "Smileys & Emotion")
    );
}
