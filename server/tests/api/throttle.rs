//! Login throttling: per account and client, per client, per account from anywhere; and the
//! owner is not locked out by someone else's failures.

use std::time::Duration;

use reqwest::{Client, Response, StatusCode};
use serde_json::json;

use crate::helpers::*;

/// Logs in as if from `ip` (only believed when the app trusts 127.0.0.1 as a proxy).
async fn login_from(app: &TestApp, ip: &str, username: &str, password: &str) -> Response {
    Client::new()
        .post(app.url("/api/auth/login"))
        .header("X-Forwarded-For", ip)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn assert_throttled(resp: Response) {
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_eq!(
        error_code(resp, StatusCode::TOO_MANY_REQUESTS).await,
        "too_many_requests"
    );
}

#[tokio::test]
async fn repeated_failures_on_one_account_get_429_with_retry_after() {
    let app = spawn_app().await;
    app.signup_ok(&bot(), "alice").await;
    for _ in 0..5 {
        let resp = app.login(&bot(), "alice", "wrong password").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    assert_throttled(app.login(&bot(), "alice", "wrong password").await).await;
    // Locked means locked: the right password does not get through from here either.
    assert_throttled(app.login(&bot(), "alice", PASSWORD).await).await;
}

#[tokio::test]
async fn unknown_accounts_are_throttled_the_same_way() {
    let app = spawn_app().await;
    for _ in 0..5 {
        app.login(&bot(), "ghost", "wrong password").await;
    }
    assert_throttled(app.login(&bot(), "ghost", "wrong password").await).await;
}

#[tokio::test]
async fn an_attacker_elsewhere_cannot_lock_the_owner_out() {
    let app = spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    app.signup_ok(&bot(), "alice").await;
    for _ in 0..5 {
        login_from(&app, "203.0.113.7", "alice", "guess").await;
    }
    assert_throttled(login_from(&app, "203.0.113.7", "alice", PASSWORD).await).await;
    let owner = login_from(&app, "198.51.100.2", "alice", PASSWORD).await;
    assert_eq!(owner.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_distributed_attack_on_one_account_is_throttled_but_the_owners_usual_place_is_not() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.limits.login_failures_per_account = 3;
    })
    .await;
    // The owner signed up (a session) from 198.51.100.2.
    let resp = bot()
        .post(app.url("/api/auth/signup"))
        .header("X-Forwarded-For", "198.51.100.2")
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        login_from(&app, ip, "alice", "guess").await;
    }
    assert_throttled(login_from(&app, "203.0.113.4", "alice", PASSWORD).await).await;
    let owner = login_from(&app, "198.51.100.2", "alice", PASSWORD).await;
    assert_eq!(owner.status(), StatusCode::OK);
}

#[tokio::test]
async fn one_client_guessing_many_accounts_is_throttled() {
    let app = spawn_app_with(|c| c.limits.login_failures_per_ip = 3).await;
    for name in ["user1", "user2", "user3"] {
        app.login(&bot(), name, "wrong password").await;
    }
    assert_throttled(app.login(&bot(), "user4", "wrong password").await).await;
}

#[tokio::test]
async fn forwarded_for_is_ignored_unless_a_proxy_is_configured() {
    let app = spawn_app().await;
    for i in 0..5 {
        login_from(&app, &format!("203.0.113.{i}"), "alice", "guess").await;
    }
    assert_throttled(login_from(&app, "203.0.113.99", "alice", "guess").await).await;
}

#[tokio::test]
async fn the_lock_ends_with_its_window() {
    // Long enough that five password hashes fit in it on a loaded machine.
    let window = Duration::from_secs(5);
    let app = spawn_app_with(|c| c.limits.login_window = window).await;
    app.signup_ok(&bot(), "alice").await;
    for _ in 0..5 {
        app.login(&bot(), "alice", "wrong password").await;
    }
    assert_throttled(app.login(&bot(), "alice", PASSWORD).await).await;
    tokio::time::sleep(window + Duration::from_millis(200)).await;
    assert_eq!(
        app.login(&bot(), "alice", PASSWORD).await.status(),
        StatusCode::OK
    );
}
