//! S4c: does a burst of logins disturb chat? S2's load runs on fresh sockets alone and with
//! `--storm-rate` logins a second (correct passwords, users outside S2's rooms, open loop), in
//! `--storm-pairs` interleaved rounds (quiet then storm, storm then quiet, ...). Each login
//! costs an argon2id verification (7 MiB, ~10 ms of CPU) on the server's hashing pool; the
//! question is how much of that leaks into message latency. S2's p99 moves by 20-50 % between
//! two runs of the same load on this kind of machine (docs/perf.md, ninth round), as much as
//! the budget allows the storm, so one round decides little: the verdict compares the median
//! p99 of the quiet steps with that of the stormy ones, and every step's p99 is printed. Each
//! step waits for the server to be quiet first, so a storm's backlog of logins does not spill
//! into the quiet step after it. The baseline has no accounts, so this is Natter only.
//!
//! Two more kinds of step (`--storm-with`, both by default) say where the cost comes from: the
//! logins' hashes alone on the server's core ([`Hashes`]: the server's own hashing code, with
//! no HTTP, database or session), and the same CPU time spent without touching memory
//! ([`Spin`]). Each round runs every kind of step once, rotating which goes first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use app::domain::Password;
use server::auth::password::{Hasher, Verified};
use tokio::task::JoinHandle;

use super::fanout;
use super::floor::set_affinity;
use crate::api;
use crate::cli::{Args, StormWith};
use crate::fleet::Env;
use crate::proto::Target;
use crate::report::{Better, Latencies, Metrics, fmt, group, median};

pub struct Storm {
    pub per_s: f64,
    /// Users to log in as, in turn.
    pub users: std::ops::Range<usize>,
    pub load: Load,
}

/// What a stormy step does `per_s` times a second.
#[derive(Clone)]
pub enum Load {
    /// Signs in over HTTP: Natter's whole sign-in path, the argon2 verification included.
    Logins,
    /// The same argon2 verifications with nothing else: Natter's own hashing pool, run in
    /// this process on the server's core (see [`Hashes`]). No HTTP, no database, no session.
    Hashes(Arc<Hashes>),
    /// The CPU time of those hashes spent without touching memory (see [`Spin`]).
    Spin(Arc<Spin>),
}

impl Load {
    fn name(&self) -> &'static str {
        match self {
            Load::Logins => "logins",
            Load::Hashes(_) => "hashes alone",
            Load::Spin(_) => "hash-long spins",
        }
    }
}

/// Natter's password hashing pool (`server::auth::password::Hasher`, the server's code and
/// parameters: one `SCHED_IDLE` thread with its rest after each hash) started in the
/// generator's process with its thread on the core the server runs on. Verifying the
/// generator's password against a hash of it costs that core what a correct sign-in's
/// verification costs the server, and nothing else a sign-in does. If these alone move S2's
/// p99 as much as the logins do, the storm's cost is the hash sharing the core with chat.
pub struct Hashes {
    hasher: Hasher,
    password: Password,
    stored: String,
}

