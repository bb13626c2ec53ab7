//! Natter's HTTP API as the scenarios use it to arrange their users and rooms: sign-up, login,
//! rooms, joins and DMs, with bounded concurrency. Setup is not measured; it only has to be
//! correct and not take all day (sign-ups are slow by design: argon2, so users are created once
//! per fixture, see `suite`).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

/// The password every generated user has (not a common one: the server refuses those).
pub const PASSWORD: &str = "load test password 123";

/// A user the generator acts as.
#[derive(Debug, Clone)]
pub struct Cred {
    pub id: i64,
    pub name: String,
    pub token: String,
}

pub fn username(i: usize) -> String {
    format!("user{i:05}")
}

async fn post(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> Result<Value> {
    let mut req = http
        .post(&url)
        .json(&body)
        .timeout(Duration::from_secs(120));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("POST {url}: {status}: {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn signup(http: &reqwest::Client, base: &str, name: &str) -> Result<Cred> {
    let v = post(
        http,
        format!("{base}/api/auth/signup"),
        None,
        json!({"username": name, "password": PASSWORD}),
    )
    .await?;
    Ok(Cred {
        id: v["user"]["id"].as_i64().context("user id")?,
        name: name.to_owned(),
        token: v["token"].as_str().context("token")?.to_owned(),
    })
}

/// Signs up `names` with `concurrency` requests in flight (the server hashes on a fixed pool).
pub async fn signup_all(
    http: &reqwest::Client,
    base: &str,
    names: Vec<String>,
    concurrency: usize,
) -> Result<Vec<Cred>> {
    let total = names.len();
    let mut done = 0usize;
    let mut out = Vec::with_capacity(total);
    let mut results = stream::iter(names)
        .map(|n| async move { signup(http, base, &n).await })
        .buffered(concurrency);
    while let Some(r) = results.next().await {
        out.push(r?);
        done += 1;
        if done.is_multiple_of(500) {
            eprintln!("  signed up {done} of {total}");
        }
    }
    Ok(out)
}

pub async fn create_room(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
) -> Result<i64> {
    let v = post(
        http,
        format!("{base}/api/rooms"),
        Some(token),
        json!({"name": name}),
    )
    .await?;
    v["id"].as_i64().context("room id")
}

pub async fn join(http: &reqwest::Client, base: &str, token: &str, room: i64) -> Result<()> {
    post(
        http,
        format!("{base}/api/rooms/{room}/join"),
        Some(token),
        json!({}),
    )
    .await
    .map(drop)
}

pub async fn open_dm(http: &reqwest::Client, base: &str, token: &str, peer: &str) -> Result<i64> {
    let v = post(
        http,
        format!("{base}/api/dms"),
        Some(token),
        json!({"username": peer}),
    )
    .await?;
    v["id"].as_i64().context("dm id")
}

/// Creates a public room owned by `members[0]` and has every other member join it.
pub async fn room_with(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    members: &[&Cred],
    concurrency: usize,
) -> Result<i64> {
    let owner = members.first().context("a room needs a member")?;
    let id = create_room(http, base, &owner.token, name).await?;
    let mut joins = stream::iter(members[1..].iter())
        .map(|m| join(http, base, &m.token, id))
        .buffer_unordered(concurrency);
    while let Some(r) = joins.next().await {
        r?;
    }
    Ok(id)
}

/// Logs in; returns the HTTP status (200 on success) and the time it took.
pub async fn login(http: &reqwest::Client, base: &str, name: &str) -> (u16, Duration) {
    let t = std::time::Instant::now();
    let status = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": name, "password": PASSWORD}))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16());
    (status, t.elapsed())
}
