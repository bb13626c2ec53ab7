//! `make bench`: every scenario against Natter and against the Node baseline, interleaved (for
//! each scenario, one server then the other, the order alternating from scenario to scenario,
//! so slow drift on a shared machine does not favour one side), each on a freshly started
//! server pinned to core 0 while this generator runs pinned to core 1 (bench/run.sh). Then the
//! comparison table with the issue's budgets.
//!
//! Fixtures are built once and kept under `--work-dir` (target/bench): the Natter users (sign-up
//! costs argon2 time by design), and the two 10-million-message databases, which are written
//! straight into SQLite with the `sqlite3` CLI (through the API it would take hours). Their
//! names carry a hash of what they depend on (the migrations, the password hashing parameters
//! for the users, the baseline's server.js), so a schema change builds them again. Every run gets
//! a copy of the users fixture; the history databases are only read and are used in place.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::api::{self, Cred};
use crate::cli::{Args, Scenario};
use crate::fleet::Env;
use crate::proto::Target;
use crate::report::{self, Better, Metrics, median};
use crate::scenarios::{self, seed};

const ORDER: &[Scenario] = &[
    Scenario::Floor,
    Scenario::Idle,
    Scenario::Fanout,
    Scenario::BigRoom,
    Scenario::Writes,
    Scenario::History,
    Scenario::Storm,
    Scenario::Client,
];

pub async fn run(a: &Args) -> Result<()> {
    let t0 = Instant::now();
    let work = PathBuf::from(&a.work_dir);
    std::fs::create_dir_all(work.join("fixtures"))?;
    std::fs::create_dir_all(work.join("results"))?;
    let scenarios: Vec<Scenario> = if a.only.is_empty() {
        ORDER.to_vec()
    } else {
        ORDER
            .iter()
            .copied()
            .filter(|s| a.only.contains(s))
            .collect()
    };
    let mut a = a.clone();
    if a.pin && (available_cores_total() < 2 || which("taskset").is_none()) {
        println!("note: fewer than 2 cores or no taskset: servers run unpinned");
        a.pin = false;
    }
    let header = machine_header(&a);
    print!("{header}");

    let needs_users = scenarios.iter().any(|s| {
        matches!(
            s,
            Scenario::Idle
                | Scenario::Fanout
                | Scenario::BigRoom
                | Scenario::Writes
                | Scenario::Storm
        )
    });
    let users_needed = a
        .connections
        .max(a.big_room)
        .max(a.rooms * a.members + 200)
        .max(a.write_senders);
    let users = if needs_users {
        users_fixture(&a, &work, users_needed).await?
    } else {
        Fixture::default()
    };
    let history = if scenarios.contains(&Scenario::History) {
        Some((
            history_fixture(&a, &work, Target::Natter).await?,
            history_fixture(&a, &work, Target::Baseline).await?,
        ))
    } else {
        None
    };

    let mut rounds: Vec<(Metrics, Metrics)> = Vec::new();
    for round in 0..a.rounds.max(1) {
        let (mut nat, mut base) = (Metrics::default(), Metrics::default());
        for (k, &sc) in scenarios.iter().enumerate() {
            if sc == Scenario::Floor {
                let dir = work.join("floor");
                std::fs::create_dir_all(&dir)?;
                match tokio::task::block_in_place(|| scenarios::floor::run(&a, &dir)) {
                    Ok(m) => nat.extend(m),
                    Err(e) => println!("!! the machine's floor: failed: {e:#}"),
                }
                println!();
                continue;
            }
            if sc == Scenario::Client {
                nat.extend(scenarios::client::run(&a.site)?);
                println!();
                match client_tti(&a, &work).await {
                    Ok(m) => nat.extend(m),
                    Err(e) => println!("!! client time to interactive: failed: {e:#}"),
                }
                println!();
                continue;
            }
            let targets = if (k + round) % 2 == 0 {
                [Target::Natter, Target::Baseline]
            } else {
                [Target::Baseline, Target::Natter]
            };
            for target in targets {
                if sc == Scenario::Storm && target == Target::Baseline {
                    println!("== S4c login storm (baseline): not applicable, no accounts ==\n");
                    continue;
                }
                let (fixture, in_place) = match (sc, target, &history) {
                    (Scenario::History, Target::Natter, Some((n, _))) => (n, true),
                    (Scenario::History, Target::Baseline, Some((_, b))) => (b, true),
                    _ => (&users, false),
                };
                match one(&a, &work, sc, target, fixture, in_place).await {
                    Ok(m) => {
                        if target == Target::Natter {
                            nat.extend(m);
                        } else {
                            base.extend(m);
                        }
                    }
                    Err(e) => println!("!! {:?} on {}: failed: {e:#}", sc, target.name()),
                }
                println!();
            }
        }
        rounds.push((nat, base));
    }
    let (nat, base) = median_of(&rounds);
    let table = report::table(&nat, &base);
    let mut out = String::new();
    let _ = writeln!(out, "# natter-load suite, {}\n", timestamp());
    out.push_str(&header);
    let _ = writeln!(
        out,
        "\nNatter advantage: how many times better Natter's number is (baseline ÷ Natter for\n\
         times and costs, Natter ÷ baseline for rates); n/a: not applicable or not measured.\n"
    );
    out.push_str(&table);
    out.push_str(&report::floor_table(&nat));
    let _ = writeln!(
        out,
        "\nsuite time: {:.1} min",
        t0.elapsed().as_secs_f64() / 60.0
    );
    println!("{out}");
    let file = work.join("results").join(format!("{}.md", unix_now()));
    std::fs::write(&file, &out)?;
    println!("(saved to {})", file.display());
    Ok(())
}

