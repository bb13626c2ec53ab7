//! Calls to the HTTP API. Failures come back as [`ClientError`] carrying the server's stable
//! code and human message, or a network message when the server could not be reached.

use gloo_net::http::{Request, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{AuthResponse, LoginRequest, SessionResponse, SignupRequest};
use crate::error::{ErrorBody, ErrorCode};

#[derive(Debug, Clone, PartialEq)]
pub struct ClientError {
    pub code: Option<ErrorCode>,
    pub message: String,
}

impl ClientError {
    fn network() -> Self {
        Self {
            code: None,
            message: "Cannot reach the server. Check your connection and try again.".into(),
        }
    }
}

async fn read<T: DeserializeOwned>(resp: Response) -> Result<T, ClientError> {
    if resp.ok() {
        return resp.json::<T>().await.map_err(|_| ClientError::network());
    }
    match resp.json::<ErrorBody>().await {
        Ok(body) => Err(ClientError {
            code: Some(body.error.code),
            message: body.error.message,
        }),
        Err(_) => Err(ClientError {
            code: None,
            message: format!("The server answered {}.", resp.status()),
        }),
    }
}

async fn post<B: Serialize, T: DeserializeOwned>(url: &str, body: &B) -> Result<T, ClientError> {
    let resp = Request::post(url)
        .json(body)
        .map_err(|_| ClientError::network())?
        .send()
        .await
        .map_err(|_| ClientError::network())?;
    read(resp).await
}

pub async fn session() -> Result<SessionResponse, ClientError> {
    let resp = Request::get("/api/auth/session")
        .send()
        .await
        .map_err(|_| ClientError::network())?;
    read(resp).await
}

pub async fn signup(req: &SignupRequest) -> Result<AuthResponse, ClientError> {
    post("/api/auth/signup", req).await
}

pub async fn login(req: &LoginRequest) -> Result<AuthResponse, ClientError> {
    post("/api/auth/login", req).await
}

pub async fn logout() -> Result<(), ClientError> {
    let resp = Request::post("/api/auth/logout")
        .json(&serde_json::json!({}))
        .map_err(|_| ClientError::network())?
        .send()
        .await
        .map_err(|_| ClientError::network())?;
    // 401 means the session had already ended: signed out either way.
    if resp.ok() || resp.status() == 401 {
        Ok(())
    } else {
        read::<serde_json::Value>(resp).await.map(|_| ())
    }
}
