//! The signed-in layout: a sidebar (rooms and direct messages, the user's card) and the main
//! pane (the welcome page or a room). On narrow screens the sidebar is a drawer opened from the
//! header. The chat state and the tab's one WebSocket live here, for as long as the user is
//! signed in.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::chat::state::{Chat, Connection, use_chat};
use super::chat::{Sidebar, socket};
use super::client;
use super::nav::{Page, Redirect, use_nav};
use super::session::{AuthState, use_session};

#[component]
pub fn Shell() -> impl IntoView {
    let session = use_session();
    view! {
        {move || match session.state.get() {
            AuthState::Checking => view! {
                <main class="center-page"><p class="loading">"Loading…"</p></main>
            }.into_any(),
            AuthState::SignedOut => view! { <Redirect path="/login"/> }.into_any(),
            AuthState::SignedIn(_) => view! { <SignedInLayout/> }.into_any(),
        }}
    }
}

/// Opens and closes the drawer (phones).
#[derive(Clone, Copy)]
pub struct Drawer(pub RwSignal<bool>);

#[component]
fn SignedInLayout() -> impl IntoView {
    let session = use_session();
    let nav = use_nav();
    let chat = Chat::new();
    provide_context(chat);
    let drawer_open = RwSignal::new(false);
    provide_context(Drawer(drawer_open));
    // Going somewhere closes the drawer (phones), whatever started the navigation.
    let in_room = Memo::new(move |_| matches!(nav.page(), Page::Room(_)));
    Effect::new(move |_| {
        nav.path();
        drawer_open.set(false);
    });
    // The server ended the session (a logout elsewhere, "log out everywhere", its expiry): this
    // device is signed out and keeps nothing of the user's chat, as after logging out here.
    let on_session_end = move || {
        let user = session.user();
        session.state.set(AuthState::SignedOut);
        if let Some(user) = user {
            spawn_local(super::chat::offline::forget(user.id));
        }
    };
    // What was kept offline shows at once; then the socket resumes from it.
    let me = session.user();
    chat.me.set(me.clone());
    match me.map(|u| u.id) {
        Some(user) => spawn_local(async move {
            if let Some(snap) = super::chat::offline::load(user).await {
                chat.restore(snap);
            }
            if chat.alive() {
                super::chat::offline::keep(chat, user);
                socket::connect(chat, on_session_end);
                // Sends restored from the offline outbox wait for confirmation too.
                for p in chat.outbox.get_untracked() {
                    socket::watch(chat, p.client_id);
                }
            }
        }),
        None => socket::connect(chat, on_session_end),
    }
    super::chat::start_timers(chat);
    let offline = window_event_listener(leptos::ev::offline, move |_| socket::went_offline(chat));
    let online = window_event_listener(leptos::ev::online, move |_| {
        socket::came_online(chat, on_session_end)
    });
    let visibility = socket::watch_visibility();
    // The tab title and the installed app's badge show the unread total.
    Effect::new(move |_| {
        let total = chat.unread_total();
        if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
            doc.set_title(&if total > 0 {
                format!("({total}) Natter")
            } else {
                "Natter".to_owned()
            });
        }
        set_app_badge(total);
    });
    let settings_open = RwSignal::new(false);
    on_cleanup(move || {
        visibility.remove();
        set_app_badge(0);
        if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
            doc.set_title("Natter");
        }
        offline.remove();
        online.remove();
        socket::disconnect();
        super::chat::upload::abort_all();
    });

    let logout_error = RwSignal::new(None::<String>);
    let user = move || session.user();
    let display_name = move || {
        user()
            .map(|u| u.display_name.to_string())
            .unwrap_or_default()
    };
    let username = move || user().map(|u| u.username.to_string()).unwrap_or_default();
    let initial = move || {
        display_name()
            .chars()
            .next()
            .map(|c| super::chat::upper_case(c.encode_utf8(&mut [0; 4])))
            .unwrap_or_default()
    };

    let logout = move |_| {
        spawn_local(async move {
            // Read before the request: logging out closes this user's sockets, and the socket's
            // close can arrive before the answer and sign the session out, leaving no user to
            // forget (the browser test saw the snapshot kept in 2 of 25 runs).
            let user = session.user();
            match client::logout().await {
                Ok(()) => {
                    socket::disconnect();
                    session.state.set(AuthState::SignedOut);
                    nav.go("/login");
                    // After the chat is gone: a save it began later would put this back.
                    if let Some(user) = user {
                        super::chat::offline::forget(user.id).await;
                    }
                }
                Err(e) => {
                    logout_error.try_set(Some(e.message));
                }
            }
        });
    };
    let banner = move || match chat.connection.get() {
        Connection::Open => None,
        Connection::Connecting if chat.me.with(Option::is_none) => None,
        Connection::Connecting => Some("Reconnecting…"),
        Connection::Waiting { .. } => Some("Connection lost. Reconnecting…"),
    };

    view! {
        <div class="shell" class:open=move || drawer_open.get()>
            <aside class="sidebar" id="sidebar" aria-label="Conversations">
                <header class="sidebar-head">
                    <span class="brand">"Natter"</span>
                    <button
                        class="icon-button close-drawer"
                        aria-label="Close menu"
                        on:click=move |_| drawer_open.set(false)
                    >"✕"</button>
                </header>
                <Sidebar on_navigate=Callback::new(move |()| drawer_open.set(false))/>
                <footer class="me">
                    <span class="avatar" aria-hidden="true">{initial}</span>
                    <div class="me-names">
                        <strong class="me-display-name">{display_name}</strong>
                        <span class="me-username">"@" {username}</span>
                    </div>
                    <button class="icon-button settings" aria-label="Settings" title="Settings"
                        on:click=move |_| settings_open.set(true)>"⚙"</button>
                    <button class="secondary logout" on:click=logout>"Log out"</button>
                </footer>
                <Show when=move || settings_open.get()>
                    <super::chat::settings::SettingsDialog on_close=Callback::new(move |()| settings_open.set(false))/>
                </Show>
                <Show when=move || logout_error.get().is_some()>
                    <p class="form-error" role="alert">{move || logout_error.get().unwrap_or_default()}</p>
                </Show>
            </aside>
            <div class="scrim" aria-hidden="true" on:click=move |_| drawer_open.set(false)></div>
            <main class="pane">
                {move || banner().map(|text| view! {
                    <div class="banner" role="status">
                        <span>{text}</span>
                        <button class="link" on:click=move |_| socket::connect(chat, on_session_end)>"Retry now"</button>
                    </div>
                })}
                {move || chat.notice.get().map(|text| view! {
                    <div class="notice" role="status">
                        <span>{text}</span>
                        <button class="link" aria-label="Dismiss" on:click=move |_| chat.notice.set(None)>"✕"</button>
                    </div>
                })}
                {move || if in_room.get() {
                    view! { <super::RoomRoute/> }.into_any()
                } else {
                    view! { <Welcome/> }.into_any()
                }}
            </main>
            <ul class="toasts" aria-live="polite" aria-label="New messages elsewhere">
                <For each=move || chat.toasts.get() key=|t| t.id let(toast)>
                    {
                        let href = format!("/rooms/{}", toast.room_id);
                        let id = toast.id;
                        view! {
                            <li class="toast">
                                <a href=href on:click=move |_| chat.toasts.update(|t| t.retain(|x| x.id != id))>
                                    <strong>{toast.title.clone()}</strong>
                                    <span>{toast.text.clone()}</span>
                                </a>
                                <button class="icon-button" aria-label="Dismiss"
                                    on:click=move |_| chat.toasts.update(|t| t.retain(|x| x.id != id))>"✕"</button>
                            </li>
                        }
                    }
                </For>
            </ul>
        </div>
    }
}