impl Hashes {
    /// Starts the pool with its thread on the cores the process `pid` may run on.
    pub async fn beside(pid: u32) -> Result<Self> {
        let cores = affinity_of(pid)?;
        let timeout = server::config::Limits::default().hash_queue_timeout;
        // The pool's thread inherits the affinity of the thread that starts it.
        let hasher = std::thread::spawn(move || -> Result<Hasher> {
            set_affinity(&cores)?;
            Hasher::new(1, timeout)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("starting the hashing pool panicked"))??;
        let password = Password::parse(api::PASSWORD)?;
        let stored = hasher.hash(password.clone()).await?;
        Ok(Self {
            hasher,
            password,
            stored,
        })
    }

    /// One verification, answered as a sign-in would be: 200, or 503 when the queue is full.
    async fn verify(&self) -> u16 {
        let verdict = self
            .hasher
            .verify(self.password.clone(), Some(self.stored.clone()))
            .await;
        match verdict {
            Ok(Verified::Yes { .. }) => 200,
            Ok(Verified::No) => 401,
            Err(server::error::ApiError::Busy) => 503,
            Err(_) => 500,
        }
    }
}

impl Hashes {
    /// The CPU time one verification takes the pool's thread: the least of a few, measured
    /// from the thread's own clock (`/proc/self/task/*/schedstat`).
    async fn cpu_per_verification(&self) -> Result<Duration> {
        let mut least = Duration::MAX;
        for _ in 0..5 {
            let before = thread_run_ns("argon2-")?;
            if self.verify().await != 200 {
                bail!("the hashing pool did not verify the password");
            }
            let after = thread_run_ns("argon2-")?;
            least = least.min(Duration::from_nanos(after.saturating_sub(before)));
        }
        Ok(least)
    }
}

/// The CPU time of a verification, spent by arithmetic on registers alone: one thread on the
/// server's core with the hashing threads' priority (`SCHED_IDLE`, nice 10) and their rest
/// after each job. Beside [`Hashes`] it tells whether chat is slowed by the core being busy
/// or by the hash's 7 MiB sweeping the caches.
pub struct Spin {
    jobs: tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<()>>,
    cpu: Duration,
}

impl Spin {
    pub fn beside(pid: u32, cpu: Duration) -> Result<Self> {
        let cores = affinity_of(pid)?;
        let (jobs, mut queue) = tokio::sync::mpsc::channel::<tokio::sync::oneshot::Sender<()>>(64);
        std::thread::Builder::new()
            .name("spin".into())
            .spawn(move || {
                if let Err(e) = set_affinity(&cores) {
                    println!("note: {e}");
                }
                server::auth::password::lower_priority();
                let mut x: u64 = 1;
                while let Some(done) = queue.blocking_recv() {
                    let started = Instant::now();
                    let until = thread_cpu_ns().saturating_add(cpu.as_nanos() as u64);
                    while thread_cpu_ns() < until {
                        for _ in 0..1_000 {
                            x = std::hint::black_box(
                                x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1),
                            );
                        }
                    }
                    done.send(()).ok();
                    std::thread::sleep(server::auth::password::rest_after(started.elapsed()));
                }
            })?;
        Ok(Self { jobs, cpu })
    }

    /// One job, answered as a sign-in would be: 200, or 503 when it waited too long to queue.
    async fn run(&self) -> u16 {
        let (done, finished) = tokio::sync::oneshot::channel();
        let timeout = server::config::Limits::default().hash_queue_timeout;
        match tokio::time::timeout(timeout, self.jobs.send(done)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return 500,
            Err(_) => return 503,
        }
        if finished.await.is_ok() { 200 } else { 500 }
    }
}

/// The calling thread's CPU time, ns.
fn thread_cpu_ns() -> u64 {
    // SAFETY: clock_gettime writes one timespec, which we own.
    let t = unsafe {
        let mut t: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t);
        t
    };
    (t.tv_sec as u64).saturating_mul(1_000_000_000) + t.tv_nsec as u64
}

/// Time on a CPU, ns, of this process's threads whose name starts with `prefix`.
fn thread_run_ns(prefix: &str) -> Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task")? {
        let dir = task?.path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if name.starts_with(prefix) {
            let stat = std::fs::read_to_string(dir.join("schedstat"))?;
            let run: u64 = stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            total += run;
        }
    }
    Ok(total)
}

