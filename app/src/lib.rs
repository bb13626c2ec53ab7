//! Natter's shared crate, compiled twice: into the server (default features) and into the
//! WebAssembly client (`csr`).
//!
//! - [`domain`]: newtypes whose constructors enforce the rules (usernames, passwords, ...), so a
//!   value that exists is valid on both sides of the wire.
//! - [`api`]: the JSON bodies of the HTTP API, shared so client and server cannot drift apart.
//! - [`error`]: the one error shape a client may see.
//! - [`json`]: how the client reads and writes those types (the server uses serde's derives).
//! - `ui` (behind `csr`): the Leptos single-page app.

pub mod api;
pub mod domain;
pub mod error;
pub mod json;
pub mod markdown;
pub mod protocol;

#[cfg(feature = "csr")]
mod ui;
#[cfg(feature = "csr")]
pub use ui::App;
