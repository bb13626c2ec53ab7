//! One row of the message list: a day separator, a stored message (quote, body, "(edited)",
//! attachments, reaction chips, the action toolbar, the inline editor) or a pending send.
//!
//! Rows are keyed by `seq` and `rev`, so a changed message is rendered again. State that must
//! outlive such a re-render (the open editor and its draft, the tapped row, the reaction
//! popover) lives in signals of the list ([`RowContext`]), not in the row.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use leptos::ev::{KeyboardEvent, MouseEvent, PointerEvent};
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use super::socket;
use super::state::{Chat, Outgoing};
use super::{clock_time, day_key, day_label};
use crate::api::{Attachment, Message, Reaction};
use crate::domain::{MessageBody, MessageId, RoomId, UserId};
use crate::ui::client;

/// Messages from one sender closer than this are grouped under one name.
const GROUP_WITHIN_MS: i64 = 5 * 60 * 1000;
/// Holding a reaction chip this long shows who reacted (phones have no hover).
const LONG_PRESS: Duration = Duration::from_millis(500);

#[derive(Clone, PartialEq)]
pub enum Row {
    Day(String, String),
    /// "New messages": where the reader's marker was when they opened the room.
    Unread,
    Message(Message, bool),
    Pending(Outgoing),
}

impl Row {
    pub fn key(&self) -> String {
        match self {
            Row::Day(key, _) => format!("d{key}"),
            Row::Unread => "unread".to_owned(),
            Row::Message(m, first) => {
                // A reply is drawn again when its quote changes (the original was edited or
                // deleted): its own `rev` does not move then.
                let quote = m.reply_to.as_ref().map_or(0, |r| {
                    let mut h = DefaultHasher::new();
                    (&r.excerpt, r.deleted).hash(&mut h);
                    h.finish()
                });
                format!("m{}-{first}-{}-{quote:x}", m.seq, m.rev)
            }
            Row::Pending(p) => format!("p{}-{}", p.client_id, p.failed.is_some()),
        }
    }
}

/// The inline editor: which message is being edited, and the draft.
#[derive(Clone, Copy)]
pub struct EditState {
    pub editing: RwSignal<Option<MessageId>>,
    pub draft: RwSignal<String>,
    pub error: RwSignal<Option<String>>,
}

impl EditState {
    pub fn new() -> Self {
        Self {
            editing: RwSignal::new(None),
            draft: RwSignal::new(String::new()),
            error: RwSignal::new(None),
        }
    }

    pub fn open(&self, m: &Message) {
        self.error.set(None);
        self.draft.set(m.body.clone());
        self.editing.set(Some(m.id));
    }

    pub fn close(&self) {
        self.editing.set(None);
        self.error.set(None);
    }
}

/// What a row can ask of its list and room, and the list state rows share.
#[derive(Clone, Copy)]
pub struct RowContext {
    pub room_id: RoomId,
    pub reply: Callback<Message>,
    pub jump: Callback<i64>,
    /// Opens the emoji picker to react to a message.
    pub react: Callback<Message>,
    pub edit: EditState,
    /// The row whose toolbar is shown because it was tapped (phones).
    pub active: RwSignal<Option<MessageId>>,
    /// The reaction chip whose "who reacted" popover is open.
    pub who: RwSignal<Option<(MessageId, String)>>,
    pub lightbox: RwSignal<Option<Attachment>>,
}

/// The rows of a room; `unread_after` places the "New messages" divider before the first
/// message of someone else after that seq.
pub fn build_rows(chat: Chat, room_id: RoomId, unread_after: Option<i64>) -> Vec<Row> {
    let me = chat.me.with_untracked(|me| me.as_ref().map(|m| m.id));
    let mut divider = unread_after;
    let mut rows = Vec::new();
    let mut last_day = String::new();
    let mut last: Option<(UserId, i64)> = None;
    chat.timelines.with(|t| {
        if let Some(tl) = t.get(&room_id) {
            for m in tl.messages.values() {
                let day = day_key(m.created_at);
                if day != last_day {
                    rows.push(Row::Day(day.clone(), day_label(m.created_at)));
                    last_day = day;
                    last = None;
                }
                let first = !last.is_some_and(|(who, at)| {
                    who == m.sender_id && m.created_at - at < GROUP_WITHIN_MS
                });
                last = Some((m.sender_id, m.created_at));
                if divider.is_some_and(|after| m.seq > after && Some(m.sender_id) != me) {
                    rows.push(Row::Unread);
                    divider = None;
                }
                rows.push(Row::Message(m.clone(), first));
            }
        }
    });
    chat.outbox.with(|o| {
        for p in o.iter().filter(|p| p.room_id == room_id) {
            rows.push(Row::Pending(p.clone()));
        }
    });
    rows
}

