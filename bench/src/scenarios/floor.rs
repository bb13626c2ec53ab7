//! The machine's floor: what the kernel and the disk cost with no server at all, measured the
//! way the scenarios measure a server. Some budgets of issue 6 sit at or below what this machine
//! can do, and this is the measurement that says so (docs/perf.md, seventh and twelfth rounds).
//!
//! - **Network (S2's CPU per delivery).** One thread pinned to core 0, where the suite pins the
//!   server, does nothing but `write(2)` WebSocket-sized frames to S2's 1,000 loopback TCP
//!   sockets (`TCP_NODELAY`, as Natter's) at S2's 20,000 deliveries a second, each socket
//!   getting its share evenly spread, as S2's members do. The readers run on core 1, where the
//!   generator runs. Its CPU (`getrusage(RUSAGE_THREAD)`: user + system, which on this kernel's
//!   tick accounting includes the loopback receive path the kernel runs in the writer's
//!   softirq, as it does for a server) divided by the deliveries is the least a server can
//!   spend per delivery if it writes each frame when it is ready. Then the same deliveries
//!   with 2, 4, 8 and 16 frames per write: what batching would save, beside the wait it would
//!   add at S2's rate of 20 frames a second per socket.
//! - **Connections (S1's connect rate).** One thread on core 0 serves S1's 5,000 WebSocket
//!   connections one after another with tungstenite and nothing else: accept, the upgrade, read
//!   one frame, write one the size of Natter's `ready`. Its CPU per connection is what the
//!   kernel's TCP handshake and a WebSocket library cost before any authentication, database
//!   or presence: the least CPU a connect + auth can cost a server.
//! - **Broadcast (S3's broadcast p99).** The same thread writes one frame to each of S3's
//!   5,000 loopback sockets in turn, back to back, as a server on one core must when a message
//!   reaches a big room; readers on core 1 note when each frame arrives. The arrival p99 is the
//!   least a broadcast's p99 can be with one write per reader, before a server does anything of
//!   its own (S3's latency also holds the message's commit, which comes first).
//! - **Disk (S4a's commit p99).** One thread on core 0 writes 16 KiB (a group commit's WAL
//!   pages; the file is reused from its start every 4 MiB, as a WAL is) and `fdatasync`s, back
//!   to back, in the suite's work directory (the filesystem the servers' databases are on):
//!   the latency of a durable commit on this disk with nothing else running. Then again while
//!   a second thread writes 1 MiB to another file and `fdatasync`s it once a second, as a WAL
//!   checkpoint does; and again with what S4a's checkpoint writes at 10,000 messages a second
//!   (5 MiB of 4 KiB pages scattered over a 256 MiB file, in offset order). A commit cannot
//!   be acknowledged before its fsync returns, so when the fsync in progress at a random
//!   moment is slower than 10 ms for more than 1 % of the time, S4a's commit p99 budget is out
//!   of reach in that window. A group commit on one log (SQLite's WAL) is the closer model: a
//!   message that arrives during a commit waits for the rest of it, then for the commit that
//!   stores it. The same calls give that latency at S4a's 10,000 messages a second: from each
//!   arrival to the end of the first `fdatasync` that starts after it, with no CPU spent on
//!   the messages at all.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cli::Args;
use crate::report::{Better, Latencies, Metrics, fmt, group};

/// A `message` frame as Natter sends it in S2, with its 4-byte WebSocket header: a 200-byte
/// body and its envelope (`{"type":"message","message":{"id":…,"room_id":…,"seq":…,
/// "sender_id":…,"client_id":…,"body":…,"created_at":…,"rev":0}}`). Read off the wire: 348
/// bytes of JSON with every number 1; S2's ids, sequence numbers and rooms add ~16 digits.
const FRAME_BYTES: usize = 368;

/// The `ready` frame of the connect step: about what Natter answers an S1 user's `hello`
/// with (the user and two rooms).
const READY_BYTES: usize = 600;

/// Broadcasts in the S3 step.
const BROADCASTS: usize = 10;

