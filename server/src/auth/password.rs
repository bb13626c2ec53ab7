//! Password hashing: argon2id with one of OWASP's parameter sets (m = 7168 KiB, t = 5, p = 1).
//!
//! OWASP's cheat sheet lists five argon2id settings of equal strength that trade memory for
//! passes. Natter used the 19 MiB, 2-pass one until the fifteenth round of docs/perf.md and now
//! uses the 7 MiB, 5-pass one: a server that has answered a sign-in keeps its hashing buffer,
//! 24.0 MiB of RSS in all instead of 36.1 (the idle budget is 30 MB), and a hash took ~10 %
//! less CPU. Hashes made with other parameters keep verifying (a PHC string carries its
//! parameters), and a successful sign-in with one returns a new hash for the caller to store
//! ([`Verified::Yes`]), so accounts move to the current parameters as their owners sign in.
//!
//! Each hash needs 7 MiB of working memory and tens of milliseconds of CPU. Hashing runs on a
//! fixed pool of `hash_concurrency` worker threads, each owning one reusable block buffer
//! (enlarged for an older hash that needs more, then shrunk back): memory is bounded
//! (measured: 60 concurrent sign-ups took the process from 10 MB to 655 MB RSS when every hash
//! allocated its own buffer on the blocking pool, because the allocator keeps freed arenas),
//! and the async runtime never runs a hash. Jobs queue in a bounded channel; a caller that
//! cannot get in within `hash_queue_timeout` gets 503.
//!
//! Unknown usernames are verified against a dummy hash so that "no such user" and "wrong
//! password" take comparable time and cannot be told apart.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use anyhow::Context;
use app::domain::Password;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;

/// The most common passwords, most common first: the list Django ships (Royce Williams, 2018,
/// ~20,000 entries, a superset of the 10,000 most common). Compared lower-cased.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
});

pub fn is_common(password: &Password) -> bool {
    COMMON_PASSWORDS.contains(password.expose().to_lowercase().as_str())
}

const M_COST_KIB: u32 = 7 * 1024;
const T_COST: u32 = 5;
const P_COST: u32 = 1;
const OUTPUT_LEN: usize = 32;
/// Jobs waiting for a worker.
const QUEUE: usize = 64;
/// Scheduling priority of the hashing threads (Linux nice value, per thread), on top of the
/// `SCHED_IDLE` class (see [`yield_to_everything`]). Chat work must not wait behind a login
/// storm. Measured in docs/perf.md (S4 login storm).
const HASH_NICE: i32 = 10;

/// After each hash a hashing thread rests for this share of the time the hash took, so that
/// hashing takes at most three quarters of a core's time (`1 / (1 + REST)`). `SCHED_IDLE`
/// alone lets a login storm fill every moment chat leaves: with the core kept 98 % busy that
/// way (S4c on a 2-vCPU VM) chat's p99 reached 20-34 ms in 3 of 6 stormy steps, and in none
/// of 21 with this rest, the core then ~80 % busy (docs/perf.md, fourteenth round). Logins
/// during a storm queue a little longer; a single login does not wait for the rest, which
/// comes after its answer.
const REST: f64 = 1.0 / 3.0;

/// How long a hashing thread rests after a hash that took `took` (see [`REST`]).
pub fn rest_after(took: Duration) -> Duration {
    took.mul_f64(REST)
}

/// Puts the calling thread in Linux's `SCHED_IDLE` class: it runs when nothing else wants the
/// core, and a waking chat thread preempts it at once. With a nice value alone the kernel's
/// EEVDF scheduler lets a running hashing thread finish its slice first, milliseconds that a
/// login storm added to message latency (S4c in docs/perf.md). Hashing still progresses on a
/// busy core: an idle-class thread keeps a minimal share.
#[cfg(target_os = "linux")]
fn yield_to_everything() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `sched_setscheduler` reads the `sched_param` we pass by pointer and changes only
    // the calling thread's (pid 0) scheduling policy; it touches no memory of ours.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &raw const param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn yield_to_everything() -> std::io::Result<()> {
    Ok(())
}

