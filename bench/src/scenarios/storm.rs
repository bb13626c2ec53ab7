//! S4c: does a burst of logins disturb chat? S2's load runs on fresh sockets alone and with
//! `--storm-rate` logins a second (correct passwords, users outside S2's rooms, open loop), in
//! `--storm-pairs` interleaved pairs (quiet then storm, storm then quiet, ...). Each login costs
//! an argon2id verification (~19 MiB, tens of ms of CPU) on the server's hashing pool; the
//! question is how much of that leaks into message latency. S2's p99 moves by 20-50 % between
//! two runs of the same load on this kind of machine (docs/perf.md, ninth round), as much as
//! the budget allows the storm, so one pair decides little: the verdict compares the median
//! p99 of the quiet steps with that of the stormy ones, and every step's p99 is printed. Each
//! step waits for the server to be quiet first, so a storm's backlog of logins does not spill
//! into the quiet step after it. The baseline has no accounts, so this is Natter only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tokio::task::JoinHandle;

use super::fanout;
use crate::api;
use crate::cli::Args;
use crate::fleet::Env;
use crate::proto::Target;
use crate::report::{Better, Latencies, Metrics, fmt, group, median};

pub struct Storm {
    pub per_s: f64,
    /// Users to log in as, in turn.
    pub users: std::ops::Range<usize>,
}

pub struct Logins {
    pub ok: u64,
    pub failed: u64,
    pub statuses: Vec<(u16, u64)>,
    pub latency: Latencies,
}

impl Storm {
    /// Logs in every 1/rate s from `start` for `run`, each request on its own task so slow
    /// answers do not lower the rate.
    pub fn spawn(&self, env: Arc<Env>, start: Instant, run: Duration) -> JoinHandle<Logins> {
        let every = Duration::from_secs_f64(1.0 / self.per_s);
        let users = self.users.clone();
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            let mut at = start;
            let mut u = users.start;
            while at < start + run {
                tokio::time::sleep_until(at.into()).await;
                let name = env
                    .users
                    .get(u)
                    .map_or_else(|| api::username(u), |c| c.name.clone());
                let env = env.clone();
                tasks.push(tokio::spawn(async move {
                    api::login(&env.http, &env.base, &name).await
                }));
                u = if u + 1 >= users.end {
                    users.start
                } else {
                    u + 1
                };
                at += every;
            }
            let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
            let mut lat = Vec::new();
            for t in tasks {
                if let Ok((status, took)) = t.await {
                    *statuses.entry(status).or_default() += 1;
                    if status == 200 {
                        lat.push(took.as_micros() as u64);
                    }
                }
            }
            let ok = statuses.get(&200).copied().unwrap_or(0);
            Logins {
                ok,
                failed: statuses.values().sum::<u64>() - ok,
                statuses: statuses.into_iter().collect(),
                latency: Latencies::new(lat),
            }
        })
    }
}