/// Frames per write for the batching steps.
const BATCHES: &[usize] = &[1, 2, 4, 8, 16];

/// What a group commit writes to the WAL: a few 4 KiB pages.
const COMMIT_BYTES: usize = 16 * 1024;

/// Messages a second for the group commit floor: S4a's budget rate.
const GROUP_COMMIT_RATE: u64 = 10_000;

/// What runs beside the commits in a disk step, once a second: a checkpoint's copy into the
/// database file, then its `fdatasync`.
#[derive(Clone, Copy)]
enum Beside {
    Nothing,
    /// One contiguous write of this many bytes.
    Block(usize),
    /// This many bytes of 4 KiB pages at scattered offsets of a [`DB_FILE_BYTES`] file, in
    /// offset order, as a checkpoint copies a B-tree's pages back.
    Pages(usize),
}

impl Beside {
    fn label(self) -> String {
        match self {
            Beside::Nothing => "nothing".into(),
            Beside::Block(b) => format!("{} MiB written + fdatasync each second", b >> 20),
            Beside::Pages(b) => format!(
                "{} MiB of scattered 4 KiB pages + fdatasync each second (S4a's checkpoint at \
                 10,000/s)",
                b >> 20
            ),
        }
    }
}

/// The disk steps, in order.
const BESIDE: [Beside; 3] = [
    Beside::Nothing,
    Beside::Block(1024 * 1024),
    // Measured in S4a at 10,000 messages a second, thread by thread (`/proc/<pid>/task/*/io`):
    // the checkpoint thread writes 4.1-4.4 MiB a second into the database file, the writer's
    // own turns a little more (docs/perf.md, thirteenth round). The eighth round's 28 MiB was
    // the server's whole `write_bytes` less an estimate of the WAL's, and too high.
    Beside::Pages(5 * 1024 * 1024),
];

/// The database-like file the scattered pages go to.
const DB_FILE_BYTES: u64 = 256 * 1024 * 1024;
const PAGE: u64 = 4096;

/// Pins the calling thread to one core. On a machine without that core the thread runs
/// unpinned, with a note: the numbers then include sharing a core with the readers.
fn pin(core: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET only writes that local set.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        set
    };
    if let Err(e) = set_affinity(&set) {
        println!("note: could not pin a thread to core {core} ({e}): running it unpinned");
    }
}

