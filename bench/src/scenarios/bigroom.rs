//! S3: one big room (`--big-room` members, 5,000 by default) at 1 message a second, with
//! `--nonreaders-pct` of the members that stop reading their socket when the run starts.
//!
//! Two kinds of non-reader, half each: *silent* ones (a frozen tab: nothing read, nothing
//! sent), which only a heartbeat can find out, and *keepalive* ones that still send a harmless
//! frame every 5 s (Natter `visibility`; engine.io pong) but never read, which only a bounded
//! outbox can find out: Natter closes a socket whose 1,024-frame outbox is full (4008). Before
//! the outbox fills, the kernel's socket buffers take megabytes (measured: 0.8 MB queued after
//! a minute of 50 small messages a second), so at 1 message a second that takes hours. To see
//! it within a benchmark, after `--s3-seconds` each keepalive non-reader's DM partner sends
//! `--flood-rate` messages a second of `--flood-payload` bytes into their DM (the big room
//! goes on at 1/s), for up to `--flood-seconds` or until the server has dropped every
//! non-reader. Flooding the big room instead would multiply every message by 5,000 readers on
//! a generator that has one core.
//!
//! The generator cannot see a close on a socket it does not read; the kernel can: the server's
//! end of each non-reader's connection is watched in /proc/net/tcp every second, and a
//! connection the server no longer holds ESTABLISHED counts as evicted at that time. Broadcast
//! latency is measured at the readers; server RSS is sampled every second (memory flat?).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::{baseline_dm_room, fresh_tag, make_rooms, mib};
use crate::cli::Args;
use crate::fleet::{Env, Fleet, MY_DM, Member, Opts, Phase, Reading};
use crate::procfs::{self, Delta};
use crate::proto::Target;
use crate::report::{Better, Latencies, Metrics, fmt, group};

pub const BASELINE_ROOM: i64 = 300_000;
/// Senders (readers) taking turns; each stays far below Natter's default 10 frames/s.
const SENDERS: usize = 10;

