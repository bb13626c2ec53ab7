//! The room pane: header, message list (day separators, sender grouping, infinite scroll
//! upward, stick-to-bottom only when already at the bottom), typing line and composer; plus
//! the members panel (presence, invite, kick) and settings for owners and admins.

use std::time::Duration;

use leptos::ev::{KeyboardEvent, SubmitEvent};
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_params_map};

use super::socket;
use super::state::{Chat, Outgoing, now_ms, use_chat};
use super::{clock_time, day_key, day_label};
use crate::api::{Member, Message, RoomSummary, UpdateRoomRequest};
use crate::domain::{MessageBody, Role, RoomId, RoomKind};
use crate::protocol::ClientFrame;
use crate::ui::client;

/// Messages from one sender closer than this are grouped under one name.
const GROUP_WITHIN_MS: i64 = 5 * 60 * 1000;
/// Typing notices are re-sent at most this often while typing.
const TYPING_EVERY_MS: f64 = 3000.0;

#[derive(Clone, PartialEq)]
enum Row {
    Day(String, String),
    Message(Message, bool),
    Pending(Outgoing),
}

impl Row {
    fn key(&self) -> String {
        match self {
            Row::Day(key, _) => format!("d{key}"),
            Row::Message(m, first) => format!("m{}-{first}", m.seq),
            Row::Pending(p) => format!("p{}-{}", p.client_id, p.failed.is_some()),
        }
    }
}

#[component]
pub fn RoomPane(open_drawer: Callback<()>) -> impl IntoView {
    let params = use_params_map();
    let room_id = Memo::new(move |_| {
        params.with(|p| {
            p.get("id")
                .and_then(|id| id.parse::<i64>().ok())
                .map(RoomId::new)
        })
    });
    view! {
        {move || match room_id.get() {
            Some(id) => view! { <RoomView room_id=id open_drawer=open_drawer/> }.into_any(),
            None => view! { <p class="muted pad">"No such room."</p> }.into_any(),
        }}
    }
}

#[component]
fn RoomView(room_id: RoomId, open_drawer: Callback<()>) -> impl IntoView {
    let chat = use_chat();
    let room = Memo::new(move |_| chat.room(room_id));
    let panel = RwSignal::new(false);
    let replying = RwSignal::new(None::<Message>);
    let members = Signal::derive(move || {
        chat.members
            .with(|m| m.get(&room_id).cloned().unwrap_or_default())
    });
    let load_members = move || {
        spawn_local(async move {
            if let Ok(list) = client::members(room_id).await {
                chat.set_members(room_id, list);
            }
        });
    };
    // Loaded once per visit; member frames keep it current from then on.
    load_members();

    view! {
        {move || match room.get() {
            None => view! {
                <header class="pane-head">
                    <button class="icon-button open-drawer" aria-label="Open menu"
                        on:click=move |_| open_drawer.run(())>"☰"</button>
                    <h1>"Natter"</h1>
                </header>
                <p class="muted pad">"This room is not in your list: you may have left it or been removed."</p>
            }.into_any(),
            Some(r) => {
                let is_dm = r.kind == RoomKind::Dm;
                let peer = r.peer.as_ref().map(|p| p.id);
                view! {
                    <header class="pane-head">
                        <button class="icon-button open-drawer" aria-label="Open menu"
                            on:click=move |_| open_drawer.run(())>"☰"</button>
                        <div class="pane-title">
                            <h1>
                                {if is_dm {
                                    let online = move || peer.is_some_and(|p| chat.is_online(p));
                                    view! { <span class="presence-dot" class:online=online
                                        aria-label=move || if online() { "online" } else { "offline" }></span> }.into_any()
                                } else {
                                    view! { <span class="hash" aria-hidden="true">"#"</span> }.into_any()
                                }}
                                {r.name.clone()}
                            </h1>
                            <p class="topic" title=r.topic.to_string()>{r.topic.to_string()}</p>
                        </div>
                        <button class="secondary small" aria-expanded=move || panel.get().to_string()
                            on:click=move |_| { panel.update(|p| *p = !*p); if panel.get_untracked() { load_members(); } }>
                            {if is_dm { "Info".to_owned() } else { format!("Members ({})", r.member_count) }}
                        </button>
                    </header>
                }.into_any()
            }
        }}
        <div class="room-body">
            <div class="room-main">
                <MessageList room_id=room_id replying=replying/>
                <TypingLine room_id=room_id/>
                <Composer room_id=room_id members=members replying=replying/>
            </div>
            <Show when=move || panel.get() && room.get().is_some()>
                <MembersPanel room=Signal::derive(move || room.get()) members=members
                    reload=Callback::new(move |()| load_members())/>
            </Show>
        </div>
    }
}

