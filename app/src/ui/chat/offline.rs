//! What the app keeps offline, in IndexedDB: the user's rooms, the newest messages of each,
//! and the outbox of messages not confirmed yet.
//!
//! One record per user (key: the user id) in the `snapshots` store of the `natter` database,
//! holding a JSON snapshot. It is written a second after the chat state changes, and read
//! when the signed-in layout starts, before the socket connects: the app shows the rooms and
//! messages at once, offline too, and `hello` resumes from the restored cursors. Queued
//! messages are sent with their original client ids when the connection returns, so the
//! server stores each exactly once.

use std::time::Duration;

use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbRequest, IdbTransactionMode};

use super::state::{Chat, Outgoing};
use crate::api::{Message, RoomSummary, User};
use crate::domain::{RoomId, UserId};

const DB: &str = "natter";
const STORE: &str = "snapshots";
/// Messages kept per room: the newest ones (a contiguous run, as the timeline holds).
const KEEP_PER_ROOM: usize = 50;
/// Writes wait this long for more changes.
const SAVE_AFTER: Duration = Duration::from_millis(800);

/// The snapshot's layout. 2: messages carry the server's `formatted` nodes; older saved
/// messages lack them (they would show raw Markdown), so their timelines are dropped on load
/// and fetched again.
const FORMAT: u32 = 2;

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Absent in the first layout.
    pub format: u32,
    pub rooms: Vec<RoomSummary>,
    pub timelines: Vec<SavedTimeline>,
    pub outbox: Vec<Outgoing>,
    pub users: Vec<User>,
}

#[derive(Debug, Clone)]
pub struct SavedTimeline {
    pub room_id: RoomId,
    pub last_rev: i64,
    pub messages: Vec<Message>,
}

crate::json::json_struct!(Snapshot { rooms, timelines, outbox, users; default: format });
crate::json::json_struct!(SavedTimeline {
    room_id,
    last_rev,
    messages
});

/// Resolves when `request` succeeds (with its result) or fails.
async fn done(request: &IdbRequest) -> Result<JsValue, JsValue> {
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        let req = request.clone();
        let ok = Closure::<dyn FnMut(web_sys::Event)>::once_into_js(move |_: web_sys::Event| {
            resolve
                .call1(&JsValue::NULL, &req.result().unwrap_or(JsValue::UNDEFINED))
                .ok();
        });
        let failed =
            Closure::<dyn FnMut(web_sys::Event)>::once_into_js(move |_: web_sys::Event| {
                reject
                    .call1(
                        &JsValue::NULL,
                        &JsValue::from_str("IndexedDB request failed"),
                    )
                    .ok();
            });
        request.set_onsuccess(Some(ok.unchecked_ref()));
        request.set_onerror(Some(failed.unchecked_ref()));
    });
    JsFuture::from(promise).await
}

async fn open() -> Result<IdbDatabase, JsValue> {
    let factory = web_sys::window()
        .ok_or(JsValue::NULL)?
        .indexed_db()?
        .ok_or_else(|| JsValue::from_str("no IndexedDB"))?;
    let request = factory.open_with_u32(DB, 1)?;
    let upgrade = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
        let db = ev
            .target()
            .and_then(|t| t.dyn_into::<IdbRequest>().ok())
            .and_then(|r| r.result().ok())
            .and_then(|r| r.dyn_into::<IdbDatabase>().ok());
        if let Some(db) = db
            && !db.object_store_names().contains(STORE)
        {
            db.create_object_store(STORE).ok();
        }
    });
    request.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    let result = done(&request).await;
    request.set_onupgradeneeded(None);
    drop(upgrade);
    result?.dyn_into::<IdbDatabase>()
}

/// The snapshot kept for `user`, if any (and readable).
pub async fn load(user: UserId) -> Option<Snapshot> {
    let db = open().await.ok()?;
    let tx = db.transaction_with_str(STORE).ok()?;
    let request = tx
        .object_store(STORE)
        .ok()?
        .get(&JsValue::from_str(&user.to_string()))
        .ok()?;
    let value = done(&request).await.ok()?;
    db.close();
    let mut snapshot: Snapshot = crate::json::decode(&value.as_string()?).ok()?;
    if snapshot.format < FORMAT {
        snapshot.timelines.clear();
    }
    Some(snapshot)
}

/// Saves `snapshot` for `user` unless `chat` is gone (signed out) by the time the database is
/// open. Logging out removes the chat before it [forgets](forget) the user's snapshot, and
/// IndexedDB runs transactions on a store in the order they began: a save that began before
/// the check is done before the forgetting, and one that would begin after it does not.
async fn save(chat: Chat, user: UserId, snapshot: &Snapshot) -> Result<(), JsValue> {
    let text = crate::json::encode(snapshot);
    let db = open().await?;
    if !chat.alive() {
        db.close();
        return Ok(());
    }
    let tx = db.transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)?;
    let request = tx.object_store(STORE)?.put_with_key(
        &JsValue::from_str(&text),
        &JsValue::from_str(&user.to_string()),
    )?;
    let result = done(&request).await;
    db.close();
    result.map(|_| ())
}

