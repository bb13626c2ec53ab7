//! S4a: durable writes. `--write-senders` sockets (pairs in a DM, both sending) offer a total of
//! R messages a second for `--write-seconds`, for each R of `--write-rates`, on fresh sockets.
//! Reported per step: messages acknowledged per second and the commit latency the sender sees
//! (`send` → `sent`; socket.io: → ack), which includes queueing for the writer, the
//! transaction and its fsync (`synchronous=FULL` on both servers). Natter commits every message
//! waiting into one transaction (group commit); the baseline inserts one row per transaction,
//! as a `stmt.run()` per message does. Steps stop after the first that cannot keep up.
//!
//! Throughput counts the acknowledgements that arrive while the senders are sending (plus
//! 100 ms): a server that falls behind acknowledges the rest later, in the 2 s drain, and
//! "acked by the end" shows those too. A step keeps up when at least 95 % came on time.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use super::{baseline_dm_room, fresh_tag};
use crate::cli::Args;
use crate::fleet::{Env, Fleet, MY_DM, Member, Opts, Phase};
use crate::procfs::{self, Delta};
use crate::proto::Target;
use crate::report::{Better, Latencies, Metrics, fmt, group};

struct Step {
    rate: f64,
    /// Acknowledged while the senders were sending (+100 ms).
    acked_per_s: f64,
    /// Acknowledged by the end of the drain, per second of sending.
    acked_all_per_s: f64,
    commit: Latencies,
    delivery: Latencies,
    lost: u64,
    delta: Delta,
    note: Option<String>,
}

async fn step(env: &Arc<Env>, a: &Args, rate: f64) -> Result<Step> {
    let n = a.write_senders;
    let run = Duration::from_secs(a.write_seconds);
    let every = Duration::from_secs_f64(n as f64 / rate);
    procfs::wait_quiet(env.pid, Duration::from_secs(60)).await?;
    let members: Vec<Member> = (0..n)
        .map(|i| {
            let dm = baseline_dm_room(i);
            let room = if env.target == Target::Natter {
                MY_DM
            } else {
                dm
            };
            let mut m = Member::new(i, room, vec![dm]);
            m.sends = vec![Phase::spread(Duration::ZERO, run, every, i)];
            m
        })
        .collect();
    let opts = Opts {
        tag: fresh_tag(),
        payload: a.payload,
        concurrency: a.connect_concurrency,
        wait_synced: true,
    };
    let fleet = Fleet::connect(env, members, opts).await?;
    if fleet.connected() < n {
        bail!(
            "{} of {n} sockets failed: {}",
            n - fleet.connected(),
            fleet.first_error().unwrap_or("")
        );
    }
    fleet.settle(100, Duration::from_secs(30)).await;
    let drain = Duration::from_secs(2);
    let s0 = procfs::sample(env.pid)?;
    let start = fleet.start(env, run, drain, None);
    tokio::time::sleep_until((start + run + drain).into()).await;
    let s1 = procfs::sample(env.pid)?;
    let outcome = fleet.finish().await?;
    let (refused, sample) = outcome.refused();
    let (closed, why) = outcome.readers_closed();
    let note = (refused + closed as u64 > 0).then(|| {
        format!(
            "{refused} refused ({}), {closed} sockets closed ({})",
            sample.unwrap_or("-"),
            why.unwrap_or("-")
        )
    });
    Ok(Step {
        rate,
        acked_per_s: outcome.acked_on_time() as f64 / run.as_secs_f64(),
        acked_all_per_s: outcome.acked() as f64 / run.as_secs_f64(),
        commit: Latencies::new(outcome.commit_latencies()),
        delivery: Latencies::new(outcome.latencies(0)),
        lost: outcome.lost(),
        delta: Delta::between(&s0, &s1),
        note,
    })
}

pub async fn run(env: &Arc<Env>, a: &Args) -> Result<Metrics> {
    println!("== S4a durable writes ({}) ==", env.target.name());
    println!(
        "{} senders in DM pairs, {} B bodies, {} s per step",
        a.write_senders, a.payload, a.write_seconds
    );
    println!(
        "| offered msgs/s | acked msgs/s while sending | acked by the end | commit p50 ms | commit p99 ms | commit max ms | delivery p99 ms | lost | server CPU | generator CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut at_10k = None;
    let mut best = None::<f64>;
    let mut m = Metrics::default();
    for &rate in &a.write_rates {
        let s = step(env, a, rate).await?;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {}% | {:.0}% |{}",
            group(rate as i64),
            group(s.acked_per_s as i64),
            group(s.acked_all_per_s as i64),
            fmt(s.commit.ms(0.5)),
            fmt(s.commit.ms(0.99)),
            fmt(s.commit.max_ms()),
            fmt(s.delivery.ms(0.99)),
            s.lost,
            fmt(s.delta.server_pct()),
            s.delta.generator_pct(),
            s.note.as_ref().map_or(String::new(), |n| format!(" {n}"))
        );
        let keeps_up = s.acked_per_s >= 0.95 * s.rate;
        if keeps_up {
            best = Some(best.map_or(s.acked_per_s, |b| b.max(s.acked_per_s)));
        }
        if (rate - 10_000.0).abs() < 1.0 {
            at_10k = Some((s.acked_per_s, s.commit.ms(0.99)));
        }
        if !keeps_up {
            if at_10k.is_none() && rate < 10_000.0 {
                // It cannot reach 10,000/s: report what it did at its limit.
                at_10k = Some((s.acked_per_s, s.commit.ms(0.99)));
            }
            println!(
                "(stopping: acknowledged {:.0} % of the offered rate)",
                100.0 * s.acked_per_s / s.rate
            );
            break;
        }
    }
    m.add(
        "s4.writes_at_10k_per_s",
        "S4a durable msgs/s acked on time at 10,000/s offered",
        "/s",
        at_10k.map(|x| x.0),
        Better::Higher,
    );
    m.add(
        "s4.commit_p99_at_10k_ms",
        "S4a commit p99 (send → ack) at 10,000/s offered",
        "ms",
        at_10k.and_then(|x| x.1),
        Better::Lower,
    );
    m.add(
        "s4.writes_best_per_s",
        "S4a highest step kept up with (≥ 95 % acked)",
        "/s",
        best,
        Better::Higher,
    );
    Ok(m)
}
