//! S1: many authenticated connections doing nothing. What does an open, idle chat tab cost the
//! server (memory, CPU), and how fast can clients (re)connect after a restart?
//!
//! Each user is in a ten-member room and a DM (Natter: from the fixture; baseline: joined at
//! connection time). Connect + auth is TCP connect, WebSocket upgrade (Natter: bearer token
//! checked, session row read) and `hello` → `ready` (socket.io: CONNECT → "ready" event), with
//! `--connect-concurrency` handshakes in flight. Sockets come from `--source-ips` loopback
//! addresses; each process may hold 20,000 files here (`ulimit -n`), so 5,000 sockets fit.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use super::{baseline_dm_room, baseline_group_room, mib};
use crate::api;
use crate::cli::Args;
use crate::fleet::{Env, Fleet, Member, Opts};
use crate::procfs::{self, Delta};
use crate::proto::Target;
use crate::report::{Better, Latencies, Metrics, fmt, group};

pub async fn run(env: &Arc<Env>, a: &Args) -> Result<Metrics> {
    let n = a.connections;
    if env.target == Target::Natter && env.users.len() < n {
        bail!(
            "S1 needs {n} users, the tokens file has {}: run --scenario seed first",
            env.users.len()
        );
    }
    println!("== S1 idle connections ({}) ==", env.target.name());
    let members: Vec<Member> = (0..n)
        .map(|i| {
            let g = baseline_group_room(i);
            Member::new(i, g, vec![g, baseline_dm_room(i)])
        })
        .collect();
    let before = procfs::sample(env.pid)?;
    // A server that has let someone sign in is still idle, but its hashing thread now holds
    // its argon2 buffer (docs/perf.md, fifteenth round). Natter only: the baseline has no
    // accounts. The connections are measured from after the sign-in.
    let signed_in = match (env.target, env.users.first()) {
        (Target::Natter, Some(user)) => {
            let (status, _) = api::login(&env.http, &env.base, &user.name).await;
            if status != 200 {
                bail!("S1: signing in as {} was answered {status}", user.name);
            }
            Some(procfs::sample(env.pid)?)
        }
        _ => None,
    };
    let base = signed_in.as_ref().unwrap_or(&before);
    let opts = Opts {
        tag: 0,
        payload: 0,
        concurrency: a.connect_concurrency,
        wait_synced: false,
    };
    let fleet = Fleet::connect(env, members, opts).await?;
    let connected = procfs::sample(env.pid)?;
    let ok = fleet.connected();
    let wall = fleet.connect_wall.as_secs_f64();
    let rate = ok as f64 / wall.max(1e-9);
    let ready = Latencies::new(fleet.ready_times_us());
    // What connecting set off (catch-up frames, presence) settles, then the sockets are idle.
    fleet.settle(100, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_from = procfs::sample(env.pid)?;
    tokio::time::sleep(Duration::from_secs(a.idle_seconds)).await;
    let idle_to = procfs::sample(env.pid)?;
    let idle = Delta::between(&idle_from, &idle_to);
    let connect = Delta::between(base, &connected);

    println!(
        "connections:             {} of {} ({} failed{}), from {} source addresses, {} handshakes in flight",
        group(ok as i64),
        group(n as i64),
        n - ok,
        fleet
            .first_error()
            .map_or(String::new(), |e| format!(": {e}")),
        a.source_ips,
        a.connect_concurrency
    );
    println!(
        "connect + auth → ready:  {} per second ({:.2} s for all); per connection {}",
        fmt(Some(rate)),
        wall,
        ready.summary()
    );
    // The server's CPU per connection does not depend on how busy the machine is: it tells
    // what one core could accept when the measured rate is limited by something else (the
    // generator, or a noisy virtual machine).
    let cpu_per_conn_us = connect.server_cpu_s.map(|c| c * 1e6 / ok.max(1) as f64);
    println!(
        "  CPU while connecting:  server {}% of a core, generator {:.0}%; server CPU per connection {} µs (one core's worth: {} per second)",
        fmt(connect.server_pct()),
        connect.generator_pct(),
        fmt(cpu_per_conn_us),
        fmt(cpu_per_conn_us.map(|us| 1e6 / us.max(1e-9)))
    );
    let rss_start = before.server.map(|u| u.rss);
    let rss_signed_in = signed_in.as_ref().and_then(|s| s.server).map(|u| u.rss);
    let rss_open = idle_from.server.map(|u| u.rss);
    let per_conn = base
        .server
        .map(|u| u.rss)
        .zip(rss_open)
        .map(|(s, o)| o.saturating_sub(s) as f64 / ok.max(1) as f64 / 1024.0);
    println!(
        "server RSS:              {} MiB idle before, {} MiB after one sign-in, {} MiB with {} open → {} KiB per connection",
        fmt(rss_start.map(mib)),
        fmt(rss_signed_in.map(mib)),
        fmt(rss_open.map(mib)),
        group(ok as i64),
        fmt(per_conn)
    );
    println!(
        "idle server CPU:         {}% of a core over {} s (generator {:.1}%)",
        fmt(idle.server_pct()),
        a.idle_seconds,
        idle.generator_pct()
    );
    fleet.abort();
    let stack_us = match env.target {
        Target::Natter => stack_cpu_per_conn(env, ok).await?,
        Target::Baseline => None,
    };

    let mut m = Metrics::default();
    m.add(
        "s1.connections",
        "S1 idle connections open",
        "",
        Some(ok as f64),
        Better::Neither,
    );
    m.add(
        "s1.rss_start_mib",
        "S1 server RSS, idle, no connections",
        "MiB",
        rss_start.map(mib),
        Better::Lower,
    );
    m.add(
        "s1.rss_signed_in_mib",
        "S1 server RSS, idle, after one sign-in",
        "MiB",
        rss_signed_in.map(mib),
        Better::Lower,
    );
    m.add(
        "s1.rss_per_conn_kib",
        "S1 server RSS per idle connection",
        "KiB",
        per_conn,
        Better::Lower,
    );
    m.add(
        "s1.connect_per_s",
        "S1 connect + auth → ready",
        "/s",
        Some(rate),
        Better::Higher,
    );
    m.add(
        "s1.cpu_us_per_conn",
        "S1 server CPU per connect + auth",
        "µs",
        cpu_per_conn_us,
        Better::Lower,
    );
    m.add(
        "s1.stack_cpu_us_per_conn",
        "S1 server CPU per connection to the echo route (the HTTP and WebSocket stack, no application)",
        "µs",
        stack_us,
        Better::Lower,
    );
    m.add(
        "s1.ready_p99_ms",
        "S1 connect → ready p99 (per socket)",
        "ms",
        ready.ms(0.99),
        Better::Lower,
    );
    m.add(
        "s1.idle_cpu_pct",
        "S1 server CPU, all idle",
        "% core",
        idle.server_pct(),
        Better::Lower,
    );
    Ok(m)
}

/// What the same number of connections cost the server on its test-only echo route
/// (`NATTER_WS_ECHO=1`, as the suite starts it): hyper, axum's upgrade, tokio and Natter's
/// socket tasks, with no sign-in, database, rooms or presence. Between the floor (no server)
/// and S1 (everything), it tells the stack's share from the application's. `None` when the
/// server has no echo route.
async fn stack_cpu_per_conn(env: &Env, n: usize) -> Result<Option<f64>> {
    // The closed sockets' goodbyes (presence, last seen) first.
    procfs::wait_quiet(env.pid, Duration::from_secs(60)).await?;
    let before = procfs::sample(env.pid)?;
    let addr = env.addr;
    let clients = tokio::task::spawn_blocking(move || {
        super::floor::connecting_clients(addr, "/ws/echo", n.max(1), 100)
    })
    .await?;
    if let Err(e) = clients {
        println!("echo route: not measured ({e}); the server runs without NATTER_WS_ECHO=1?");
        return Ok(None);
    }
    let after = procfs::sample(env.pid)?;
    let cpu_us = Delta::between(&before, &after)
        .server_cpu_s
        .map(|c| c * 1e6 / n.max(1) as f64);
    println!(
        "echo route (the stack, no application): server CPU per connection {} µs",
        fmt(cpu_us)
    );
    Ok(cpu_us)
}
