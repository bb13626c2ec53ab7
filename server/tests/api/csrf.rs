//! State-changing requests from other sites are refused, and nothing changes when they are.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_cross_site_signup_is_refused_and_creates_nothing() {
    let app = spawn_app().await;
    let resp = bot()
        .post(app.url("/api/auth/signup"))
        .header("Origin", "https://evil.example")
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("set-cookie").is_none());
    assert_eq!(
        error_code(resp, StatusCode::FORBIDDEN).await,
        "cross_site_request"
    );
    // The name is still free.
    app.signup_ok(&bot(), "alice").await;
}

#[tokio::test]
async fn a_cross_site_logout_does_not_end_the_session() {
    let app = spawn_app().await;
    let tab = browser();
    let token = app.signup_ok(&tab, "alice").await;
    for (name, value) in [
        ("Origin", "https://evil.example"),
        ("Origin", "null"),
        ("Referer", "https://evil.example/page"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let resp = tab
            .post(app.url("/api/auth/logout"))
            .header(name, value)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{name}: {value}");
    }
    assert_eq!(app.me_with_token(&token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_similar_looking_origin_is_not_ours() {
    let app = spawn_app().await;
    let port = app.addr.port();
    for origin in [
        format!("http://127.0.0.1:{}", port + 1),
        format!("https://127.0.0.1:{port}"),
        format!("http://127.0.0.1.evil.example:{port}"),
    ] {
        let resp = bot()
            .post(app.url("/api/auth/signup"))
            .header("Origin", &origin)
            .json(&json!({"username": "alice", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{origin}");
    }
}

#[tokio::test]
async fn same_origin_requests_are_accepted() {
    let app = spawn_app().await;
    let resp = bot()
        .post(app.url("/api/auth/signup"))
        .header("Origin", &app.origin)
        .header("Referer", format!("{}/signup", app.origin))
        .header("Sec-Fetch-Site", "same-origin")
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let localhost = format!("http://localhost:{}", app.addr.port());
    let resp = bot()
        .post(app.url("/api/auth/login"))
        .header("Origin", localhost)
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "localhost is the same machine by default"
    );
}

#[tokio::test]
async fn state_changing_requests_must_be_json() {
    let app = spawn_app().await;
    let tab = browser();
    let token = app.signup_ok(&tab, "alice").await;
    // What an HTML form on another site can send without a preflight.
    for content_type in [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data",
    ] {
        let resp = tab
            .post(app.url("/api/auth/logout"))
            .header("content-type", content_type)
            .body("a=b")
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(resp, StatusCode::UNSUPPORTED_MEDIA_TYPE).await,
            "unsupported_media_type",
            "{content_type}"
        );
    }
    let no_type = tab.post(app.url("/api/auth/logout")).send().await.unwrap();
    assert_eq!(no_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let form_signup = bot()
        .post(app.url("/api/auth/signup"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username=bob&password={PASSWORD}"))
        .send()
        .await
        .unwrap();
    assert_eq!(form_signup.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(app.me_with_token(&token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_explicit_public_url_is_the_only_trusted_origin() {
    let app =
        spawn_app_with(|c| c.public_url = Some("https://chat.example.org".parse().unwrap())).await;
    let signup = |origin: String| {
        let app = &app;
        async move {
            bot()
                .post(app.url("/api/auth/signup"))
                .header("Origin", origin)
                .json(&json!({"username": "alice", "password": PASSWORD}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        signup(
            app.origin
                .replace("https://chat.example.org", "http://127.0.0.1:1")
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        signup(format!("http://127.0.0.1:{}", app.addr.port())).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        signup("https://chat.example.org".into()).await,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn another_site_cannot_upload_or_delete_with_the_visitors_cookie() {
    let app = spawn_app().await;
    let tab = browser();
    let token = app.signup_ok(&tab, "alice").await;
    let room = app.create_room(&token, "general", "public").await;
    let msg: serde_json::Value = app
        .post_message(&token, room, "a1", "keep me")
        .await
        .json()
        .await
        .unwrap();
    // A form can post text/plain or multipart with the cookie attached: refused whatever the origin.
    for ct in ["text/plain", "multipart/form-data; boundary=x"] {
        let resp = tab
            .post(app.url("/api/uploads?name=x.txt"))
            .header("content-type", ct)
            .body("hello")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}");
    }
    let resp = tab
        .post(app.url("/api/uploads?name=x.txt"))
        .header("content-type", "application/octet-stream")
        .header("Origin", "https://evil.example")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = tab
        .delete(app.url(&format!("/api/rooms/{room}/messages/{}", msg["id"])))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let page: serde_json::Value = app.history(&token, room, "").await.json().await.unwrap();
    assert_eq!(page["messages"][0]["body"], "keep me");
    // The same upload from our own page works.
    let resp = tab
        .post(app.url("/api/uploads?name=x.txt&type=text%2Fplain"))
        .header("content-type", "application/octet-stream")
        .header("Origin", app.origin.as_str())
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}