/// What a message row can ask of its list.
#[derive(Clone, Copy)]
struct RowActions {
    reply: Callback<Message>,
    jump: Callback<i64>,
}

#[component]
fn MessageList(room_id: RoomId, replying: RwSignal<Option<Message>>) -> impl IntoView {
    let chat = use_chat();
    let list = NodeRef::<html::Div>::new();
    let at_bottom = StoredValue::new(true);
    let rows = Memo::new(move |_| build_rows(chat, room_id));
    let synced = Memo::new(move |_| {
        chat.timelines
            .with(|t| t.get(&room_id).is_some_and(|tl| tl.synced))
    });

    // Stick to the bottom when new rows arrive, but only if the reader was already there.
    Effect::new(move |_| {
        rows.track();
        if at_bottom.get_value() {
            request_animation_frame(move || {
                if let Some(el) = list.get_untracked() {
                    el.set_scroll_top(el.scroll_height());
                }
            });
        }
    });

    let load_older = move || {
        let Some((first, loading, older)) = chat.timelines.with_untracked(|t| {
            t.get(&room_id).map(|tl| {
                (
                    tl.messages.keys().next().copied(),
                    tl.loading_older,
                    tl.has_older(),
                )
            })
        }) else {
            return;
        };
        let Some(first) = first else { return };
        if loading || !older {
            return;
        }
        chat.timelines.update(|t| {
            if let Some(tl) = t.get_mut(&room_id) {
                tl.loading_older = true;
            }
        });
        let before_height = list
            .get_untracked()
            .map(|el| el.scroll_height())
            .unwrap_or(0);
        spawn_local(async move {
            match client::history(room_id, first).await {
                Ok(page) => {
                    chat.prepend(room_id, page.messages);
                    // Keep the reader's place: the content grew above them.
                    request_animation_frame(move || {
                        if let Some(el) = list.get_untracked() {
                            let grown = el.scroll_height() - before_height;
                            el.set_scroll_top(el.scroll_top() + grown);
                        }
                    });
                }
                Err(_) => {
                    chat.timelines.try_update(|t| {
                        if let Some(tl) = t.get_mut(&room_id) {
                            tl.loading_older = false;
                        }
                    });
                }
            }
        });
    };
    let on_scroll = move |_| {
        if let Some(el) = list.get_untracked() {
            at_bottom.set_value(el.scroll_height() - el.scroll_top() - el.client_height() < 48);
            if el.scroll_top() < 120 {
                load_older();
            }
        }
    };
    let has_older = move || {
        chat.timelines
            .with(|t| t.get(&room_id).is_some_and(|tl| tl.has_older()))
    };
    // Jump to a message (a quote was clicked): page back until it is loaded, then show it.
    let jump = Callback::new(move |seq: i64| {
        // The reader is going up: new rows must not pull the view back down meanwhile.
        at_bottom.set_value(false);
        spawn_local(async move {
            for _ in 0..100 {
                let first = chat
                    .timelines
                    .try_with_untracked(|t| {
                        t.get(&room_id)
                            .and_then(|tl| tl.messages.keys().next().copied())
                    })
                    .flatten();
                match first {
                    Some(first) if first > seq => match client::history(room_id, first).await {
                        Ok(page) if !page.messages.is_empty() => {
                            chat.prepend(room_id, page.messages)
                        }
                        _ => break,
                    },
                    _ => break,
                }
            }
            request_animation_frame(move || {
                let Some(list) = list.get_untracked() else {
                    return;
                };
                let selector = format!("[data-seq=\"{seq}\"]");
                if let Ok(Some(el)) = list.query_selector(&selector) {
                    el.scroll_into_view();
                    el.class_list().add_1("flash").ok();
                    set_timeout(
                        move || {
                            el.class_list().remove_1("flash").ok();
                        },
                        Duration::from_millis(1600),
                    );
                }
            });
        });
    });
    let actions = RowActions {
        reply: Callback::new(move |m: Message| replying.set(Some(m))),
        jump,
    };

    view! {
        <div class="messages" node_ref=list on:scroll=on_scroll role="log" aria-live="polite" aria-label="Messages">
            <div class="history-edge">
                {move || if !synced.get() {
                    "Loading messages…"
                } else if has_older() {
                    "Scroll up for older messages"
                } else {
                    "This is the beginning of the conversation."
                }}
            </div>
            <For each=move || rows.get() key=Row::key let(row)>
                {render_row(chat, row, actions)}
            </For>
        </div>
    }
}

