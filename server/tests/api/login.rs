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

/// An account whose password was hashed with other parameters (OWASP's 19 MiB set, which
/// Natter used before its 7 MiB one) signs in with it, and its stored hash then has today's
/// parameters; a wrong password changes nothing.
#[tokio::test]
async fn a_password_hashed_with_old_parameters_signs_in_and_is_rehashed() {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use argon2::{Algorithm, Argon2, Params, Version};
    use sqlx::Row;

    let app = spawn_app().await;
    app.signup_ok(&bot(), "alice").await;
    let mut db = app.db().await;
    let old = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, Some(32)).unwrap(),
    )
    .hash_password(
        PASSWORD.as_bytes(),
        &SaltString::encode_b64(b"0123456789abcdef").unwrap(),
    )
    .unwrap()
    .to_string();
    sqlx::query("UPDATE users SET password_hash = ? WHERE username = 'alice'")
        .bind(&old)
        .execute(&mut db)
        .await
        .unwrap();
    let mut stored = async || -> String {
        sqlx::query("SELECT password_hash FROM users WHERE username = 'alice'")
            .fetch_one(&mut db)
            .await
            .unwrap()
            .get(0)
    };

    let wrong = app.login(&bot(), "alice", "not the password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(stored().await, old, "a wrong password must not rehash");

    app.login_ok(&bot(), "alice").await;
    let new = stored().await;
    assert!(new.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{new}");

    app.login_ok(&bot(), "alice").await;
    assert_eq!(stored().await, new, "a current hash stays as it is");
}
