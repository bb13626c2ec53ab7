//! S2: rooms x members, every member sending one message every interval (open loop), every
//! message stored (Natter: group commit, `synchronous=FULL`; baseline: one INSERT each, FULL)
//! and then delivered to every member of its room, the sender included. Then the rate steps up
//! (x `--knee-factor` each step) until p99 exceeds `--knee-p99-ms`, a message is lost, or the
//! deliveries fall behind the offered rate: the knee.
//!
//! Server CPU per delivery is the server's CPU time over the run (sending, storing, fanning
//! out, acknowledging) divided by the deliveries. The generator's own CPU share is printed with
//! every step: near 100 % the generator, not the server, is the limit.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use super::{RoomSetup, fresh_tag, make_rooms, mib};
use crate::cli::Args;
use crate::fleet::{Env, Fleet, Member, Opts, Phase};
use crate::procfs::{self, Delta};
use crate::report::{Better, Latencies, Metrics, fmt, group};

/// First user of S2's rooms and the baseline's number of its first room.
pub const FIRST_USER: usize = 0;
pub const BASELINE_ROOMS: i64 = 200_000;

pub struct Step {
    pub every: Duration,
    pub seconds: u64,
    pub offered_per_s: f64,
    pub sent: u64,
    pub acked: u64,
    pub deliveries: u64,
    pub expected: u64,
    pub latency: Latencies,
    pub lost: u64,
    pub duplicated: u64,
    pub readers_closed: usize,
    pub note: Option<String>,
    pub delta: Delta,
    pub logins: Option<super::storm::Logins>,
}

impl Step {
    pub fn deliveries_per_s(&self) -> f64 {
        self.deliveries as f64 / self.seconds as f64
    }

    pub fn cpu_us_per_delivery(&self) -> Option<f64> {
        self.delta
            .server_cpu_s
            .map(|c| c * 1e6 / self.deliveries.max(1) as f64)
    }

    /// Below the knee: fast enough, nothing lost, keeping up with the offered rate.
    pub fn passes(&self, p99_ms: f64) -> bool {
        self.latency.ms(0.99).is_some_and(|p| p <= p99_ms)
            && self.lost == 0
            && self.readers_closed == 0
            && self.deliveries_per_s() >= 0.95 * self.offered_per_s
    }

    pub fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} | {} / {} | {} | {}% | {:.0}% |",
            fmt(Some(1.0 / self.every.as_secs_f64())),
            group(self.offered_per_s as i64),
            group(self.deliveries_per_s() as i64),
            fmt(self.latency.ms(0.50)),
            fmt(self.latency.ms(0.99)),
            fmt(self.latency.max_ms()),
            self.lost,
            self.duplicated,
            fmt(self.cpu_us_per_delivery()),
            fmt(self.delta.server_pct()),
            self.delta.generator_pct(),
        )
    }
}

pub const STEP_HEADER: &str = "| msgs/s per member | offered deliveries/s | deliveries/s | p50 ms | p99 ms | max ms | lost / dup | server µs per delivery | server CPU | generator CPU |\n|---|---|---|---|---|---|---|---|---|---|";

/// One run of the fan-out on fresh sockets; with `storm`, logins run alongside.
pub async fn step(
    env: &Arc<Env>,
    a: &Args,
    rooms: &[RoomSetup],
    every: Duration,
    seconds: u64,
    storm: Option<&super::storm::Storm>,
) -> Result<Step> {
    let run = Duration::from_secs(seconds);
    let mut members = Vec::new();
    for r in rooms {
        for &u in &r.users {
            let i = members.len();
            let mut m = Member::new(u, r.id, vec![r.id]);
            m.sends = vec![Phase::spread(Duration::ZERO, run, every, i)];
            members.push(m);
        }
    }
    let senders = members.len();
    // The previous step's backlog (a server that fell behind) must not spill into this one.
    procfs::wait_quiet(env.pid, Duration::from_secs(60)).await?;
    let per_room = rooms.first().map_or(0, |r| r.users.len());
    let offered_per_s = senders as f64 / every.as_secs_f64() * per_room as f64;
    let opts = Opts {
        tag: fresh_tag(),
        payload: a.payload,
        concurrency: a.connect_concurrency,
        wait_synced: true,
    };
    let fleet = Fleet::connect(env, members, opts).await?;
    if fleet.connected() < senders {
        bail!(
            "{} of {senders} sockets failed to connect: {}",
            senders - fleet.connected(),
            fleet.first_error().unwrap_or("")
        );
    }
    fleet.settle(100, Duration::from_secs(30)).await;
    let drain = Duration::from_secs(2);
    let s0 = procfs::sample(env.pid)?;
    let start = fleet.start(env, run, drain, None);
    let storm_task = storm.map(|s| s.spawn(env.clone(), start, run));
    tokio::time::sleep_until((start + run + drain).into()).await;
    let s1 = procfs::sample(env.pid)?;
    let outcome = fleet.finish().await?;
    let logins = match storm_task {
        Some(t) => Some(t.await?),
        None => None,
    };
    let (refused, sample) = outcome.refused();
    let (readers_closed, why) = outcome.readers_closed();
    let note = match (refused, readers_closed) {
        (0, 0) => None,
        _ => Some(format!(
            "{refused} frames refused ({}), {readers_closed} readers closed early ({})",
            sample.unwrap_or("-"),
            why.unwrap_or("-")
        )),
    };
    Ok(Step {
        every,
        seconds,
        offered_per_s,
        sent: outcome.sent(),
        acked: outcome.acked(),
        deliveries: outcome.deliveries(),
        expected: outcome.expected(),
        latency: Latencies::new(outcome.latencies(0)),
        lost: outcome.lost(),
        duplicated: outcome.duplicated(),
        readers_closed,
        note,
        delta: Delta::between(&s0, &s1),
        logins,
    })
}

