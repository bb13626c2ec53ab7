//! A fleet of client sockets, one task each, and the accounting every scenario shares.
//!
//! Life of a fleet: `connect` opens every socket (bounded concurrency, each from one of several
//! 127.0.0.x source addresses) and returns once all have said hello; from then on every socket
//! is read continuously (a socket nobody reads would be dropped by the server as a slow
//! consumer while the others are still connecting). `start` gives all tasks the same start
//! instant; each then sends on its schedule (open loop: a late send does not push the next one
//! back, so a slow server cannot slow the offered rate) and accounts for what arrives until the
//! shared deadline. `finish` collects the outcomes.
//!
//! Accounting: each `sent` (or socket.io ack) is an acknowledged, stored message of the
//! sender's room. Every reading member of that room must receive it exactly once: a missing
//! key is lost, a repeated key is duplicated. Latency is arrival minus the send time stamped in
//! the body (one process, one monotonic clock); commit latency is `send` → `sent`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;

use crate::api::Cred;
use crate::procfs;
use crate::proto::{self, Event, Target, Who};

/// Everything a scenario needs to reach the server under test.
pub struct Env {
    pub target: Target,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub addr: SocketAddr,
    pub pid: Option<u32>,
    pub http: reqwest::Client,
    /// The clock of every stamp and latency.
    pub clock: Instant,
    pub source_ips: u8,
    /// Natter users (index = user number); empty for the baseline, which has no accounts.
    pub users: Vec<Cred>,
}

impl Env {
    pub fn now_us(&self) -> u64 {
        self.clock.elapsed().as_micros() as u64
    }
}

/// Sends every `every` from `from` to `to` (relative to the start), first at `from + offset`.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    pub from: Duration,
    pub to: Duration,
    pub every: Duration,
    pub offset: Duration,
}

impl Phase {
    /// Spreads the first sends of many members evenly over one interval (golden-ratio
    /// sequence: any number of members lands evenly, without coordination).
    pub fn spread(from: Duration, to: Duration, every: Duration, member: usize) -> Self {
        let frac = (member as f64 * 0.618_033_988_75).fract();
        Self {
            from,
            to,
            every,
            offset: every.mul_f64(frac),
        }
    }
}

/// How a member treats its socket once the run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    Always,
    /// Stops reading and sends nothing: a frozen client.
    Silent,
    /// Stops reading but sends a keepalive frame every 5 s: alive, yet never drains its
    /// socket. Only a full outbox (not the heartbeat) can find it out.
    Keepalive,
}

/// `room` value meaning "my DM, from `ready`" (Natter; the baseline is told its rooms).
pub const MY_DM: i64 = -1;

#[derive(Debug, Clone)]
pub struct Member {
    /// User number: index into `Env::users` for Natter, the socket.io `user` for the baseline.
    pub user: usize,
    /// Rooms the baseline joins at connection time (Natter members are in their rooms already).
    pub join: Vec<i64>,
    /// The room whose deliveries it accounts for, and sends to unless `send_room` says else.
    pub room: i64,
    /// Where its sends go, when not `room` (S3: a DM), `MY_DM` for Natter's DM from `ready`.
    pub send_room: Option<i64>,
    pub sends: Vec<Phase>,
    /// Body size of its sends, when not the fleet's.
    pub payload: Option<usize>,
    pub reading: Reading,
    /// SO_RCVBUF for this socket, if not the kernel's default.
    pub rcvbuf: Option<u32>,
}

impl Member {
    pub fn new(user: usize, room: i64, join: Vec<i64>) -> Self {
        Self {
            user,
            join,
            room,
            send_room: None,
            sends: Vec::new(),
            payload: None,
            reading: Reading::Always,
            rcvbuf: None,
        }
    }
}

