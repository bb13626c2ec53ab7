//! Accounts and sessions: signup, login, logout, and the [`AuthSession`] extractor that every
//! authenticated route uses.
//!
//! A session is a database row; the JWT (cookie for browsers, `Authorization: Bearer` for bots)
//! names it. Logging out revokes the row, so a stolen copy of the token dies with it.

pub mod password;
pub mod throttle;
pub mod token;

use app::api::{AuthResponse, LoginRequest, SessionResponse, SignupRequest, User};
use app::domain::{DisplayName, Password, UserId, Username};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cookie::{Cookie, SameSite};

use crate::clock;
use crate::error::ApiError;
use crate::net::ClientIp;
use crate::state::AppState;
use crate::storage::{NewSession, NewUser, UserRecord};
use crate::web::ApiJson;
use password::Verified;
use throttle::Key;
use token::Claims;

pub const SESSION_COOKIE: &str = "natter_session";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/signup", post(signup))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/logout-all", post(logout_all))
        .route("/me", get(me))
        .route("/session", get(session))
}

pub fn user_json(u: UserRecord) -> User {
    User {
        id: u.id,
        username: u.username,
        display_name: u.display_name,
        created_at: u.created_at,
    }
}

#[tracing::instrument(skip_all)]
async fn signup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<SignupRequest>,
) -> Result<Response, ApiError> {
    let limits = &state.config.limits;
    let key = Key::signup_ip(ip);
    // Clients on this machine (the operator's tools, tests, benchmarks) are not limited; a
    // reverse proxy on the same host must be listed in NATTER_TRUSTED_PROXIES so that real
    // client addresses are used.
    if let Some(retry_after) = state.throttle.blocked(&key, limits.signups_per_ip)
        && !ip.is_loopback()
    {
        return Err(ApiError::TooManyRequests { retry_after });
    }
    let username = Username::parse(&body.username)?;
    let password = Password::parse(&body.password)?;
    let display_name = match body.display_name.as_deref() {
        Some(name) => DisplayName::parse(name)?,
        None => DisplayName::from_username(&username),
    };
    if password::is_common(&password) {
        return Err(ApiError::PasswordTooCommon);
    }
    let password_hash = state.hasher.hash(password).await?;
    let user = state
        .storage
        .create_user(NewUser {
            username,
            display_name,
            password_hash,
            created_at: clock::now_millis(),
        })
        .await?;
    state.throttle.record(key, limits.signup_window);
    tracing::info!(user_id = %user.id, "account created");
    start_session(&state, user, ip, StatusCode::CREATED).await
}

/// Throttling combines three counters of failed logins (limits in `config::Limits`):
/// - per (username, client IP): stops guessing one account from one place;
/// - per client IP: stops one place guessing many accounts;
/// - per username from anywhere: stops a distributed attack on one account. It does not apply
///   to IPs the owner has signed in from before, so an attacker cannot lock the owner out from
///   their usual places, and elsewhere the owner waits at most one window.
#[tracing::instrument(skip_all)]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let limits = &state.config.limits;
    // Counted by the name as typed (bounded), whether or not the account exists, so the
    // throttle's answers reveal nothing about which accounts exist.
    let name_key: String = body
        .username
        .trim()
        .to_lowercase()
        .chars()
        .take(64)
        .collect();
    let ip_key = Key::login_ip(ip);
    let account_ip_key = Key::login_account_ip(&name_key, ip);
    let account_key = Key::login_account(&name_key);
    let retry_after = state
        .throttle
        .blocked(&ip_key, limits.login_failures_per_ip)
        .or_else(|| {
            state
                .throttle
                .blocked(&account_ip_key, limits.login_failures_per_account_ip)
        });
    if let Some(retry_after) = retry_after {
        return Err(ApiError::TooManyRequests { retry_after });
    }

    let (username, password) = match (
        Username::parse(&body.username),
        Password::parse(&body.password),
    ) {
        (Ok(u), Ok(p)) => (u, p),
        _ => {
            // No account can match; still counts as a failure.
            record_failure(&state, ip_key, account_ip_key, account_key);
            return Err(ApiError::InvalidCredentials);
        }
    };
    let found = state.storage.read_user_credentials(&username).await?;
    if let Some(retry_after) = state
        .throttle
        .blocked(&account_key, limits.login_failures_per_account)
    {
        let known_place = match &found {
            Some((user, _)) => state.storage.read_user_signed_in_from(user.id, ip).await?,
            None => false,
        };
        if !known_place {
            return Err(ApiError::TooManyRequests { retry_after });
        }
    }
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let verified = state.hasher.verify(password, hash.clone()).await?;
    match (user, verified, hash) {
        (Some(user), Verified::Yes { rehashed }, Some(old)) => {
            state.throttle.clear(&account_ip_key);
            if let Some(new) = rehashed {
                // Best effort: the sign-in stands either way, and the next one tries again.
                if let Err(e) = state
                    .storage
                    .replace_password_hash(user.id, &old, &new)
                    .await
                {
                    tracing::warn!(error = %e, "could not store a password's new hash");
                }
            }
            start_session(&state, user, ip, StatusCode::OK).await
        }
        _ => {
            record_failure(&state, ip_key, account_ip_key, account_key);
            Err(ApiError::InvalidCredentials)
        }
    }
}