/// Lets the calling thread run on `cores` only.
pub(crate) fn set_affinity(cores: &libc::cpu_set_t) -> Result<()> {
    // SAFETY: sched_setaffinity reads the set we pass by reference and changes only the
    // calling thread's (pid 0) affinity.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), cores) };
    if rc != 0 {
        bail!(
            "setting a thread's cores: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// CPU seconds (user, system) of the calling thread.
fn thread_cpu() -> (f64, f64) {
    // SAFETY: getrusage writes one rusage struct, which we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut ru);
        ru
    };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (s(ru.ru_utime), s(ru.ru_stime))
}

struct NetStep {
    batch: usize,
    deliveries: u64,
    user_us: f64,
    sys_us: f64,
    /// Deliveries per second actually written (the writer's own pace).
    rate: f64,
}

impl NetStep {
    fn per_delivery(&self) -> f64 {
        self.user_us + self.sys_us
    }
}

/// When each frame arrives, for the readers that note it: µs after the moment in `started`
/// (ns since `base`), which the writer sets as it starts a broadcast.
#[derive(Clone)]
struct Arrivals {
    base: Instant,
    started: Arc<AtomicU64>,
}

/// The readers' thread: the arrival times it noted, once every socket has closed.
type ReaderThread = std::thread::JoinHandle<Result<Vec<u64>>>;

/// `n` loopback TCP connections: the accepted ends (`TCP_NODELAY`, as Natter's) for the
/// calling thread to write, and a reader thread on core 1 (a current-thread runtime, one task
/// a socket) that counts the bytes that arrive in `received` until the written ends are
/// dropped. With `arrivals`, the readers also note each [`FRAME_BYTES`] frame's arrival; the
/// thread returns those times.
fn loopback(
    n: usize,
    received: &Arc<AtomicU64>,
    arrivals: Option<Arrivals>,
) -> Result<(Vec<TcpStream>, ReaderThread)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (connected, ready) = std::sync::mpsc::sync_channel::<Result<()>>(1);
    let received = received.clone();
    let reader = std::thread::spawn(move || -> Result<Vec<u64>> {
        pin(1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let mut tasks = Vec::with_capacity(n);
            for _ in 0..n {
                let mut s = match tokio::net::TcpStream::connect(addr).await {
                    Ok(s) => s,
                    Err(e) => {
                        connected.send(Err(e.into())).ok();
                        bail!("connecting failed");
                    }
                };
                let (received, arrivals) = (received.clone(), arrivals.clone());
                tasks.push(tokio::spawn(async move {
                    use tokio::io::AsyncReadExt as _;
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut times = Vec::new();
                    let mut partial = 0;
                    while let Ok(k) = s.read(&mut buf).await {
                        if k == 0 {
                            break;
                        }
                        if let Some(a) = &arrivals {
                            let now = a.base.elapsed().as_nanos() as u64;
                            partial += k;
                            while partial >= FRAME_BYTES {
                                partial -= FRAME_BYTES;
                                let from = a.started.load(Ordering::Acquire);
                                times.push(now.saturating_sub(from) / 1000);
                            }
                        }
                        received.fetch_add(k as u64, Ordering::Release);
                    }
                    times
                }));
            }
            connected.send(Ok(())).ok();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await?);
            }
            Ok(all)
        })
    });
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let (s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        streams.push(s);
    }
    ready.recv().context("the reader thread stopped")??;
    Ok((streams, reader))
}