/// The set of cores the process `pid` may run on.
fn affinity_of(pid: u32) -> Result<libc::cpu_set_t> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity writes at most its
    // size into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let pid = libc::pid_t::try_from(pid)?;
        if libc::sched_getaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            bail!(
                "reading the server's cores: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(set)
    }
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
        let load = self.load.clone();
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
                let (env, load) = (env.clone(), load.clone());
                tasks.push(tokio::spawn(async move {
                    match load {
                        Load::Logins => api::login(&env.http, &env.base, &name).await,
                        Load::Hashes(h) => {
                            let t = Instant::now();
                            (h.verify().await, t.elapsed())
                        }
                        Load::Spin(s) => {
                            let t = Instant::now();
                            (s.run().await, t.elapsed())
                        }
                    }
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
    let users = first_free..env.users.len();
    let mut loads = vec![None];
    let mut hashes: Option<Arc<Hashes>> = None;
    for kind in &a.storm_with {
        let load = match kind {
            StormWith::Logins => Load::Logins,
            StormWith::Hashes | StormWith::Spin => {
                let Some(pid) = env.pid else {
                    bail!("--storm-with hashes or spin needs the server's --pid (its cores)");
                };
                let pool = match &hashes {
                    Some(h) => h.clone(),
                    None => hashes.insert(Arc::new(Hashes::beside(pid).await?)).clone(),
                };
                if *kind == StormWith::Hashes {
                    Load::Hashes(pool)
                } else {
                    let cpu = pool.cpu_per_verification().await?;
                    println!(
                        "a verification takes the hashing thread {:.2} ms of CPU: each spin takes as much",
                        cpu.as_secs_f64() * 1e3
                    );
                    Load::Spin(Arc::new(Spin::beside(pid, cpu)?))
                }
            }
        };
        loads.push(Some(Storm {
            per_s: a.storm_rate,
            users: users.clone(),
            load,
        }));
    }
    let pairs = a.storm_pairs.max(1);
    // Steps by load (index into `loads`), in the order they ran.
    let mut steps: Vec<Vec<fanout::Step>> = loads.iter().map(|_| Vec::new()).collect();
    let mut rows = Vec::new();
    for round in 0..pairs {
        // Rotate which goes first, so that drift over the run favours none.
        for which in order(round, loads.len()) {
            let storm = loads[which].as_ref();
            let step = fanout::step(env, a, &rooms, every, a.storm_seconds, storm).await?;
            rows.push(match storm {
                Some(s) => format!(
                    "{} with {} {}/s (round {})",
                    step.row(),
                    a.storm_rate,
                    s.load.name(),
                    round + 1
                ),
                None => format!("{} without logins (round {})", step.row(), round + 1),
            });
            steps[which].push(step);
        }
    }
    println!(
        "{} s each, S2 load ({} x {}, 1 msg / {} ms / member), {pairs} interleaved rounds:",
        a.storm_seconds, a.rooms, a.members, a.interval_ms
    );
    println!("{}", fanout::STEP_HEADER);
    for row in &rows {
        println!("{row}");
    }
    if hashes.is_some() {
        println!(
            "(the generator's CPU of the hashes' and spins' steps includes their thread, which runs on the server's core)"
        );
    }
    let p99s = |steps: &[fanout::Step]| -> Vec<f64> {
        steps.iter().filter_map(|s| s.latency.ms(0.99)).collect()
    };
    let worst = |steps: &[fanout::Step]| p99s(steps).into_iter().reduce(f64::max);
    let quiet = &steps[0];
    let p_quiet = median(p99s(quiet));
    let mut m = Metrics::default();
    m.add(
        "s4.storm_p99_quiet_ms",
        "S4c S2 p99 without logins (median of the quiet steps)",
        "ms",
        p_quiet,
        Better::Lower,
    );
    m.add(
        "s4.storm_p99_quiet_worst_ms",
        "S4c S2 p99 without logins, the worst quiet step",
        "ms",
        worst(quiet),
        Better::Lower,
    );
    for (storm, stormy) in loads.iter().zip(&steps).skip(1) {
        let Some(storm) = storm else { continue };
        let p_storm = median(p99s(stormy));
        let change = p_quiet.zip(p_storm).map(|(q, s)| (s - q) / q * 100.0);
        let answered = merge_logins(stormy.iter().filter_map(|s| s.logins.as_ref()));
        match storm.load {
            Load::Logins => {
                report_logins(&mut m, a, pairs, p_storm, worst(stormy), change, &answered)
            }
            Load::Hashes(_) => report_hashes(&mut m, p_storm, change, &answered),
            Load::Spin(ref s) => report_spin(&mut m, s, p_storm, change, &answered),
        }
        println!(
            "S2 p99, median of {pairs}: {} ms without, {} ms with {} {}/s: {:+.0} %",
            fmt(p_quiet),
            fmt(p_storm),
            a.storm_rate,
            storm.load.name(),
            change.unwrap_or(f64::NAN)
        );
    }
    Ok(m)
}

fn print_answers(what: &str, l: &Logins) {
    println!(
        "{what}: {} ok, {} failed ({}), latency of the successful ones {}",
        group(l.ok as i64),
        l.failed,
        l.statuses
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
        l.latency.summary()
    );
}

fn report_logins(
    m: &mut Metrics,
    a: &Args,
    pairs: u64,
    p_storm: Option<f64>,
    worst: Option<f64>,
    change: Option<f64>,
    logins: &Logins,
) {
    print_answers("logins", logins);
    m.add(
        "s4.storm_p99_storm_ms",
        "S4c S2 p99 with 50 logins/s (median of the stormy steps)",
        "ms",
        p_storm,
        Better::Lower,
    );
    m.add(
        "s4.storm_p99_storm_worst_ms",
        "S4c S2 p99 with 50 logins/s, the worst stormy step (a stall shows here, not in the median)",
        "ms",
        worst,
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
}

fn report_hashes(m: &mut Metrics, p_storm: Option<f64>, change: Option<f64>, hashes: &Logins) {
    print_answers(
        "hashes alone (in the generator's process, on the server's core)",
        hashes,
    );
    m.add(
        "s4.storm_p99_hashes_ms",
        "S4c S2 p99 with the logins' hashes alone on the server's core (median)",
        "ms",
        p_storm,
        Better::Lower,
    );
    m.add(
        "s4.storm_p99_hashes_change_pct",
        "S4c p99 change under the hashes alone",
        "%",
        change,
        Better::Neither,
    );
}

fn report_spin(
    m: &mut Metrics,
    spin: &Spin,
    p_storm: Option<f64>,
    change: Option<f64>,
    spins: &Logins,
) {
    print_answers(
        &format!(
            "spins of {:.2} ms of CPU (in the generator's process, on the server's core)",
            spin.cpu.as_secs_f64() * 1e3
        ),
        spins,
    );
    m.add(
        "s4.storm_p99_spin_ms",
        "S4c S2 p99 with the hashes' CPU time spent on registers alone (median)",
        "ms",
        p_storm,
        Better::Lower,
    );
    m.add(
        "s4.storm_p99_spin_change_pct",
        "S4c p99 change under the spins",
        "%",
        change,
        Better::Neither,
    );
}

/// The steps of round `round` of `kinds`, by index: each round runs every kind once, and over
/// `kinds` rounds each kind goes first once (drift over the run favours none).
fn order(round: u64, kinds: usize) -> impl Iterator<Item = usize> {
    let first = usize::try_from(round).unwrap_or(0) % kinds.max(1);
    (0..kinds).map(move |k| (first + k) % kinds)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_round_runs_each_kind_once_and_each_kind_leads_once() {
        for kinds in 1..5 {
            let mut leaders = Vec::new();
            for round in 0..kinds as u64 {
                let mut steps: Vec<usize> = order(round, kinds).collect();
                leaders.push(steps[0]);
                steps.sort_unstable();
                assert_eq!(steps, (0..kinds).collect::<Vec<_>>());
            }
            leaders.sort_unstable();
            assert_eq!(leaders, (0..kinds).collect::<Vec<_>>());
        }
    }

    #[tokio::test]
    async fn the_servers_hashing_pool_verifies_on_the_cores_of_the_given_process() {
        let hashes = Hashes::beside(std::process::id()).await.unwrap();
        let before = thread_run_ns("argon2-").unwrap();
        assert_eq!(hashes.verify().await, 200);
        assert!(thread_run_ns("argon2-").unwrap() > before);
        assert!(hashes.cpu_per_verification().await.unwrap() > Duration::ZERO);
    }

    #[tokio::test]
    async fn a_spin_spends_the_cpu_time_it_is_given() {
        let spin = Spin::beside(std::process::id(), Duration::from_millis(30)).unwrap();
        assert_eq!(spin.run().await, 200);
        assert_eq!(spin.run().await, 200);
        assert!(thread_run_ns("spin").unwrap() >= 60_000_000);
    }
}
