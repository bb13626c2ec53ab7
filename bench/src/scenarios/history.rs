//! S4b: history pages at 10 million stored messages. The database is filled before the server
//! starts (`suite::history_fixture`: 100 rooms x 100,000 messages of 200 bytes, interleaved as
//! if all rooms were busy at once, so one page's rows lie on different database pages), then
//! one client asks `GET /api/rooms/{room}/messages?before=<random>&limit=50` of random rooms,
//! one request at a time over one keep-alive connection, and records each answer's latency.
//! Natter's `before` is a `seq`; the baseline's is a message id (its table has no per-room
//! sequence), drawn so that every page is full on both.

use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::Rng;
use crate::cli::Args;
use crate::fleet::Env;
use crate::procfs::{self, Delta};
use crate::proto::Target;
use crate::report::{Better, Latencies, Metrics, fmt, group};

pub async fn run(env: &Env, a: &Args) -> Result<Metrics> {
    println!("== S4b history pages ({}) ==", env.target.name());
    let rooms = a.history_rooms as u64;
    let per_room = a.history_per_room;
    let token = env.users.first().map(|c| c.token.clone());
    if env.target == Target::Natter && token.is_none() {
        bail!("S4b needs the history fixture's reader (--tokens)");
    }
    let mut rng = Rng::new(0x5eed);
    let url = |rng: &mut Rng| match env.target {
        Target::Natter => {
            let room = rng.range(1, rooms + 1);
            let before = rng.range(51, per_room + 2);
            format!(
                "{}/api/rooms/{room}/messages?before={before}&limit=50",
                env.base
            )
        }
        Target::Baseline => {
            let room = rng.range(1, rooms + 1);
            let before = rng.range(50 * rooms + 1, rooms * per_room + 1);
            format!(
                "{}/api/rooms/{room}/messages?before={before}&limit=50",
                env.base
            )
        }
    };
    let get = |u: String| {
        let mut req = env.http.get(u);
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    // Warm-up: connection, prepared statements.
    for _ in 0..a.history_requests / 10 {
        get(url(&mut rng))
            .await?
            .error_for_status()?
            .bytes()
            .await?;
    }
    let s0 = procfs::sample(env.pid)?;
    let mut lat = Vec::with_capacity(a.history_requests);
    let mut rows = 0u64;
    let t = Instant::now();
    for _ in 0..a.history_requests {
        let u = url(&mut rng);
        let r0 = Instant::now();
        let body = get(u).await?.error_for_status()?.bytes().await?;
        lat.push(r0.elapsed().as_micros() as u64);
        let v: serde_json::Value = serde_json::from_slice(&body).context("page JSON")?;
        rows += v["messages"].as_array().map_or(0, |m| m.len() as u64);
    }
    let wall = t.elapsed().as_secs_f64();
    let s1 = procfs::sample(env.pid)?;
    let d = Delta::between(&s0, &s1);
    let lat = Latencies::new(lat);
    println!(
        "{} pages of 50 over {} rooms x {} messages ({} stored): {}",
        group(a.history_requests as i64),
        rooms,
        group(per_room as i64),
        group((rooms * per_room) as i64),
        lat.summary()
    );
    println!(
        "{:.1} rows per page on average, {} pages/s one at a time; server CPU {} µs per page",
        rows as f64 / a.history_requests as f64,
        fmt(Some(a.history_requests as f64 / wall)),
        fmt(d.server_cpu_s.map(|c| c * 1e6 / a.history_requests as f64))
    );
    let mut m = Metrics::default();
    m.add(
        "s4.history_p50_ms",
        "S4b history page p50 (10M messages)",
        "ms",
        lat.ms(0.5),
        Better::Lower,
    );
    m.add(
        "s4.history_p99_ms",
        "S4b history page p99 (10M messages)",
        "ms",
        lat.ms(0.99),
        Better::Lower,
    );
    m.add(
        "s4.history_cpu_us",
        "S4b server CPU per page",
        "µs",
        d.server_cpu_s.map(|c| c * 1e6 / a.history_requests as f64),
        Better::Lower,
    );
    Ok(m)
}
