//! Session tokens: HS256 JWTs that name a session row.
//!
//! A token proves nothing by itself: after the signature and `exp` check, the session row it
//! names (`sid`) must exist, be unrevoked and unexpired. That makes logout real.
//!
//! Decisions: the algorithm is pinned to HS256 (a token claiming `none` or anything else is
//! refused before its signature is looked at); leeway is 3 s, enough for clock steps between
//! nodes and no more. The 256-bit key is generated on first start into `<data dir>/jwt.key`,
//! mode 0600.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

const KEY_FILE: &str = "jwt.key";
const LEEWAY_SECS: u64 = 3;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The session id (a row in `sessions`).
    pub sid: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Expires at, unix seconds.
    pub exp: i64,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    /// Loads the key from the data dir, creating it (0600) on first start.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(KEY_FILE);
        let secret = match std::fs::read_to_string(&path) {
            Ok(text) => hex::decode(text.trim()).context("jwt.key is not hex")?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key(&path)?,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        anyhow::ensure!(secret.len() >= 32, "jwt.key is shorter than 256 bits");
        Ok(Self::from_secret(&secret))
    }

    fn from_secret(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn encode(&self, claims: &Claims) -> anyhow::Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .context("encoding token")
    }

    /// The claims of a well-formed, correctly signed, unexpired HS256 token; `None` otherwise.
    pub fn decode(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}

fn create_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut secret = vec![0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    write_secret_file(path, hex::encode(&secret).as_bytes())?;
    Ok(secret)
}

/// Creates `path` readable by the owner only (0600) with `contents`; fails if it exists.
pub fn write_secret_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp_offset: i64) -> Claims {
        let now = crate::clock::now_secs();
        Claims {
            sub: "1".into(),
            sid: "s".into(),
            iat: now,
            exp: now + exp_offset,
        }
    }

    #[test]
    fn a_token_round_trips() {
        let keys = TokenKeys::from_secret(&[7; 32]);
        let token = keys.encode(&claims(60)).unwrap();
        assert_eq!(keys.decode(&token).unwrap().sid, "s");
    }

    #[test]
    fn expired_tokens_and_other_keys_are_refused() {
        let keys = TokenKeys::from_secret(&[7; 32]);
        assert!(keys.decode(&keys.encode(&claims(-10)).unwrap()).is_none());
        let other = TokenKeys::from_secret(&[8; 32]);
        assert!(keys.decode(&other.encode(&claims(60)).unwrap()).is_none());
    }

    #[test]
    fn the_key_file_is_created_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let a = TokenKeys::load_or_create(dir.path()).unwrap();
        let b = TokenKeys::load_or_create(dir.path()).unwrap();
        assert!(b.decode(&a.encode(&claims(60)).unwrap()).is_some());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