/// One scenario on one freshly started server.
async fn one(
    a: &Args,
    work: &Path,
    sc: Scenario,
    target: Target,
    fixture: &Fixture,
    in_place: bool,
) -> Result<Metrics> {
    let dir = work
        .join("runs")
        .join(format!("{}-{:?}-{}", unix_now(), sc, target.name()));
    std::fs::create_dir_all(&dir)?;
    let data = if in_place {
        fixture.data.clone()
    } else if target == Target::Natter {
        copy_dir(&fixture.data, &dir.join("data"))?;
        dir.join("data")
    } else {
        dir.join("baseline.db")
    };
    if sc == Scenario::History {
        // The database is read through the page cache; start from a defined state (all of it
        // cached, as 3 GB would be on a 24 GB server) rather than whatever the machine's
        // memory reclaim left of it.
        let t = Instant::now();
        let db = if target == Target::Natter {
            data.join("natter.db")
        } else {
            data.clone()
        };
        let bytes = read_through(&db)?;
        println!(
            "(page cache: read the {:.1} GB database once in {:.1} s before starting the server)",
            bytes as f64 / 1e9,
            t.elapsed().as_secs_f64()
        );
    }
    let fsync = match sc {
        Scenario::Fanout | Scenario::Writes | Scenario::Storm | Scenario::BigRoom => {
            let f = crate::procfs::fsync_ms(&dir)?;
            println!("(disk: fdatasync p50 {f:.2} ms just before this run)");
            Some(f)
        }
        _ => None,
    };
    let server = Server::start(a, target, &data, &dir.join("server.log"), a.pin).await?;
    let env = Arc::new(Env {
        target,
        base: format!("http://{}", server.addr),
        addr: server.addr,
        pid: Some(server.pid),
        http: reqwest::Client::new(),
        clock: Instant::now(),
        source_ips: a.source_ips,
        users: if target == Target::Natter {
            fixture.users.clone()
        } else {
            Vec::new()
        },
    });
    let result = match sc {
        Scenario::Idle => scenarios::idle::run(&env, a).await,
        Scenario::Fanout => scenarios::fanout::run(&env, a).await,
        Scenario::BigRoom => scenarios::bigroom::run(&env, a).await,
        Scenario::Writes => scenarios::writes::run(&env, a).await,
        Scenario::History => scenarios::history::run(&env, a).await,
        Scenario::Storm => scenarios::storm::run(&env, a).await,
        Scenario::Client | Scenario::Floor | Scenario::Seed | Scenario::Suite => {
            Ok(Metrics::default())
        }
    };
    let started = server.start_to_ready;
    drop(env);
    server.stop();
    if !in_place {
        std::fs::remove_dir_all(dir.join("data")).ok();
        std::fs::remove_file(dir.join("baseline.db")).ok();
        std::fs::remove_file(dir.join("baseline.db-wal")).ok();
        std::fs::remove_file(dir.join("baseline.db-shm")).ok();
    }
    let mut m = result?;
    match (sc, fsync) {
        (Scenario::Fanout, Some(f)) => m.add(
            "s2.fsync_ms",
            "S2 disk: fdatasync p50 before the run",
            "ms",
            Some(f),
            Better::Neither,
        ),
        (Scenario::Writes, Some(f)) => m.add(
            "s4.fsync_ms",
            "S4a disk: fdatasync p50 before the run",
            "ms",
            Some(f),
            Better::Neither,
        ),
        _ => {}
    }
    if sc == Scenario::Idle {
        println!(
            "server start → ready:    {:.0} ms (spawn → first /api/health 200)",
            started.as_secs_f64() * 1000.0
        );
        m.add(
            "s1.start_to_ready_ms",
            "server start → ready (health 200)",
            "ms",
            Some(started.as_secs_f64() * 1000.0),
            Better::Lower,
        );
    }
    Ok(m)
}

