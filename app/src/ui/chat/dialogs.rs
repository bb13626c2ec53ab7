//! Dialogs: create a room, browse public rooms, start a direct message.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::state::use_chat;
use crate::api::{CreateRoomRequest, PublicRoom, User};
use crate::domain::{RoomName, Topic, Visibility};
use crate::ui::client;
use crate::ui::nav::use_nav;

#[component]
pub fn Modal(title: &'static str, on_close: Callback<()>, children: Children) -> impl IntoView {
    view! {
        <div class="modal-backdrop" on:click=move |_| on_close.run(())></div>
        <div class="modal card" role="dialog" aria-modal="true" aria-label=title
            on:keydown=move |ev| if ev.key() == "Escape" { on_close.run(()) }>
            <header class="modal-head">
                <h2>{title}</h2>
                <button class="icon-button" aria-label="Close" on:click=move |_| on_close.run(())>"✕"</button>
            </header>
            {children()}
        </div>
    }
}

#[component]
pub fn NewRoom(on_close: Callback<()>) -> impl IntoView {
    let chat = use_chat();
    let nav = use_nav();
    let name = RwSignal::new(String::new());
    let topic = RwSignal::new(String::new());
    let private = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let (n, t) = (name.get_untracked(), topic.get_untracked());
        if let Err(e) = RoomName::parse(&n).and(Topic::parse(&t).map(|_| ())) {
            error.set(Some(e.to_string()));
            return;
        }
        let visibility = if private.get_untracked() {
            Visibility::Private
        } else {
            Visibility::Public
        };
        spawn_local(async move {
            match client::create_room(&CreateRoomRequest {
                name: n,
                topic: t,
                visibility,
            })
            .await
            {
                Ok(room) => {
                    chat.apply(crate::protocol::ServerFrame::RoomJoined { room: room.clone() });
                    // `try_`: the dialog may be gone by the time the server answers.
                    on_close.try_run(());
                    nav.go(&format!("/rooms/{}", room.id));
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    view! {
        <Modal title="New room" on_close=on_close>
            <form class="stack" on:submit=submit novalidate=true>
                <label><span>"Name"</span><input name="room_name" bind:value=name autofocus=true/></label>
                <label><span>"Topic " <small>"(optional)"</small></span><input name="topic" bind:value=topic/></label>
                <label class="check">
                    <input type="checkbox" bind:checked=private/>
                    <span>"Private: only people you invite can find and join it"</span>
                </label>
                <Show when=move || error.get().is_some()>
                    <p class="form-error" role="alert">{move || error.get().unwrap_or_default()}</p>
                </Show>
                <button type="submit" class="primary">"Create room"</button>
            </form>
        </Modal>
    }
}

#[component]
pub fn BrowseRooms(on_close: Callback<()>) -> impl IntoView {
    let chat = use_chat();
    let nav = use_nav();
    let rooms = RwSignal::new(None::<Vec<PublicRoom>>);
    let error = RwSignal::new(None::<String>);
    spawn_local(async move {
        match client::public_rooms().await {
            Ok(list) => {
                rooms.try_set(Some(list));
            }
            Err(e) => {
                error.try_set(Some(e.message));
            }
        }
    });
    let join = move |room: PublicRoom| {
        spawn_local(async move {
            match client::join_room(room.id).await {
                Ok(summary) => {
                    chat.apply(crate::protocol::ServerFrame::RoomJoined { room: summary });
                    on_close.try_run(());
                    nav.go(&format!("/rooms/{}", room.id));
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    view! {
        <Modal title="Browse rooms" on_close=on_close>
            <Show when=move || error.get().is_some()>
                <p class="form-error" role="alert">{move || error.get().unwrap_or_default()}</p>
            </Show>
            <ul class="directory">
                {move || match rooms.get() {
                    None => view! { <li class="muted">"Loading…"</li> }.into_any(),
                    Some(list) if list.is_empty() => view! {
                        <li class="muted">"No public rooms yet. Create one!"</li>
                    }.into_any(),
                    Some(list) => list.into_iter().map(|room| {
                        let label = if room.joined { "Open" } else { "Join" };
                        let r = room.clone();
                        view! {
                            <li class="directory-item">
                                <div>
                                    <strong>"# " {room.name.to_string()}</strong>
                                    <span class="muted">" · " {room.member_count} " members"</span>
                                    <p class="muted topic">{room.topic.to_string()}</p>
                                </div>
                                <button class="secondary" on:click=move |_| join(r.clone())
                                    aria-label=format!("{label} {}", room.name)>{label}</button>
                            </li>
                        }
                    }).collect_view().into_any(),
                }}
            </ul>
        </Modal>
    }
}

#[component]
pub fn NewDm(on_close: Callback<()>) -> impl IntoView {
    let chat = use_chat();
    let nav = use_nav();
    let query = RwSignal::new(String::new());
    let found = RwSignal::new(Vec::<User>::new());
    let error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        let q = query.get();
        if q.trim().is_empty() {
            found.set(Vec::new());
            return;
        }
        spawn_local(async move {
            if let Ok(users) = client::search_users(q.trim()).await {
                let me = chat.me.try_get_untracked().flatten().map(|m| m.id);
                found.try_set(users.into_iter().filter(|u| Some(u.id) != me).collect());
            }
        });
    });
    let open = move |username: String| {
        spawn_local(async move {
            match client::open_dm(username).await {
                Ok(room) => {
                    let id = room.id;
                    chat.apply(crate::protocol::ServerFrame::RoomJoined { room });
                    on_close.try_run(());
                    nav.go(&format!("/rooms/{id}"));
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };

    view! {
        <Modal title="New direct message" on_close=on_close>
            <form class="stack" novalidate=true on:submit=move |ev: SubmitEvent| {
                ev.prevent_default();
                open(query.get_untracked().trim().to_owned());
            }>
                <label><span>"Username"</span>
                    <input name="dm_username" autocomplete="off" autocapitalize="none" bind:value=query autofocus=true/>
                </label>
                <Show when=move || error.get().is_some()>
                    <p class="form-error" role="alert">{move || error.get().unwrap_or_default()}</p>
                </Show>
                <ul class="directory">
                    {move || found.get().into_iter().map(|u| {
                        let name = u.username.to_string();
                        view! {
                            <li class="directory-item">
                                <span><strong>{u.display_name.to_string()}</strong>
                                    <span class="muted">" @" {name.clone()}</span></span>
                                <button type="button" class="secondary"
                                    on:click=move |_| open(name.clone())>"Message"</button>
                            </li>
                        }
                    }).collect_view()}
                </ul>
                <button type="submit" class="primary">"Start conversation"</button>
            </form>
        </Modal>
    }
}