/// My newest message in the room that can still be edited (ArrowUp in an empty composer).
pub fn my_last_message(chat: Chat, room_id: RoomId) -> Option<Message> {
    let me = chat.me.with_untracked(|me| me.as_ref().map(|m| m.id))?;
    chat.timelines.with_untracked(|t| {
        t.get(&room_id)?
            .messages
            .values()
            .rev()
            .find(|m| m.sender_id == me && !m.deleted)
            .cloned()
    })
}

/// Message bodies whose characters are all emoji-ish and few get shown large: spaces, the
/// zero-width joiner, and symbols from U+2190 on that are not letters or digits. The browser's
/// regular expressions know the Unicode properties, so the client carries no tables of its own.
fn only_emoji(text: &str) -> bool {
    thread_local! {
        static EMOJI_ISH: js_sys::RegExp =
            js_sys::RegExp::new(r"^(?:\s|\u200d|[^\p{Alphabetic}\p{N}\0-\u218f])+$", "u");
    }
    let t = text.trim();
    !t.is_empty() && t.chars().count() <= 8 && EMOJI_ISH.with(|re| re.test(t))
}

/// "Sat Nov 28 2026 at 14:05" in the browser's time zone.
fn date_time(ms: i64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    format!("{} at {}", String::from(d.to_date_string()), clock_time(ms))
}

fn quote(chat: Chat, reply: &crate::api::ReplyRef, ctx: RowContext) -> AnyView {
    let sender = reply.sender_id;
    let seq = reply.seq;
    let excerpt = if reply.deleted {
        "This message was deleted.".to_owned()
    } else if reply.excerpt.is_empty() {
        "Attachment".to_owned()
    } else {
        reply.excerpt.clone()
    };
    view! {
        <button type="button" class="quote" class:deleted=reply.deleted
            aria-label="Show the original message"
            on:click=move |_| ctx.jump.run(seq)>
            <strong>{move || chat.name_of(sender)}</strong> " " <span>{excerpt}</span>
        </button>
    }
    .into_any()
}