/// A started server under test.
struct Server {
    work: PathBuf,
    child: Child,
    pid: u32,
    addr: SocketAddr,
    start_to_ready: Duration,
}

impl Server {
    /// Natter with `data` as its data dir, or the baseline with `data` as its database; pinned
    /// to core 0 with taskset when `pin`. Ready when `/api/health` answers 200.
    async fn start(a: &Args, target: Target, data: &Path, log: &Path, pin: bool) -> Result<Server> {
        // Write back what earlier steps left dirty (fixtures, databases), so that it is not
        // flushed in the middle of this run.
        Command::new("sync").status().ok();
        let logf = std::fs::File::create(log)?;
        let mut cmd = if pin {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]);
            c
        } else {
            Command::new("env")
        };
        match target {
            Target::Natter => {
                cmd.arg(&a.natter_bin)
                    .env("NATTER_ADDR", "127.0.0.1:0")
                    .env("NATTER_DATA_DIR", data)
                    .env("NATTER_SITE_ROOT", &a.site)
                    .env("RUST_LOG", "warn,natter=info")
                    // Limits raised so that the generator, not a limiter, sets the pace: the
                    // per-socket frame rate (S4a sends up to 40/s per socket) and the socket cap.
                    .env("NATTER_WS_FRAMES_PER_SEC", "1000")
                    .env("NATTER_WS_BURST", "1000")
                    .env("NATTER_WS_MAX_CONNECTIONS", "100000")
                    // The test-only echo route: S1 measures what a connection costs the HTTP
                    // and WebSocket stack with no application (no sign-in, no database).
                    .env("NATTER_WS_ECHO", "1");
            }
            Target::Baseline => {
                let dir = std::fs::canonicalize(&a.baseline_dir)?;
                cmd.arg("node")
                    .arg(dir.join("server.js"))
                    .env("PORT", "0")
                    .env("BASELINE_DB", data)
                    .env("NODE_ENV", "production");
            }
        }
        let t = Instant::now();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf)
            .spawn()
            .with_context(|| format!("starting {}", target.name()))?;
        let pid = child.id();
        // bench/run.sh kills this pid on exit, should this process be killed before `stop`.
        std::fs::write(Path::new(&a.work_dir).join("server.pid"), pid.to_string()).ok();
        let mut server = Server {
            work: PathBuf::from(&a.work_dir),
            child,
            pid,
            addr: "127.0.0.1:0".parse()?,
            start_to_ready: Duration::ZERO,
        };
        let http = reqwest::Client::new();
        let deadline = t + Duration::from_secs(120);
        loop {
            if Instant::now() > deadline {
                server.stop();
                bail!("{} did not start; see {}", target.name(), log.display());
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                bail!("{} exited ({status}); see {}", target.name(), log.display());
            }
            if server.addr.port() == 0 {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                if let Some(addr) = text
                    .split("listening on http://")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                {
                    server.addr = addr.parse().with_context(|| format!("address {addr}"))?;
                }
            }
            if server.addr.port() != 0 {
                let ok = http
                    .get(format!("http://{}/api/health", server.addr))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    server.start_to_ready = t.elapsed();
                    return Ok(server);
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// SIGTERM (both servers shut down cleanly on it), SIGKILL after 15 s.
    fn stop(mut self) {
        std::fs::remove_file(self.work.join("server.pid")).ok();
        Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .ok();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A data dir (Natter) or database file (baseline) and the users to act as.
#[derive(Default)]
struct Fixture {
    data: PathBuf,
    users: Vec<Cred>,
}

/// The seeded Natter users (sign-ups, group rooms, DMs), built once per schema and per
/// password hashing setting: S4c's logins must verify hashes made with the server's parameters
/// (a hash with others would be verified, then made again).
async fn users_fixture(a: &Args, work: &Path, n: usize) -> Result<Fixture> {
    let dep = hash_dir("server/migrations")? ^ hash_params()?.rotate_left(1);
    let key = format!("users-{n}-{dep:016x}");
    let dir = work.join("fixtures").join(key);
    let tokens = dir.join("tokens.tsv");
    if !dir.join("ok").exists() {
        println!(
            "fixture: {n} Natter users (built once, kept in {})",
            dir.display()
        );
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(dir.join("data"))?;
        // Unpinned: sign-ups are setup, and argon2 then has both cores.
        let server = Server::start(
            a,
            Target::Natter,
            &dir.join("data"),
            &dir.join("server.log"),
            false,
        )
        .await?;
        let env = setup_env(&server);
        let r = seed::run(&env, n, tokens.to_str().context("path")?).await;
        server.stop();
        r?;
        std::fs::write(dir.join("ok"), b"")?;
    }
    Ok(Fixture {
        users: seed::load(tokens.to_str().context("path")?)?,
        data: dir.join("data"),
    })
}

/// Time to interactive in Chromium against a fresh, pinned Natter server.
async fn client_tti(a: &Args, work: &Path) -> Result<Metrics> {
    let dir = work
        .join("runs")
        .join(format!("{}-Client-natter", unix_now()));
    std::fs::create_dir_all(dir.join("data"))?;
    let server = Server::start(
        a,
        Target::Natter,
        &dir.join("data"),
        &dir.join("server.log"),
        a.pin,
    )
    .await?;
    let base = format!("http://{}", server.addr);
    let runs = a.tti_runs;
    let result = tokio::task::spawn_blocking(move || scenarios::client::tti(&base, runs)).await;
    server.stop();
    std::fs::remove_dir_all(dir.join("data")).ok();
    result?
}

fn setup_env(server: &Server) -> Env {
    Env {
        target: Target::Natter,
        base: format!("http://{}", server.addr),
        addr: server.addr,
        pid: Some(server.pid),
        http: reqwest::Client::new(),
        clock: Instant::now(),
        source_ips: 1,
        users: Vec::new(),
    }
}

/// Filler text for the stored messages (cut to the payload size).
const PAD: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor \
incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation \
ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit.";

/// The 10-million-message database of one server, built once: the server creates its schema
/// on an empty data dir, stops, and `sqlite3` inserts the rows in transactions of 100,000.
async fn history_fixture(a: &Args, work: &Path, target: Target) -> Result<Fixture> {
    if which("sqlite3").is_none() {
        bail!("S4b needs the sqlite3 CLI (apt-get install sqlite3) to build its database");
    }
    let (rooms, per) = (a.history_rooms as u64, a.history_per_room);
    let dep = match target {
        Target::Natter => hash_dir("server/migrations")?,
        Target::Baseline => hash_file(&Path::new(&a.baseline_dir).join("server.js"))?,
    };
    let dir = work.join("fixtures").join(format!(
        "history-{}-{rooms}x{per}-{dep:016x}",
        target.name()
    ));
    let tokens = dir.join("tokens.tsv");
    let db = match target {
        Target::Natter => dir.join("data").join("natter.db"),
        Target::Baseline => dir.join("baseline.db"),
    };
    let data = match target {
        Target::Natter => dir.join("data"),
        Target::Baseline => db.clone(),
    };
    if !dir.join("ok").exists() {
        println!(
            "fixture: {} messages for {} (built once, kept in {}; takes minutes)",
            report::group((rooms * per) as i64),
            target.name(),
            dir.display()
        );
        let t = Instant::now();
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(dir.join("data"))?;
        let server = Server::start(a, target, &data, &dir.join("server.log"), false).await?;
        let reader = if target == Target::Natter {
            let env = setup_env(&server);
            let r = api::signup(&env.http, &env.base, "reader").await;
            server.stop();
            let r = r?;
            seed::save(tokens.to_str().context("path")?, std::slice::from_ref(&r))?;
            r.id
        } else {
            server.stop();
            0
        };
        let sql = history_sql(target, rooms, per, a.payload, reader);
        let mut child = Command::new("sqlite3")
            .arg(&db)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .context("stdin")?
                .write_all(sql.as_bytes())?;
        }
        let status = child.wait()?;
        if !status.success() {
            bail!("sqlite3 failed ({status}) building {}", db.display());
        }
        println!("fixture: built in {:.0} s", t.elapsed().as_secs_f64());
        std::fs::write(dir.join("ok"), b"")?;
    }
    Ok(Fixture {
        users: if target == Target::Natter {
            seed::load(tokens.to_str().context("path")?)?
        } else {
            Vec::new()
        },
        data,
    })
}

/// The SQL that fills a history database: message `i` (0-based) goes to room `i % rooms + 1`
/// as its `i / rooms + 1`-th message, so the rooms interleave like busy rooms do.
fn history_sql(target: Target, rooms: u64, per: u64, payload: usize, reader: i64) -> String {
    let t0: i64 = 1_767_225_600_000; // 2026-01-01, unix ms
    let mut pad = String::new();
    while pad.len() < payload {
        pad.push_str(PAD);
        pad.push(' ');
    }
    let mut s = String::from(
        "PRAGMA synchronous=OFF;\nPRAGMA cache_size=-1000000;\nPRAGMA temp_store=MEMORY;\n",
    );
    if target == Target::Natter {
        let _ = write!(
            s,
            "BEGIN;\n\
             WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < {rooms})\n\
             INSERT INTO rooms (id, kind, name, topic, visibility, created_at, last_seq)\n\
             SELECT i, 'room', 'history ' || i, '', 'public', {t0}, {per} FROM r;\n\
             INSERT INTO members (room_id, user_id, role, joined_at)\n\
             SELECT id, {reader}, 'owner', {t0} FROM rooms;\n\
             COMMIT;\n"
        );
    }
    let total = rooms * per;
    let batch = 100_000;
    let mut lo = 0;
    while lo < total {
        let hi = (lo + batch).min(total) - 1;
        let select = match target {
            Target::Natter => format!(
                "INSERT INTO messages (id, room_id, seq, sender_id, client_id, body, created_at)\n\
                 SELECT i + 1, i % {rooms} + 1, i / {rooms} + 1, {reader}, 'h' || i,\n\
                 substr(i || ' ' || '{pad}', 1, {payload}), {t0} + i FROM c;"
            ),
            Target::Baseline => format!(
                "INSERT INTO messages (id, room, sender, client_id, body, created_at)\n\
                 SELECT i + 1, CAST(i % {rooms} + 1 AS TEXT), 'h', 'h' || i,\n\
                 substr(i || ' ' || '{pad}', 1, {payload}), {t0} + i FROM c;"
            ),
        };
        let _ = write!(
            s,
            "BEGIN;\nWITH RECURSIVE c(i) AS (SELECT {lo} UNION ALL SELECT i + 1 FROM c WHERE i < {hi})\n{select}\nCOMMIT;\n"
        );
        lo = hi + 1;
    }
    s.push_str("PRAGMA wal_checkpoint(TRUNCATE);\n");
    s
}

/// Per key, the median over rounds (one round: the values themselves).
fn median_of(rounds: &[(Metrics, Metrics)]) -> (Metrics, Metrics) {
    let pick = |get: fn(&(Metrics, Metrics)) -> &Metrics| {
        let Some(first) = rounds.first() else {
            return Metrics::default();
        };
        let mut out = get(first).clone();
        for m in &mut out.0 {
            m.value = median(rounds.iter().filter_map(|r| get(r).get(&m.key)).collect());
        }
        out
    };
    (pick(|r| &r.0), pick(|r| &r.1))
}

fn machine_header(a: &Args) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0.0, |kb| kb as f64 / 1048576.0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    format!(
        "machine: {} cores ({cpu}), {mem:.0} GiB; load average {}\n\
         commit: {commit}{}; servers {}; generator: {} core(s) available to it\n\
         sizes: S1 {} sockets; S2 {} x {} at 1 msg / {} ms, {} B; S3 {} members; S4 {} writers, history {} x {}\n",
        available_cores_total(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        if dirty {
            " (with uncommitted changes)"
        } else {
            ""
        },
        if a.pin {
            "pinned to core 0 (taskset)"
        } else {
            "not pinned"
        },
        available_cores(),
        a.connections,
        a.rooms,
        a.members,
        a.interval_ms,
        a.payload,
        a.big_room,
        a.write_senders,
        a.history_rooms,
        a.history_per_room
    )
}

/// Cores this process may run on (1 when bench/run.sh pinned it).
fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn available_cores_total() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| c.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0)
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(cmd))
            .find(|f| f.is_file())
    })
}

