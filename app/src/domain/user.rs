//! Users: ids, usernames, display names and passwords.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::DomainError;

/// A user's id. Server-assigned, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(i64);

impl UserId {
    pub fn new(raw: i64) -> Self {
        Self(raw)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A login name: 3-32 characters of `[a-z0-9_.-]`.
///
/// Input is trimmed and lower-cased before the check, so `Alice` and `alice` are the same
/// account: uniqueness is case-insensitive by construction, and login accepts either spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub const MIN_CHARS: usize = 3;
    pub const MAX_CHARS: usize = 32;

    pub fn parse(input: &str) -> Result<Self, DomainError> {
        // ASCII only: the rule allows nothing else, and Unicode lower-casing would map a
        // lookalike (the Kelvin sign) onto an ASCII letter.
        let name = input.trim().to_ascii_lowercase();
        let len = name.chars().count();
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&len) || !name.chars().all(allowed) {
            return Err(DomainError::InvalidUsername);
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Username {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Username::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name shown next to messages: free text, trimmed, 1-64 characters, no control characters
/// (they would let one name impersonate another or break the layout).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let name = input.trim();
        let len = name.chars().count();
        if len == 0 || len > Self::MAX_CHARS || name.chars().any(char::is_control) {
            return Err(DomainError::InvalidDisplayName);
        }
        Ok(Self(name.to_owned()))
    }

    /// The default display name of a new account.
    pub fn from_username(username: &Username) -> Self {
        Self(username.as_str().to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for DisplayName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        DisplayName::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password as typed: 8-128 characters, used whole (never trimmed or truncated), with no
/// composition rules (NIST SP 800-63B). The common-password check lives on the server, which
/// ships the list. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let len = input.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&len) {
            return Err(DomainError::InvalidPassword);
        }
        Ok(Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_trimmed() {
        assert_eq!(
            Username::parse("  Alice_1.x-Y ").unwrap().as_str(),
            "alice_1.x-y"
        );
    }

    #[test]
    fn usernames_outside_3_to_32_chars_are_refused() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        assert!(Username::parse(&"a".repeat(33)).is_err());
    }

    #[test]
    fn usernames_with_other_characters_are_refused() {
        for bad in [
            "al ice",
            "alice!",
            "ålice",
            "al/ice",
            "al@ice",
            "ali\u{0}ce",
            "аlice",
            // The Kelvin sign lower-cases to an ASCII "k" in Unicode; it is not one.
            "\u{212a}elvin",
            "ÅLICE",
        ] {
            assert_eq!(
                Username::parse(bad),
                Err(DomainError::InvalidUsername),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn display_names_are_trimmed_and_limited() {
        assert_eq!(
            DisplayName::parse("  Alice Liddell ").unwrap().as_str(),
            "Alice Liddell"
        );
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"é".repeat(64)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(65)).is_err());
        assert!(DisplayName::parse("Al\nice").is_err());
        assert!(DisplayName::parse("Al\u{7}ice").is_err());
    }

    #[test]
    fn passwords_are_8_to_128_characters_counted_as_characters() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(
            Password::parse(&"ü".repeat(128)).is_ok(),
            "256 bytes but 128 characters"
        );
        assert!(Password::parse(&"a".repeat(129)).is_err());
    }

    #[test]
    fn passwords_are_never_trimmed() {
        assert_eq!(
            Password::parse("  spaced  ").unwrap().expose(),
            "  spaced  "
        );
    }

    #[test]
    fn password_debug_does_not_leak_the_secret() {
        let p = Password::parse("hunter2hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn deserializing_enforces_the_rules() {
        assert!(serde_json::from_str::<Username>("\"Bob\"").is_ok());
        assert!(serde_json::from_str::<Username>("\"b\"").is_err());
    }
}