fn build_rows(chat: Chat, room_id: RoomId) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut last_day = String::new();
    let mut last: Option<(crate::domain::UserId, i64)> = None;
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

/// Message bodies whose characters are all emoji-ish and few get shown large.
fn only_emoji(text: &str) -> bool {
    let t = text.trim();
    !t.is_empty()
        && t.chars().count() <= 8
        && t.chars().all(|c| {
            c.is_whitespace() || (c as u32) >= 0x2190 && !c.is_alphanumeric() || c == '\u{200d}'
        })
}

fn quote(chat: Chat, reply: &crate::api::ReplyRef, actions: RowActions) -> AnyView {
    let sender = reply.sender_id;
    let seq = reply.seq;
    let excerpt = crate::markdown::plain_text(&crate::markdown::parse(&reply.excerpt));
    view! {
        <button type="button" class="quote" aria-label="Show the original message"
            on:click=move |_| actions.jump.run(seq)>
            <strong>{move || chat.name_of(sender)}</strong> " " <span>{excerpt}</span>
        </button>
    }
    .into_any()
}

fn render_row(chat: Chat, row: Row, actions: RowActions) -> AnyView {
    match row {
        Row::Day(_, label) => view! {
            <div class="day-separator" role="separator"><span>{label}</span></div>
        }
        .into_any(),
        Row::Message(m, first) => {
            let mine = chat
                .me
                .with_untracked(|me| me.as_ref().is_some_and(|me| me.id == m.sender_id));
            let sender = m.sender_id;
            let original = m.clone();
            let body = m.body.to_string();
            let big = only_emoji(&body);
            let me_name = chat
                .me
                .with_untracked(|me| me.as_ref().map(|m| m.username.to_string()));
            let mentions_me = me_name
                .as_ref()
                .is_some_and(|u| crate::markdown::mentions(&body).contains(u));
            view! {
                <article class="message" class:first=first class:mine=mine
                    class:mentions-me=mentions_me data-seq=m.seq>
                    {first.then(|| view! {
                        <header class="message-head">
                            <strong class="sender">{move || chat.name_of(sender)}</strong>
                            <time class="time">{clock_time(m.created_at)}</time>
                        </header>
                    })}
                    <div class="message-actions">
                        <button type="button" class="link" aria-label=move || format!("Reply to {}", chat.name_of(sender))
                            on:click=move |_| actions.reply.run(original.clone())>"Reply"</button>
                    </div>
                    {m.reply_to.as_ref().map(|r| quote(chat, r, actions))}
                    <div class="body" class:big=big title=clock_time(m.created_at)>
                        {super::format::render_body(&body, me_name.as_deref())}
                    </div>
                </article>
            }
            .into_any()
        }
        Row::Pending(p) => {
            let client_id = p.client_id.clone();
            let failed = p.failed.clone();
            let is_failed = failed.is_some();
            view! {
                <article class="message first mine pending" class:failed=is_failed>
                    <header class="message-head">
                        <strong class="sender">{move || chat.me.with(|me| me.as_ref().map(|m| m.display_name.to_string()).unwrap_or_default())}</strong>
                        <span class="status">{if is_failed { "Failed" } else { "Sending…" }}</span>
                    </header>
                    {p.reply_to.as_ref().map(|r| view! {
                        <p class="quote">"↪ " {chat.name_of(r.sender_id)}</p>
                    })}
                    <div class="body">{super::format::render_body(&p.body, None)}</div>
                    {failed.map(|why| view! {
                        <p class="send-error" role="alert">{why} " "
                            <button class="link" on:click=move |_| socket::retry(chat, &client_id)>"Retry"</button>
                        </p>
                    })}
                </article>
            }
            .into_any()
        }
    }
}

#[component]
fn TypingLine(room_id: RoomId) -> impl IntoView {
    let chat = use_chat();
    let text = move || {
        let me = chat.me.with(|m| m.as_ref().map(|m| m.id));
        let names: Vec<String> = chat.typing.with(|t| {
            t.get(&room_id)
                .map(|r| {
                    r.keys()
                        .filter(|u| Some(**u) != me)
                        .map(|u| chat.name_of(*u))
                        .collect()
                })
                .unwrap_or_default()
        });
        match names.as_slice() {
            [] => String::new(),
            [one] => format!("{one} is typing…"),
            [a, b] => format!("{a} and {b} are typing…"),
            _ => "Several people are typing…".into(),
        }
    };
    view! { <div class="typing" aria-live="polite">{text}</div> }
}