pub async fn run(env: &Arc<Env>, a: &Args) -> Result<Metrics> {
    let n = a.big_room;
    println!("== S3 one big room ({}) ==", env.target.name());
    let t_setup = Instant::now();
    let room = make_rooms(env, "big room", 1, n, 0, BASELINE_ROOM)
        .await?
        .remove(0);
    let setup_s = t_setup.elapsed().as_secs_f64();
    let stride = (100.0 / a.nonreaders_pct.max(0.01)).round().max(2.0) as usize;
    let phase_a = Duration::from_secs(a.s3_seconds);
    let flood = Duration::from_secs(a.flood_seconds);
    let run = phase_a + flood;
    let mut kinds = vec![Reading::Always; n];
    let mut nonreaders = 0;
    for (i, kind) in kinds.iter_mut().enumerate() {
        if i % stride == stride / 2 {
            *kind = if nonreaders % 2 == 0 {
                Reading::Silent
            } else {
                Reading::Keepalive
            };
            nonreaders += 1;
        }
    }
    // Users are numbered 0..n in the room, so user i's DM partner (i ^ 1) is member i ^ 1.
    let flooders: Vec<usize> = (0..n)
        .filter(|&i| {
            kinds[i] == Reading::Keepalive && (i ^ 1) < n && kinds[i ^ 1] == Reading::Always
        })
        .map(|i| i ^ 1)
        .collect();
    let mut senders = Vec::new();
    let mut members = Vec::with_capacity(n);
    for (i, &u) in room.users.iter().enumerate() {
        let mut m = Member::new(u, room.id, vec![room.id]);
        m.reading = kinds[i];
        let dm = baseline_dm_room(u);
        if kinds[i] == Reading::Keepalive {
            m.join.push(dm);
        } else if flooders.contains(&i) {
            m.join.push(dm);
            m.send_room = Some(if env.target == Target::Natter {
                MY_DM
            } else {
                dm
            });
            m.payload = Some(a.flood_payload);
            let every = Duration::from_secs_f64(1.0 / a.flood_rate.max(0.01));
            m.sends = vec![Phase::spread(phase_a, run, every, i)];
        } else if kinds[i] == Reading::Always && senders.len() < SENDERS && i % 7 == 1 {
            let k = senders.len() as u32;
            let every = Duration::from_secs(SENDERS as u64);
            m.sends = vec![Phase {
                from: Duration::ZERO,
                to: run,
                every,
                offset: Duration::from_secs(1) * k,
            }];
            senders.push(i);
        }
        members.push(m);
    }
    println!(
        "members: {} ({} reading, {} silent and {} keepalive non-readers); {} senders take turns",
        group(n as i64),
        group((n - nonreaders) as i64),
        kinds.iter().filter(|k| **k == Reading::Silent).count(),
        kinds.iter().filter(|k| **k == Reading::Keepalive).count(),
        senders.len()
    );
    let opts = Opts {
        tag: fresh_tag(),
        payload: a.payload,
        concurrency: a.connect_concurrency,
        wait_synced: true,
    };
    let t_connect = Instant::now();
    let fleet = Fleet::connect(env, members, opts).await?;
    let connect_s = t_connect.elapsed().as_secs_f64();
    let frames_connect = fleet.frames();
    let settle = fleet.settle(200, Duration::from_secs(120)).await;
    if fleet.connected() < n {
        bail!(
            "{} of {n} sockets failed: {}",
            n - fleet.connected(),
            fleet.first_error().unwrap_or("")
        );
    }
    println!(
        "setup: room in {setup_s:.1} s; {} sockets connected in {connect_s:.1} s, {} frames received while connecting (presence, catch-up), settled after {:.1} s",
        group(n as i64),
        group(frames_connect as i64),
        settle.as_secs_f64()
    );

    let watched = fleet.local_addrs(|i| kinds[i] != Reading::Always);
    let watched_kind: Vec<Reading> = (0..n)
        .filter(|&i| kinds[i] != Reading::Always)
        .map(|i| kinds[i])
        .collect();
    let s0 = procfs::sample(env.pid)?;
    let rss0 = s0.server.map(|u| u.rss);
    let start = fleet.start(env, run, Duration::from_secs(2), Some(phase_a));
    // The 1/s phase's memory and CPU are read just before the flood begins: the once-a-second
    // loop below reaches `phase_a` up to a second late, when the flood's first second (2,500
    // messages of 3.8 KB) is already in the outboxes, and that was counted as the 1/s phase's
    // growth until the tenth round (docs/perf.md).
    let pid = env.pid;
    let before_flood = start + phase_a.saturating_sub(Duration::from_millis(250));
    let end_a = tokio::spawn(async move {
        tokio::time::sleep_until(before_flood.into()).await;
        Ok::<_, anyhow::Error>((pid.map(procfs::rss).transpose()?, procfs::sample(pid)?))
    });
    let mut evicted_at: Vec<Option<f64>> = vec![None; watched.len()];
    let mut rss_max = rss0;
    let mut skipped_flood = false;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = start.elapsed();
        let closed = procfs::server_closed(env.addr, &watched)?;
        for (k, addr) in watched.iter().enumerate() {
            if evicted_at[k].is_none() && closed.contains(addr) {
                evicted_at[k] = Some(t.as_secs_f64());
            }
        }
        let rss = env.pid.map(procfs::rss).transpose()?;
        rss_max = rss_max.max(rss);
        // The 1/s phase always runs to its end; the flood only as long as a non-reader is left.
        if t >= phase_a && evicted_at.iter().all(Option::is_some) {
            skipped_flood = t < phase_a + Duration::from_secs(2);
            fleet.end_now();
            break;
        }
        if t >= run {
            break;
        }
    }
    let ended = start.elapsed();
    let (rss_end_a, sample_a) = end_a.await??;
    let s_end = procfs::sample(env.pid)?;
    let outcome = fleet.finish().await?;
    let rss_end = env.pid.map(procfs::rss).transpose()?;

    let lat_a = Latencies::new(outcome.latencies(0));
    let lat_f = Latencies::new(outcome.latencies(1));
    let (closed_readers, why) = outcome.readers_closed();
    let cpu = |d: Delta| {
        format!(
            "server CPU {}%, generator {:.0}%",
            fmt(d.server_pct()),
            d.generator_pct()
        )
    };
    let d_a = Delta::between(&s0, &sample_a);
    println!(
        "1 message/s for {} s: readers got {} deliveries: {} ({})",
        a.s3_seconds,
        group(lat_a.len() as i64),
        lat_a.summary(),
        cpu(d_a)
    );
    if !skipped_flood && lat_f.len() > 0 {
        println!(
            "then {:.0} s with {} messages/s of {} B into each keepalive non-reader's DM: room deliveries {} ({})",
            ended.saturating_sub(phase_a).as_secs_f64(),
            a.flood_rate,
            a.flood_payload,
            lat_f.summary(),
            cpu(Delta::between(&sample_a, &s_end))
        );
    }
    println!(
        "lost / duplicated (readers): {} / {}; readers closed early: {}{}",
        outcome.lost(),
        outcome.duplicated(),
        closed_readers,
        why.map_or(String::new(), |w| format!(" ({w})"))
    );
    let describe = |kind: Reading| {
        let times: Vec<f64> = watched_kind
            .iter()
            .zip(&evicted_at)
            .filter(|(k, _)| **k == kind)
            .filter_map(|(_, e)| *e)
            .collect();
        let total = watched_kind.iter().filter(|k| **k == kind).count();
        let span = if times.is_empty() {
            String::new()
        } else {
            let lo = times.iter().copied().fold(f64::MAX, f64::min);
            let hi = times.iter().copied().fold(0.0, f64::max);
            format!(", after {lo:.0}-{hi:.0} s")
        };
        (
            times.len(),
            total,
            span,
            times.iter().copied().fold(0.0, f64::max),
        )
    };
    let (sil, sil_total, sil_span, sil_max) = describe(Reading::Silent);
    let (kee, kee_total, kee_span, kee_max) = describe(Reading::Keepalive);
    println!(
        "non-readers closed by the server: silent {sil} of {sil_total}{sil_span}; keepalive {kee} of {kee_total}{kee_span} (flood from {} s)",
        a.s3_seconds
    );
    let growth = rss0.zip(rss_end_a).map(|(s, e)| mib(e) - mib(s));
    println!(
        "server RSS: {} MiB at the start, {} MiB after the 1/s phase, {} MiB at most, {} MiB at the end",
        fmt(rss0.map(mib)),
        fmt(rss_end_a.map(mib)),
        fmt(rss_max.map(mib)),
        fmt(rss_end.map(mib))
    );
    let kept = (sil_total - sil) + (kee_total - kee);
    let mut m = Metrics::default();
    m.add(
        "s3.connect_s",
        "S3 time to connect all members",
        "s",
        Some(connect_s),
        Better::Lower,
    );
    m.add(
        "s3.p50_ms",
        "S3 broadcast latency to readers p50 (1 msg/s)",
        "ms",
        lat_a.ms(0.5),
        Better::Lower,
    );
    m.add(
        "s3.p99_ms",
        "S3 broadcast latency to readers p99 (1 msg/s)",
        "ms",
        lat_a.ms(0.99),
        Better::Lower,
    );
    m.add(
        "s3.flood_p99_ms",
        "S3 broadcast p99 during the flood",
        "ms",
        if skipped_flood { None } else { lat_f.ms(0.99) },
        Better::Lower,
    );
    m.add(
        "s3.lost",
        "S3 lost / duplicated deliveries to readers",
        "",
        Some((outcome.lost() + outcome.duplicated()) as f64),
        Better::Neither,
    );
    m.add(
        "s3.nonreaders_kept",
        "S3 non-readers still connected at the end",
        "",
        Some(kept as f64),
        Better::Neither,
    );
    m.add(
        "s3.silent_evicted_s",
        "S3 silent non-readers dropped after",
        "s",
        (sil == sil_total && sil > 0).then_some(sil_max),
        Better::Lower,
    );
    m.add(
        "s3.keepalive_evicted_s",
        "S3 keepalive non-readers dropped after",
        "s",
        (kee == kee_total && kee > 0).then_some(kee_max),
        Better::Lower,
    );
    m.add(
        "s3.rss_start_mib",
        "S3 server RSS with all members connected",
        "MiB",
        rss0.map(mib),
        Better::Lower,
    );
    m.add(
        "s3.rss_growth_mib",
        "S3 server RSS growth over the 1 msg/s phase",
        "MiB",
        growth,
        Better::Lower,
    );
    m.add(
        "s3.rss_max_mib",
        "S3 server RSS, most (incl. the DM flood)",
        "MiB",
        rss_max.map(mib),
        Better::Lower,
    );
    if env.target == Target::Baseline && kee < kee_total {
        println!(
            "(socket.io has no outbox bound: what keepalive non-readers do not read stays buffered in the server)"
        );
    }
    Ok(m)
}
