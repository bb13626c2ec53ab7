//! Natter's users for the scenarios: `n` accounts (`user00000`, ...), each in a ten-member group
//! room and a DM with its neighbour, and a tokens file to act as them later.
//!
//! Sign-up hashes the password with argon2id (tens of ms of CPU each, by design), so thousands
//! of users take minutes: the suite does this once per schema and copies the resulting data
//! directory for every run. Tokens stay valid for the session TTL (30 days).

use std::io::Write as _;
use std::time::Instant;

use anyhow::{Context, Result};
use futures_util::{StreamExt, stream};

use super::GROUP;
use crate::api::{self, Cred};
use crate::fleet::Env;

pub async fn run(env: &Env, n: usize, tokens_path: &str) -> Result<Vec<Cred>> {
    let t = Instant::now();
    eprintln!("seed: signing up {n} users (argon2: this takes a while)");
    let names = (0..n).map(api::username).collect();
    let users = api::signup_all(&env.http, &env.base, names, 4).await?;
    eprintln!(
        "seed: {n} users in {:.0} s; rooms and DMs",
        t.elapsed().as_secs_f64()
    );
    {
        let groups: Vec<Vec<&Cred>> = users.chunks(GROUP).map(|c| c.iter().collect()).collect();
        let mut made = stream::iter(groups.iter().enumerate())
            .map(|(g, members)| async move {
                let name = format!("group {g}");
                api::room_with(&env.http, &env.base, &name, members, 4).await
            })
            .buffer_unordered(8);
        while let Some(r) = made.next().await {
            r?;
        }
    }
    {
        let mut dms = stream::iter(users.chunks(2).filter(|p| p.len() == 2))
            .map(|pair| api::open_dm(&env.http, &env.base, &pair[0].token, &pair[1].name))
            .buffer_unordered(16);
        while let Some(r) = dms.next().await {
            r?;
        }
    }
    save(tokens_path, &users)?;
    eprintln!(
        "seed: done in {:.0} s, tokens in {tokens_path}",
        t.elapsed().as_secs_f64()
    );
    Ok(users)
}

pub fn save(path: &str, users: &[Cred]) -> Result<()> {
    let mut f = std::fs::File::create(path).with_context(|| format!("creating {path}"))?;
    for u in users {
        writeln!(f, "{}\t{}\t{}", u.id, u.name, u.token)?;
    }
    Ok(())
}

pub fn load(path: &str) -> Result<Vec<Cred>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut f = l.split('\t');
            Ok(Cred {
                id: f.next().context("id")?.parse()?,
                name: f.next().context("name")?.to_owned(),
                token: f.next().context("token")?.to_owned(),
            })
        })
        .collect()
}