/// Forgets what is kept for `user` (on logout: the next person on this device sees nothing).
/// Call it once the user's chat is gone, so that no save can put it back (see [`save`]).
pub async fn forget(user: UserId) {
    let Ok(db) = open().await else { return };
    if let Ok(tx) = db.transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)
        && let Ok(store) = tx.object_store(STORE)
        && let Ok(request) = store.delete(&JsValue::from_str(&user.to_string()))
    {
        done(&request).await.ok();
    }
    db.close();
}

/// The chat state as kept offline.
fn snapshot(chat: Chat) -> Snapshot {
    let timelines = chat.timelines.with_untracked(|t| {
        t.iter()
            .map(|(room, tl)| SavedTimeline {
                room_id: *room,
                last_rev: tl.last_rev,
                messages: tl
                    .messages
                    .values()
                    .rev()
                    .take(KEEP_PER_ROOM)
                    .rev()
                    .cloned()
                    .collect(),
            })
            .collect()
    });
    Snapshot {
        format: FORMAT,
        rooms: chat.rooms.get_untracked(),
        timelines,
        outbox: chat.outbox.get_untracked(),
        users: chat.users.with_untracked(|u| u.values().cloned().collect()),
    }
}

/// Keeps the snapshot of `user` current: saves shortly after the rooms, messages or outbox
/// change.
pub fn keep(chat: Chat, user: UserId) {
    let pending = StoredValue::new(false);
    Effect::new(move |first: Option<()>| {
        chat.rooms.track();
        chat.timelines.track();
        chat.outbox.track();
        if first.is_none() || pending.get_value() {
            return;
        }
        pending.set_value(true);
        set_timeout(
            move || {
                if !chat.alive() {
                    return;
                }
                pending.set_value(false);
                let snap = snapshot(chat);
                leptos::task::spawn_local(async move {
                    if let Err(e) = save(chat, user, &snap).await {
                        leptos::logging::warn!("keeping messages offline failed: {e:?}");
                    }
                });
            },
            SAVE_AFTER,
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{decode, encode};

    /// A snapshot as the client wrote it before `json.rs` (serde's derives): it must still
    /// open after an update, or a user offline at that moment would lose their outbox.
    const WRITTEN_BY_SERDE: &str = r#"{"format":2,
        "rooms":[{"id":3,"kind":"room","name":"general","topic":"","visibility":"public",
            "role":"owner","last_seq":1,"last_read_seq":1,"unread":0,"mentions":0,
            "muted":false,"member_count":1}],
        "timelines":[{"room_id":3,"last_rev":0,"messages":[{"id":1,"room_id":3,"seq":1,
            "sender_id":7,"client_id":"c-1","body":"**hi**",
            "formatted":[{"p":[{"b":[{"t":"hi"}]}]}],"created_at":1700000000000,"rev":0}]}],
        "outbox":[{"client_id":"c-2","room_id":3,"body":"queued",
            "created_at":1700000000123.5,"failed":null,"reply_to":null,"attachments":[]}],
        "users":[{"id":7,"username":"alice","display_name":"Alice","created_at":1}]}"#;

    #[test]
    fn snapshots_written_before_still_open_and_round_trip() {
        let snapshot: Snapshot = decode(WRITTEN_BY_SERDE).unwrap();
        assert_eq!(snapshot.format, FORMAT);
        assert_eq!(snapshot.rooms.len(), 1);
        assert_eq!(snapshot.timelines[0].messages[0].body, "**hi**");
        assert!(snapshot.timelines[0].messages[0].formatted.is_some());
        let queued = &snapshot.outbox[0];
        assert_eq!(
            (queued.body.as_str(), queued.created_at),
            ("queued", 1700000000123.5)
        );
        assert_eq!(queued.failed, None);

        let again: Snapshot = decode(&encode(&snapshot)).unwrap();
        assert_eq!(again.outbox, snapshot.outbox);
        assert_eq!(again.rooms, snapshot.rooms);
        assert_eq!(again.users, snapshot.users);
        assert_eq!(again.timelines[0].messages, snapshot.timelines[0].messages);

        // The first layout had no `format`: it reads as 0, and its timelines are dropped.
        let first: Snapshot =
            decode(r#"{"rooms":[],"timelines":[],"outbox":[],"users":[]}"#).unwrap();
        assert_eq!(first.format, 0);
    }
}
