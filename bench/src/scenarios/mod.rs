//! The measurements, one module each. Every scenario prints a block of results as it goes and
//! returns its numbers as [`Metrics`](crate::report::Metrics) for the suite's table.
//!
//! Room layout shared by Natter's fixture (`seed`) and the baseline (which joins rooms by
//! number at connection time): user `i` is in group room `i / 10` (ten members) and in a DM
//! with its neighbour `i ^ 1`. Scenario rooms (S2's 50 x 20, S3's big room) are created at the
//! start of each run, on top of that.

pub mod bigroom;
pub mod client;
pub mod fanout;
pub mod floor;
pub mod history;
pub mod idle;
pub mod seed;
pub mod storm;
pub mod writes;

use anyhow::{Result, ensure};

use crate::api;
use crate::fleet::Env;
use crate::proto::Target;

/// Members of a group room (S1).
pub const GROUP: usize = 10;

/// The baseline's number for user `i`'s group room.
pub fn baseline_group_room(i: usize) -> i64 {
    1 + (i / GROUP) as i64
}

/// The baseline's number for user `i`'s DM.
pub fn baseline_dm_room(i: usize) -> i64 {
    100_000 + (i / 2) as i64
}

/// A room of a scenario and its members (user numbers).
#[derive(Debug, Clone)]
pub struct RoomSetup {
    pub id: i64,
    pub users: Vec<usize>,
}

/// `count` rooms of `size` members each, from user `first_user` on: created through the API
/// on Natter, numbered from `baseline_base` on the baseline.
pub async fn make_rooms(
    env: &Env,
    label: &str,
    count: usize,
    size: usize,
    first_user: usize,
    baseline_base: i64,
) -> Result<Vec<RoomSetup>> {
    let mut rooms = Vec::with_capacity(count);
    for r in 0..count {
        let users: Vec<usize> = (first_user + r * size..first_user + (r + 1) * size).collect();
        let id = match env.target {
            Target::Baseline => baseline_base + r as i64,
            Target::Natter => {
                ensure!(
                    env.users.len() >= first_user + count * size,
                    "{label} needs {} users; the fixture has {} (run with --tokens from --scenario seed)",
                    first_user + count * size,
                    env.users.len()
                );
                let creds: Vec<&api::Cred> = users.iter().map(|&u| &env.users[u]).collect();
                api::room_with(&env.http, &env.base, &format!("{label} {r}"), &creds, 16).await?
            }
        };
        rooms.push(RoomSetup { id, users });
    }
    Ok(rooms)
}

/// A small, seedable generator for request parameters (no dependency for this).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

/// A tag for this run's client ids, different from every earlier run's.
pub fn fresh_tag() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs() as u32)
        & 0x0fff_ffff;
    (base << 4).wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}