/// `navigator.setAppBadge(n)` / `clearAppBadge()` where supported (installed PWAs).
fn set_app_badge(n: i64) {
    let Some(nav) = web_sys::window().map(|w| w.navigator()) else {
        return;
    };
    let name = if n > 0 {
        "setAppBadge"
    } else {
        "clearAppBadge"
    };
    if let Ok(f) = js_sys::Reflect::get(&nav, &wasm_bindgen::JsValue::from_str(name))
        && let Some(f) = wasm_bindgen::JsCast::dyn_ref::<js_sys::Function>(&f)
    {
        let result = if n > 0 {
            f.call1(&nav, &wasm_bindgen::JsValue::from_f64(n as f64))
        } else {
            f.call0(&nav)
        };
        // A rejected promise (no permission) is harmless: the title shows the count anyway.
        if let Ok(promise) = result.and_then(|p| {
            wasm_bindgen::JsCast::dyn_into::<js_sys::Promise>(p)
                .map_err(|_| wasm_bindgen::JsValue::NULL)
        }) {
            spawn_local(async move {
                wasm_bindgen_futures::JsFuture::from(promise).await.ok();
            });
        }
    }
}

/// The pane when no room is open.
#[component]
pub fn Welcome() -> impl IntoView {
    let session = use_session();
    let chat = use_chat();
    let Drawer(drawer_open) = expect_context::<Drawer>();
    let display_name = move || {
        session
            .user()
            .map(|u| u.display_name.to_string())
            .unwrap_or_default()
    };
    let empty = move || chat.rooms.with(Vec::is_empty);
    view! {
        <header class="pane-head">
            <button class="icon-button open-drawer" aria-label="Open menu" aria-controls="sidebar"
                on:click=move |_| drawer_open.set(true)>"☰"</button>
            <h1>"Welcome, " {display_name}</h1>
        </header>
        <section class="pane-body">
            <div class="empty-state">
                <div class="brand-mark" aria-hidden="true">"N"</div>
                <p>{move || if empty() {
                    "Create a room, browse public rooms, or start a direct message from the sidebar."
                } else {
                    "Pick a room or a conversation in the sidebar."
                }}</p>
            </div>
        </section>
    }
}
