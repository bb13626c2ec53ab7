//! The room pane: header, message list (day separators, sender grouping, infinite scroll
//! upward, stick-to-bottom only when already at the bottom), typing line and composer (with
//! attachments: picker, drag and drop, paste); plus the members panel (presence, invite, kick)
//! and settings for owners and admins. Rows themselves are drawn by `chat::message`.

use std::time::Duration;

use leptos::ev::{ClipboardEvent, DragEvent, KeyboardEvent, SubmitEvent};
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::message::{EditState, Row, RowContext, build_rows, render_row};
use super::state::{Chat, now_ms, use_chat};
use super::{socket, upload};
use crate::api::{Attachment, Member, Message, RoomSummary, UpdateRoomRequest};
use crate::domain::{MessageBody, Role, RoomId, RoomKind};
use crate::protocol::ClientFrame;
use crate::ui::client;
use crate::ui::nav::{Page, use_nav};

/// Typing notices are re-sent at most this often while typing.
const TYPING_EVERY_MS: f64 = 3000.0;

#[component]
pub fn RoomPane(open_drawer: Callback<()>) -> impl IntoView {
    let nav = use_nav();
    // Leaving for another page keeps the last room until this pane is gone.
    let room_id = Memo::new(move |last: Option<&Option<RoomId>>| match nav.page() {
        Page::Room(id) => id,
        _ => last.copied().flatten(),
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
    chat.active_room.set(Some(room_id));
    chat.toasts.update(|t| t.retain(|x| x.room_id != room_id));
    on_cleanup(move || {
        chat.active_room.try_update(|a| {
            if *a == Some(room_id) {
                *a = None
            }
        });
    });
    let room = Memo::new(move |_| chat.room(room_id));
    let panel = RwSignal::new(false);
    let replying = RwSignal::new(None::<Message>);
    let edit = EditState::new();
    let reacting = RwSignal::new(None::<Message>);
    let lightbox = RwSignal::new(None::<Attachment>);
    // Why some files were not attached (the 10-per-message limit), shown by the composer.
    let upload_note = RwSignal::new(None::<String>);
    let add_files = move |files: Vec<web_sys::File>| {
        upload_note.set(upload::add_files(chat, room_id, files));
    };
    // Dragging files over the room shows the drop zone. `dragenter`/`dragleave` fire for every
    // child crossed, so count them.
    let drag_depth = StoredValue::new(0i32);
    let dropping = RwSignal::new(false);
    let carries_files = |ev: &DragEvent| {
        ev.data_transfer().is_some_and(|dt| {
            dt.types()
                .includes(&wasm_bindgen::JsValue::from_str("Files"), 0)
        })
    };
    let on_dragenter = move |ev: DragEvent| {
        if carries_files(&ev) {
            ev.prevent_default();
            drag_depth.update_value(|d| *d += 1);
            dropping.set(true);
        }
    };
    let on_dragover = move |ev: DragEvent| {
        if carries_files(&ev) {
            ev.prevent_default();
            if let Some(dt) = ev.data_transfer() {
                dt.set_drop_effect("copy");
            }
        }
    };
    let on_dragleave = move |_: DragEvent| {
        drag_depth.update_value(|d| *d = (*d - 1).max(0));
        if drag_depth.get_value() == 0 {
            dropping.set(false);
        }
    };
    let on_drop = move |ev: DragEvent| {
        drag_depth.set_value(0);
        dropping.set(false);
        let files = ev
            .data_transfer()
            .and_then(|dt| dt.files())
            .map(|l| upload::files_of(&l))
            .unwrap_or_default();
        if !files.is_empty() {
            ev.prevent_default();
            add_files(files);
        }
    };
    // Files dropped beside the drop zone (the sidebar, the header) would make the browser
    // leave the app to show them.
    let stray_over = window_event_listener(leptos::ev::dragover, move |ev| {
        if carries_files(&ev) {
            ev.prevent_default();
        }
    });
    let stray_drop = window_event_listener(leptos::ev::drop, move |ev| {
        if carries_files(&ev) {
            ev.prevent_default();
        }
    });
    on_cleanup(move || {
        stray_over.remove();
        stray_drop.remove();
    });
    let pick_reaction = Callback::new(move |emoji: String| {
        let Some(m) = reacting.get_untracked() else {
            return;
        };
        reacting.set(None);
        let me = chat.me.with_untracked(|me| me.as_ref().map(|m| m.id));
        let already = m
            .reactions
            .iter()
            .any(|r| r.emoji == emoji && me.is_some_and(|me| r.users.contains(&me)));
        if !already {
            super::message::toggle_reaction(chat, room_id, m.id, emoji, true);
        }
    });
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
                        <button class="icon-button small mute" aria-pressed=move || room.with(|r| r.as_ref().is_some_and(|r| r.muted)).to_string()
                            title=move || if room.with(|r| r.as_ref().is_some_and(|r| r.muted)) { "Unmute notifications" } else { "Mute notifications" }
                            aria-label=move || if room.with(|r| r.as_ref().is_some_and(|r| r.muted)) { "Unmute" } else { "Mute" }
                            on:click=move |_| {
                                let muted = room.with_untracked(|r| r.as_ref().is_some_and(|r| r.muted));
                                spawn_local(async move {
                                    match client::mute(room_id, !muted).await {
                                        Ok(summary) => chat.apply(crate::protocol::ServerFrame::RoomJoined { room: summary }),
                                        Err(e) => { chat.notice.try_set(Some(e.message)); }
                                    }
                                });
                            }>
                            {move || if room.with(|r| r.as_ref().is_some_and(|r| r.muted)) { "🔕" } else { "🔔" }}
                        </button>
                        <button class="secondary small" aria-expanded=move || panel.get().to_string()
                            on:click=move |_| { panel.update(|p| *p = !*p); if panel.get_untracked() { load_members(); } }>
                            {if is_dm { "Info".to_owned() } else { format!("Members ({})", r.member_count) }}
                        </button>
                    </header>
                }.into_any()
            }
        }}
        <div class="room-body">
            <div class="room-main" class:dropping=move || dropping.get()
                on:dragenter=on_dragenter on:dragover=on_dragover
                on:dragleave=on_dragleave on:drop=on_drop>
                <MessageList room_id=room_id replying=replying edit=edit
                    react=Callback::new(move |m: Message| reacting.set(Some(m))) lightbox=lightbox/>
                <TypingLine room_id=room_id/>
                <Composer room_id=room_id members=members replying=replying edit=edit
                    upload_note=upload_note add_files=Callback::new(add_files)/>
                <Show when=move || dropping.get()>
                    <div class="drop-zone" aria-hidden="true"><span>"Drop files to attach them"</span></div>
                </Show>
            </div>
            <Show when=move || panel.get() && room.get().is_some()>
                <MembersPanel room=Signal::derive(move || room.get()) members=members
                    reload=Callback::new(move |()| load_members())/>
            </Show>
        </div>
        <Show when=move || reacting.with(Option::is_some)>
            <div class="picker-backdrop" on:click=move |_| reacting.set(None)></div>
            <div class="reaction-picker">
                <super::emoji::EmojiPicker on_pick=pick_reaction
                    on_close=Callback::new(move |()| reacting.set(None))/>
            </div>
        </Show>
        <super::media::Lightbox shown=lightbox/>
    }
}