/// The network steps: `sockets` receivers, `rate` deliveries a second, `seconds` per step.
fn net(sockets: usize, rate: f64, seconds: f64) -> Result<Vec<NetStep>> {
    pin(0);
    let received = Arc::new(AtomicU64::new(0));
    let (mut streams, reader) = loopback(sockets, &received, None)?;
    let frame = ws_frame(FRAME_BYTES);
    let mut steps = Vec::new();
    for &batch in BATCHES {
        let buf: Vec<u8> = frame.repeat(batch);
        let writes_per_s = rate / batch as f64;
        let before = received.load(Ordering::Relaxed);
        let (u0, s0) = thread_cpu();
        let t0 = Instant::now();
        let mut k: u64 = 0;
        loop {
            let elapsed = t0.elapsed().as_secs_f64();
            let due = ((elapsed.min(seconds)) * writes_per_s) as u64;
            while k < due {
                let s: &mut TcpStream = &mut streams[(k % sockets as u64) as usize];
                s.write_all(&buf)?;
                k += 1;
            }
            if elapsed >= seconds {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let (u1, s1) = thread_cpu();
        let took = t0.elapsed().as_secs_f64();
        // Everything written must arrive before the next step starts.
        let expected = before + k * buf.len() as u64;
        let wait = Instant::now();
        while received.load(Ordering::Relaxed) < expected {
            if wait.elapsed() > Duration::from_secs(10) {
                bail!("the readers did not receive every frame");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let deliveries = k * batch as u64;
        steps.push(NetStep {
            batch,
            deliveries,
            user_us: (u1 - u0) * 1e6 / deliveries as f64,
            sys_us: (s1 - s0) * 1e6 / deliveries as f64,
            rate: deliveries as f64 / took,
        });
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(streams);
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader thread panicked"))??;
    Ok(steps)
}

/// S3's floor: one frame to each of `sockets` sockets in turn, back to back, `rounds` times.
struct BroadcastStep {
    /// From the first write's start to each frame's arrival at its reader, µs.
    arrivals: Latencies,
    /// The writing thread's CPU per write (user + system, the loopback receive path included).
    cpu_us_per_write: f64,
    /// Wall time of one broadcast's writes, mean.
    writes_ms: f64,
}

/// S3's broadcast with nothing but the writes: one thread on core 0 writes one frame to each
/// of `sockets` loopback sockets in turn, `rounds` times (each after the last has arrived).
fn broadcast(sockets: usize, rounds: usize) -> Result<BroadcastStep> {
    pin(0);
    let base = Instant::now();
    let started = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let arrivals = Arrivals {
        base,
        started: started.clone(),
    };
    let (mut streams, reader) = loopback(sockets, &received, Some(arrivals))?;
    let frame = ws_frame(FRAME_BYTES);
    let (mut cpu, mut wall) = (0.0, 0.0);
    for _ in 0..rounds {
        std::thread::sleep(Duration::from_millis(200));
        let expected = received.load(Ordering::Acquire) + (sockets * frame.len()) as u64;
        let (u0, s0) = thread_cpu();
        let t0 = Instant::now();
        started.store(base.elapsed().as_nanos() as u64, Ordering::Release);
        for s in &mut streams {
            s.write_all(&frame)?;
        }
        wall += t0.elapsed().as_secs_f64();
        let (u1, s1) = thread_cpu();
        cpu += (u1 - u0) + (s1 - s0);
        let wait = Instant::now();
        while received.load(Ordering::Acquire) < expected {
            if wait.elapsed() > Duration::from_secs(10) {
                bail!("the readers did not receive every frame");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    drop(streams);
    let times = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader thread panicked"))??;
    let writes = (sockets * rounds) as f64;
    Ok(BroadcastStep {
        arrivals: Latencies::new(times),
        cpu_us_per_write: cpu * 1e6 / writes,
        writes_ms: wall * 1e3 / rounds as f64,
    })
}

/// S1's floor: WebSocket connections to a server that does nothing else.
struct ConnectStep {
    /// The serving thread's CPU per connection (user + system).
    cpu_us: f64,
    /// Connections a second it served (one at a time: this includes its waits for the peer).
    rate: f64,
}

/// Natter's socket buffers (`server/src/realtime/socket.rs`): tungstenite's default 128 KiB
/// read buffer is a fresh `mmap` per socket, zeroed page by page, which doubled what a
/// connection cost here.
fn small_buffers() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(4 * 1024)
}

/// Clients on core 1: `n` connections to `path`, `concurrency` at a time, each a WebSocket
/// handshake, one frame sent (the `hello`) and one read (the `ready`, or its echo); all kept
/// open until every one is done. Also S1's connections to Natter's echo route.
pub(crate) fn connecting_clients(
    addr: std::net::SocketAddr,
    path: &'static str,
    n: usize,
    concurrency: usize,
) -> Result<()> {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    pin(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let gate = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await?;
                let stream = tokio::net::TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                let (mut ws, _) = tokio_tungstenite::client_async_with_config(
                    format!("ws://{addr}{path}"),
                    stream,
                    Some(small_buffers()),
                )
                .await?;
                ws.send(Message::text(r#"{"type":"hello","resume":[]}"#))
                    .await?;
                match ws.next().await {
                    Some(Ok(_)) => Ok::<_, anyhow::Error>(ws),
                    _ => bail!("no answer to hello"),
                }
            }));
        }
        let mut open = Vec::with_capacity(n);
        for t in tasks {
            open.push(t.await??);
        }
        Ok(())
    })
}

/// One thread on core 0 serves `n` WebSocket connections one after another: accept, the
/// upgrade (tungstenite's), read one frame, write one [`READY_BYTES`] frame, keep the socket.
fn connections(n: usize, concurrency: usize) -> Result<ConnectStep> {
    use tokio_tungstenite::tungstenite::{self, Message};
    pin(0);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let clients = std::thread::spawn(move || connecting_clients(addr, "/ws", n, concurrency));
    let ready = "x".repeat(READY_BYTES);
    let mut kept = Vec::with_capacity(n);
    let (u0, s0) = thread_cpu();
    let t0 = Instant::now();
    // Not blocking on `accept`, so that clients that fail cannot leave this thread waiting.
    listener.set_nonblocking(true)?;
    while kept.len() < n {
        let s = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if clients.is_finished() {
                    break;
                }
                std::thread::sleep(Duration::from_micros(100));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        s.set_nonblocking(false)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut ws = tungstenite::accept_with_config(s, Some(small_buffers()))
            .map_err(|e| anyhow::anyhow!("the upgrade: {e}"))?;
        ws.read()?;
        ws.send(Message::text(ready.as_str()))?;
        kept.push(ws);
    }
    let took = t0.elapsed().as_secs_f64();
    let (u1, s1) = thread_cpu();
    clients
        .join()
        .map_err(|_| anyhow::anyhow!("the client thread panicked"))??;
    if kept.len() < n {
        bail!("{} of {n} connections were served", kept.len());
    }
    drop(kept);
    Ok(ConnectStep {
        cpu_us: ((u1 - u0) + (s1 - s0)) * 1e6 / n as f64,
        rate: n as f64 / took,
    })
}

/// A server-to-client WebSocket text frame (unmasked) of `total` bytes, header included.
fn ws_frame(total: usize) -> Vec<u8> {
    let len = total - 4;
    let mut f = vec![0x81, 126, (len >> 8) as u8, len as u8];
    f.extend(std::iter::repeat_n(b'x', len));
    f
}

struct DiskStep {
    commits: Latencies,
    per_s: f64,
    /// The p99 of the fdatasync in progress at a random moment: each call weighted by how long
    /// it took. This is what a commit arriving at a random time waits behind, and what a commit
    /// p99 over many messages sees: one 100 ms stall in a 5 s step holds up 2 % of the
    /// messages sent in that step, however few calls were slow.
    moment_p99_ms: f64,
    /// A group commit's latency at [`GROUP_COMMIT_RATE`] on this disk, p99 (see
    /// [`group_commit_p99`]).
    group_p99_ms: Option<f64>,
}

/// The duration `d` such that 1 % of the time was spent in calls longer than `d` (µs in,
/// ms out).
fn time_weighted_p99(times: &[u64]) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let total: u64 = sorted.iter().sum();
    let mut above = 0u64;
    for &t in sorted.iter().rev() {
        above += t;
        if above * 100 >= total {
            return t as f64 / 1000.0;
        }
    }
    0.0
}

/// The p99 latency of a group commit on one log, from its calls' `(start, end)` times (µs, in
/// order): messages arrive every `every_us`, and each is stored by the first commit that starts
/// after it arrives (one arriving during a commit waits for it to end, as with SQLite's WAL,
/// then for its own). Nothing else is counted: no CPU for the messages, no queueing for a core.
fn group_commit_p99(calls: &[(u64, u64)], every_us: u64) -> Option<f64> {
    let mut latencies = Vec::new();
    let mut next = 0;
    let mut t = calls.first()?.0;
    loop {
        while calls.get(next).is_some_and(|&(start, _)| start < t) {
            next += 1;
        }
        let Some(&(_, end)) = calls.get(next) else {
            break;
        };
        latencies.push(end - t);
        t += every_us.max(1);
    }
    Latencies::new(latencies).ms(0.99)
}

/// Appends and fdatasyncs a file in `dir` back to back for `seconds`, with `beside` running
/// beside it.
fn disk(dir: &Path, seconds: f64, beside: Beside) -> Result<DiskStep> {
    pin(0);
    let wal_path = dir.join(".floor-wal");
    let db_path = dir.join(".floor-db");
    let wal = std::fs::File::create(&wal_path)?;
    let db = std::fs::File::create(&db_path)?;
    if let Beside::Pages(_) = beside {
        // A database file that exists on disk, as Natter's does: overwritten, not allocated.
        let chunk = vec![5u8; 1 << 20];
        for i in 0..DB_FILE_BYTES >> 20 {
            db.write_all_at(&chunk, i << 20)?;
        }
        db.sync_all()?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let copier = (!matches!(beside, Beside::Nothing)).then(|| {
        let stop = stop.clone();
        std::thread::spawn(move || -> std::io::Result<()> {
            let block = vec![9u8; if let Beside::Block(b) = beside { b } else { 0 }];
            let page = vec![9u8; PAGE as usize];
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            let mut end = 0u64;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                match beside {
                    Beside::Nothing => {}
                    Beside::Block(_) => {
                        db.write_all_at(&block, end)?;
                        end += block.len() as u64;
                    }
                    Beside::Pages(bytes) => {
                        let mut offsets: Vec<u64> = (0..bytes as u64 / PAGE)
                            .map(|_| {
                                // xorshift64: scattered, and the same on every run.
                                seed ^= seed << 13;
                                seed ^= seed >> 7;
                                seed ^= seed << 17;
                                (seed % (DB_FILE_BYTES / PAGE)) * PAGE
                            })
                            .collect();
                        offsets.sort_unstable();
                        for at in offsets {
                            db.write_all_at(&page, at)?;
                        }
                    }
                }
                db.sync_data()?;
            }
            Ok(())
        })
    });
    let block = vec![7u8; COMMIT_BYTES];
    // Like a WAL, the file is rewritten from the start once it reaches 4 MiB.
    let wrap = 4 * 1024 * 1024 / COMMIT_BYTES as u64;
    let mut times = Vec::new();
    let mut calls = Vec::new();
    let t0 = Instant::now();
    let mut i = 0u64;
    while t0.elapsed().as_secs_f64() < seconds {
        let start = t0.elapsed().as_micros() as u64;
        wal.write_all_at(&block, (i % wrap) * COMMIT_BYTES as u64)?;
        wal.sync_data()?;
        let end = t0.elapsed().as_micros() as u64;
        times.push(end - start);
        calls.push((start, end));
        i += 1;
    }
    let took = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    if let Some(c) = copier {
        c.join()
            .map_err(|_| anyhow::anyhow!("checkpoint thread panicked"))??;
    }
    std::fs::remove_file(&wal_path).ok();
    std::fs::remove_file(&db_path).ok();
    Ok(DiskStep {
        per_s: times.len() as f64 / took,
        moment_p99_ms: time_weighted_p99(&times),
        group_p99_ms: group_commit_p99(&calls, 1_000_000 / GROUP_COMMIT_RATE),
        commits: Latencies::new(times),
    })
}

/// Runs both probes (each on threads of its own, pinned) and prints their tables.
pub fn run(a: &Args, dir: &Path) -> Result<Metrics> {
    let sockets = a.rooms * a.members;
    let rate = (a.rooms * a.members * a.members) as f64 * 1000.0 / a.interval_ms as f64;
    let seconds = a.floor_seconds;
    println!("== The machine's floor: no server, the kernel and the disk alone ==");
    println!(
        "network: one thread on core 0 writes {FRAME_BYTES}-byte frames to {sockets} loopback \
         sockets (readers on core 1), {} deliveries/s, {seconds} s per step",
        group(rate as i64)
    );
    let steps = std::thread::scope(|s| {
        s.spawn(|| net(sockets, rate, seconds as f64))
            .join()
            .map_err(|_| anyhow::anyhow!("the network probe panicked"))?
    })?;
    println!(
        "| frames per write | deliveries/s written | CPU per delivery µs (user + system) | \
         wait added per frame at {} frames/s per socket, mean / worst |",
        group((rate / sockets as f64) as i64)
    );
    println!("|---|---|---|---|");
    let per_socket = rate / sockets as f64;
    for st in &steps {
        // Holding frames until `batch` are ready: the first waits for batch-1 more.
        let worst = (st.batch - 1) as f64 * 1000.0 / per_socket;
        println!(
            "| {} | {} | {} ({} + {}) | {} / {} ms |",
            st.batch,
            group(st.rate as i64),
            fmt(Some(st.per_delivery())),
            fmt(Some(st.user_us)),
            fmt(Some(st.sys_us)),
            fmt(Some(worst / 2.0)),
            fmt(Some(worst)),
        );
    }
    let total: u64 = steps.iter().map(|s| s.deliveries).sum();
    println!(
        "({} deliveries in all, every byte received)",
        group(total as i64)
    );
    println!();

    let conns = a.connections;
    println!(
        "connections (S1): one thread on core 0 serves {} WebSocket connections, one at a time \
         (accept, upgrade, read a hello, write a {READY_BYTES}-byte frame), clients on core 1, \
         {} in flight",
        group(conns as i64),
        a.connect_concurrency
    );
    let cs = std::thread::scope(|s| {
        s.spawn(|| connections(conns, a.connect_concurrency))
            .join()
            .map_err(|_| anyhow::anyhow!("the connection probe panicked"))?
    })?;
    println!("| CPU per connection µs | connections/s served | connections/s if CPU-bound |");
    println!("|---|---|---|");
    println!(
        "| {} | {} | {} |",
        fmt(Some(cs.cpu_us)),
        group(cs.rate as i64),
        group((1e6 / cs.cpu_us.max(1e-9)) as i64)
    );
    println!();

    let big = a.big_room;
    println!(
        "broadcast (S3): one thread on core 0 writes one {FRAME_BYTES}-byte frame to each of {} \
         loopback sockets in turn (readers on core 1 note each arrival), {BROADCASTS} times",
        group(big as i64)
    );
    let bc = std::thread::scope(|s| {
        s.spawn(|| broadcast(big, BROADCASTS))
            .join()
            .map_err(|_| anyhow::anyhow!("the broadcast probe panicked"))?
    })?;
    println!(
        "| writes of one broadcast, ms | CPU per write µs | arrival p50 ms | p99 ms | max ms |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {} | {} |",
        fmt(Some(bc.writes_ms)),
        fmt(Some(bc.cpu_us_per_write)),
        fmt(bc.arrivals.ms(0.5)),
        fmt(bc.arrivals.ms(0.99)),
        fmt(bc.arrivals.max_ms()),
    );
    println!();

    println!(
        "disk: one thread on core 0 writes {} KiB and fdatasyncs, back to back, {seconds} s \
         per step, in {}",
        COMMIT_BYTES / 1024,
        dir.display()
    );
    println!(
        "| beside it | commits/s | fdatasync p50 ms | p99 ms | max ms | p99 of the call in progress at a random moment, ms | group commit at {}/s, latency p99 ms |",
        group(GROUP_COMMIT_RATE as i64)
    );
    println!("|---|---|---|---|---|---|---|");
    let mut disk_steps = Vec::new();
    for beside in BESIDE {
        let d = std::thread::scope(|s| {
            s.spawn(|| disk(dir, seconds as f64, beside))
                .join()
                .map_err(|_| anyhow::anyhow!("the disk probe panicked"))?
        })?;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            beside.label(),
            group(d.per_s as i64),
            fmt(d.commits.ms(0.5)),
            fmt(d.commits.ms(0.99)),
            fmt(d.commits.max_ms()),
            fmt(Some(d.moment_p99_ms)),
            fmt(d.group_p99_ms),
        );
        disk_steps.push(d);
    }

    let mut m = Metrics::default();
    let one = steps.iter().find(|s| s.batch == 1);
    m.add(
        "floor.cpu_us_per_delivery",
        "floor: kernel CPU per delivery, one write(2) per frame, no server (S2's budget: 3 µs)",
        "µs",
        one.map(NetStep::per_delivery),
        Better::Lower,
    );
    let to_3us = steps.iter().find(|s| s.per_delivery() <= 3.0);
    m.add(
        "floor.batch_for_3us",
        "floor: frames per write needed for 3 µs per delivery (none: not even at 16)",
        "",
        to_3us.map(|s| s.batch as f64),
        Better::Neither,
    );
    m.add(
        "floor.connect_cpu_us",
        "floor: server CPU per WebSocket connection (upgrade, one frame each way), no application (S1's budget: 200 µs, 5,000/s)",
        "µs",
        Some(cs.cpu_us),
        Better::Lower,
    );
    m.add(
        "floor.broadcast_p99_ms",
        "floor: S3's broadcast as one write(2) per socket, no server, arrival p99 (S3's budget: 100 ms, with the commit before it)",
        "ms",
        bc.arrivals.ms(0.99),
        Better::Lower,
    );
    m.add(
        "floor.broadcast_cpu_us_per_write",
        "floor: kernel CPU per write of that broadcast",
        "µs",
        Some(bc.cpu_us_per_write),
        Better::Lower,
    );
    m.add(
        "floor.fsync_p99_ms",
        "floor: fdatasync p99 per call, disk alone",
        "ms",
        disk_steps[0].commits.ms(0.99),
        Better::Lower,
    );
    m.add(
        "floor.fsync_moment_p99_ms",
        "floor: fdatasync in progress at a random moment, p99, disk alone (S4a's commit budget: 10 ms)",
        "ms",
        Some(disk_steps[0].moment_p99_ms),
        Better::Lower,
    );
    m.add(
        "floor.fsync_moment_p99_checkpoint_ms",
        "floor: the same beside a checkpoint-like writer (1 MiB/s)",
        "ms",
        Some(disk_steps[1].moment_p99_ms),
        Better::Lower,
    );
    m.add(
        "floor.fsync_moment_p99_s4a_checkpoint_ms",
        "floor: the same beside S4a's checkpoint at 10,000/s (5 MiB/s of scattered pages)",
        "ms",
        Some(disk_steps[2].moment_p99_ms),
        Better::Lower,
    );
    m.add(
        "floor.group_commit_p99_ms",
        "floor: a group commit's latency at 10,000 messages/s on one log, p99 (arrival to the end of the first fdatasync that starts after it), disk alone",
        "ms",
        disk_steps[0].group_p99_ms,
        Better::Lower,
    );
    m.add(
        "floor.group_commit_p99_s4a_checkpoint_ms",
        "floor: the same beside S4a's checkpoint at 10,000/s (S4a's commit budget: 10 ms)",
        "ms",
        disk_steps[2].group_p99_ms,
        Better::Lower,
    );
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_stall_weighs_by_its_length() {
        // 990 calls of 1 ms and one of 100 ms: the stall is 1 call in 991 but 9 % of the time.
        let mut t = vec![1000; 990];
        t.push(100_000);
        assert_eq!(time_weighted_p99(&t), 100.0);
        assert_eq!(time_weighted_p99(&vec![1000; 100]), 1.0);
    }

    #[test]
    fn a_group_commit_waits_for_the_commit_in_progress_then_its_own() {
        // Commits of 1 ms back to back: a message waits 1 to 2 ms.
        let steady: Vec<(u64, u64)> = (0..1000).map(|i| (i * 1000, (i + 1) * 1000)).collect();
        let p99 = group_commit_p99(&steady, 100).unwrap();
        assert!((1.8..=2.0).contains(&p99), "{p99}");
        // One 50 ms commit in 2,001: messages that arrive during it (2.4 % of them) wait for
        // the rest of it and for the next.
        let mut calls = Vec::new();
        let mut t = 0;
        for i in 0..2001 {
            let d = if i == 1000 { 50_000 } else { 1000 };
            calls.push((t, t + d));
            t += d;
        }
        let p99 = group_commit_p99(&calls, 100).unwrap();
        assert!((10.0..=51.0).contains(&p99), "{p99}");
        assert_eq!(group_commit_p99(&[], 100), None);
    }

    #[test]
    fn frames_have_the_length_their_header_gives() {
        let f = ws_frame(FRAME_BYTES);
        assert_eq!(f.len(), FRAME_BYTES);
        assert_eq!(usize::from(f[2]) << 8 | usize::from(f[3]), FRAME_BYTES - 4);
    }
}
