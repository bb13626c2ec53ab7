//! The two wire protocols the generator speaks, behind one small interface: Natter's typed JSON
//! frames at `/ws`, and the baseline's socket.io over its WebSocket transport (engine.io v4
//! framing: `0{open}`, `40` connect, `42[event, data]`, `42<id>[...]` with ack `43<id>[...]`,
//! `2` ping / `3` pong). Speaking socket.io from the same Rust client, rather than running a
//! Node load client, keeps the client side of both measurements identical.
//!
//! Every message a scenario sends carries a client id `<ms>-<tag>-<conn>-<n>` (ms: the send
//! time in unix milliseconds, in hex, as Natter's web client begins its ids; tag: the run step;
//! conn: the sending socket; n: its counter) and a body that starts with the send time in
//! microseconds since the generator started. A delivery is decoded into a 64-bit key
//! `(conn << 32) | n` and a latency, without allocating: at 100,000 deliveries a second the
//! generator's parsing is what limits the measurement.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Each client socket's read buffer (it grows for a larger frame).
const READ_BUFFER: usize = 4096;

pub type Ws = WebSocketStream<TcpStream>;

/// The server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Natter,
    Baseline,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Self::Natter => "natter",
            Self::Baseline => "baseline",
        }
    }

    fn ws_path(self) -> &'static str {
        match self {
            Self::Natter => "/ws",
            Self::Baseline => "/socket.io/?EIO=4&transport=websocket",
        }
    }

    /// The `send` frame for message `n` of socket `conn` in step `tag`.
    pub fn send_frame(self, room: i64, tag: u32, conn: u32, n: u32, body: &str) -> String {
        let client_id = format!("{:x}-{tag:x}-{conn}-{n}", unix_ms());
        match self {
            Self::Natter => json!({"type": "send", "room_id": room,
                "client_id": client_id, "body": body})
            .to_string(),
            Self::Baseline => format!(
                "42{n}{}",
                json!(["send", {"room": room, "client_id": client_id, "body": body}])
            ),
        }
    }

    /// A frame that tells the server the client is alive and changes nothing else: Natter's
    /// `visibility`, engine.io's pong (unsolicited pongs reset socket.io's ping timeout too).
    pub fn keepalive_frame(self) -> &'static str {
        match self {
            Self::Natter => r#"{"type":"visibility","visible":true}"#,
            Self::Baseline => "3",
        }
    }

    /// Decodes one text frame received by socket `me` while step `tag` runs.
    pub fn decode(self, text: &str, me: u32, tag: u32, clock_us: u64) -> Event {
        match self {
            Self::Natter => decode_natter(text, tag, clock_us),
            Self::Baseline => decode_baseline(text, me, tag, clock_us),
        }
    }
}

/// What a received frame means to a scenario.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// A message of step `tag` (others are `Other`): its key, room and latency.
    Message {
        key: u64,
        room: i64,
        latency_us: u64,
    },
    /// The server stored our message `key`.
    Sent {
        key: u64,
    },
    /// The server refused a frame (Natter's `error`; the text is kept for the report).
    Refused(String),
    /// engine.io ping: answer `3` or be dropped.
    Ping,
    Other,
}

/// Now in unix milliseconds (0 if the clock is before 1970).
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn key_of(client_id: &str, tag: u32) -> Option<u64> {
    let mut parts = client_id.split('-').skip(1);
    let t = u32::from_str_radix(parts.next()?, 16).ok()?;
    let conn: u64 = parts.next()?.parse().ok()?;
    let n: u64 = parts.next()?.parse().ok()?;
    (t == tag).then_some((conn << 32) | n)
}

fn latency(body: &str, clock_us: u64) -> Option<u64> {
    let stamp: u64 = body.split(' ').next()?.parse().ok()?;
    Some(clock_us.saturating_sub(stamp))
}

#[derive(Deserialize)]
struct NatterMessageFrame<'a> {
    #[serde(borrow)]
    message: WireMessage<'a>,
}

#[derive(Deserialize)]
struct WireMessage<'a> {
    #[serde(alias = "room")]
    room_id: i64,
    #[serde(borrow)]
    client_id: Cow<'a, str>,
    #[serde(borrow)]
    body: Cow<'a, str>,
}

#[derive(Deserialize)]
struct NatterSentFrame<'a> {
    #[serde(borrow)]
    client_id: Cow<'a, str>,
}