pub async fn setup(env: &Env, a: &Args) -> Result<Vec<RoomSetup>> {
    make_rooms(
        env,
        "fanout",
        a.rooms,
        a.members,
        FIRST_USER,
        BASELINE_ROOMS,
    )
    .await
}

pub async fn run(env: &Arc<Env>, a: &Args) -> Result<Metrics> {
    println!("== S2 fan-out ({}) ==", env.target.name());
    let rooms = setup(env, a).await?;
    let every = Duration::from_millis(a.interval_ms);
    println!(
        "setup: {} rooms x {} members, 1 message / {} ms / member, {} B bodies, {} s",
        a.rooms, a.members, a.interval_ms, a.payload, a.seconds
    );
    let s = step(env, a, &rooms, every, a.seconds, None).await?;
    println!(
        "messages sent / stored:  {} / {}",
        group(s.sent as i64),
        group(s.acked as i64)
    );
    println!(
        "deliveries:              {} (expected {}), {} per second",
        group(s.deliveries as i64),
        group(s.expected as i64),
        group(s.deliveries_per_s() as i64)
    );
    println!(
        "lost / duplicated:       {} / {} (acknowledged messages x reading members)",
        s.lost, s.duplicated
    );
    println!("latency send → delivery: {}", s.latency.summary());
    println!(
        "server CPU:              {} µs per delivery ({}% of a core); generator {:.0}% of a core",
        fmt(s.cpu_us_per_delivery()),
        fmt(s.delta.server_pct()),
        s.delta.generator_pct()
    );
    println!(
        "server RSS:              {} MiB",
        fmt(s.delta.server_rss_end.map(mib))
    );
    if let Some(n) = &s.note {
        println!("note:                    {n}");
    }
    if a.check && (s.lost > 0 || s.duplicated > 0 || s.deliveries == 0 || s.acked == 0) {
        bail!(
            "{} deliveries lost, {} duplicated, {} in all ({} acknowledged)",
            s.lost,
            s.duplicated,
            s.deliveries,
            s.acked
        );
    }

    let mut m = Metrics::default();
    m.add(
        "s2.deliveries_per_s",
        "S2 deliveries/s (50 x 20, 1 msg/s each)",
        "/s",
        Some(s.deliveries_per_s()),
        Better::Higher,
    );
    m.add(
        "s2.p50_ms",
        "S2 latency p50",
        "ms",
        s.latency.ms(0.5),
        Better::Lower,
    );
    m.add(
        "s2.p99_ms",
        "S2 latency p99",
        "ms",
        s.latency.ms(0.99),
        Better::Lower,
    );
    m.add(
        "s2.max_ms",
        "S2 latency max",
        "ms",
        s.latency.max_ms(),
        Better::Lower,
    );
    m.add(
        "s2.lost",
        "S2 lost / duplicated deliveries",
        "",
        Some((s.lost + s.duplicated) as f64),
        Better::Neither,
    );
    m.add(
        "s2.cpu_us_per_delivery",
        "S2 server CPU per delivery",
        "µs",
        s.cpu_us_per_delivery(),
        Better::Lower,
    );
    m.add(
        "s2.rss_mib",
        "S2 server RSS",
        "MiB",
        s.delta.server_rss_end.map(mib),
        Better::Lower,
    );

    if a.knee_steps > 0 {
        println!(
            "rate steps ({} s each, until p99 > {} ms, a loss, or deliveries < 95 % of offered):",
            a.knee_seconds, a.knee_p99_ms
        );
        println!("{STEP_HEADER}");
        println!("{}", s.row());
        let mut best = s.passes(a.knee_p99_ms).then_some(s.offered_per_s);
        // Below the base rate already: no step up.
        let mut knee = best.is_none().then_some(s.offered_per_s);
        let mut factor = 1.0;
        for _ in 0..if knee.is_some() { 0 } else { a.knee_steps } {
            factor *= a.knee_factor;
            let every = Duration::from_secs_f64(a.interval_ms as f64 / 1000.0 / factor);
            let k = step(env, a, &rooms, every, a.knee_seconds, None).await?;
            println!(
                "{}{}",
                k.row(),
                k.note.as_ref().map_or(String::new(), |n| format!(" {n}"))
            );
            if k.passes(a.knee_p99_ms) {
                best = Some(k.offered_per_s);
            } else {
                knee = Some(k.offered_per_s);
                break;
            }
        }
        match knee {
            Some(k) => println!(
                "knee: between {} and {} deliveries/s",
                best.map_or("-".into(), |b| group(b as i64)),
                group(k as i64)
            ),
            None => println!(
                "knee: not reached; {} deliveries/s passed",
                best.map_or("-".into(), |b| group(b as i64))
            ),
        }
        m.add(
            "s2.knee_deliveries_per_s",
            "S2 highest step within p99 50 ms, no loss",
            "/s",
            best,
            Better::Higher,
        );
    }
    Ok(m)
}
