//! `natter-load`: Natter's benchmark suite over real sockets (issue 6; results in docs/perf.md).
//!
//! Scenarios (`--scenario`): S1 idle connections, S2 room fan-out and its knee, S3 one big room
//! with clients that stop reading, S4 durable writes, history pages at 10 million messages and
//! a login storm, and the client's first-load bytes. Each runs against a server you started
//! (`--url`, `--pid` for its CPU and memory), Natter or the Node baseline in bench/baseline
//! (`--target baseline`, spoken to over socket.io's WebSocket transport by the same client
//! code), or all of them with `--scenario suite`, which starts pinned servers itself,
//! interleaves the two targets and prints the comparison table (`make bench`, bench/run.sh).
//!
//! Layout: `proto` (the two wire protocols), `fleet` (many sockets with send schedules and the
//! lost/duplicated accounting), `scenarios/*` (one measurement each), `suite` (servers,
//! fixtures, interleaving), `report` (percentiles, the table and the budgets), `procfs` (CPU,
//! RSS and TCP states from /proc), `api` (Natter's HTTP calls for setup).
//!
//! Every acknowledged send must reach every reading member of its room exactly once: lost and
//! duplicated deliveries are counted, and `--check 1` makes either an error (the smoke run in
//! `make test`, bench/smoke.sh).

mod api;
mod cli;
mod fleet;
mod procfs;
mod proto;
mod report;
mod scenarios;
mod suite;

use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use cli::Scenario;
use fleet::Env;
use proto::Target;

#[tokio::main]
async fn main() -> Result<()> {
    let args = cli::parse()?;
    if args.scenario == Scenario::Suite {
        return suite::run(&args).await;
    }
    if args.scenario == Scenario::Floor {
        let dir = std::path::PathBuf::from(&args.work_dir);
        std::fs::create_dir_all(&dir)?;
        scenarios::floor::run(&args, &dir)?;
        return Ok(());
    }
    if args.scenario == Scenario::Client {
        scenarios::client::run(&args.site)?;
        println!();
        scenarios::client::tti(&args.url, args.tti_runs)?;
        return Ok(());
    }
    let hostport = args
        .url
        .split("://")
        .nth(1)
        .context("--url needs http://host:port")?;
    let addr = hostport
        .to_socket_addrs()?
        .find(std::net::SocketAddr::is_ipv4)
        .context("--url must resolve to an IPv4 address")?;
    let users = match &args.tokens {
        Some(path)
            if args.target == Target::Natter
                && args.scenario != Scenario::Seed
                && std::path::Path::new(path).exists() =>
        {
            scenarios::seed::load(path)?
        }
        _ => Vec::new(),
    };
    let mut env = Env {
        target: args.target,
        base: args.url.clone(),
        addr,
        pid: args.pid,
        http: reqwest::Client::new(),
        clock: Instant::now(),
        source_ips: args.source_ips,
        users,
    };
    if args.target == Target::Natter && env.users.is_empty() && args.scenario != Scenario::History {
        // No fixture: sign up what this scenario needs (fine for small runs; argon2 is slow).
        let n = match args.scenario {
            Scenario::Idle => args.connections,
            Scenario::BigRoom => args.big_room,
            Scenario::Writes => args.write_senders,
            Scenario::Storm => args.rooms * args.members + 50,
            _ => args.rooms * args.members,
        };
        let path = args.tokens.clone().unwrap_or_else(|| {
            std::env::temp_dir()
                .join(format!("natter-load-{}.tsv", std::process::id()))
                .display()
                .to_string()
        });
        env.users = scenarios::seed::run(&env, n, &path).await?;
    }
    if args.scenario == Scenario::Seed {
        return Ok(());
    }
    let env = Arc::new(env);
    let metrics = match args.scenario {
        Scenario::Idle => scenarios::idle::run(&env, &args).await?,
        Scenario::Fanout => scenarios::fanout::run(&env, &args).await?,
        Scenario::BigRoom => scenarios::bigroom::run(&env, &args).await?,
        Scenario::Writes => scenarios::writes::run(&env, &args).await?,
        Scenario::History => scenarios::history::run(&env, &args).await?,
        Scenario::Storm => scenarios::storm::run(&env, &args).await?,
        Scenario::Client | Scenario::Floor | Scenario::Seed | Scenario::Suite => {
            unreachable!("handled above")
        }
    };
    drop(metrics);
    Ok(())
}
