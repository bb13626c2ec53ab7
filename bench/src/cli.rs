//! Command-line flags. Hand-parsed (`--flag value` pairs) so the crate needs no argument parser;
//! every default is the size the issue asks for, and `--help` prints them all.

use anyhow::{Context, Result, bail};

use crate::proto::Target;

/// Which measurement to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// S1: idle authenticated connections (memory, connect rate, idle CPU).
    Idle,
    /// S2: rooms x members fan-out, then rate steps to the knee.
    Fanout,
    /// S3: one big room with a few clients that stop reading.
    BigRoom,
    /// S4a: durable writes with group commit (messages/s, send → `sent` latency).
    Writes,
    /// S4b: history pages over a 10-million-message database.
    History,
    /// S4c: S2 with and without a login storm.
    Storm,
    /// First-load bytes of the client (brotli files in the site).
    Client,
    /// The machine's floor: loopback writes and fdatasync with no server (S2, S4a budgets).
    Floor,
    /// Sign up users, their rooms and DMs; writes a tokens file for the scenarios (Natter).
    Seed,
    /// Everything, for Natter and the baseline, interleaved, with the comparison table.
    Suite,
}

impl Scenario {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "s1" | "idle" => Self::Idle,
            "s2" | "fanout" => Self::Fanout,
            "s3" | "bigroom" => Self::BigRoom,
            "s4-writes" | "writes" => Self::Writes,
            "s4-history" | "history" => Self::History,
            "s4-storm" | "storm" => Self::Storm,
            "client" => Self::Client,
            "floor" => Self::Floor,
            "seed" => Self::Seed,
            "suite" | "all" => Self::Suite,
            other => bail!("unknown scenario {other} (see --help)"),
        })
    }
}

/// What S4c's stormy steps run beside S2 (`--storm-with`), each in steps of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StormWith {
    /// Sign-ins over HTTP (the budget's storm).
    Logins,
    /// The sign-ins' argon2 verifications alone, on the server's core.
    Hashes,
    /// Their CPU time on registers alone (no memory), on the server's core.
    Spin,
}

impl StormWith {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "logins" => Self::Logins,
            "hashes" => Self::Hashes,
            "spin" => Self::Spin,
            other => bail!("--storm-with takes logins, hashes and spin, not {other}"),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Args {
    pub scenario: Scenario,
    pub target: Target,
    /// The server under test (not used by `suite`, which starts its own servers).
    pub url: String,
    /// Its process id, for CPU and memory from /proc.
    pub pid: Option<u32>,
    /// Users to act as, from `--scenario seed` (`username<TAB>token` lines). Without it the
    /// scenarios sign up the users they need (slow: argon2 by design).
    pub tokens: Option<String>,
    /// Fail (exit 1) on any lost or duplicated delivery (the smoke run in `make test`).
    pub check: bool,
    /// Client sockets are bound to 127.0.0.1 ..= 127.0.0.<source_ips> in turn, so thousands of
    /// connections never run out of ephemeral ports on one source address.
    pub source_ips: u8,

    // S1
    pub connections: usize,
    pub connect_concurrency: usize,
    pub idle_seconds: u64,

    // S2 (and the base load of S4c)
    pub rooms: usize,
    pub members: usize,
    pub interval_ms: u64,
    pub payload: usize,
    pub seconds: u64,
    pub knee_steps: usize,
    pub knee_factor: f64,
    pub knee_seconds: u64,
    pub knee_p99_ms: f64,

    // S3
    pub big_room: usize,
    pub nonreaders_pct: f64,
    pub s3_seconds: u64,
    pub flood_rate: f64,
    pub flood_payload: usize,
    pub flood_seconds: u64,

    // S4
    pub write_senders: usize,
    pub write_rates: Vec<f64>,
    pub write_seconds: u64,
    pub history_requests: usize,
    pub history_rooms: usize,
    pub history_per_room: u64,
    pub storm_rate: f64,
    pub storm_seconds: u64,
    pub storm_pairs: u64,
    pub storm_with: Vec<StormWith>,

    // floor
    pub floor_seconds: u64,

    // client
    pub site: String,
    pub tti_runs: usize,

    // suite
    pub only: Vec<Scenario>,
    pub work_dir: String,
    pub natter_bin: String,
    pub baseline_dir: String,
    pub rounds: usize,
    pub pin: bool,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            scenario: Scenario::Fanout,
            target: Target::Natter,
            url: "http://127.0.0.1:3000".into(),
            pid: None,
            tokens: None,
            check: false,
            source_ips: 8,
            connections: 5000,
            connect_concurrency: 100,
            idle_seconds: 10,
            rooms: 50,
            members: 20,
            interval_ms: 1000,
            payload: 200,
            seconds: 20,
            knee_steps: 4,
            knee_factor: 1.5,
            knee_seconds: 8,
            knee_p99_ms: 50.0,
            big_room: 5000,
            nonreaders_pct: 1.0,
            s3_seconds: 30,
            flood_rate: 100.0,
            flood_payload: 3800,
            flood_seconds: 90,
            write_senders: 500,
            write_rates: vec![2500.0, 5000.0, 10000.0, 15000.0, 20000.0],
            write_seconds: 5,
            history_requests: 3000,
            history_rooms: 100,
            history_per_room: 100_000,
            storm_rate: 50.0,
            storm_seconds: 15,
            storm_pairs: 3,
            storm_with: vec![StormWith::Logins, StormWith::Hashes, StormWith::Spin],
            floor_seconds: 5,
            site: "target/site".into(),
            tti_runs: 10,
            only: Vec::new(),
            work_dir: "target/bench".into(),
            natter_bin: "target/release/natter".into(),
            baseline_dir: "bench/baseline".into(),
            rounds: 1,
            pin: true,
        }
    }
}

