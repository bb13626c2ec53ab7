//! `natter-load`: a load generator for Natter over real WebSockets.
//!
//! It signs up `rooms x members` users, puts each room's members in one public room, connects
//! one socket per user, and has every member send a message of `payload` bytes every
//! `interval_ms` (with jitter) for `seconds`. Every received `message` frame is a delivery; its
//! latency is the time from the send (stamped in the body) to its arrival. With `--pid` it reads
//! the server's CPU time and RSS from /proc, and `--idle N` opens N extra idle sockets to
//! measure memory per idle connection. Every acknowledged send must reach every member of its
//! room exactly once: lost and duplicated deliveries are counted, and `--check 1` makes either
//! an error (the smoke run in `make test`, bench/smoke.sh). See bench/run.sh and docs/perf.md.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

struct Args {
    url: String,
    rooms: usize,
    members: usize,
    interval_ms: u64,
    payload: usize,
    seconds: u64,
    idle: usize,
    pid: Option<u32>,
    check: bool,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        url: "http://127.0.0.1:3000".into(),
        rooms: 10,
        members: 10,
        interval_ms: 1000,
        payload: 100,
        seconds: 20,
        idle: 0,
        pid: None,
        check: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => a.url = value,
            "--rooms" => a.rooms = value.parse()?,
            "--members" => a.members = value.parse()?,
            "--interval-ms" => a.interval_ms = value.parse()?,
            "--payload" => a.payload = value.parse()?,
            "--seconds" => a.seconds = value.parse()?,
            "--idle" => a.idle = value.parse()?,
            "--pid" => a.pid = Some(value.parse()?),
            "--check" => a.check = value == "1",
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

/// (utime + stime in seconds, RSS in bytes) of a process.
fn proc_usage(pid: u32) -> Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_comm = stat.rsplit_once(')').context("stat format")?.1;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the comm field.
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .context("VmRSS")?
        .parse()?;
    Ok((ticks / 100.0, rss_kb * 1024))
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn signup(http: &reqwest::Client, url: &str, name: &str) -> Result<String> {
    let resp: Value = http
        .post(format!("{url}/api/auth/signup"))
        .json(&json!({"username": name, "password": "load test password 123"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(resp["token"].as_str().context("token")?.to_owned())
}

async fn connect(url: &str, token: &str) -> Result<Ws> {
    let ws_url = url.replacen("http", "ws", 1) + "/ws";
    let mut req = ws_url.into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    ws.send(Message::Text(json!({"type": "hello"}).to_string().into()))
        .await?;
    // Wait for ready and every room's catch-up.
    let mut rooms_left: Option<usize> = None;
    while rooms_left != Some(0) {
        let Some(msg) = ws.next().await else {
            bail!("socket closed during hello")
        };
        if let Message::Text(t) = msg? {
            let v: Value = serde_json::from_str(&t)?;
            match v["type"].as_str() {
                Some("ready") => rooms_left = Some(v["rooms"].as_array().map_or(0, Vec::len)),
                Some("synced") => rooms_left = rooms_left.map(|n| n.saturating_sub(1)),
                _ => {}
            }
        }
    }
    Ok(ws)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let http = reqwest::Client::new();
    let run = std::process::id();
    let url = args.url.clone();
    println!(
        "setup: {} rooms x {} members, 1 message / {} ms / member, {} B payload, {} s",
        args.rooms, args.members, args.interval_ms, args.payload, args.seconds
    );

    // Users, rooms, memberships.
    let mut rooms = Vec::new();
    for r in 0..args.rooms {
        let mut tokens = Vec::new();
        for m in 0..args.members {
            tokens.push(signup(&http, &url, &format!("l{run}_{r}_{m}")).await?);
        }
        let room: Value = http
            .post(format!("{url}/api/rooms"))
            .bearer_auth(&tokens[0])
            .json(&json!({"name": format!("load {r}")}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let room_id = room["id"].as_i64().context("room id")?;
        for t in &tokens[1..] {
            http.post(format!("{url}/api/rooms/{room_id}/join"))
                .bearer_auth(t)
                .json(&json!({}))
                .send()
                .await?
                .error_for_status()?;
        }
        rooms.push((room_id, tokens));
    }

    // Idle connections: RSS per connection.
    let mut idle_rss = None;
    let mut idle_sockets = Vec::new();
    if args.idle > 0 {
        let token = signup(&http, &url, &format!("idle{run}")).await?;
        let before = args.pid.map(proc_usage).transpose()?;
        for _ in 0..args.idle {
            idle_sockets.push(connect(&url, &token).await?);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = args.pid.map(proc_usage).transpose()?;
        if let (Some(b), Some(a)) = (before, after) {
            idle_rss = Some((a.1.saturating_sub(b.1)) as f64 / args.idle as f64);
        }
    }

    // Active members.
    let start = Instant::now();
    let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let deliveries = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    // Per room: the client ids the server acknowledged (`sent`), i.e. stored.
    let acked: Arc<Mutex<HashMap<i64, HashSet<String>>>> = Arc::default();
    let deadline = Duration::from_secs(args.seconds);
    let mut sockets = Vec::new();
    for (room_id, tokens) in &rooms {
        for t in tokens {
            sockets.push((*room_id, connect(&url, t).await?));
        }
    }
    let cpu_before = args.pid.map(proc_usage).transpose()?;
    let measure_from = start.elapsed();
    let mut tasks = Vec::new();
    for (i, (room_id, ws)) in sockets.into_iter().enumerate() {
        let (mut tx, mut rx) = ws.split();
        let (latencies, deliveries, sent) = (latencies.clone(), deliveries.clone(), sent.clone());
        let acked = acked.clone();
        let (interval, payload) = (args.interval_ms, args.payload);
        let stop_at = measure_from + deadline;
        tasks.push(tokio::spawn(async move {
            let reader = async {
                let mut local = Vec::new();
                let mut received = HashSet::new();
                let mut duplicates = 0u64;
                let mut mine = Vec::new();
                while let Some(Ok(msg)) = rx.next().await {
                    if let Message::Text(t) = msg {
                        let v: Value = serde_json::from_str(&t).unwrap_or_default();
                        if v["type"] == "sent" {
                            mine.push(v["client_id"].as_str().unwrap_or("").to_owned());
                        }
                        if v["type"] == "message" {
                            let client_id = v["message"]["client_id"].as_str().unwrap_or("");
                            if !received.insert(client_id.to_owned()) {
                                duplicates += 1;
                            }
                            let body = v["message"]["body"].as_str().unwrap_or("");
                            if let Some(stamp) =
                                body.split(' ').next().and_then(|s| s.parse::<u64>().ok())
                            {
                                let now = start.elapsed().as_micros() as u64;
                                local.push(now.saturating_sub(stamp));
                                deliveries.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    if start.elapsed() > stop_at + Duration::from_secs(2) {
                        break;
                    }
                }
                latencies.lock().await.extend(local);
                acked.lock().await.entry(room_id).or_default().extend(mine);
                (received, duplicates)
            };
            let writer = async {
                // Spread the first sends over one interval.
                tokio::time::sleep(Duration::from_millis((i as u64 * 37) % interval.max(1))).await;
                let mut n = 0u64;
                while start.elapsed() < stop_at {
                    let stamp = start.elapsed().as_micros();
                    let body = format!("{stamp} {}", "x".repeat(payload.saturating_sub(20)));
                    let frame = json!({"type": "send", "room_id": room_id,
                        "client_id": format!("c{i}-{n}"), "body": body});
                    if tx
                        .send(Message::Text(frame.to_string().into()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(interval)).await;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
                tx.close().await.ok();
            };
            let ((received, duplicates), ()) = tokio::join!(reader, writer);
            (room_id, received, duplicates)
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await?);
    }
    let acked = acked.lock().await;
    let (mut lost, mut duplicated) = (0u64, 0u64);
    for (room_id, received, duplicates) in &outcomes {
        let stored = acked.get(room_id).map(HashSet::len).unwrap_or(0);
        let got = acked.get(room_id).map_or(0, |ids| {
            ids.iter().filter(|id| received.contains(*id)).count()
        });
        lost += (stored - got) as u64;
        duplicated += duplicates;
    }
    let elapsed = deadline.as_secs_f64();
    let cpu_after = args.pid.map(proc_usage).transpose()?;

    let mut lat = latencies.lock().await.clone();
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1000.0
    };
    let total = deliveries.load(Ordering::Relaxed);
    let expected = sent.load(Ordering::Relaxed) * args.members as u64;
    println!("sent messages:        {}", sent.load(Ordering::Relaxed));
    println!("deliveries:           {total} (expected {expected})");
    println!("deliveries/s:         {:.0}", total as f64 / elapsed);
    println!("lost / duplicated:    {lost} / {duplicated} (of acknowledged messages, per member)");
    println!(
        "latency p50 / p99:    {:.2} ms / {:.2} ms",
        pct(0.50),
        pct(0.99)
    );
    if let (Some(b), Some(a)) = (cpu_before, cpu_after) {
        let cpu = a.0 - b.0;
        println!(
            "server CPU:           {cpu:.2} s ({:.1} us per delivery)",
            cpu * 1e6 / total.max(1) as f64
        );
        println!("server RSS:           {:.1} MiB", a.1 as f64 / 1048576.0);
    }
    if let Some(per) = idle_rss {
        println!(
            "RSS per idle socket:  {:.1} KiB ({} idle sockets)",
            per / 1024.0,
            args.idle
        );
    }
    drop(idle_sockets);
    let acked_total: usize = acked.values().map(HashSet::len).sum();
    if args.check && (lost > 0 || duplicated > 0 || total == 0 || acked_total == 0) {
        bail!("{lost} deliveries lost, {duplicated} duplicated, {total} in all");
    }
    Ok(())
}