/// Reads a file to the end (into the page cache); returns its size.
fn read_through(path: &Path) -> Result<u64> {
    use std::io::Read as _;
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), &dest)?;
        }
    }
    Ok(())
}

/// FNV-1a over the files of a directory (names and contents, sorted by name).
fn hash_dir(dir: &str) -> Result<u64> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {dir} (run from the workspace root)"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut h = Fnv::new();
    for f in files {
        h.write(
            f.file_name()
                .map(|n| n.as_encoded_bytes())
                .unwrap_or_default(),
        );
        h.write(&std::fs::read(&f)?);
    }
    Ok(h.0)
}

/// The lines of `server/src/auth/password.rs` that set argon2's parameters (`const M_COST_KIB`,
/// `T_COST`, `P_COST`, `OUTPUT_LEN`): what the stored hashes depend on, and nothing else there.
fn hash_params() -> Result<u64> {
    const FILE: &str = "server/src/auth/password.rs";
    let src = std::fs::read_to_string(FILE).with_context(|| format!("reading {FILE}"))?;
    hash_param_lines(&src).with_context(|| format!("in {FILE}"))
}

fn hash_param_lines(src: &str) -> Result<u64> {
    let names = ["M_COST_KIB", "T_COST", "P_COST", "OUTPUT_LEN"];
    let lines: Vec<&str> = src
        .lines()
        .filter(|l| {
            l.strip_prefix("const ")
                .is_some_and(|rest| names.iter().any(|n| rest.starts_with(&format!("{n}:"))))
        })
        .collect();
    if lines.len() != names.len() {
        bail!("expected one `const` line for each of {names:?}, found {lines:?}");
    }
    let mut h = Fnv::new();
    for line in lines {
        h.write(line.as_bytes());
    }
    Ok(h.0)
}