const HELP: &str = "\
natter-load: Natter's benchmark scenarios (docs/perf.md).

  natter-load --scenario suite [--only s1,s2,...]   everything, both targets, comparison table
  natter-load --scenario s2 --url http://127.0.0.1:3000 --pid <server pid> [--target baseline]

scenarios: s1 (idle), s2 (fanout), s3 (bigroom), s4-writes, s4-history, s4-storm, client,
           floor (no server: loopback writes and fdatasync alone, sized like S2 and S4a),
           seed (users + rooms + DMs into --tokens FILE), suite
common:    --target natter|baseline  --url URL  --pid PID  --tokens FILE  --check 1
           --source-ips N (8)
S1:        --connections N (5000) --connect-concurrency N (100) --idle-seconds S (10)
S2:        --rooms N (50) --members N (20) --interval-ms MS (1000) --payload BYTES (200)
           --seconds S (20) --knee-steps N (4) --knee-factor X (1.5) --knee-seconds S (8)
           --knee-p99-ms MS (50)
S3:        --big-room N (5000) --nonreaders-pct P (1) --s3-seconds S (30)
           --flood-rate MSG/S (100) --flood-payload BYTES (3800) --flood-seconds S (90)
S4:        --write-senders N (500) --write-rates R,R,... (2500,5000,10000,15000,20000)
           --write-seconds S (5) --history-requests N (3000) --history-rooms N (100)
           --history-per-room N (100000) --storm-rate LOGINS/S (50) --storm-seconds S (15)
           --storm-pairs N (3 rounds: a quiet step and one per --storm-with, rotated)
           --storm-with LIST (logins,hashes,spin: sign-ins; their hashes alone on the
           server's core; the hashes' CPU time without memory, on that core)
