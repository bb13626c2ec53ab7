//! Password hashing: argon2id with OWASP's parameters (m = 19456 KiB, t = 2, p = 1).
//!
//! Each hash costs ~19 MiB and tens of milliseconds of CPU, so hashing runs on the blocking pool
//! behind a semaphore: at most `hash_concurrency` at once, the rest queue for at most
//! `hash_queue_timeout` and then get 503. A login storm slows logins; it cannot starve the async
//! runtime or exhaust memory.
//!
//! Unknown usernames are verified against a dummy hash so that "no such user" and "wrong
//! password" take comparable time and cannot be told apart.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use anyhow::Context;
use app::domain::Password;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

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

fn argon2() -> Argon2<'static> {
    // Constant parameters; `Params::new` only fails on out-of-range values.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub struct Hasher {
    permits: Semaphore,
    queue_timeout: Duration,
    dummy_hash: Arc<str>,
}

impl Hasher {
    pub fn new(concurrency: usize, queue_timeout: Duration) -> anyhow::Result<Self> {
        let dummy = hash_blocking("not a real password, only for timing").context("dummy hash")?;
        Ok(Self {
            permits: Semaphore::new(concurrency.max(1)),
            queue_timeout,
            dummy_hash: dummy.into(),
        })
    }

    /// Hashes a new password into a PHC string (algorithm, parameters and salt included).
    pub async fn hash(&self, password: Password) -> Result<String, ApiError> {
        self.run(move || hash_blocking(password.expose()))
            .await?
            .map_err(ApiError::Internal)
    }

    /// Checks `password` against `stored`, or against a dummy hash when the user is unknown
    /// (always `false` then), so both cases cost the same.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, ApiError> {
        let known = stored.is_some();
        let hash: Arc<str> = stored.map_or_else(|| self.dummy_hash.clone(), Into::into);
        let ok = self
            .run(move || match PasswordHash::new(&hash) {
                Ok(parsed) => argon2()
                    .verify_password(password.expose().as_bytes(), &parsed)
                    .is_ok(),
                Err(_) => false,
            })
            .await?;
        Ok(ok && known)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = tokio::time::timeout(self.queue_timeout, self.permits.acquire())
            .await
            .map_err(|_| ApiError::Busy)?
            .map_err(|e| ApiError::Internal(e.into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ApiError::Internal(e.into()))
    }
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
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
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(
            h.verify(pw("a long passphrase"), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(
            !h.verify(pw("a long passphrasE"), Some(stored))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn unknown_users_never_verify_even_with_the_dummy_password() {
        let h = Hasher::new(1, Duration::from_secs(5)).unwrap();
        let dummy = pw("not a real password, only for timing");
        assert!(!h.verify(dummy, None).await.unwrap());
    }

    #[tokio::test]
    async fn long_passwords_are_not_truncated() {
        let h = Hasher::new(1, Duration::from_secs(5)).unwrap();
        let long = "x".repeat(127);
        let stored = h.hash(pw(&format!("{long}a"))).await.unwrap();
        assert!(
            !h.verify(pw(&format!("{long}b")), Some(stored))
                .await
                .unwrap()
        );
    }
}
