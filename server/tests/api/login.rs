use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn login_returns_the_user_a_token_and_a_session_cookie() {
    let app = spawn_app().await;
    app.signup_ok(&bot(), "alice").await;
    let resp = app.login(&browser(), "alice", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("natter_session=") && cookie.contains("HttpOnly"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["user"]["username"], "alice");
    let token = body["token"].as_str().unwrap();
    assert_eq!(app.me_with_token(token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_get_the_same_answer() {
    let app = spawn_app().await;
    app.signup_ok(&bot(), "alice").await;
    let wrong = app.login(&bot(), "alice", "not the password").await;
    let unknown = app.login(&bot(), "nobody", "not the password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get("set-cookie").is_none());
    let wrong: Value = wrong.json().await.unwrap();
    let unknown: Value = unknown.json().await.unwrap();
    assert_eq!(wrong, unknown, "the bodies must not tell the cases apart");
    assert_eq!(wrong["error"]["code"], "invalid_credentials");
}

#[tokio::test]
async fn impossible_credentials_are_simply_wrong_credentials() {
    let app = spawn_app().await;
    for (username, password) in [("a", PASSWORD), ("alice", "short"), ("no way", PASSWORD)] {
        let resp = app.login(&bot(), username, password).await;
        assert_eq!(
            error_code(resp, StatusCode::UNAUTHORIZED).await,
            "invalid_credentials"
        );
    }
    let resp = app.post_json(&bot(), "/api/auth/login", &json!({})).await;
    assert_eq!(
        error_code(resp, StatusCode::BAD_REQUEST).await,
        "bad_request"
    );
}