pub async fn run(env: &Arc<Env>, a: &Args) -> Result<Metrics> {
    if env.target == Target::Baseline {
        println!("== S4c login storm (baseline): not applicable, the baseline has no accounts ==");
        return Ok(Metrics::default());
    }
    println!("== S4c login storm during S2 ({}) ==", env.target.name());
    let rooms = fanout::setup(env, a).await?;
    let first_free = fanout::FIRST_USER + a.rooms * a.members;
    if env.users.len() <= first_free {
        bail!("the storm needs users beyond S2's {first_free}");
    }
    let every = Duration::from_millis(a.interval_ms);
    let storm = Storm {
        per_s: a.storm_rate,
        users: first_free..env.users.len(),
    };
    let pairs = a.storm_pairs.max(1);
    let mut quiet = Vec::new();
    let mut stormy = Vec::new();
    let mut rows = Vec::new();
    for pair in 0..pairs {
        // Alternate which goes first, so that drift over the run favours neither.
        for with_storm in [pair % 2 == 1, pair % 2 == 0] {
            let s = with_storm.then_some(&storm);
            let step = fanout::step(env, a, &rooms, every, a.storm_seconds, s).await?;
            rows.push(if with_storm {
                format!(
                    "{} with {} logins/s (pair {})",
                    step.row(),
                    a.storm_rate,
                    pair + 1
                )
            } else {
                format!("{} without logins (pair {})", step.row(), pair + 1)
            });
            if with_storm { &mut stormy } else { &mut quiet }.push(step);
        }
    }
    println!(
        "{} s each, S2 load ({} x {}, 1 msg / {} ms / member), {pairs} interleaved pairs:",
        a.storm_seconds, a.rooms, a.members, a.interval_ms
    );
    println!("{}", fanout::STEP_HEADER);
    for row in &rows {
        println!("{row}");
    }
    let logins = merge_logins(stormy.iter().filter_map(|s| s.logins.as_ref()));
    let logins = &logins;
    println!(
        "logins: {} ok, {} failed ({}), latency of the successful ones {}",
        group(logins.ok as i64),
        logins.failed,
        logins
            .statuses
            .iter()
            .map(|(s, n)| format!(
                "{n} x {}",
                if *s == 0 {
                    "no answer".to_string()
                } else {
                    s.to_string()
                }
            ))
            .collect::<Vec<_>>()
            .join(", "),
        logins.latency.summary()
    );
    let p99s = |steps: &[fanout::Step]| -> Vec<f64> {
        steps.iter().filter_map(|s| s.latency.ms(0.99)).collect()
    };
    let (p_quiet, p_storm) = (median(p99s(&quiet)), median(p99s(&stormy)));
    let change = p_quiet.zip(p_storm).map(|(q, s)| (s - q) / q * 100.0);
    println!(
        "S2 p99, median of {pairs}: {} ms without, {} ms with the storm: {:+.0} %",
        fmt(p_quiet),
        fmt(p_storm),
        change.unwrap_or(f64::NAN)
    );
    let mut m = Metrics::default();
    m.add(
        "s4.storm_p99_quiet_ms",
        "S4c S2 p99 without logins (median of the quiet steps)",
        "ms",
        p_quiet,
        Better::Lower,
    );
    m.add(
        "s4.storm_p99_storm_ms",
        "S4c S2 p99 with 50 logins/s (median of the stormy steps)",
        "ms",
        p_storm,
        Better::Lower,
    );
    let worst = |steps: &[fanout::Step]| p99s(steps).into_iter().reduce(f64::max);
    m.add(
        "s4.storm_p99_quiet_worst_ms",
        "S4c S2 p99 without logins, the worst quiet step",
        "ms",
        worst(&quiet),
        Better::Lower,
    );
    m.add(
        "s4.storm_p99_storm_worst_ms",
        "S4c S2 p99 with 50 logins/s, the worst stormy step (a stall shows here, not in the median)",
        "ms",
        worst(&stormy),
        Better::Lower,
    );
    m.add(
        "s4.storm_p99_change_pct",
        "S4c p99 change under the storm",
        "%",
        change,
        Better::Neither,
    );
    m.add(
        "s4.storm_logins_ok_per_s",
        "S4c logins answered 200 per second",
        "/s",
        Some(logins.ok as f64 / (a.storm_seconds * pairs) as f64),
        Better::Higher,
    );
    m.add(
        "s4.storm_login_p99_ms",
        "S4c login latency p99",
        "ms",
        logins.latency.ms(0.99),
        Better::Lower,
    );
    Ok(m)
}

/// The logins of several stormy steps as one.
fn merge_logins<'a>(all: impl Iterator<Item = &'a Logins>) -> Logins {
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    let mut latencies = Vec::new();
    let (mut ok, mut failed) = (0, 0);
    for l in all {
        ok += l.ok;
        failed += l.failed;
        for &(s, n) in &l.statuses {
            *statuses.entry(s).or_default() += n;
        }
        latencies.extend_from_slice(l.latency.micros());
    }
    Logins {
        ok,
        failed,
        statuses: statuses.into_iter().collect(),
        latency: Latencies::new(latencies),
    }
}
