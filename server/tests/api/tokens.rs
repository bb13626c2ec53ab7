//! Forged, tampered, expired and revoked tokens are refused everywhere a token is accepted.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The claims of a real token, read with the server's key.
fn claims_of(app: &TestApp, token: &str) -> Value {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp"]);
    jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(&app.jwt_key()),
        &validation,
    )
    .unwrap()
    .claims
}

async fn assert_refused(app: &TestApp, token: &str, why: &str) {
    let me = app.me_with_token(token).await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED, "{why}: /me");
    let logout = bot()
        .post(app.url("/api/auth/logout"))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::UNAUTHORIZED, "{why}: logout");
    let by_cookie = bot()
        .get(app.url("/api/auth/me"))
        .header("cookie", format!("natter_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        by_cookie.status(),
        StatusCode::UNAUTHORIZED,
        "{why}: cookie"
    );
}

#[tokio::test]
async fn unsigned_tokens_with_alg_none_are_refused() {
    let app = spawn_app().await;
    let real = app.signup_ok(&bot(), "alice").await;
    let claims = claims_of(&app, &real);
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(claims.to_string().as_bytes());
    assert_refused(&app, &format!("{header}.{payload}."), "alg none").await;
    assert_refused(&app, &format!("{header}.{payload}"), "alg none, two parts").await;
}

#[tokio::test]
async fn tokens_signed_with_another_algorithm_or_key_are_refused() {
    let app = spawn_app().await;
    let real = app.signup_ok(&bot(), "alice").await;
    let claims = claims_of(&app, &real);
    let key = app.jwt_key();
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let forged =
            jsonwebtoken::encode(&Header::new(alg), &claims, &EncodingKey::from_secret(&key))
                .unwrap();
        assert_refused(&app, &forged, &format!("{alg:?} with the real key")).await;
    }
    let wrong_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"guessed secret guessed secret 32"),
    )
    .unwrap();
    assert_refused(&app, &wrong_key, "wrong key").await;
}

#[tokio::test]
async fn tampered_tokens_are_refused() {
    let app = spawn_app().await;
    let real = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let mut claims = claims_of(&app, &real);
    claims["sub"] = claims_of(&app, &bob)["sub"].clone();
    let parts: Vec<&str> = real.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    );
    assert_refused(&app, &tampered, "payload swapped").await;
    assert_refused(&app, "not-a-token", "garbage").await;
    assert_refused(&app, "", "empty").await;
}

#[tokio::test]
async fn a_validly_signed_token_must_name_a_live_session_of_its_subject() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let key = EncodingKey::from_secret(&app.jwt_key());
    let sign = |claims: &Value| {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
    };

    // Alice's session id with Bob as subject: a stolen key would be needed, but the row
    // still says whose session it is.
    let mut claims = claims_of(&app, &alice);
    claims["sub"] = claims_of(&app, &bob)["sub"].clone();
    assert_refused(&app, &sign(&claims), "subject swapped").await;

    let mut unknown_sid = claims_of(&app, &alice);
    unknown_sid["sid"] = json!("00000000000000000000000000000000");
    assert_refused(&app, &sign(&unknown_sid), "made-up session").await;

    let mut no_sid = claims_of(&app, &alice);
    no_sid.as_object_mut().unwrap().remove("sid");
    assert_refused(&app, &sign(&no_sid), "no sid").await;
}

#[tokio::test]
async fn expired_tokens_are_refused_even_if_the_session_row_lives() {
    let app = spawn_app().await;
    let real = app.signup_ok(&bot(), "alice").await;
    let key = EncodingKey::from_secret(&app.jwt_key());
    let mut claims = claims_of(&app, &real);
    let now = claims["iat"].as_i64().unwrap();
    claims["exp"] = json!(now - 60);
    let expired = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
    assert_refused(&app, &expired, "expired a minute ago").await;
    assert_eq!(app.me_with_token(&real).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn sessions_end_when_their_time_is_up() {
    let app = spawn_app_with(|c| c.session_ttl = std::time::Duration::from_secs(1)).await;
    let token = app.signup_ok(&bot(), "alice").await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_refused(&app, &token, "past its lifetime").await;
}