/// What one member saw.
#[derive(Debug, Default)]
pub struct MemberOutcome {
    pub room: i64,
    /// Where its sends went (its acks belong to that room).
    pub send_room: i64,
    pub reading: Option<Reading>,
    pub connected: bool,
    pub sent: u64,
    pub acked: Vec<u64>,
    /// Acks that arrived before the senders stopped (plus `ON_TIME`): what a server that
    /// keeps up acknowledges; one that falls behind acknowledges the rest in the drain.
    pub acked_on_time: u64,
    /// send → ack, µs.
    pub commit_us: Vec<u64>,
    /// Keys of this run's messages received in `room`.
    pub received: HashSet<u64>,
    pub duplicates: u64,
    /// Deliveries in `room`.
    pub deliveries: u64,
    /// This run's messages of other rooms (S3: the copy of one's own DM sends).
    pub other_deliveries: u64,
    /// Delivery latencies (µs) of messages sent before / after the run's split point.
    pub latency_us: [Vec<u64>; 2],
    pub refused: u64,
    pub refused_sample: Option<String>,
    /// Why the socket ended before the deadline, if it did.
    pub closed: Option<String>,
}

#[derive(Clone, Copy)]
struct Go {
    start: Instant,
    /// When the senders stop (the deadline adds the drain).
    run_end: Instant,
    deadline: Instant,
    /// Messages stamped at or after this (clock µs) count as the second part of the run.
    split_us: u64,
}

struct Opened {
    index: usize,
    result: std::result::Result<proto::Opened, String>,
    started: Instant,
    done: Instant,
}

pub struct Fleet {
    tasks: Vec<JoinHandle<MemberOutcome>>,
    go: watch::Sender<Option<Go>>,
    end: watch::Sender<bool>,
    cut: Arc<AtomicBool>,
    frames: Arc<AtomicU64>,
    /// Per member: its connection's timings and local address, or why it failed.
    pub opened: Vec<std::result::Result<proto::Opened, String>>,
    /// From the first connect to the last `ready`.
    pub connect_wall: Duration,
}

/// Settings of a fleet's connection phase and run.
#[derive(Debug, Clone, Copy)]
pub struct Opts {
    pub tag: u32,
    pub payload: usize,
    pub concurrency: usize,
    /// Natter: also wait for every room's `synced` before the socket counts as connected.
    pub wait_synced: bool,
}

impl Fleet {
    pub async fn connect(env: &Arc<Env>, members: Vec<Member>, opts: Opts) -> Result<Fleet> {
        let n = members.len();
        let sem = Arc::new(Semaphore::new(opts.concurrency.max(1)));
        let (tx, mut rx) = mpsc::channel::<Opened>(n.max(1));
        let (go, go_rx) = watch::channel(None);
        let (end, end_rx) = watch::channel(false);
        let cut = Arc::new(AtomicBool::new(false));
        let frames = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::with_capacity(n);
        for (index, member) in members.into_iter().enumerate() {
            let ctx = TaskCtx {
                env: env.clone(),
                index,
                opts,
                sem: sem.clone(),
                opened: tx.clone(),
                go: go_rx.clone(),
                end: end_rx.clone(),
                cut: cut.clone(),
                frames: frames.clone(),
            };
            tasks.push(tokio::spawn(member_task(ctx, member)));
        }
        drop(tx);
        let mut opened: Vec<std::result::Result<proto::Opened, String>> =
            (0..n).map(|_| Err("not connected".to_owned())).collect();
        let (mut first, mut last) = (None::<Instant>, None::<Instant>);
        for _ in 0..n {
            let o = timeout(Duration::from_secs(600), rx.recv())
                .await
                .context("connections did not complete in 10 minutes")?
                .context("a member task died")?;
            first = Some(first.map_or(o.started, |f: Instant| f.min(o.started)));
            if o.result.is_ok() {
                last = Some(last.map_or(o.done, |l: Instant| l.max(o.done)));
            }
            opened[o.index] = o.result;
        }
        let connect_wall = match (first, last) {
            (Some(f), Some(l)) => l.duration_since(f),
            _ => Duration::ZERO,
        };
        Ok(Fleet {
            tasks,
            go,
            end,
            cut,
            frames,
            opened,
            connect_wall,
        })
    }

    pub fn connected(&self) -> usize {
        self.opened.iter().filter(|o| o.is_ok()).count()
    }

    pub fn first_error(&self) -> Option<&str> {
        self.opened
            .iter()
            .find_map(|o| o.as_ref().err().map(String::as_str))
    }