#[component]
fn MessageList(
    room_id: RoomId,
    replying: RwSignal<Option<Message>>,
    edit: EditState,
    react: Callback<Message>,
    lightbox: RwSignal<Option<Attachment>>,
) -> impl IntoView {
    let chat = use_chat();
    let list = NodeRef::<html::Div>::new();
    let at_bottom = StoredValue::new(true);
    // Where the reader had read up to when they opened the room: the "New messages" divider.
    let unread_after = chat.rooms.with_untracked(|rooms| {
        rooms
            .iter()
            .find(|r| r.id == room_id)
            .filter(|r| r.last_seq > r.last_read_seq)
            .map(|r| r.last_read_seq)
    });
    let jumped = RwSignal::new(false);
    let rows = Memo::new(move |_| build_rows(chat, room_id, unread_after));
    // Reading: the tab is in front, the list is synced and scrolled to the bottom.
    // This and `check_divider` also run from animation frames, which can come after the room
    // is closed (another room opened, or signed out): they read nothing that may be gone.
    let mark_read = move || {
        if !at_bottom.try_get_value().unwrap_or(false) || !super::socket::tab_visible() {
            return;
        }
        let newest = chat
            .timelines
            .try_with_untracked(|t| {
                t.get(&room_id)
                    .filter(|tl| tl.synced)
                    .and_then(|tl| tl.messages.keys().next_back().copied())
            })
            .flatten();
        if let Some(seq) = newest {
            chat.mark_read(room_id, seq);
        }
    };
    // The jump button goes once the divider has been on screen.
    let check_divider = move || {
        if jumped.try_get_untracked().unwrap_or(true) {
            return;
        }
        let Some(el) = list.try_get_untracked().flatten() else {
            return;
        };
        if let Ok(Some(divider)) = el.query_selector("#unread-divider") {
            let (view, at) = (
                el.get_bounding_client_rect(),
                divider.get_bounding_client_rect(),
            );
            if at.top() >= view.top() - 1.0 && at.top() <= view.bottom() {
                jumped.try_set(true);
            }
        }
    };
    let on_visible = window_event_listener_untyped("visibilitychange", move |_| mark_read());
    on_cleanup(move || on_visible.remove());
    let synced = Memo::new(move |_| {
        chat.timelines
            .with(|t| t.get(&room_id).is_some_and(|tl| tl.synced))
    });

    // Stick to the bottom when new rows arrive, but only if the reader was already there.
    Effect::new(move |_| {
        rows.track();
        if at_bottom.get_value() {
            request_animation_frame(move || {
                if let Some(el) = list.try_get_untracked().flatten() {
                    el.set_scroll_top(el.scroll_height());
                }
                mark_read();
                check_divider();
            });
        } else {
            request_animation_frame(check_divider);
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
                        if let Some(el) = list.try_get_untracked().flatten() {
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
            mark_read();
            check_divider();
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
                let Some(list) = list.try_get_untracked().flatten() else {
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
    let who = RwSignal::new(None);
    // The "who reacted" popover closes with the next click anywhere.
    let close_who = window_event_listener(leptos::ev::click, move |_| {
        if who.try_with_untracked(Option::is_some) == Some(true) {
            who.set(None);
        }
    });
    on_cleanup(move || close_who.remove());
    let ctx = RowContext {
        room_id,
        reply: Callback::new(move |m: Message| replying.set(Some(m))),
        jump,
        react,
        edit,
        active: RwSignal::new(None),
        who,
        lightbox,
    };

    let show_jump = move || !jumped.get() && unread_after.is_some();
    view! {
        <Show when=show_jump>
            <button class="jump-unread" on:click=move |_| {
                jumped.set(true);
                if let Some(after) = unread_after {
                    jump.run(after + 1);
                }
            }>"↑ Jump to first unread"</button>
        </Show>
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
                {render_row(chat, row, ctx)}
            </For>
        </div>
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
    edit: EditState,
    upload_note: RwSignal<Option<String>>,
    add_files: Callback<Vec<web_sys::File>>,
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
    let file_input = NodeRef::<html::Input>::new();
    let uploading = move || upload::busy(chat, room_id);
    let submit = move || {
        let body = text.get_untracked();
        let (busy, with_files) =
            untrack(|| (upload::busy(chat, room_id), upload::has_done(chat, room_id)));
        if busy {
            error.set(Some("Wait until the files are uploaded.".into()));
            return;
        }
        let body = if body.trim().is_empty() {
            if !with_files {
                return;
            }
            String::new()
        } else {
            if let Err(e) = MessageBody::parse(&body) {
                error.set(Some(e.to_string()));
                return;
            }
            body
        };
        error.set(None);
        upload_note.set(None);
        let attachments = upload::take_done(chat, room_id);
        socket::post(chat, room_id, body, replying.get_untracked(), attachments);
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
        // ArrowUp in an empty composer edits my last message.
        if ev.key() == "ArrowUp"
            && !ev.shift_key()
            && !ev.is_composing()
            && text.with_untracked(String::is_empty)
            && let Some(m) = super::message::my_last_message(chat, room_id)
        {
            ev.prevent_default();
            edit.open(&m);
        }
    };
    let on_paste = move |ev: ClipboardEvent| {
        let files = ev
            .clipboard_data()
            .and_then(|dt| dt.files())
            .map(|l| upload::files_of(&l))
            .unwrap_or_default();
        // Plain text pastes as usual; only files are taken over.
        if !files.is_empty() {
            ev.prevent_default();
            add_files.run(files);
        }
    };
    let on_files_chosen = move |_| {
        let Some(input) = file_input.get_untracked() else {
            return;
        };
        let files = input
            .files()
            .map(|l| upload::files_of(&l))
            .unwrap_or_default();
        // Cleared so that choosing the same file again is a change too.
        input.set_value("");
        add_files.run(files);
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
                let excerpt = crate::markdown::excerpt(&super::state::message_nodes(&m));
                view! {
                    <div class="replying" role="status">
                        <span>"Replying to " <strong>{move || chat.name_of(sender)}</strong>": " {excerpt}</span>
                        <button type="button" class="link" aria-label="Cancel reply"
                            on:click=move |_| replying.set(None)>"✕"</button>
                    </div>
                }
            })}
            <super::upload::UploadChips room_id=room_id/>
            <Show when=move || upload_note.get().is_some()>
                <p class="upload-note" role="status">
                    <span>{move || upload_note.get().unwrap_or_default()}</span>
                    <button type="button" class="link" aria-label="Dismiss"
                        on:click=move |_| upload_note.set(None)>"✕"</button>
                </p>
            </Show>
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
                <input type="file" multiple=true class="file-input" node_ref=file_input
                    tabindex="-1" aria-hidden="true" on:change=on_files_chosen/>
                <button type="button" class="icon-button attach" aria-label="Attach files" title="Attach files"
                    on:click=move |_| if let Some(input) = file_input.get_untracked() { input.click(); }>
                    {super::media::paperclip_icon()}
                </button>
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
                    on:paste=on_paste
                ></textarea>
                <button type="button" class="icon-button emoji-toggle" aria-label="Emoji"
                    aria-expanded=move || picker_open.get().to_string()
                    on:click=move |_| picker_open.update(|o| *o = !*o)>"☺"</button>
                <button type="submit" class="primary" aria-label="Send"
                    prop:disabled=uploading
                    title=move || uploading().then_some("Wait until the files are uploaded")>"Send"</button>
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
    let nav = use_nav();
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
                    reload.try_run(());
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
        spawn_local(async move {
            match client::leave_room(id).await {
                Ok(()) => {
                    chat.apply(crate::protocol::ServerFrame::RoomLeft {
                        room_id: id,
                        reason: crate::protocol::LeftReason::Left,
                    });
                    nav.go("/");
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
                                            Ok(()) => {
                                                reload.try_run(());
                                            }
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
                <button class="secondary danger" on:click=leave>"Leave room"</button>
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
