use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn me_answers_with_the_user_for_a_cookie_or_a_bearer_token() {
    let app = spawn_app().await;
    let tab = browser();
    let token = app.signup_ok(&tab, "alice").await;

    let by_cookie: Value = tab
        .get(app.url("/api/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_cookie["username"], "alice");

    let by_bearer = app.me_with_token(&token).await;
    assert_eq!(by_bearer.status(), StatusCode::OK);
    let by_bearer: Value = by_bearer.json().await.unwrap();
    assert_eq!(by_bearer, by_cookie);
}

#[tokio::test]
async fn me_without_a_session_is_401_with_the_error_shape() {
    let app = spawn_app().await;
    let resp = bot().get(app.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(
        error_code(resp, StatusCode::UNAUTHORIZED).await,
        "unauthorized"
    );
    let resp = bot()
        .get(app.url("/api/auth/me"))
        .header("authorization", "Basic YWxpY2U6cHc=")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_session_probe_says_who_is_signed_in_without_erroring() {
    let app = spawn_app().await;
    let tab = browser();
    let before: Value = tab
        .get(app.url("/api/auth/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before, json!({"user": null}));
    app.signup_ok(&tab, "alice").await;
    let after: Value = tab
        .get(app.url("/api/auth/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["user"]["username"], "alice");
}

#[tokio::test]
async fn logout_revokes_that_session_only_and_clears_the_cookie() {
    let app = spawn_app().await;
    let tab = browser();
    let first = app.signup_ok(&tab, "alice").await;
    let second = app.login_ok(&bot(), "alice").await;

    let resp = app.post_json(&tab, "/api/auth/logout", &json!({})).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let cleared = resp.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("natter_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );

    // The token itself is still unexpired and well signed: only the session row says no.
    assert_eq!(
        app.me_with_token(&first).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let stale_cookie = bot()
        .get(app.url("/api/auth/me"))
        .header("cookie", format!("natter_session={first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale_cookie.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.me_with_token(&second).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_all_revokes_every_session_of_the_user() {
    let app = spawn_app().await;
    let first = app.signup_ok(&bot(), "alice").await;
    let second = app.login_ok(&bot(), "alice").await;
    let bobs = app.signup_ok(&bot(), "bob").await;

    let resp = bot()
        .post(app.url("/api/auth/logout-all"))
        .bearer_auth(&first)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.me_with_token(&first).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.me_with_token(&second).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.me_with_token(&bobs).await.status(),
        StatusCode::OK,
        "other users keep theirs"
    );
    // A new login works again.
    app.login_ok(&bot(), "alice").await;
}

#[tokio::test]
async fn a_revoked_token_cannot_log_out_or_be_revived() {
    let app = spawn_app().await;
    let token = app.signup_ok(&bot(), "alice").await;
    let logout = |token: String| {
        let app = &app;
        async move {
            bot()
                .post(app.url("/api/auth/logout"))
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(logout(token.clone()).await.status(), StatusCode::NO_CONTENT);
    let again = logout(token.clone()).await;
    assert_eq!(
        error_code(again, StatusCode::UNAUTHORIZED).await,
        "unauthorized"
    );
}

#[tokio::test]
async fn sessions_survive_a_server_restart_on_the_same_data_dir() {
    let mut first = spawn_app().await;
    let token = first.signup_ok(&bot(), "alice").await;
    // Keep the data dir while the first server stops and a second one opens it.
    let dir = std::mem::replace(&mut first.data_dir, tempfile::tempdir().unwrap());
    drop(first);
    let second = spawn_app_with(|c| c.data_dir = dir.path().join("data")).await;
    assert_eq!(second.me_with_token(&token).await.status(), StatusCode::OK);
    second.login_ok(&bot(), "alice").await;
    drop(dir);
}