fn decode_natter(text: &str, tag: u32, clock_us: u64) -> Event {
    // Server frames are `#[serde(tag = "type")]`: the type is always the first field.
    if text.starts_with(r#"{"type":"message","#) {
        let Ok(f) = serde_json::from_str::<NatterMessageFrame>(text) else {
            return Event::Other;
        };
        return match (
            key_of(&f.message.client_id, tag),
            latency(&f.message.body, clock_us),
        ) {
            (Some(key), Some(latency_us)) => Event::Message {
                key,
                room: f.message.room_id,
                latency_us,
            },
            _ => Event::Other,
        };
    }
    if text.starts_with(r#"{"type":"sent","#) {
        return match serde_json::from_str::<NatterSentFrame>(text)
            .ok()
            .and_then(|f| key_of(&f.client_id, tag))
        {
            Some(key) => Event::Sent { key },
            None => Event::Other,
        };
    }
    if text.starts_with(r#"{"type":"error","#) {
        return Event::Refused(text.to_owned());
    }
    Event::Other
}

fn decode_baseline(text: &str, me: u32, tag: u32, clock_us: u64) -> Event {
    if text == "2" {
        return Event::Ping;
    }
    if let Some(rest) = text.strip_prefix(r#"42["message","#) {
        let Some(obj) = rest.strip_suffix(']') else {
            return Event::Other;
        };
        let Ok(m) = serde_json::from_str::<WireMessage>(obj) else {
            return Event::Other;
        };
        return match (key_of(&m.client_id, tag), latency(&m.body, clock_us)) {
            (Some(key), Some(latency_us)) => Event::Message {
                key,
                room: m.room_id,
                latency_us,
            },
            _ => Event::Other,
        };
    }
    if let Some(rest) = text.strip_prefix("43") {
        // The ack id is the sender's counter `n` (see `send_frame`).
        let digits: &str = rest.split('[').next().unwrap_or("");
        if let Ok(n) = digits.parse::<u64>() {
            return Event::Sent {
                key: (u64::from(me) << 32) | n,
            };
        }
    }
    Event::Other
}

/// A room the server told us about at connection time (Natter's `ready`).
#[derive(Debug, Clone)]
pub struct RoomInfo {
    pub id: i64,
    pub kind: String,
}

/// Who connects: a Natter user (token) or, for the baseline, a user index and the rooms it
/// joins at connection time.
pub struct Who<'a> {
    pub token: &'a str,
    pub user: usize,
    pub rooms: &'a [i64],
}

/// Timings of one connection's start.
#[derive(Debug, Clone, Copy)]
pub struct Opened {
    /// From starting the TCP connect to `ready` (connect, upgrade, auth, hello).
    pub to_ready: Duration,
    pub local: SocketAddr,
}