fn params() -> Params {
    // Constant, valid parameters: `Params::new` only fails on out-of-range values.
    Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN)).unwrap_or_default()
}

enum Work {
    Hash(Password, oneshot::Sender<anyhow::Result<String>>),
    Verify(Password, Arc<str>, oneshot::Sender<Verified>),
}

/// What checking a password found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// A wrong password, an unknown user, or a stored hash that cannot be read.
    No,
    /// The right password. `rehashed` is a new hash of it with the current parameters when the
    /// stored one was made with others, for the caller to store in its place.
    Yes { rehashed: Option<String> },
}

pub struct Hasher {
    jobs: mpsc::Sender<Work>,
    queue_timeout: Duration,
    dummy_hash: Arc<str>,
    /// Which pool this is in its threads' names (`argon2-<pool>-<thread>`), for tests to tell
    /// their pool's threads from the others'.
    #[cfg(test)]
    pool: usize,
}

/// Pools started so far in this process (a server has one; tests start many).
static POOLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Hasher {
    pub fn new(workers: usize, queue_timeout: Duration) -> anyhow::Result<Self> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        let pool = POOLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for i in 0..workers.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{pool}-{i}"))
                .spawn(move || worker(&queue))
                .context("starting a hashing thread")?;
        }
        let dummy = dummy_hash()?;
        Ok(Self {
            jobs,
            queue_timeout,
            dummy_hash: dummy.into(),
            #[cfg(test)]
            pool,
        })
    }

    /// Hashes a new password into a PHC string (algorithm, parameters and salt included).
    pub async fn hash(&self, password: Password) -> Result<String, ApiError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Work::Hash(password, tx)).await?;
        rx.await
            .map_err(|e| ApiError::Internal(e.into()))?
            .map_err(ApiError::Internal)
    }

    /// Checks `password` against `stored`, or against a dummy hash when the user is unknown
    /// (always [`Verified::No`] then), so both cases cost the same.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<Verified, ApiError> {
        let known = stored.is_some();
        let hash: Arc<str> = stored.map_or_else(|| self.dummy_hash.clone(), Into::into);
        let (tx, rx) = oneshot::channel();
        self.submit(Work::Verify(password, hash, tx)).await?;
        let verdict = rx.await.map_err(|e| ApiError::Internal(e.into()))?;
        Ok(if known { verdict } else { Verified::No })
    }

    async fn submit(&self, work: Work) -> Result<(), ApiError> {
        tokio::time::timeout(self.queue_timeout, self.jobs.send(work))
            .await
            .map_err(|_| ApiError::Busy)?
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("hashing threads stopped")))
    }
}

/// Gives the calling thread the hashing threads' priority: the nice value [`HASH_NICE`] and
/// the `SCHED_IDLE` class. Public for the benchmark, which runs the same load beside chat.
pub fn lower_priority() {
    // On Linux the nice value is per thread: this lowers only the calling thread.
    if let Err(e) = rustix::process::setpriority_process(None, HASH_NICE) {
        tracing::warn!(error = %e, "could not lower the hashing thread's priority");
    }
    if let Err(e) = yield_to_everything() {
        tracing::warn!(error = %e, "could not make the hashing thread SCHED_IDLE");
    }
}

fn worker(queue: &Mutex<mpsc::Receiver<Work>>) {
    lower_priority();
    // This thread's working memory, allocated on first use and reused for every hash.
    let mut blocks: Vec<Block> = Vec::new();
    loop {
        let job = {
            let mut queue = queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.blocking_recv()
        };
        let started = std::time::Instant::now();
        match job {
            None => return, // the Hasher is gone
            Some(Work::Hash(password, reply)) => {
                reply.send(hash_with(&mut blocks, password.expose())).ok();
            }
            Some(Work::Verify(password, stored, reply)) => {
                let verdict = if verify_with(&mut blocks, password.expose(), &stored) {
                    Verified::Yes {
                        rehashed: outdated(&stored)
                            .then(|| hash_with(&mut blocks, password.expose()))
                            .and_then(|new| {
                                new.inspect_err(|e| tracing::warn!(error = %e, "rehashing failed"))
                                    .ok()
                            }),
                    }
                } else {
                    Verified::No
                };
                reply.send(verdict).ok();
            }
        }
        fit_blocks(&mut blocks);
        std::thread::sleep(rest_after(started.elapsed()));
    }
}