/// A completion offered in the composer for the token being typed at the end.
#[derive(Clone, PartialEq)]
struct Suggestion {
    /// Where the token starts (its `@` or `:`); everything from there is replaced.
    from: usize,
    insert: String,
    label: String,
    detail: String,
}

/// The token being typed at the end of `text` if it starts with `marker` (after a space or at
/// the start) and is made of `allowed` characters: `(start index, partial, lower-cased)`.
fn trailing_token(text: &str, marker: char, allowed: fn(char) -> bool) -> Option<(usize, String)> {
    let at = text.rfind(marker)?;
    let before_ok = text[..at]
        .chars()
        .next_back()
        .is_none_or(|c| c.is_whitespace() || "([{".contains(c));
    let partial = &text[at + 1..];
    (before_ok && partial.len() <= 32 && partial.chars().all(allowed))
        .then(|| (at, partial.to_ascii_lowercase()))
}

#[component]
fn Composer(
    room_id: RoomId,
    members: Signal<Vec<Member>>,
    replying: RwSignal<Option<Message>>,
) -> impl IntoView {
    let chat = use_chat();
    let text = RwSignal::new(String::new());
    let picked = RwSignal::new(0usize);
    let dismissed = RwSignal::new(None::<String>);
    let picker_open = RwSignal::new(false);
    let suggestions = Memo::new(move |_| {
        let current = text.get();
        if dismissed.get().as_deref() == Some(current.as_str()) {
            return Vec::new();
        }
        let name_char = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
        if let Some((from, partial)) = trailing_token(&current, '@', name_char) {
            let me = chat.me.with(|m| m.as_ref().map(|m| m.id));
            return members.with(|ms| {
                ms.iter()
                    .filter(|m| {
                        Some(m.user.id) != me && m.user.username.as_str().starts_with(&partial)
                    })
                    .take(6)
                    .map(|m| Suggestion {
                        from,
                        insert: format!("@{} ", m.user.username),
                        label: m.user.display_name.to_string(),
                        detail: format!("@{}", m.user.username),
                    })
                    .collect()
            });
        }
        let code_char = |c: char| c.is_ascii_alphanumeric() || "_+-".contains(c);
        if let Some((from, partial)) = trailing_token(&current, ':', code_char)
            && partial.len() >= 2
        {
            super::emoji::ensure_loaded(chat);
            return chat.emoji.with(|list| {
                list.as_ref()
                    .map(|list| {
                        super::emoji::by_shortcode(list, &partial, 6)
                            .into_iter()
                            .map(|(e, code)| Suggestion {
                                from,
                                insert: format!("{e} "),
                                label: e,
                                detail: format!(":{code}:"),
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            });
        }
        Vec::new()
    });
    let error = RwSignal::new(None::<String>);
    let last_typing = StoredValue::new(0.0f64);
    let input = NodeRef::<html::Textarea>::new();

    let stop_typing = move || {
        if last_typing.get_value() > 0.0 {
            last_typing.set_value(0.0);
            socket::send(&ClientFrame::Typing {
                room_id,
                active: false,
            });
        }
    };
    let submit = move || {
        let body = text.get_untracked();
        if body.trim().is_empty() {
            return;
        }
        if let Err(e) = MessageBody::parse(&body) {
            error.set(Some(e.to_string()));
            return;
        }
        error.set(None);
        socket::post(chat, room_id, body, replying.get_untracked());
        replying.set(None);
        text.set(String::new());
        if let Some(el) = input.get_untracked() {
            el.set_value("");
        }
        stop_typing();
    };
    let set_text = move |next: String| {
        if let Some(el) = input.get_untracked() {
            el.set_value(&next);
            el.focus().ok();
        }
        text.set(next);
        picked.set(0);
    };
    let complete = move |s: Suggestion| {
        let current = text.get_untracked();
        let from = s.from.min(current.len());
        if !s.insert.starts_with('@') {
            super::emoji::remember(s.insert.trim_end());
        }
        set_text(format!("{}{}", &current[..from], s.insert));
    };
    Effect::new(move |_| {
        if replying.with(Option::is_some)
            && let Some(el) = input.get_untracked()
        {
            el.focus().ok();
        }
    });
    let pick_emoji = Callback::new(move |e: String| {
        let current = text.get_untracked();
        let sep = if current.is_empty() || current.ends_with(char::is_whitespace) {
            ""
        } else {
            " "
        };
        set_text(format!("{current}{sep}{e}"));
    });
    let on_keydown = move |ev: KeyboardEvent| {
        let options = suggestions.get_untracked();
        if !options.is_empty() && !ev.is_composing() {
            match ev.key().as_str() {
                "ArrowDown" => {
                    ev.prevent_default();
                    picked.update(|i| *i = (*i + 1) % options.len());
                    return;
                }
                "ArrowUp" => {
                    ev.prevent_default();
                    picked.update(|i| *i = (*i + options.len() - 1) % options.len());
                    return;
                }
                "Enter" | "Tab" if !ev.shift_key() => {
                    ev.prevent_default();
                    let i = picked.get_untracked().min(options.len() - 1);
                    complete(options[i].clone());
                    return;
                }
                "Escape" => {
                    dismissed.set(Some(text.get_untracked()));
                    return;
                }
                _ => {}
            }
        }
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            submit();
        }
    };
    let on_input = move |ev| {
        let value = event_target_value(&ev);
        let empty = value.trim().is_empty();
        text.set(value);
        if empty {
            stop_typing();
        } else if now_ms() - last_typing.get_value() > TYPING_EVERY_MS {
            last_typing.set_value(now_ms());
            socket::send(&ClientFrame::Typing {
                room_id,
                active: true,
            });
        }
    };
    on_cleanup(move || {
        if last_typing.try_get_value().is_some_and(|t| t > 0.0) {
            socket::send(&ClientFrame::Typing {
                room_id,
                active: false,
            });
        }
    });
    let count = move || text.with(|t| t.chars().count());
    view! {
        <form class="composer" on:submit=move |ev: SubmitEvent| { ev.prevent_default(); submit(); }>
            <Show when=move || error.get().is_some()>
                <p class="form-error" role="alert">{move || error.get().unwrap_or_default()}</p>
            </Show>
            {move || replying.get().map(|m| {
                let sender = m.sender_id;
                let excerpt: String = m.body.as_str().chars().take(120).collect();
                view! {
                    <div class="replying" role="status">
                        <span>"Replying to " <strong>{move || chat.name_of(sender)}</strong>": " {excerpt}</span>
                        <button type="button" class="link" aria-label="Cancel reply"
                            on:click=move |_| replying.set(None)>"✕"</button>
                    </div>
                }
            })}
            <Show when=move || picker_open.get()>
                <super::emoji::EmojiPicker on_pick=pick_emoji
                    on_close=Callback::new(move |()| picker_open.set(false))/>
            </Show>
            <Show when=move || !suggestions.get().is_empty()>
                <ul class="mention-suggest" role="listbox" aria-label="Suggestions">
                    {move || suggestions.get().into_iter().enumerate().map(|(i, s)| {
                        let (label, detail) = (s.label.clone(), s.detail.clone());
                        view! {
                            <li role="option" aria-selected=move || (picked.get() == i).to_string()
                                class:picked=move || picked.get() == i
                                on:mousedown=move |ev| { ev.prevent_default(); complete(s.clone()); }>
                                <strong>{label}</strong> " " <span class="muted">{detail}</span>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </Show>
            <div class="composer-row">
                <textarea
                    node_ref=input
                    name="message"
                    rows="1"
                    placeholder="Write a message"
                    aria-label="Message"
                    enterkeyhint="send"
                    prop:value=move || text.get()
                    on:input=on_input
                    on:keydown=on_keydown
                ></textarea>
                <button type="button" class="icon-button emoji-toggle" aria-label="Emoji"
                    aria-expanded=move || picker_open.get().to_string()
                    on:click=move |_| picker_open.update(|o| *o = !*o)>"☺"</button>
                <button type="submit" class="primary" aria-label="Send">"Send"</button>
            </div>
            <Show when=move || { count() > MessageBody::MAX_CHARS - 200 }>
                <p class="counter" class:over={move || count() > MessageBody::MAX_CHARS}>
                    {move || format!("{} / {}", count(), MessageBody::MAX_CHARS)}
                </p>
            </Show>
        </form>
    }
}

#[component]
fn MembersPanel(
    room: Signal<Option<RoomSummary>>,
    members: Signal<Vec<Member>>,
    reload: Callback<()>,
) -> impl IntoView {
    let chat = use_chat();
    let navigate = use_navigate();
    let invitee = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let topic = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let my_role = move || room.get().map(|r| r.role).unwrap_or(Role::Member);
    let room_id = move || room.get_untracked().map(|r| r.id);
    let is_room = move || room.get().is_some_and(|r| r.kind == RoomKind::Room);
    Effect::new(move |_| {
        if let Some(r) = room.get() {
            name.set(r.name.clone());
            topic.set(r.topic.to_string());
        }
    });

    let invite = move |ev: SubmitEvent| {
        ev.prevent_default();
        let Some(id) = room_id() else { return };
        let who = invitee.get_untracked().trim().to_owned();
        spawn_local(async move {
            match client::invite(id, who).await {
                Ok(_) => {
                    invitee.try_set(String::new());
                    error.try_set(None);
                    reload.run(());
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    let save = move |ev: SubmitEvent| {
        ev.prevent_default();
        let Some(id) = room_id() else { return };
        let req = UpdateRoomRequest {
            name: Some(name.get_untracked()),
            topic: Some(topic.get_untracked()),
        };
        spawn_local(async move {
            let outcome = client::update_room(id, &req).await.err().map(|e| e.message);
            error.try_set(outcome);
        });
    };
    let leave = move |_| {
        let Some(id) = room_id() else { return };
        let navigate = navigate.clone();
        spawn_local(async move {
            match client::leave_room(id).await {
                Ok(()) => {
                    chat.apply(crate::protocol::ServerFrame::RoomLeft {
                        room_id: id,
                        reason: crate::protocol::LeftReason::Left,
                    });
                    navigate("/", Default::default());
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };

    view! {
        <aside class="members-panel" aria-label="Members">
            <h2>"Members"</h2>
            <Show when=move || error.get().is_some()>
                <p class="form-error" role="alert">{move || error.get().unwrap_or_default()}</p>
            </Show>
            <ul class="member-list">
                {move || members.get().into_iter().map(|m| {
                    let uid = m.user.id;
                    let online = move || chat.is_online(uid);
                    let can_kick = is_room() && {
                        let me = chat.me.get_untracked().map(|u| u.id);
                        Some(uid) != me && match my_role() {
                            Role::Owner => true,
                            Role::Admin => m.role == Role::Member,
                            Role::Member => false,
                        }
                    };
                    let label = format!("Remove {}", m.user.display_name);
                    view! {
                        <li class="member">
                            <span class="presence-dot" class:online=online
                                aria-label=move || if online() { "online" } else { "offline" }></span>
                            <span class="member-name">{m.user.display_name.to_string()}
                                <span class="muted">" @" {m.user.username.to_string()}</span></span>
                            {(m.role != Role::Member).then(|| view! { <span class="role">{m.role.as_str()}</span> })}
                            {can_kick.then(|| view! {
                                <button class="link danger" aria-label=label on:click=move |_| {
                                    let Some(id) = room_id() else { return };
                                    spawn_local(async move {
                                        match client::kick(id, uid).await {
                                            Ok(()) => reload.run(()),
                                            Err(e) => {
                    error.try_set(Some(e.message));
                }
                                        }
                                    });
                                }>"Remove"</button>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
            <Show when=is_room>
                <form class="stack" on:submit=invite novalidate=true>
                    <label><span>"Invite by username"</span>
                        <input name="invite" autocomplete="off" autocapitalize="none" bind:value=invitee/></label>
                    <button type="submit" class="secondary">"Invite"</button>
                </form>
                <Show when=move || my_role().can_moderate()>
                    <form class="stack" on:submit=save novalidate=true>
                        <label><span>"Room name"</span><input name="rename" bind:value=name/></label>
                        <label><span>"Topic"</span><input name="set_topic" bind:value=topic/></label>
                        <button type="submit" class="secondary">"Save"</button>
                    </form>
                </Show>
                <button class="secondary danger" on:click=leave.clone()>"Leave room"</button>
            </Show>
        </aside>
    }
}

/// Periodic chores of the chat UI (expire typing indicators), stopped with the chat.
pub fn start_timers(chat: Chat) {
    if let Ok(handle) =
        set_interval_with_handle(move || chat.expire_typing(), Duration::from_secs(1))
    {
        on_cleanup(move || handle.clear());
    }
}