/// TCP connect from the `source` address with the kernel's default buffers unless `rcvbuf`
/// says otherwise (set before connecting, so the window scale matches), then the WebSocket
/// upgrade and the protocol's handshake up to `ready`. With `wait_synced`, also waits for
/// Natter's `synced` of every room (the connection is then fully caught up).
pub async fn open(
    target: Target,
    server: SocketAddr,
    source: std::net::Ipv4Addr,
    rcvbuf: Option<u32>,
    who: Who<'_>,
    wait_synced: bool,
) -> Result<(Ws, Opened, Vec<RoomInfo>)> {
    let started = std::time::Instant::now();
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source.into(), 0))?;
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size)?;
    }
    let stream = socket
        .connect(server)
        .await
        .with_context(|| format!("connect from {source}"))?;
    stream.set_nodelay(true)?;
    let local = stream.local_addr()?;
    let mut req = format!("ws://{server}{}", target.ws_path()).into_client_request()?;
    if target == Target::Natter {
        req.headers_mut()
            .insert("authorization", format!("Bearer {}", who.token).parse()?);
    }
    // tungstenite zeroes a 128 KiB read buffer per socket by default: at thousands of
    // connections a second that was 15 % of the generator's core (memset and page faults),
    // enough to make the generator, not the server, the limit of S1. Frames here are small.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(req, stream, Some(config))
        .await
        .context("websocket upgrade")?;
    let rooms = match target {
        Target::Natter => {
            ws.send(Message::Text(r#"{"type":"hello"}"#.into())).await?;
            let mut rooms = Vec::new();
            let mut synced_left = None;
            let mut to_ready = None;
            loop {
                let msg = next_text(&mut ws).await?;
                if msg.starts_with(r#"{"type":"ready","#) {
                    to_ready = Some(started.elapsed());
                    let v: Value = serde_json::from_str(&msg)?;
                    rooms = v["rooms"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|r| RoomInfo {
                                    id: r["id"].as_i64().unwrap_or(0),
                                    kind: r["kind"].as_str().unwrap_or("").to_owned(),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    synced_left = Some(rooms.len());
                    if !wait_synced {
                        break;
                    }
                } else if msg.starts_with(r#"{"type":"synced","#) {
                    synced_left = synced_left.map(|n: usize| n.saturating_sub(1));
                } else if msg.starts_with(r#"{"type":"error","#) {
                    bail!("hello refused: {msg}");
                }
                if synced_left == Some(0) {
                    break;
                }
            }
            let to_ready = to_ready.context("no ready")?;
            return Ok((ws, Opened { to_ready, local }, rooms));
        }
        Target::Baseline => {
            let open = next_text(&mut ws).await?;
            if !open.starts_with('0') {
                bail!("expected engine.io open, got {open}");
            }
            let auth = json!({"user": who.user, "rooms": who.rooms});
            ws.send(Message::Text(format!("40{auth}").into())).await?;
            loop {
                let msg = next_text(&mut ws).await?;
                if msg == "2" {
                    ws.send(Message::Text("3".into())).await?;
                } else if msg.starts_with(r#"42["ready""#) {
                    break;
                } else if msg.starts_with("44") {
                    bail!("socket.io connect refused: {msg}");
                }
            }
            who.rooms
                .iter()
                .map(|&id| RoomInfo {
                    id,
                    kind: "room".into(),
                })
                .collect()
        }
    };
    Ok((
        ws,
        Opened {
            to_ready: started.elapsed(),
            local,
        },
        rooms,
    ))
}

async fn next_text(ws: &mut Ws) -> Result<String> {
    loop {
        match ws.next().await {
            None => bail!("socket closed during the handshake"),
            Some(msg) => match msg? {
                Message::Text(t) => return Ok(t.as_str().to_owned()),
                Message::Close(c) => bail!("closed during the handshake: {c:?}"),
                _ => {}
            },
        }
    }
}

/// A body of exactly `size` bytes (at least the stamp) that starts with the stamp.
pub fn body(stamp_us: u64, size: usize) -> String {
    let mut b = format!("{stamp_us} ");
    while b.len() < size {
        b.push('x');
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natter_deliveries_decode_to_key_room_and_latency() {
        let f = r#"{"type":"message","message":{"id":9,"room_id":7,"seq":3,"sender_id":2,"client_id":"19ac6f1e0a1-1f-4-12","body":"1000 xxx","created_at":1,"rev":0}}"#;
        assert_eq!(
            Target::Natter.decode(f, 0, 0x1f, 1500),
            Event::Message {
                key: (4 << 32) | 12,
                room: 7,
                latency_us: 500
            }
        );
        // Another step's message is not counted.
        assert_eq!(Target::Natter.decode(f, 0, 0x20, 1500), Event::Other);
        let s = r#"{"type":"sent","client_id":"19ac6f1e0a1-1f-4-12","message":{}}"#;
        assert_eq!(
            Target::Natter.decode(s, 4, 0x1f, 0),
            Event::Sent {
                key: (4 << 32) | 12
            }
        );
        // What the generator sends decodes back to its key; ids begin with the time.
        let sent: Value = serde_json::from_str(&Target::Natter.send_frame(7, 0x1f, 4, 12, "b"))
            .expect("a send frame is JSON");
        let id = sent["client_id"].as_str().expect("a client id");
        assert_eq!(key_of(id, 0x1f), Some((4 << 32) | 12));
        assert!(
            id.split('-').next().is_some_and(|ms| ms.len() == 11),
            "{id}"
        );
    }

    #[test]
    fn socket_io_packets_decode_like_natter_frames() {
        let f = r#"42["message",{"id":9,"room":7,"sender":"2","client_id":"19ac6f1e0a1-a-1-2","body":"10 x","created_at":1}]"#;
        assert_eq!(
            Target::Baseline.decode(f, 0, 0xa, 15),
            Event::Message {
                key: (1 << 32) | 2,
                room: 7,
                latency_us: 5
            }
        );
        assert_eq!(
            Target::Baseline.decode(r#"4317[{"id":3}]"#, 5, 0xa, 0),
            Event::Sent {
                key: (5 << 32) | 17
            }
        );
        assert_eq!(Target::Baseline.decode("2", 0, 0, 0), Event::Ping);
        let sent = Target::Baseline.send_frame(7, 0xa, 1, 2, "b");
        assert!(sent.starts_with(r#"422["send",{"#), "{sent}");
    }

    #[test]
    fn bodies_have_the_requested_size_and_carry_the_stamp() {
        let b = body(123456, 200);
        assert_eq!(b.len(), 200);
        assert_eq!(latency(&b, 123460), Some(4));
    }
}