/// Display names of the users, from the room's member list ("someone" for those not in it).
fn reactor_names(chat: Chat, room_id: RoomId, users: &[UserId]) -> String {
    chat.members.with(|m| {
        let list = m.get(&room_id);
        users
            .iter()
            .map(|u| {
                list.and_then(|l| l.iter().find(|x| x.user.id == *u))
                    .map(|x| x.user.display_name.to_string())
                    .unwrap_or_else(|| "someone".to_owned())
            })
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// Adds or removes my reaction; the answer is shown at once, the `message_updated` frame
/// confirms it for every tab.
pub fn toggle_reaction(chat: Chat, room_id: RoomId, message: MessageId, emoji: String, on: bool) {
    spawn_local(async move {
        match client::react(room_id, message, &emoji, on).await {
            Ok(m) => chat.update_message(m, false),
            Err(e) => {
                chat.notice.try_set(Some(e.message));
            }
        }
    });
}

fn reactions_view(chat: Chat, m: &Message, me: Option<UserId>, ctx: RowContext) -> AnyView {
    if m.reactions.is_empty() {
        return ().into_any();
    }
    let id = m.id;
    let room_id = ctx.room_id;
    let chips = m
        .reactions
        .iter()
        .map(|r| reaction_chip(chat, id, r, me, ctx))
        .collect_view();
    let reactions = m.reactions.clone();
    let popover = move || {
        let (mid, emoji) = ctx.who.get()?;
        if mid != id {
            return None;
        }
        let users = reactions.iter().find(|r| r.emoji == emoji)?.users.clone();
        let names = reactor_names(chat, room_id, &users);
        Some(view! {
            <div class="reaction-who" role="status" on:click=move |_| ctx.who.set(None)>
                <span class="reaction-who-emoji">{emoji}</span> " " {names}
            </div>
        })
    };
    view! {
        <div class="reactions" role="group" aria-label="Reactions">
            {chips}
            {popover}
        </div>
    }
    .into_any()
}

fn reaction_chip(
    chat: Chat,
    id: MessageId,
    r: &Reaction,
    me: Option<UserId>,
    ctx: RowContext,
) -> impl IntoView {
    let room_id = ctx.room_id;
    let mine = me.is_some_and(|me| r.users.contains(&me));
    let count = r.users.len();
    let emoji = r.emoji.clone();
    let title = {
        let (users, emoji) = (r.users.clone(), emoji.clone());
        move || {
            format!(
                "{} reacted with {emoji}",
                reactor_names(chat, room_id, &users)
            )
        }
    };
    // A long press (or right click) shows who reacted; the click that ends a long press must
    // not also toggle the reaction.
    let pressed = StoredValue::new(None::<TimeoutHandle>);
    let long_pressed = StoredValue::new(false);
    let show_who = {
        let emoji = emoji.clone();
        move || ctx.who.set(Some((id, emoji.clone())))
    };
    let stop_press = move || {
        if let Some(h) = pressed.try_get_value().flatten() {
            h.clear();
            pressed.set_value(None);
        }
    };
    let on_pointerdown = {
        let show_who = show_who.clone();
        move |ev: PointerEvent| {
            long_pressed.set_value(false);
            if ev.pointer_type() != "touch" {
                return;
            }
            let show_who = show_who.clone();
            let handle = set_timeout_with_handle(
                move || {
                    // `None`: the chip is still there (the value could be written).
                    if pressed.try_set_value(None).is_none() {
                        long_pressed.set_value(true);
                        show_who();
                    }
                },
                LONG_PRESS,
            );
            pressed.set_value(handle.ok());
        }
    };
    let on_contextmenu = {
        let show_who = show_who.clone();
        move |ev: MouseEvent| {
            ev.prevent_default();
            // Browsers that turn a long touch into `contextmenu` themselves.
            if pressed.get_value().is_some() {
                long_pressed.set_value(true);
            }
            stop_press();
            show_who();
        }
    };
    let toggle = {
        let emoji = emoji.clone();
        move |ev: MouseEvent| {
            if long_pressed.get_value() {
                long_pressed.set_value(false);
                // Keeps the popover that the long press opened (it closes on other clicks).
                ev.stop_immediate_propagation();
                return;
            }
            toggle_reaction(chat, room_id, id, emoji.clone(), !mine);
        }
    };
    on_cleanup(stop_press);
    view! {
        <button type="button" class="reaction" class:mine=mine aria-pressed=mine.to_string()
            title=title
            on:click=toggle
            on:contextmenu=on_contextmenu
            on:pointerdown=on_pointerdown
            on:pointerup=move |_| stop_press()
            on:pointercancel=move |_| stop_press()>
            <span class="reaction-emoji">{emoji}</span> " "
            <span class="reaction-count">{count}</span>
        </button>
    }
}

/// Asks, then deletes. The tombstone is shown at once.
fn delete(chat: Chat, room_id: RoomId, id: MessageId) {
    let sure = window()
        .confirm_with_message("Delete this message for everyone? This cannot be undone.")
        .unwrap_or(false);
    if !sure {
        return;
    }
    spawn_local(async move {
        match client::delete_message(room_id, id).await {
            Ok(m) => chat.update_message(m, false),
            Err(e) => {
                chat.notice.try_set(Some(e.message));
            }
        }
    });
}

/// Saves the draft of the open editor.
fn save_edit(chat: Chat, ctx: RowContext, original: &Message) {
    let edit = ctx.edit;
    let body = edit.draft.get_untracked();
    if body == original.body {
        edit.close();
        return;
    }
    // Text may only be emptied when attachments remain to carry the message.
    let blank_ok = !original.attachments.is_empty() && body.trim().is_empty();
    if !blank_ok && let Err(e) = MessageBody::parse(&body) {
        edit.error.set(Some(e.to_string()));
        return;
    }
    let body = if blank_ok { String::new() } else { body };
    let (room_id, id) = (ctx.room_id, original.id);
    spawn_local(async move {
        match client::edit_message(room_id, id, body).await {
            Ok(m) => {
                chat.update_message(m, false);
                if edit.editing.try_get_untracked() == Some(Some(id)) {
                    edit.editing.try_set(None);
                }
            }
            Err(e) => {
                edit.error.try_set(Some(e.message));
            }
        }
    });
}

fn editor(chat: Chat, ctx: RowContext, original: Message) -> impl IntoView {
    let edit = ctx.edit;
    let input = NodeRef::<html::Textarea>::new();
    // Focused with the caret at the end, and scrolled into view (ArrowUp opens it from afar).
    Effect::new(move |_| {
        if let Some(el) = input.get() {
            el.focus().ok();
            let end = el.value().encode_utf16().count() as u32;
            el.set_selection_range(end, end).ok();
            el.scroll_into_view_with_bool(false);
        }
    });
    let save = {
        let original = original.clone();
        move || save_edit(chat, ctx, &original)
    };
    let on_keydown = {
        let save = save.clone();
        move |ev: KeyboardEvent| match ev.key().as_str() {
            "Enter" if !ev.shift_key() && !ev.is_composing() => {
                ev.prevent_default();
                save();
            }
            "Escape" => {
                ev.prevent_default();
                ev.stop_propagation();
                edit.close();
            }
            _ => {}
        }
    };
    view! {
        <form class="edit-form" on:submit=move |ev| { ev.prevent_default(); save(); }>
            <textarea node_ref=input name="edit" aria-label="Edit message" rows="2"
                prop:value=edit.draft.get_untracked()
                on:input=move |ev| edit.draft.set(event_target_value(&ev))
                on:keydown=on_keydown></textarea>
            <Show when=move || edit.error.get().is_some()>
                <p class="form-error" role="alert">{move || edit.error.get().unwrap_or_default()}</p>
            </Show>
            <div class="edit-buttons">
                <span class="muted edit-hint">"Enter to save, Esc to cancel"</span>
                <button type="button" class="secondary small" on:click=move |_| edit.close()>"Cancel"</button>
                <button type="submit" class="primary small">"Save"</button>
            </div>
        </form>
    }
}

fn message_view(chat: Chat, m: Message, first: bool, ctx: RowContext) -> AnyView {
    let me = chat.me.with_untracked(|me| me.as_ref().map(|m| m.id));
    let mine = me == Some(m.sender_id);
    let sender = m.sender_id;
    let id = m.id;
    let room_id = ctx.room_id;
    let head = first.then(|| {
        view! {
            <header class="message-head">
                <strong class="sender">{move || chat.name_of(sender)}</strong>
                <time class="time">{clock_time(m.created_at)}</time>
            </header>
        }
    });
    if m.deleted {
        return view! {
            <article class="message deleted" class:first=first class:mine=mine data-seq=m.seq>
                {head}
                <p class="deleted-note">"This message was deleted."</p>
            </article>
        }
        .into_any();
    }

    let body = m.body.clone();
    let formatted = m.formatted.clone();
    let big = only_emoji(&body);
    let me_name = chat
        .me
        .with_untracked(|me| me.as_ref().map(|m| m.username.to_string()));
    let mentions_me = me_name.as_ref().is_some_and(|u| {
        formatted
            .as_deref()
            .is_some_and(|f| crate::markdown::mentions_in(f).contains(u))
    });
    let editing = move || ctx.edit.editing.get() == Some(id);
    let can_delete = move || mine || chat.room(room_id).is_some_and(|r| r.role.can_moderate());
    let (for_reply, for_react, for_edit, for_editor) = (m.clone(), m.clone(), m.clone(), m.clone());
    let (created_at, edited_at) = (m.created_at, m.edited_at);
    let text = move || {
        let body_view = (!body.is_empty()).then(|| {
            view! {
                <div class="body" class:big=big title=clock_time(created_at)>
                    {super::format::render_body(&body, formatted.as_deref(), me_name.as_deref())}
                </div>
            }
        });
        let edited = edited_at.map(|at| {
            view! { <span class="edited" title=format!("Edited {}", date_time(at))>"(edited)"</span> }
        });
        // One flex line: "(edited)" follows the last line of text when it fits.
        view! { <div class="text">{body_view} {edited}</div> }
    };
    // Phones: a tap on the message shows its toolbar (a tap on something inside that acts on
    // its own, a button, link or the editor, does not).
    let on_click = move |ev: MouseEvent| {
        let inner_control = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|el| {
                el.closest("button, a, textarea, .message-actions")
                    .ok()
                    .flatten()
            })
            .is_some();
        if !inner_control {
            ctx.active
                .update(|a| *a = if *a == Some(id) { None } else { Some(id) });
        }
    };
    view! {
        <article class="message" class:first=first class:mine=mine
            class:mentions-me=mentions_me class:active=move || ctx.active.get() == Some(id)
            class:editing=editing data-seq=m.seq on:click=on_click>
            {head}
            // Hidden while the editor is open (CSS: `.message.editing`).
            <div class="message-actions" role="toolbar" aria-label="Message actions">
                <button type="button" class="action" aria-label="React to this message" title="React"
                    on:click=move |_| ctx.react.run(for_react.clone())>"☺ React"</button>
                <button type="button" class="action" aria-label=move || format!("Reply to {}", chat.name_of(sender))
                    on:click=move |_| ctx.reply.run(for_reply.clone())>"Reply"</button>
                {mine.then(|| view! {
                    <button type="button" class="action" aria-label="Edit message"
                        on:click=move |_| ctx.edit.open(&for_edit)>"Edit"</button>
                })}
                {move || can_delete().then(|| view! {
                    <button type="button" class="action danger" aria-label="Delete message"
                        on:click=move |_| delete(chat, room_id, id)>"Delete"</button>
                })}
            </div>
            {m.reply_to.as_ref().map(|r| quote(chat, r, ctx))}
            {move || if editing() {
                editor(chat, ctx, for_editor.clone()).into_any()
            } else {
                text().into_any()
            }}
            {super::media::attachments_view(&m.attachments, ctx.lightbox)}
            {reactions_view(chat, &m, me, ctx)}
            {mine.then(|| receipt_view(chat, room_id, m.seq))}
        </article>
    }
    .into_any()
}

/// Read receipts on my own message: in a DM "✓" (stored) or "✓✓" (read by the other person);
/// in a room, on my newest message, "Seen by N" with the names on hover or tap. Reactive, so
/// receipts never re-render the row.
fn receipt_view(chat: Chat, room_id: RoomId, seq: i64) -> impl IntoView {
    move || {
        let room = chat.room(room_id)?;
        if room.kind == crate::domain::RoomKind::Dm {
            let peer = room.peer.as_ref().map(|p| p.id);
            let read = peer.is_some_and(|p| chat.seen_by(room_id, seq).contains(&p));
            return Some(if read {
                view! { <span class="receipt read" title="Read" aria-label="Read">"✓✓"</span> }
                    .into_any()
            } else {
                view! { <span class="receipt" title="Sent" aria-label="Sent">"✓"</span> }.into_any()
            });
        }
        let newest_mine = my_last_message(chat, room_id).is_some_and(|m| m.seq == seq);
        // `my_last_message` reads untracked: track the timeline so a newer message of mine
        // moves "Seen by" to it.
        chat.timelines.track();
        if !newest_mine {
            return None;
        }
        let seen = chat.seen_by(room_id, seq);
        if seen.is_empty() {
            return None;
        }
        let mut names: Vec<String> = seen.iter().map(|u| chat.name_of(*u)).collect();
        names.sort();
        let title = names.join(", ");
        Some(view! {
            <details class="receipt seen" title=title>
                <summary>{format!("Seen by {}", names.len())}</summary>
                <ul class="seen-list">{names.into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}</ul>
            </details>
        }.into_any())
    }
}

fn pending_view(chat: Chat, p: Outgoing) -> AnyView {
    let client_id = p.client_id.clone();
    let failed = p.failed.clone();
    let is_failed = failed.is_some();
    let names: Vec<String> = p.attachments.iter().map(|a| a.name.clone()).collect();
    view! {
        <article class="message first mine pending" class:failed=is_failed>
            <header class="message-head">
                <strong class="sender">{move || chat.me.with(|me| me.as_ref().map(|m| m.display_name.to_string()).unwrap_or_default())}</strong>
                <span class="status">{move || if is_failed {
                    "Failed"
                } else if chat.connection.get() == super::state::Connection::Open {
                    "Sending…"
                } else {
                    "Queued"
                }}</span>
            </header>
            {p.reply_to.as_ref().map(|r| view! {
                <p class="quote">"↪ " {chat.name_of(r.sender_id)}</p>
            })}
            {(!p.body.is_empty()).then(|| view! {
                <div class="body">{super::format::render_body(&p.body, None, None)}</div>
            })}
            {(!names.is_empty()).then(|| view! {
                <ul class="pending-attachments" aria-label="Attachments">
                    {names.into_iter().map(|n| view! { <li>{super::media::paperclip_icon()} {n}</li> }).collect_view()}
                </ul>
            })}
            {failed.map(|why| view! {
                <p class="send-error" role="alert">{why} " "
                    <button class="link" on:click=move |_| socket::retry(chat, &client_id)>"Retry"</button>
                </p>
            })}
        </article>
    }
    .into_any()
}

pub fn render_row(chat: Chat, row: Row, ctx: RowContext) -> AnyView {
    match row {
        Row::Day(_, label) => view! {
            <div class="day-separator" role="separator"><span>{label}</span></div>
        }
        .into_any(),
        Row::Unread => view! {
            <div class="unread-divider" role="separator" id="unread-divider"><span>"New messages"</span></div>
        }
        .into_any(),
        Row::Message(m, first) => message_view(chat, m, first, ctx),
        Row::Pending(p) => pending_view(chat, p),
    }
}
