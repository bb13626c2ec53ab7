//! WebSocket plumbing shared by every socket route: limits, the writer task (outbox → socket,
//! batched per flush), the reader loop (heartbeat, shutdown, close handshake), close codes.
//!
//! The chat connection (`connection.rs`) and the test-only echo route (for the Autobahn
//! conformance suite) both run on this code, so conformance is measured on what ships.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

use app::domain::RoomId;

use super::hub::{ConnHandle, Cursor, Outbox, Outgoing};

/// Heartbeat: ping every `every`; a peer silent for `dead_after` is dropped.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    pub every: Duration,
    pub dead_after: Duration,
}

/// A socket's clocks: the heartbeat, when it must end regardless, and by when the handler
/// must have [started](Handler::started) (the chat's `hello`), if it must.
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    pub beat: Heartbeat,
    pub deadline: Deadline,
    pub start_by: Option<Deadline>,
}

/// When the socket must end regardless (the session it was opened with expires), and how.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: Instant,
    pub code: u16,
    pub reason: &'static str,
}

impl Deadline {
    /// No deadline (in practice: thirty years).
    pub fn never() -> Self {
        Self {
            at: Instant::now() + Duration::from_secs(30 * 365 * 24 * 3600),
            code: code::GOING_AWAY,
            reason: "",
        }
    }
}
/// Frames written per flush at most (batching).
const WRITE_BATCH: usize = 64;

/// Standard close codes (RFC 6455 §7.4.1).
pub mod code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const INVALID_DATA: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
}

/// Socket settings. The read buffer starts at 1 KiB and grows only for a larger frame (axum's
/// 128 KiB default costs ~130 KB per idle connection; 4 KiB was 4 of the 20 KiB an idle chat
/// connection cost, see docs/perf.md). Frames are written to the socket once 4 KiB are
/// buffered: tungstenite never shrinks its write buffer, so this threshold (plus the largest
/// frame) is what every socket keeps after a burst. At 16 KiB a 5,000-member room's catch-up
/// left ~29 KB per socket (heaptrack, S3: 193 -> 105 MiB at 4 KiB, same S2 latency and CPU).
pub fn configure(ws: WebSocketUpgrade, max_message: usize) -> WebSocketUpgrade {
    ws.read_buffer_size(1024)
        .write_buffer_size(4 * 1024)
        .max_write_buffer_size(32 * 1024 * 1024)
        .max_message_size(max_message)
        .max_frame_size(max_message)
}

/// What the reader loop should do after a message.
pub enum Flow {
    Continue,
    Stop,
}

/// A socket's message handler.
pub trait Handler {
    fn on_text(&mut self, text: Utf8Bytes) -> impl Future<Output = Flow> + Send;
    fn on_binary(&mut self, data: Bytes) -> impl Future<Output = Flow> + Send;
    /// Whether the peer has done what [`Timers::start_by`] waits for.
    fn started(&self) -> bool {
        true
    }
}

/// Answers `Outgoing::CatchUp` markers with the frame to send (the chat loads messages).
pub trait CatchUp: Send {
    fn load(
        &mut self,
        room: RoomId,
        after: Option<Cursor>,
        upto: Cursor,
    ) -> impl Future<Output = Option<Utf8Bytes>> + Send;
}

/// For sockets that never subscribe to rooms.
pub struct NoCatchUp;

impl CatchUp for NoCatchUp {
    async fn load(&mut self, _: RoomId, _: Option<Cursor>, _: Cursor) -> Option<Utf8Bytes> {
        None
    }
}

/// Writes the outbox to the socket until the connection closes, then sends a close frame.
///
/// This and the other loops here are functions returning `async move` blocks rather than
/// `async fn`s: an async fn keeps its arguments apart from the locals made from them for its
/// whole life, which for a socket's loops is the socket's (docs/perf.md, S1 memory).
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would keep its arguments beside their copies for the socket's life"
)]
pub fn write_loop<C: CatchUp>(
    mut sink: SplitSink<WebSocket, Message>,
    outbox: Outbox,
    conn: ConnHandle,
    mut catch_up: C,
) -> impl Future<Output = ()> + Send {
    async move {
        // One close signal for the whole loop, polled only when there is nothing to write or
        // the socket is full: building and polling it for every frame (a lock each time) was
        // ~3 % of a big room's broadcast (docs/perf.md, tenth round). In between, the close
        // is seen by an atomic check.
        let closed = conn.closed();
        tokio::pin!(closed);
        let mut popped = None;
        loop {
            let first = tokio::select! {
                biased;
                out = outbox.recv() => out,
                () = &mut closed => break,
            };
            if conn.is_closing() {
                popped = Some(first);
                break;
            }
            let step = async {
                feed(&mut sink, first, &mut catch_up).await?;
                for _ in 0..WRITE_BATCH {
                    match outbox.try_recv() {
                        Ok(out) => feed(&mut sink, out, &mut catch_up).await?,
                        Err(_) => break,
                    }
                }
                sink.flush().await
            };
            tokio::select! {
                biased;
                done = step => if done.is_err() { return },
                () = &mut closed => break,
            }
        }
        // Flush what was queued before the close (an error frame explaining it, say), briefly:
        // a peer that does not read gets its socket dropped instead.
        let (code, reason) = conn.close_reason().unwrap_or((code::NORMAL, ""));
        let drain = async {
            let queued = std::iter::from_fn(|| popped.take().or_else(|| outbox.try_recv().ok()));
            for out in queued {
                if !matches!(out, Outgoing::CatchUp { .. } | Outgoing::Ping) {
                    feed(&mut sink, out, &mut catch_up).await?;
                }
            }
            sink.send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await
        };
        if timeout(Duration::from_secs(2), drain).await.is_err() {
            tracing::debug!(conn = conn.id, "close frame not delivered in time");
        }
    }
}

