use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use crate::helpers::*;

#[tokio::test]
async fn signup_returns_the_user_a_token_and_an_httponly_session_cookie() {
    let app = spawn_app().await;
    let resp = app.signup(&browser(), "alice", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = resp.json().await.unwrap();
    assert!(body["user"]["id"].is_i64());
    assert_eq!(body["user"]["username"], "alice");
    assert_eq!(body["user"]["display_name"], "alice");
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "a JWT");
    assert!(cookie.starts_with(&format!("natter_session={token}")));
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Lax"));
    assert!(cookie.contains("Path=/"));
    assert!(
        !cookie.contains("Secure"),
        "plain http must not get Secure cookies"
    );
    assert!(body.get("password").is_none() && body["user"].get("password_hash").is_none());
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_public_url_is_https() {
    let app = spawn_app_with(|c| {
        c.public_url = Some("https://chat.example.org".parse().unwrap());
    })
    .await;
    let resp = bot()
        .post(app.url("/api/auth/signup"))
        .header("Origin", "https://chat.example.org")
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn usernames_are_unique_whatever_the_letter_case() {
    let app = spawn_app().await;
    app.signup_ok(&bot(), "Alice").await;
    for again in ["alice", "ALICE", " aLiCe "] {
        let resp = app.signup(&bot(), again, PASSWORD).await;
        assert_eq!(
            error_code(resp, StatusCode::CONFLICT).await,
            "username_taken"
        );
    }
    // Stored and shown lower-case; login works with any case.
    let resp = app.login(&bot(), "ALICE", PASSWORD).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["user"]["username"], "alice");
}

#[tokio::test]
async fn usernames_that_break_the_rules_are_refused() {
    let app = spawn_app().await;
    let too_long = "a".repeat(33);
    for bad in [
        "ab",
        too_long.as_str(),
        "bad name",
        "émile",
        "a/b",
        "<script>",
        "",
    ] {
        let resp = app.signup(&bot(), bad, PASSWORD).await;
        assert_eq!(
            error_code(resp, StatusCode::BAD_REQUEST).await,
            "invalid_username",
            "{bad:?}"
        );
    }
    for good in ["abc", "a.b-c_1", &"z".repeat(32)] {
        assert_eq!(
            app.signup(&bot(), good, PASSWORD).await.status(),
            StatusCode::CREATED
        );
    }
}

#[tokio::test]
async fn passwords_must_be_8_to_128_characters() {
    let app = spawn_app().await;
    for bad in ["short12".to_owned(), "x".repeat(129)] {
        let resp = app.signup(&bot(), "alice", &bad).await;
        assert_eq!(
            error_code(resp, StatusCode::BAD_REQUEST).await,
            "invalid_password"
        );
    }
    let longest = "Zebra!".repeat(21) + "xy"; // 128 characters
    assert_eq!(
        app.signup(&bot(), "alice", &longest).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.login(&bot(), "alice", &longest).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn long_passwords_are_never_truncated() {
    let app = spawn_app().await;
    let password = format!("{}-end", "q".repeat(100));
    assert_eq!(
        app.signup(&bot(), "alice", &password).await.status(),
        StatusCode::CREATED
    );
    // bcrypt-style truncation would accept the first 72 bytes alone.
    let prefix: String = password.chars().take(72).collect();
    assert_eq!(
        app.login(&bot(), "alice", &prefix).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let almost = format!("{}-enD", "q".repeat(100));
    assert_eq!(
        app.login(&bot(), "alice", &almost).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn common_passwords_are_refused_whatever_the_case() {
    let app = spawn_app().await;
    for common in [
        "password",
        "12345678",
        "qwertyuiop",
        "Password1",
        "ILOVEYOU",
        "football",
    ] {
        let resp = app.signup(&bot(), "alice", common).await;
        assert_eq!(
            error_code(resp, StatusCode::BAD_REQUEST).await,
            "password_too_common",
            "{common}"
        );
    }
}

#[tokio::test]
async fn display_names_are_trimmed_limited_and_default_to_the_username() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            &bot(),
            "/api/auth/signup",
            &json!({"username": "alice", "password": PASSWORD, "display_name": "  Alice L.  "}),
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["user"]["display_name"], "Alice L.");

    for bad in ["   ".to_owned(), "x".repeat(65), "two\nlines".to_owned()] {
        let resp = app
            .post_json(
                &bot(),
                "/api/auth/signup",
                &json!({"username": "bob", "password": PASSWORD, "display_name": bad}),
            )
            .await;
        assert_eq!(
            error_code(resp, StatusCode::BAD_REQUEST).await,
            "invalid_display_name"
        );
    }
}

#[tokio::test]
async fn malformed_bodies_get_a_clear_json_error() {
    let app = spawn_app().await;
    let missing = app
        .post_json(&bot(), "/api/auth/signup", &json!({"username": "alice"}))
        .await;
    assert_eq!(
        error_code(missing, StatusCode::BAD_REQUEST).await,
        "bad_request"
    );
    let not_json = bot()
        .post(app.url("/api/auth/signup"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(not_json, StatusCode::BAD_REQUEST).await,
        "bad_request"
    );
}

#[tokio::test]
async fn bodies_over_16_kib_are_refused_with_413() {
    let app = spawn_app().await;
    let huge = json!({"username": "alice", "password": "x".repeat(20 * 1024)});
    let resp = app.post_json(&bot(), "/api/auth/signup", &huge).await;
    assert_eq!(
        error_code(resp, StatusCode::PAYLOAD_TOO_LARGE).await,
        "payload_too_large"
    );
}

#[tokio::test]
async fn signups_per_ip_are_limited_except_from_this_machine() {
    let app = spawn_app_with(|c| {
        c.limits.signups_per_ip = 2;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let from = |ip: &'static str, name: &'static str| {
        let app = &app;
        async move {
            bot()
                .post(app.url("/api/auth/signup"))
                .header("X-Forwarded-For", ip)
                .json(&json!({"username": name, "password": PASSWORD}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        from("203.0.113.9", "user1").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        from("203.0.113.9", "user2").await.status(),
        StatusCode::CREATED
    );
    let resp = from("203.0.113.9", "user3").await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(
        error_code(resp, StatusCode::TOO_MANY_REQUESTS).await,
        "too_many_requests"
    );
    assert_eq!(
        from("198.51.100.1", "user4").await.status(),
        StatusCode::CREATED,
        "per IP"
    );
    for name in ["local1", "local2", "local3"] {
        assert_eq!(
            from("127.0.0.1", name).await.status(),
            StatusCode::CREATED,
            "loopback"
        );
    }
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_hashes_with_owasp_parameters() {
    let app = spawn_app().await;
    app.signup_ok(&bot(), "alice").await;
    let mut db = app.db().await;
    let row = sqlx::query("SELECT password_hash FROM users WHERE username = 'alice'")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let hash: String = row.get(0);
    assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut db)
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn the_jwt_key_is_generated_on_first_start_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    let meta = std::fs::metadata(app.data_dir.path().join("data/jwt.key")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(app.jwt_key().len() >= 32);
}
