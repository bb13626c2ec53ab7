//! The one WebSocket of this tab: connect, say hello with our cursors, feed frames into
//! [`Chat`], and reconnect with exponential backoff (0.5 s doubling to 30 s, with jitter).
//!
//! Sends are optimistic: a message goes into `chat.outbox` at once and is sent if the socket is
//! open; on every (re)connect everything still pending is sent again with the same client id,
//! which the server stores at most once.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use super::state::{Chat, Connection, Outgoing, now_ms};
use crate::domain::RoomId;
use crate::protocol::{ClientFrame, close_code};

/// A sent message not confirmed within this long is shown as failed (it may still arrive).
const CONFIRM_WITHIN: Duration = Duration::from_secs(15);

type Handlers = (
    Closure<dyn FnMut()>,
    Closure<dyn FnMut(MessageEvent)>,
    Closure<dyn FnMut(CloseEvent)>,
);

struct Live {
    ws: WebSocket,
    // Kept alive as long as the socket; detached and dropped when it is replaced or closed.
    _handlers: Handlers,
}

thread_local! {
    static LIVE: RefCell<Option<Live>> = const { RefCell::new(None) };
    static GENERATION: Cell<u32> = const { Cell::new(0) };
    static ATTEMPT: Cell<u32> = const { Cell::new(0) };
    static STOPPED: Cell<bool> = const { Cell::new(false) };
}

/// Detaches our handlers (so the browser never calls a dropped closure) and closes.
fn shut(live: Live) {
    live.ws.set_onopen(None);
    live.ws.set_onmessage(None);
    live.ws.set_onclose(None);
    live.ws.close().ok();
}

fn socket_url() -> Option<String> {
    let location = window().location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    Some(format!("{scheme}://{}/ws", location.host().ok()?))
}

/// Whether the page is in front of the user (`document.visibilityState == "visible"`).
pub fn tab_visible() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_none_or(|d| d.visibility_state() == web_sys::VisibilityState::Visible)
}

/// Tells the server when the tab is hidden or shown: with no visible tab, the user gets push
/// notifications instead. Call once per signed-in session; returns the listener to remove.
pub fn watch_visibility() -> leptos::prelude::WindowListenerHandle {
    leptos::prelude::window_event_listener_untyped("visibilitychange", move |_| {
        send(&ClientFrame::Visibility {
            visible: tab_visible(),
        });
    })
}

/// Opens the socket (again). `on_session_end` runs when the server says the session is over.
pub fn connect(chat: Chat, on_session_end: impl Fn() + Clone + 'static) {
    if !chat.alive() {
        return;
    }
    STOPPED.with(|s| s.set(false));
    let generation = GENERATION.with(|g| {
        g.set(g.get() + 1);
        g.get()
    });
    let current = move || GENERATION.with(|g| g.get()) == generation;
    chat.connection.set(Connection::Connecting);
    let Some(url) = socket_url() else { return };
    let Ok(ws) = WebSocket::new(&url) else {
        schedule_reconnect(chat, on_session_end);
        return;
    };

    let on_open = Closure::<dyn FnMut()>::new(move || {
        if !current() || !chat.alive() {
            return;
        }
        ATTEMPT.with(|a| a.set(0));
        send(&ClientFrame::Hello {
            resume: chat.cursors(),
        });
        // Tabs start visible on the server's side; say so if this one is in the background.
        if !tab_visible() {
            send(&ClientFrame::Visibility { visible: false });
        }
        chat.connection.set(Connection::Open);
        for pending in chat.outbox.get_untracked() {
            if pending.failed.is_none() {
                send_message(&pending);
                watch_confirmation(chat, pending.client_id);
            }
        }
    });
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        if !current() {
            return;
        }
        if let Some(text) = ev.data().as_string() {
            match crate::json::decode::<crate::protocol::ServerFrame>(&text) {
                Ok(frame) => chat.apply(frame),
                Err(e) => leptos::logging::warn!("unknown frame from server: {e}"),
            }
        }
    });
    let end = on_session_end.clone();
    let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |ev: CloseEvent| {
        if !current() {
            return;
        }
        if ev.code() == close_code::SESSION_ENDED {
            STOPPED.with(|s| s.set(true));
            // Not from inside this handler: signing out unmounts the chat, which drops it.
            let end = end.clone();
            set_timeout(end, Duration::ZERO);
            return;
        }
        if !STOPPED.with(|s| s.get()) {
            schedule_reconnect(chat, end.clone());
        }
    });
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    LIVE.with(|l| {
        let old = l.borrow_mut().replace(Live {
            ws,
            _handlers: (on_open, on_message, on_close),
        });
        if let Some(old) = old {
            shut(old);
        }
    });
}