floor:     --floor-seconds S (5 per step; S2's --rooms, --members, --interval-ms set its size)
client:    --site DIR (target/site) --tti-runs N (10: Chromium runs per mode, bench/tti.mjs;
           standalone, against --url)
suite:     --only LIST  --rounds N (1)  --work-dir DIR (target/bench)
           --natter-bin PATH  --baseline-dir DIR  --pin 0|1 (1: server on core 0, taskset)
";

/// A comma-separated list, each item parsed by `item` (empty items skipped).
fn list<T>(v: &str, item: fn(&str) -> Result<T>) -> Result<Vec<T>> {
    v.split(',').filter(|s| !s.is_empty()).map(item).collect()
}

pub fn parse() -> Result<Args> {
    let mut a = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            print!("{HELP}");
            std::process::exit(0);
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let v = value.as_str();
        let bad = || format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--scenario" => a.scenario = Scenario::parse(v)?,
            "--target" => {
                a.target = match v {
                    "natter" => Target::Natter,
                    "baseline" => Target::Baseline,
                    _ => bail!("--target is natter or baseline"),
                }
            }
            "--url" => a.url = value.trim_end_matches('/').to_owned(),
            "--pid" => a.pid = Some(v.parse().with_context(bad)?),
            "--tokens" => a.tokens = Some(value),
            "--check" => a.check = v == "1",
            "--source-ips" => a.source_ips = v.parse().with_context(bad)?,
            "--connections" => a.connections = v.parse().with_context(bad)?,
            "--connect-concurrency" => a.connect_concurrency = v.parse().with_context(bad)?,
            "--idle-seconds" => a.idle_seconds = v.parse().with_context(bad)?,
            "--rooms" => a.rooms = v.parse().with_context(bad)?,
            "--members" => a.members = v.parse().with_context(bad)?,
            "--interval-ms" => a.interval_ms = v.parse().with_context(bad)?,
            "--payload" => a.payload = v.parse().with_context(bad)?,
            "--seconds" => a.seconds = v.parse().with_context(bad)?,
            "--knee-steps" => a.knee_steps = v.parse().with_context(bad)?,
            "--knee-factor" => a.knee_factor = v.parse().with_context(bad)?,
            "--knee-seconds" => a.knee_seconds = v.parse().with_context(bad)?,
            "--knee-p99-ms" => a.knee_p99_ms = v.parse().with_context(bad)?,
            "--big-room" => a.big_room = v.parse().with_context(bad)?,
            "--nonreaders-pct" => a.nonreaders_pct = v.parse().with_context(bad)?,
            "--s3-seconds" => a.s3_seconds = v.parse().with_context(bad)?,
            "--flood-rate" => a.flood_rate = v.parse().with_context(bad)?,
            "--flood-payload" => a.flood_payload = v.parse().with_context(bad)?,
            "--flood-seconds" => a.flood_seconds = v.parse().with_context(bad)?,
            "--write-senders" => a.write_senders = v.parse().with_context(bad)?,
            "--write-rates" => {
                a.write_rates = v
                    .split(',')
                    .map(|r| r.trim().parse::<f64>())
                    .collect::<Result<_, _>>()
                    .with_context(bad)?
            }
            "--write-seconds" => a.write_seconds = v.parse().with_context(bad)?,
            "--tti-runs" => a.tti_runs = v.parse().with_context(bad)?,
            "--history-requests" => a.history_requests = v.parse().with_context(bad)?,
            "--history-rooms" => a.history_rooms = v.parse().with_context(bad)?,
            "--history-per-room" => a.history_per_room = v.parse().with_context(bad)?,
            "--storm-rate" => a.storm_rate = v.parse().with_context(bad)?,
            "--storm-seconds" => a.storm_seconds = v.parse().with_context(bad)?,
            "--storm-pairs" => a.storm_pairs = v.parse().with_context(bad)?,
            "--storm-with" => a.storm_with = list(v, StormWith::parse)?,
            "--floor-seconds" => a.floor_seconds = v.parse().with_context(bad)?,
            "--site" => a.site = value,
            "--only" => a.only = list(v, Scenario::parse)?,
            "--work-dir" => a.work_dir = value,
            "--natter-bin" => a.natter_bin = value,
            "--baseline-dir" => a.baseline_dir = value,
            "--rounds" => a.rounds = v.parse().with_context(bad)?,
            "--pin" => a.pin = v == "1",
            other => bail!("unknown flag {other} (see --help)"),
        }
    }
    if a.source_ips == 0 {
        bail!("--source-ips must be at least 1");
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_skip_empty_items_and_reject_unknown_ones() {
        assert_eq!(
            list("logins,,spin", StormWith::parse).unwrap(),
            vec![StormWith::Logins, StormWith::Spin]
        );
        assert!(list("logins,hash", StormWith::parse).is_err());
        assert_eq!(
            list("s1,s4-storm", Scenario::parse).unwrap(),
            vec![Scenario::Idle, Scenario::Storm]
        );
    }
}
