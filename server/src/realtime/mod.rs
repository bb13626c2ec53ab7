//! Real-time delivery: the WebSocket connections (`connection`, on the shared `socket` code),
//! the in-process fan-out `hub`, the group-committing message `writer`, and `last_seen`, which
//! gathers when users went offline and writes it in batches.
//!
//! The data flow of a message: a client's `send` frame → `connection` parses it into domain
//! types → `writer` queue → one transaction for the whole batch (durable) → `hub` publishes the
//! serialized frame, once, to every connection following the room, in commit order → the
//! sender gets `sent`.

pub mod connection;
pub mod hub;
pub mod last_seen;
pub mod outbox;
pub mod socket;
pub mod writer;
