//! The signed-in layout: a sidebar (rooms and direct messages, the user's card) and the main
//! pane. On narrow screens the sidebar is a drawer opened from the header.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_navigate;

use super::client;
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

#[component]
fn SignedInLayout() -> impl IntoView {
    let session = use_session();
    let navigate = use_navigate();
    let drawer_open = RwSignal::new(false);
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
            .map(|c| c.to_uppercase().to_string())
            .unwrap_or_default()
    };

    let logout = move |_| {
        let navigate = navigate.clone();
        spawn_local(async move {
            match client::logout().await {
                Ok(()) => {
                    session.state.set(AuthState::SignedOut);
                    navigate("/login", Default::default());
                }
                Err(e) => logout_error.set(Some(e.message)),
            }
        });
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
                <nav class="conversations">
                    <h2>"Rooms"</h2>
                    <p class="empty">"No rooms yet."</p>
                    <h2>"Direct messages"</h2>
                    <p class="empty">"No conversations yet."</p>
                </nav>
                <footer class="me">
                    <span class="avatar" aria-hidden="true">{initial}</span>
                    <div class="me-names">
                        <strong class="me-display-name">{display_name}</strong>
                        <span class="me-username">"@" {username}</span>
                    </div>
                    <button class="secondary logout" on:click=logout>"Log out"</button>
                </footer>
                <Show when=move || logout_error.get().is_some()>
                    <p class="form-error" role="alert">{move || logout_error.get().unwrap_or_default()}</p>
                </Show>
            </aside>
            <div class="scrim" aria-hidden="true" on:click=move |_| drawer_open.set(false)></div>
            <main class="pane">
                <header class="pane-head">
                    <button
                        class="icon-button open-drawer"
                        aria-label="Open menu"
                        aria-controls="sidebar"
                        on:click=move |_| drawer_open.set(true)
                    >"☰"</button>
                    <h1>"Welcome, " {display_name}</h1>
                </header>
                <section class="pane-body">
                    <div class="empty-state">
                        <div class="brand-mark" aria-hidden="true">"N"</div>
                        <p>"You are signed in. Rooms and direct messages will appear in the sidebar."</p>
                    </div>
                </section>
            </main>
        </div>
    }
}