fn schedule_reconnect(chat: Chat, on_session_end: impl Fn() + Clone + 'static) {
    if !chat.alive() {
        return;
    }
    let attempt = ATTEMPT.with(|a| {
        a.set(a.get().saturating_add(1));
        a.get()
    });
    let base = (500.0 * 2f64.powi(attempt.min(6) as i32 - 1)).min(30_000.0);
    let delay = base * (0.5 + js_sys::Math::random() * 0.5);
    chat.connection.set(Connection::Waiting {
        retry_at: now_ms() + delay,
        attempt,
    });
    let generation = GENERATION.with(|g| g.get());
    set_timeout(
        move || {
            // A manual "retry now" may have connected meanwhile.
            if GENERATION.with(|g| g.get()) == generation && !STOPPED.with(|s| s.get()) {
                connect(chat, on_session_end);
            }
        },
        Duration::from_millis(delay as u64),
    );
}

/// The browser says the network is gone: drop the socket now (it would hang until a TCP
/// timeout) and wait for `online`.
pub fn went_offline(chat: Chat) {
    if !chat.alive() {
        return;
    }
    GENERATION.with(|g| g.set(g.get() + 1));
    if let Some(live) = LIVE.with(|l| l.borrow_mut().take()) {
        shut(live);
    }
    if !STOPPED.with(|s| s.get()) {
        chat.connection.set(Connection::Waiting {
            retry_at: f64::INFINITY,
            attempt: 0,
        });
    }
}

/// The network is back: reconnect at once.
pub fn came_online(chat: Chat, on_session_end: impl Fn() + Clone + 'static) {
    if !STOPPED.with(|s| s.get()) && chat.alive() {
        ATTEMPT.with(|a| a.set(0));
        connect(chat, on_session_end);
    }
}

/// Closes the socket for good (logout).
pub fn disconnect() {
    STOPPED.with(|s| s.set(true));
    GENERATION.with(|g| g.set(g.get() + 1));
    if let Some(live) = LIVE.with(|l| l.borrow_mut().take()) {
        shut(live);
    }
}

/// Sends a frame if the socket is open; `false` otherwise.
pub fn send(frame: &ClientFrame) -> bool {
    let text = crate::json::encode(frame);
    LIVE.with(|l| {
        l.borrow()
            .as_ref()
            .filter(|live| live.ws.ready_state() == WebSocket::OPEN)
            .is_some_and(|live| live.ws.send_with_str(&text).is_ok())
    })
}

fn send_message(p: &Outgoing) -> bool {
    send(&ClientFrame::Send {
        room_id: p.room_id,
        client_id: p.client_id.clone(),
        body: p.body.clone(),
        reply_to: p.reply_to.as_ref().map(|m| m.id),
        attachments: p.attachments.iter().map(|a| a.id.clone()).collect(),
    })
}

fn new_client_id() -> String {
    // Unique per sender is all the server needs; crypto.randomUUID is unavailable on plain
    // http origins other than localhost.
    let a = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    let b = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    format!("{:x}-{a:08x}{b:08x}", now_ms() as u64)
}

/// Queues a message optimistically and sends it when it can.
pub fn post(
    chat: Chat,
    room_id: RoomId,
    body: String,
    reply_to: Option<crate::api::Message>,
    attachments: Vec<crate::api::Attachment>,
) {
    let pending = Outgoing {
        client_id: new_client_id(),
        room_id,
        body,
        created_at: now_ms(),
        failed: None,
        reply_to,
        attachments,
    };
    chat.outbox.update(|o| o.push(pending.clone()));
    send_message(&pending);
    watch_confirmation(chat, pending.client_id);
}

/// Sends a failed message again, with its original client id (stored at most once).
pub fn retry(chat: Chat, client_id: &str) {
    let mut again = None;
    chat.outbox.update(|o| {
        if let Some(p) = o.iter_mut().find(|p| p.client_id == client_id) {
            p.failed = None;
            again = Some(p.clone());
        }
    });
    if let Some(p) = again {
        send_message(&p);
        watch_confirmation(chat, p.client_id);
    }
}

/// Watches a queued send (see [`watch_confirmation`]).
pub fn watch(chat: Chat, client_id: String) {
    watch_confirmation(chat, client_id);
}

/// Marks a send failed (with Retry) if the server has not confirmed it 15 s after it went
/// out. While there is no connection it stays queued instead: it is sent again, with the same
/// client id, as soon as the socket opens.
fn watch_confirmation(chat: Chat, client_id: String) {
    set_timeout(
        move || {
            if !chat.alive() {
                return;
            }
            if chat.connection.get_untracked() != Connection::Open {
                watch_confirmation(chat, client_id);
                return;
            }
            chat.outbox.update(|o| {
                if let Some(p) = o
                    .iter_mut()
                    .find(|p| p.client_id == client_id && p.failed.is_none())
                {
                    p.failed = Some("Not sent yet.".into());
                }
            });
        },
        CONFIRM_WITHIN,
    );
}