    /// Per-connection `connect → ready` times (µs) of the sockets that connected.
    pub fn ready_times_us(&self) -> Vec<u64> {
        self.opened
            .iter()
            .filter_map(|o| o.as_ref().ok())
            .map(|o| o.to_ready.as_micros() as u64)
            .collect()
    }

    pub fn local_addrs(&self, which: impl Fn(usize) -> bool) -> Vec<SocketAddr> {
        self.opened
            .iter()
            .enumerate()
            .filter(|(i, _)| which(*i))
            .filter_map(|(_, o)| o.as_ref().ok().map(|o| o.local))
            .collect()
    }

    /// Frames received by the whole fleet so far.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Waits until fewer than `quiet_per_s` frames a second arrive (what connecting set off,
    /// such as presence announcements, has been delivered), at most `max`. Returns the wait.
    pub async fn settle(&self, quiet_per_s: u64, max: Duration) -> Duration {
        let t = Instant::now();
        let mut last = self.frames();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = self.frames();
            if (now - last) * 2 < quiet_per_s || t.elapsed() > max {
                return t.elapsed();
            }
            last = now;
        }
    }

    /// Starts the run in 50 ms; every member stops at `run + drain`. Messages stamped after
    /// `split` (from the start) are accounted separately. Returns the start instant.
    pub fn start(
        &self,
        env: &Env,
        run: Duration,
        drain: Duration,
        split: Option<Duration>,
    ) -> Instant {
        let start = Instant::now() + Duration::from_millis(50);
        let start_us = start.duration_since(env.clock).as_micros() as u64;
        self.go.send_replace(Some(Go {
            start,
            run_end: start + run,
            deadline: start + run + drain,
            split_us: split.map_or(u64::MAX, |s| start_us + s.as_micros() as u64),
        }));
        start
    }

    /// Stops all sending now (the scenario has seen what it waited for).
    pub fn cut(&self) {
        self.cut.store(true, Ordering::Relaxed);
    }

    /// Ends the run `drain` after now (senders stop at once).
    pub fn end_now(&self) {
        self.cut();
        self.end.send_replace(true);
    }

    pub async fn finish(self) -> Result<Outcome> {
        let mut members = Vec::with_capacity(self.tasks.len());
        for t in self.tasks {
            members.push(t.await.context("member task panicked")?);
        }
        Ok(Outcome { members })
    }

    /// Drops every socket without running (S1).
    pub fn abort(self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

struct TaskCtx {
    env: Arc<Env>,
    index: usize,
    opts: Opts,
    sem: Arc<Semaphore>,
    opened: mpsc::Sender<Opened>,
    go: watch::Receiver<Option<Go>>,
    end: watch::Receiver<bool>,
    cut: Arc<AtomicBool>,
    frames: Arc<AtomicU64>,
}

const KEEPALIVE_EVERY: Duration = Duration::from_secs(5);
const END_DRAIN: Duration = Duration::from_secs(2);
/// Grace after the last send for an ack to count as on time.
const ON_TIME: Duration = Duration::from_millis(100);

async fn member_task(mut ctx: TaskCtx, member: Member) -> MemberOutcome {
    let env = ctx.env.clone();
    let mut out = MemberOutcome {
        room: member.room,
        reading: Some(member.reading),
        ..MemberOutcome::default()
    };
    let started = Instant::now();
    let opened = {
        let _permit = ctx.sem.clone().acquire_owned().await;
        let token = env.users.get(member.user).map_or("", |c| c.token.as_str());
        let who = Who {
            token,
            user: member.user,
            rooms: &member.join,
        };
        let source = procfs::source_ip(ctx.index, env.source_ips);
        timeout(
            Duration::from_secs(120),
            proto::open(
                env.target,
                env.addr,
                source,
                member.rcvbuf,
                who,
                ctx.opts.wait_synced,
            ),
        )
        .await
        .map_err(|_| "timed out".to_owned())
        .and_then(|r| r.map_err(|e| format!("{e:#}")))
    };
    let (mut ws, rooms) = match opened {
        Ok((ws, o, rooms)) => {
            let report = Opened {
                index: ctx.index,
                result: Ok(o),
                started,
                done: Instant::now(),
            };
            ctx.opened.send(report).await.ok();
            (ws, rooms)
        }
        Err(e) => {
            let report = Opened {
                index: ctx.index,
                result: Err(e.clone()),
                started,
                done: Instant::now(),
            };
            ctx.opened.send(report).await.ok();
            out.closed = Some(e);
            return out;
        }
    };
    out.connected = true;
    let dm = rooms.iter().find(|r| r.kind == "dm").map_or(0, |r| r.id);
    if out.room == MY_DM {
        out.room = dm;
    }
    out.send_room = match member.send_room {
        Some(MY_DM) => dm,
        Some(r) => r,
        None => out.room,
    };
    let payload = member.payload.unwrap_or(ctx.opts.payload);
    let target = env.target;

    // Until the run starts: read everything (and answer engine.io pings).
    let go = loop {
        tokio::select! {
            changed = ctx.go.changed() => {
                if changed.is_err() {
                    return out;
                }
                if let Some(go) = *ctx.go.borrow() {
                    break go;
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    ctx.frames.fetch_add(1, Ordering::Relaxed);
                    if target == Target::Baseline && t.as_str() == "2" {
                        ws.send(Message::Text("3".into())).await.ok();
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    out.closed = Some(format!("before the run: {e}"));
                    return out;
                }
                None => {
                    out.closed = Some("before the run: ended".into());
                    return out;
                }
            },
        }
    };

    let me = ctx.index as u32;
    let tag = ctx.opts.tag;
    let reading = member.reading == Reading::Always;
    let mut deadline = go.deadline;
    let mut phases = member.sends.iter();
    let mut phase = phases.next().copied();
    let mut next_send = phase.map(|p| go.start + p.from + p.offset);
    let mut n: u32 = 0;
    let mut sent_at: Vec<u64> = Vec::new();
    let mut keepalive_at =
        (member.reading == Reading::Keepalive).then(|| go.start + KEEPALIVE_EVERY);
    let far = go.deadline + Duration::from_secs(3600);
    sleep_until(go.start.into()).await;
    loop {
        tokio::select! {
            biased;
            _ = ctx.end.changed() => {
                next_send = None;
                deadline = deadline.min(Instant::now() + END_DRAIN);
            }
            () = sleep_until(deadline.into()) => break,
            msg = ws.next(), if reading => match msg {
                None => {
                    out.closed.get_or_insert_with(|| "ended".into());
                    break;
                }
                Some(Err(e)) => {
                    out.closed.get_or_insert_with(|| e.to_string());
                    break;
                }
                Some(Ok(Message::Close(c))) => {
                    out.closed = Some(format!("closed by the server: {c:?}"));
                }
                Some(Ok(Message::Text(t))) => {
                    ctx.frames.fetch_add(1, Ordering::Relaxed);
                    let now = env.now_us();
                    match target.decode(t.as_str(), me, tag, now) {
                        Event::Message { key, room, latency_us } if room == out.room => {
                            out.deliveries += 1;
                            if !out.received.insert(key) {
                                out.duplicates += 1;
                            }
                            let stamp = now.saturating_sub(latency_us);
                            out.latency_us[usize::from(stamp >= go.split_us)].push(latency_us);
                        }
                        Event::Message { .. } => out.other_deliveries += 1,
                        Event::Sent { key } => {
                            out.acked.push(key);
                            if Instant::now() <= go.run_end + ON_TIME {
                                out.acked_on_time += 1;
                            }
                            if let Some(&at) = sent_at.get((key & 0xffff_ffff) as usize) {
                                out.commit_us.push(now.saturating_sub(at));
                            }
                        }
                        Event::Refused(text) => {
                            out.refused += 1;
                            out.refused_sample.get_or_insert(text);
                        }
                        Event::Ping => {
                            ws.send(Message::Text("3".into())).await.ok();
                        }
                        Event::Other => {}
                    }
                }
                Some(Ok(_)) => {}
            },
            () = sleep_until(next_send.unwrap_or(far).into()), if next_send.is_some() => {
                let Some(p) = phase else { next_send = None; continue };
                if ctx.cut.load(Ordering::Relaxed) {
                    next_send = None;
                    continue;
                }
                let stamp = env.now_us();
                let body = proto::body(stamp, payload);
                let frame = target.send_frame(out.send_room, tag, me, n, &body);
                if let Err(e) = ws.send(Message::Text(frame.into())).await {
                    out.closed.get_or_insert_with(|| format!("send failed: {e}"));
                    break;
                }
                sent_at.push(stamp);
                n += 1;
                out.sent += 1;
                // Open loop: the next send is due one interval after the previous due time.
                let mut due = next_send.unwrap_or(far) + p.every;
                if due >= go.start + p.to {
                    phase = phases.next().copied();
                    due = phase.map_or(far, |q| go.start + q.from + q.offset);
                }
                next_send = phase.map(|_| due);
            }
            () = sleep_until(keepalive_at.unwrap_or(far).into()), if keepalive_at.is_some() => {
                if ws.send(Message::Text(target.keepalive_frame().into())).await.is_err() {
                    keepalive_at = None;
                } else {
                    keepalive_at = keepalive_at.map(|t| t + KEEPALIVE_EVERY);
                }
            }
        }
    }
    // A non-reader's socket is simply dropped: it never read, it will not start now.
    if reading {
        timeout(Duration::from_secs(1), ws.close(None)).await.ok();
    }
    out
}

/// Everything the fleet saw, with the accounting across members.
pub struct Outcome {
    pub members: Vec<MemberOutcome>,
}

impl Outcome {
    pub fn sent(&self) -> u64 {
        self.members.iter().map(|m| m.sent).sum()
    }

    pub fn acked(&self) -> u64 {
        self.members.iter().map(|m| m.acked.len() as u64).sum()
    }

    pub fn acked_on_time(&self) -> u64 {
        self.members.iter().map(|m| m.acked_on_time).sum()
    }

    pub fn deliveries(&self) -> u64 {
        self.members.iter().map(|m| m.deliveries).sum()
    }

    /// Acknowledged messages that a connected, reading member of their room never received.
    pub fn lost(&self) -> u64 {
        let mut acked: HashMap<i64, HashSet<u64>> = HashMap::new();
        for m in &self.members {
            acked
                .entry(m.send_room)
                .or_default()
                .extend(m.acked.iter().copied());
        }
        self.readers()
            .map(|m| {
                acked.get(&m.room).map_or(0, |keys| {
                    keys.iter().filter(|k| !m.received.contains(k)).count()
                }) as u64
            })
            .sum()
    }

    /// Deliveries the readers should have had: acked messages x reading members of the room.
    pub fn expected(&self) -> u64 {
        let mut acked: HashMap<i64, u64> = HashMap::new();
        for m in &self.members {
            *acked.entry(m.send_room).or_default() += m.acked.len() as u64;
        }
        self.readers()
            .map(|m| acked.get(&m.room).copied().unwrap_or(0))
            .sum()
    }

    pub fn duplicated(&self) -> u64 {
        self.members.iter().map(|m| m.duplicates).sum()
    }

    fn readers(&self) -> impl Iterator<Item = &MemberOutcome> {
        self.members
            .iter()
            .filter(|m| m.connected && m.reading == Some(Reading::Always))
    }

    pub fn latencies(&self, part: usize) -> Vec<u64> {
        self.members
            .iter()
            .flat_map(|m| m.latency_us[part].iter().copied())
            .collect()
    }

    pub fn commit_latencies(&self) -> Vec<u64> {
        self.members
            .iter()
            .flat_map(|m| m.commit_us.iter().copied())
            .collect()
    }

    pub fn refused(&self) -> (u64, Option<&str>) {
        (
            self.members.iter().map(|m| m.refused).sum(),
            self.members
                .iter()
                .find_map(|m| m.refused_sample.as_deref()),
        )
    }

    /// Reading members whose socket ended before the deadline, with one reason.
    pub fn readers_closed(&self) -> (usize, Option<&str>) {
        let closed: Vec<&MemberOutcome> = self.readers().filter(|m| m.closed.is_some()).collect();
        (
            closed.len(),
            closed.first().and_then(|m| m.closed.as_deref()),
        )
    }
}