fn ensure_blocks(blocks: &mut Vec<Block>, count: usize) {
    if blocks.len() < count {
        blocks.resize(count, Block::default());
    }
}

/// Gives back what a hash made with larger parameters (before they changed) needed beyond what
/// the current ones need, so that a thread holds 7 MiB, not 19, once old hashes are verified.
fn fit_blocks(blocks: &mut Vec<Block>) {
    let count = params().block_count();
    if blocks.len() > count {
        blocks.truncate(count);
        blocks.shrink_to_fit();
    }
}

fn hash_with(blocks: &mut Vec<Block>, password: &str) -> anyhow::Result<String> {
    let params = params();
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let mut out = [0u8; OUTPUT_LEN];
    ensure_blocks(blocks, params.block_count());
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, &mut blocks[..])
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    phc_string(&params, &salt, &out)
}

/// What unknown usernames are verified against: our parameters, a random salt and a random
/// output that no password hashes to. Verifying against it costs what verifying a real hash
/// costs; making it costs nothing (hashing a dummy password at start took ~30 ms of the
/// server's start to ready).
fn dummy_hash() -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    let mut out = [0u8; OUTPUT_LEN];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    getrandom::fill(&mut out).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    phc_string(&params(), &salt, &out)
}

/// The PHC string of an argon2id hash: algorithm, version, parameters, salt, output.
fn phc_string(params: &Params, salt: &[u8], out: &[u8]) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| anyhow::anyhow!("params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(out).map_err(|e| anyhow::anyhow!("output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Whether `stored`, a hash that verified, was made otherwise than [`hash_with`] makes one
/// today: another algorithm, version, parameters or output length.
fn outdated(stored: &str) -> bool {
    let Ok(phc) = PasswordHash::new(stored) else {
        return true;
    };
    let current = params();
    let same_params = Params::try_from(&phc).is_ok_and(|p| {
        (p.m_cost(), p.t_cost(), p.p_cost())
            == (current.m_cost(), current.t_cost(), current.p_cost())
    });
    phc.algorithm != argon2::ARGON2ID_IDENT
        || phc.version != Some(Version::V0x13.into())
        || !same_params
        || phc.hash.is_none_or(|h| h.len() != OUTPUT_LEN)
}

/// Verifies with the parameters stored in the hash (so old hashes keep working if the
/// defaults change). Any malformed hash simply does not verify.
fn verify_with(blocks: &mut Vec<Block>, password: &str, stored: &str) -> bool {
    let Ok(phc) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(params), Some(salt), Some(expected)) = (Params::try_from(&phc), phc.salt, phc.hash)
    else {
        return false;
    };
    let algorithm = match Algorithm::try_from(phc.algorithm) {
        Ok(a) => a,
        Err(_) => return false,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    ensure_blocks(blocks, params.block_count());
    let computed = Argon2::new(algorithm, Version::V0x13, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut out,
        &mut blocks[..],
    );
    // `Output`'s equality is constant-time.
    computed.is_ok() && Output::new(&out).is_ok_and(|o| o == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::parse(s).unwrap()
    }

    #[test]
    fn the_list_has_the_most_common_passwords() {
        assert!(COMMON_PASSWORDS.len() >= 10_000);
        for common in [
            "password",
            "12345678",
            "qwertyuiop",
            "iloveyou",
            "Password1",
        ] {
            assert!(is_common(&pw(common)), "{common}");
        }
        assert!(!is_common(&pw("correct horse battery staple")));
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let h = Hasher::new(1, Duration::from_secs(5)).unwrap();
        let stored = h.hash(pw("a long passphrase")).await.unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"),
            "{stored}"
        );
        assert_eq!(
            h.verify(pw("a long passphrase"), Some(stored.clone()))
                .await
                .unwrap(),
            Verified::Yes { rehashed: None }
        );
        assert_eq!(
            h.verify(pw("a long passphrasE"), Some(stored))
                .await
                .unwrap(),
            Verified::No
        );
    }

    /// A hash made with other parameters (OWASP's 19 MiB set, which Natter used before) still
    /// verifies, and the right password comes back hashed anew with today's parameters; a
    /// wrong one gets nothing.
    #[tokio::test]
    async fn a_hash_with_old_parameters_verifies_and_is_replaced() {
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let old_params = Params::new(19 * 1024, 2, 1, Some(OUTPUT_LEN)).unwrap();
        let old = Argon2::new(Algorithm::Argon2id, Version::V0x13, old_params)
            .hash_password(b"a long passphrase", &salt)
            .unwrap()
            .to_string();
        assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{old}");
        let h = Hasher::new(1, Duration::from_secs(5)).unwrap();
        assert_eq!(
            h.verify(pw("a long passphrasE"), Some(old.clone()))
                .await
                .unwrap(),
            Verified::No
        );
        let Verified::Yes {
            rehashed: Some(new),
        } = h.verify(pw("a long passphrase"), Some(old)).await.unwrap()
        else {
            panic!("the right password with old parameters should verify and be rehashed");
        };
        assert!(new.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{new}");
        assert_eq!(
            h.verify(pw("a long passphrase"), Some(new)).await.unwrap(),
            Verified::Yes { rehashed: None }
        );
    }

    #[test]
    fn a_buffer_grown_for_an_old_hash_shrinks_back() {
        let mut blocks = Vec::new();
        let old = Params::new(19 * 1024, 2, 1, Some(OUTPUT_LEN)).unwrap();
        ensure_blocks(&mut blocks, old.block_count());
        fit_blocks(&mut blocks);
        assert_eq!(blocks.len(), params().block_count());
        assert!(
            blocks.capacity() < old.block_count(),
            "{}",
            blocks.capacity()
        );
        let kept = blocks.as_ptr();
        fit_blocks(&mut blocks);
        assert_eq!(
            blocks.as_ptr(),
            kept,
            "a buffer of the right size stays as it is"
        );
    }

    #[test]
    fn only_hashes_made_otherwise_are_outdated() {
        let current = hash_with(&mut Vec::new(), "a long passphrase").unwrap();
        assert!(!outdated(&current));
        for (from, to) in [
            ("m=7168,t=5,p=1", "m=19456,t=2,p=1"),
            ("m=7168,t=5,p=1", "m=7168,t=4,p=1"),
            ("m=7168,t=5,p=1", "m=7168,t=5,p=2"),
            ("$argon2id$", "$argon2i$"),
            ("$v=19$", "$v=16$"),
        ] {
            let other = current.replacen(from, to, 1);
            assert_ne!(other, current);
            assert!(outdated(&other), "{other}");
        }
        assert!(outdated("not a phc string"));
    }

    /// The hashing threads yield to chat work: `SCHED_IDLE` (policy 5) at nice 10, read back
    /// from the kernel (`/proc/self/task/<tid>/stat`, fields 19 and 41).
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_in_the_idle_class() {
        let h = Hasher::new(1, Duration::from_secs(5)).unwrap();
        // A finished hash means a worker has started, and set its class before its first job.
        h.hash(pw("a long passphrase")).await.unwrap();
        let mut classes = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let dir = task.unwrap().path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if !comm.starts_with("argon2-") {
                continue;
            }
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            // `fields[0]` is field 3 (state).
            classes.push((
                fields.get(16).map(|s| (*s).to_owned()),
                fields.get(38).map(|s| (*s).to_owned()),
            ));
        }
        assert!(
            classes.contains(&(Some("10".to_owned()), Some("5".to_owned()))),
            "hashing threads (nice, policy): {classes:?}"
        );
    }

    /// Under a queue of logins a hashing thread leaves part of its time idle ([`REST`]): its
    /// CPU time over the wall time of eight hashes back to back stays well under all of it.
    /// The thread's CPU time is the kernel's (`/proc/self/task/<tid>/schedstat`, ns).
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_hashing_thread_rests_between_hashes() {
        let h = Arc::new(Hasher::new(1, Duration::from_secs(120)).unwrap());
        h.hash(pw("a long passphrase")).await.unwrap();
        let name = format!("argon2-{}-0", h.pool);
        let cpu_ns = || -> u64 {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .map(|t| t.unwrap().path())
                .filter(|dir| {
                    std::fs::read_to_string(dir.join("comm"))
                        .unwrap_or_default()
                        .trim()
                        == name
                })
                .filter_map(|dir| {
                    let stat = std::fs::read_to_string(dir.join("schedstat")).ok()?;
                    stat.split_whitespace().next()?.parse::<u64>().ok()
                })
                .sum()
        };
        let (cpu_before, started) = (cpu_ns(), std::time::Instant::now());
        assert!(cpu_before > 0, "no thread named {name}");
        let hashes: Vec<_> = (0..8)
            .map(|_| {
                let h = h.clone();
                tokio::spawn(async move { h.hash(pw("a long passphrase")).await })
            })
            .collect();
        for hash in hashes {
            hash.await.unwrap().unwrap();
        }
        let share = (cpu_ns() - cpu_before) as f64 / started.elapsed().as_nanos() as f64;
        // Eight hashes and the seven rests between them: at most 8 / (8 + 7 / 3) = 0.77.
        assert!(
            share < 0.85,
            "the hashing thread was busy {share:.2} of the time"
        );
    }

    #[test]
    fn a_rest_is_a_third_of_the_hash() {
        assert_eq!(
            rest_after(Duration::from_millis(30)),
            Duration::from_millis(10)
        );
    }

    /// Unknown users are verified against the dummy hash, so it must cost what a real one
    /// does: same algorithm, version, parameters and output length.
    #[test]
    fn the_dummy_hash_has_the_parameters_of_real_ones() {
        let dummy = dummy_hash().unwrap();
        let real = hash_with(&mut Vec::new(), "a long passphrase").unwrap();
        let (dummy, real) = (
            PasswordHash::new(&dummy).unwrap(),
            PasswordHash::new(&real).unwrap(),
        );
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert_eq!(dummy.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
        assert_eq!(dummy.salt.map(|s| s.len()), real.salt.map(|s| s.len()));
    }

    #[tokio::test]
    async fn unknown_users_never_verify_even_with_the_dummy_password() {
        let h = Hasher::new(1, Duration::from_secs(5)).unwrap();
        let dummy = pw("not a real password, only for timing");
        assert_eq!(h.verify(dummy, None).await.unwrap(), Verified::No);
    }

    #[test]
    fn hashes_made_by_the_standard_argon2_api_verify_and_vice_versa() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let standard = Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
            .hash_password(b"a long passphrase", &salt)
            .unwrap()
            .to_string();
        let mut blocks = Vec::new();
        assert!(verify_with(&mut blocks, "a long passphrase", &standard));
        assert!(!verify_with(&mut blocks, "a long passphrasf", &standard));
        let ours = hash_with(&mut blocks, "another one").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"another one", &parsed)
                .is_ok()
        );
        assert!(!verify_with(&mut blocks, "x", "not a phc string"));
    }

    #[tokio::test]
    async fn long_passwords_are_not_truncated() {
        let h = Hasher::new(1, Duration::from_secs(5)).unwrap();
        let long = "x".repeat(127);
        let stored = h.hash(pw(&format!("{long}a"))).await.unwrap();
        assert_eq!(
            h.verify(pw(&format!("{long}b")), Some(stored))
                .await
                .unwrap(),
            Verified::No
        );
    }
}
