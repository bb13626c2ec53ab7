//! The Natter server as a library, so integration tests can start the real thing on port 0.
//! `main.rs` only reads the configuration and calls [`startup::Application`].
//!
//! Modules by concern: `config`, `telemetry`, `startup`, `state`, `error`, `web` (router and
//! HTTP plumbing), `net` (client addresses), `auth` (accounts and sessions), `rooms` (rooms and
//! DMs over HTTP and edits, deletions, reactions), `media` (uploads and serving them), `realtime` (WebSockets, fan-out, the message writer), `storage` (all SQL).

pub mod auth;
pub mod clock;
pub mod config;
pub mod emoji;
pub mod error;
pub mod media;
pub mod net;
pub mod push;
pub mod read_state;
pub mod realtime;
pub mod rooms;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod web;
