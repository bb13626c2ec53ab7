//! The sidebar: rooms, direct messages with presence dots, and the actions that add to them.

use leptos::prelude::*;

use super::dialogs::{BrowseRooms, NewDm, NewRoom};
use super::state::use_chat;
use crate::domain::RoomKind;
use crate::ui::nav::use_nav;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialog {
    None,
    NewRoom,
    Browse,
    NewDm,
}

#[component]
pub fn Sidebar(on_navigate: Callback<()>) -> impl IntoView {
    let chat = use_chat();
    let nav = use_nav();
    let dialog = RwSignal::new(Dialog::None);
    let close = Callback::new(move |()| dialog.set(Dialog::None));
    let list = move |kind: RoomKind| {
        chat.rooms.with(|rooms| {
            let mut rooms: Vec<_> = rooms.iter().filter(|r| r.kind == kind).cloned().collect();
            rooms.sort_by(|a, b| super::collate(&a.name, &b.name));
            rooms
        })
    };
    let link = move |room: crate::api::RoomSummary| {
        let href = format!("/rooms/{}", room.id);
        let active = {
            let href = href.clone();
            Memo::new(move |_| nav.path() == href)
        };
        let id = room.id;
        let summary = move || chat.room(id);
        let unread = move || summary().map_or(0, |r| chat.unread(&r));
        let mentions = move || summary().map_or(0, |r| r.mentions);
        let muted = move || summary().is_some_and(|r| r.muted);
        let peer = room.peer.as_ref().map(|p| p.id);
        let dm = room.kind == RoomKind::Dm;
        view! {
            <li>
                <a
                    href=href
                    class="room-link"
                    aria-current=move || active.get().then_some("page")
                    on:click=move |_| on_navigate.run(())
                >
                    <span class="room-link-inner" class:active=active class:unread=move || { unread() > 0 }>
                        {if dm {
                            let online = move || peer.is_some_and(|p| chat.is_online(p));
                            view! {
                                <span
                                    class="presence-dot"
                                    class:online=online
                                    aria-label=move || if online() { "online" } else { "offline" }
                                ></span>
                            }.into_any()
                        } else {
                            view! { <span class="hash" aria-hidden="true">"#"</span> }.into_any()
                        }}
                        <span class="room-name">{room.name.clone()}</span>
                        {move || (mentions() > 0).then(|| view! {
                            <span class="badge mention" aria-label=format!("{} mentions", mentions())>"@"</span>
                        })}
                        {move || (unread() > 0).then(|| view! {
                            <span class="badge" class:muted=muted aria-label=format!("{} unread", unread())>
                                {if unread() > 99 { "99+".to_owned() } else { unread().to_string() }}
                            </span>
                        })}
                    </span>
                </a>
            </li>
        }
    };
    view! {
        <nav class="conversations">
            <div class="section-head">
                <h2>"Rooms"</h2>
                <button class="icon-button small" aria-label="Browse rooms" title="Browse rooms"
                    on:click=move |_| dialog.set(Dialog::Browse)>"⌕"</button>
                <button class="icon-button small" aria-label="New room" title="New room"
                    on:click=move |_| dialog.set(Dialog::NewRoom)>"+"</button>
            </div>
            <ul class="room-list" aria-label="Rooms">
                {move || {
                    let rooms = list(RoomKind::Room);
                    if rooms.is_empty() {
                        view! { <li class="empty">"No rooms yet."</li> }.into_any()
                    } else {
                        rooms.into_iter().map(link).collect_view().into_any()
                    }
                }}
            </ul>
            <div class="section-head">
                <h2>"Direct messages"</h2>
                <button class="icon-button small" aria-label="New direct message" title="New direct message"
                    on:click=move |_| dialog.set(Dialog::NewDm)>"+"</button>
            </div>
            <ul class="room-list" aria-label="Direct messages">
                {move || {
                    let rooms = list(RoomKind::Dm);
                    if rooms.is_empty() {
                        view! { <li class="empty">"No conversations yet."</li> }.into_any()
                    } else {
                        rooms.into_iter().map(link).collect_view().into_any()
                    }
                }}
            </ul>
        </nav>
        {move || match dialog.get() {
            Dialog::None => ().into_any(),
            Dialog::NewRoom => view! { <NewRoom on_close=close/> }.into_any(),
            Dialog::Browse => view! { <BrowseRooms on_close=close/> }.into_any(),
            Dialog::NewDm => view! { <NewDm on_close=close/> }.into_any(),
        }}
    }
}