fn hash_file(path: &Path) -> Result<u64> {
    let mut h = Fnv::new();
    h.write(&std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
    Ok(h.0)
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn timestamp() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture's key follows the argon2 parameters and nothing else in the file.
    #[test]
    fn the_users_fixture_key_follows_the_argon2_parameters_only() {
        let src = include_str!("../../server/src/auth/password.rs");
        let key = hash_param_lines(src).unwrap();
        let commented = src.replacen("//! Password hashing", "//! Hashing passwords", 1);
        assert_ne!(commented, src);
        assert_eq!(hash_param_lines(&commented).unwrap(), key);
        let other = src.replacen("const T_COST: u32 = ", "const T_COST: u32 = 1 + ", 1);
        assert_ne!(other, src);
        assert_ne!(hash_param_lines(&other).unwrap(), key);
        let renamed = src.replacen("const T_COST:", "const PASSES:", 1);
        assert!(hash_param_lines(&renamed).is_err());
    }

    #[test]
    fn history_sql_fills_every_room_evenly_in_batches() {
        let sql = history_sql(Target::Natter, 4, 250_000, 20, 1);
        assert_eq!(sql.matches("WITH RECURSIVE c(i)").count(), 10);
        assert!(sql.contains("SELECT 900000 UNION ALL SELECT i + 1 FROM c WHERE i < 999999"));
        assert!(sql.contains(
            "SELECT i, 'room', 'history ' || i, '', 'public', 1767225600000, 250000 FROM r"
        ));
    }
}