fn record_failure(state: &AppState, ip: Key, account_ip: Key, account: Key) {
    let window = state.config.limits.login_window;
    state.throttle.record(ip, window);
    state.throttle.record(account_ip, window);
    state.throttle.record(account, window);
}

async fn start_session(
    state: &AppState,
    user: UserRecord,
    ip: std::net::IpAddr,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let mut sid = [0u8; 16];
    getrandom::fill(&mut sid).map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    let sid = hex::encode(sid);
    let now = clock::now_millis();
    let ttl = state.config.session_ttl;
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let expires_at = now.saturating_add(ttl_ms);
    state
        .storage
        .create_session(NewSession {
            id: sid.clone(),
            user_id: user.id,
            created_at: now,
            expires_at,
            created_ip: ip,
        })
        .await?;
    let token = state
        .tokens
        .encode(&Claims {
            sub: user.id.to_string(),
            sid,
            iat: now / 1000,
            exp: expires_at / 1000,
        })
        .map_err(ApiError::Internal)?;
    let cookie = session_cookie(state, token.clone(), ttl.as_secs());
    let body = AuthResponse {
        user: user_json(user),
        token,
        expires_at,
    };
    Ok((status, set_cookie(cookie), Json(body)).into_response())
}

fn session_cookie(state: &AppState, value: String, max_age_secs: u64) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.origins.secure_cookies)
        .path("/")
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(max_age_secs).unwrap_or(i64::MAX),
        ))
        .build()
}

fn set_cookie(cookie: Cookie<'static>) -> [(header::HeaderName, HeaderValue); 1] {
    // A cookie we built from a token (base64url) and fixed attributes is always a valid header.
    let value =
        HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""));
    [(header::SET_COOKIE, value)]
}

fn clear_cookie(state: &AppState) -> [(header::HeaderName, HeaderValue); 1] {
    set_cookie(session_cookie(state, String::new(), 0))
}

#[tracing::instrument(skip_all, fields(user_id = %session.user_id))]
async fn logout(State(state): State<AppState>, session: AuthSession) -> Result<Response, ApiError> {
    state
        .storage
        .update_session_revoked(&session.session_id, clock::now_millis())
        .await?;
    state.hub.close_session(&session.session_id);
    Ok((StatusCode::NO_CONTENT, clear_cookie(&state)).into_response())
}

#[tracing::instrument(skip_all, fields(user_id = %session.user_id))]
async fn logout_all(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<Response, ApiError> {
    let n = state
        .storage
        .update_user_sessions_revoked(session.user_id, clock::now_millis())
        .await?;
    tracing::info!(sessions = n, "all sessions revoked");
    state.hub.close_user(session.user_id);
    Ok((StatusCode::NO_CONTENT, clear_cookie(&state)).into_response())
}

async fn me(State(state): State<AppState>, session: AuthSession) -> Result<Json<User>, ApiError> {
    let user = state
        .storage
        .read_user(session.user_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(Json(user_json(user)))
}

async fn session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SessionResponse>, ApiError> {
    let user = match AuthSession::from_headers(&state, &headers).await {
        Ok(session) => state
            .storage
            .read_user(session.user_id)
            .await?
            .map(user_json),
        Err(ApiError::Unauthorized) => None,
        Err(e) => return Err(e),
    };
    Ok(Json(SessionResponse { user }))
}

/// A request with a live session. Extracting it is the authentication check: a missing,
/// malformed, forged, expired or revoked token is a 401.
#[derive(Debug, Clone)]
pub struct AuthSession {
    pub user_id: UserId,
    pub session_id: String,
    /// When the session ends by itself (unix seconds, the token's `exp`).
    pub expires_at: i64,
}

/// The bearer token if there is an `Authorization` header, else the session cookie.
fn token_of(headers: &HeaderMap) -> Option<&str> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let auth = auth.to_str().ok()?;
        let (scheme, token) = auth.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

impl AuthSession {
    pub async fn from_headers(state: &AppState, headers: &HeaderMap) -> Result<Self, ApiError> {
        let claims = token_of(headers)
            .and_then(|t| state.tokens.decode(t))
            .ok_or(ApiError::Unauthorized)?;
        let owner = state
            .storage
            .read_active_session(&claims.sid, clock::now_millis())
            .await?
            .ok_or(ApiError::Unauthorized)?;
        if owner.to_string() != claims.sub {
            return Err(ApiError::Unauthorized);
        }
        Ok(Self {
            user_id: owner,
            session_id: claims.sid,
            expires_at: claims.exp,
        })
    }

    /// As [`Self::from_headers`], with the user's record and whether they share read receipts,
    /// in one query (opening a socket).
    pub async fn with_user(
        state: &AppState,
        headers: &HeaderMap,
    ) -> Result<(Self, UserRecord, bool), ApiError> {
        let claims = token_of(headers)
            .and_then(|t| state.tokens.decode(t))
            .ok_or(ApiError::Unauthorized)?;
        let (user, shares_receipts) = state
            .storage
            .read_session_user(&claims.sid, clock::now_millis())
            .await?
            .ok_or(ApiError::Unauthorized)?;
        if user.id.to_string() != claims.sub {
            return Err(ApiError::Unauthorized);
        }
        let session = Self {
            user_id: user.id,
            session_id: claims.sid,
            expires_at: claims.exp,
        };
        Ok((session, user, shares_receipts))
    }
}

impl FromRequestParts<AppState> for AuthSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Self::from_headers(state, &parts.headers).await
    }
}