async fn feed<C: CatchUp>(
    sink: &mut SplitSink<WebSocket, Message>,
    out: Outgoing,
    catch_up: &mut C,
) -> Result<(), axum::Error> {
    let message = match out {
        Outgoing::Frame(text) => Message::Text(text),
        Outgoing::Binary(data) => Message::Binary(data),
        Outgoing::Ping => Message::Ping(Bytes::new()),
        // Boxed: the loading future is large and rare; inline, every idle writer task would
        // carry its size.
        Outgoing::CatchUp { room, after, upto } => {
            match Box::pin(catch_up.load(room, after, upto)).await {
                Some(text) => Message::Text(text),
                None => return Ok(()),
            }
        }
    };
    sink.feed(message).await
}

/// Runs a socket to its end: a writer task drains `outbox` to the socket while `handler` gets
/// what the peer sends. Returns when the read side has ended and the close frame is out (or
/// given up on).
pub fn drive<'a, H: Handler + Send, C: CatchUp + 'static>(
    socket: Box<WebSocket>,
    conn: &'a ConnHandle,
    outbox: Outbox,
    catch_up: C,
    shutdown: &'a CancellationToken,
    timers: Timers,
    handler: &'a mut H,
) -> impl Future<Output = ()> + Send + 'a {
    let (sink, mut stream) = (*socket).split();
    let writer = tokio::spawn(write_loop(sink, outbox, conn.clone(), catch_up));
    async move {
        read_loop(&mut stream, conn, shutdown, timers, handler).await;
        conn.close(code::NORMAL, "");
        if let Err(e) = writer.await {
            tracing::warn!(conn = conn.id, error = %e, "socket writer task failed");
        }
    }
}

/// Reads until the peer closes, the connection is closed by us, or the server shuts down.
/// Keeps reading after a close so the close handshake completes (RFC 6455 §5.5.1).
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would keep its arguments beside their copies for the socket's life"
)]
pub fn read_loop<'a, H: Handler + Send>(
    stream: &'a mut SplitStream<WebSocket>,
    conn: &'a ConnHandle,
    shutdown: &'a CancellationToken,
    timers: Timers,
    handler: &'a mut H,
) -> impl Future<Output = ()> + Send + 'a {
    async move {
        let beat = &timers.beat;
        let deadline = &timers.deadline;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + beat.every, beat.every);
        let mut last_heard = Instant::now();
        // One timer serves both ends: the start deadline while it applies, then the final one.
        let mut waiting_start = timers.start_by.filter(|s| s.at < deadline.at);
        let ends = tokio::time::sleep_until(waiting_start.map_or(deadline.at, |s| s.at));
        tokio::pin!(ends);
        loop {
            tokio::select! {
                () = conn.closed() => break,
                () = shutdown.cancelled() => {
                    conn.close(code::GOING_AWAY, "server shutting down");
                    break;
                }
                () = &mut ends => {
                    let ended = waiting_start.unwrap_or(*deadline);
                    conn.close(ended.code, ended.reason);
                    break;
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > beat.dead_after {
                        conn.close(code::GOING_AWAY, "no heartbeat");
                        break;
                    }
                    conn.send(Outgoing::Ping);
                }
                message = stream.next() => {
                    last_heard = Instant::now();
                    let flow = match message {
                        None => return,
                        Some(Err(e)) => {
                            let text = e.to_string();
                            let (code, reason) = if text.contains("too long") || text.contains("Space limit") {
                                (code::TOO_BIG, "message too big")
                            } else if text.contains("UTF-8") || text.contains("utf-8") {
                                (code::INVALID_DATA, "invalid UTF-8")
                            } else {
                                (code::PROTOCOL_ERROR, "protocol error")
                            };
                            tracing::debug!(conn = conn.id, error = %text, "websocket read failed");
                            conn.close(code, reason);
                            break;
                        }
                        // Boxed: handling a frame (a `hello`, a send) is a large future; inline,
                        // every idle connection's task would carry its size (~4 KB measured).
                        Some(Ok(Message::Text(text))) => Box::pin(handler.on_text(text)).await,
                        Some(Ok(Message::Binary(data))) => Box::pin(handler.on_binary(data)).await,
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Flow::Continue,
                        // tungstenite answers the close itself; keep polling until the stream ends.
                        Some(Ok(Message::Close(_))) => Flow::Continue,
                    };
                    if matches!(flow, Flow::Stop) {
                        break;
                    }
                    if waiting_start.is_some() && handler.started() {
                        waiting_start = None;
                        ends.as_mut().reset(deadline.at);
                    }
                }
            }
        }
        // We are closing: wait (briefly) for the peer's close reply so the handshake completes.
        let drain = async { while stream.next().await.is_some() {} };
        timeout(Duration::from_secs(3), drain).await.ok();
    }
}
