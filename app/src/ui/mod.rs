//! The single-page app: routing, the session context, pages.
//!
//! State flows one way: server answers update the [`session::Session`] signal, and every view
//! reads from it. The next issues feed room and message signals from the WebSocket the same way.

mod auth_pages;
mod chat;
mod client;
mod nav;
mod session;
mod shell;

use leptos::prelude::*;

use auth_pages::{AuthMode, AuthPage};
use nav::{Nav, Page};
use session::Session;
use shell::{Drawer, Shell};

#[component]
pub fn App() -> impl IntoView {
    let session = Session::start();
    provide_context(session);
    let nav = Nav::start();
    // The signed-in layout stays mounted while its pages change: they all map to `Home` here.
    let section = Memo::new(move |_| match nav.page() {
        page if page.in_shell() => Page::Home,
        page => page,
    });
    move || match section.get() {
        Page::Login => view! { <AuthPage mode=AuthMode::Login/> }.into_any(),
        Page::Signup => view! { <AuthPage mode=AuthMode::Signup/> }.into_any(),
        Page::NotFound => view! { <NotFound/> }.into_any(),
        Page::Home | Page::Room(_) => view! { <Shell/> }.into_any(),
    }
}

#[component]
fn RoomRoute() -> impl IntoView {
    let Drawer(open) = expect_context::<Drawer>();
    view! { <chat::RoomPane open_drawer=Callback::new(move |()| open.set(true))/> }
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <main class="center-page">
            <div class="card">
                <h1>"Page not found"</h1>
                <p><a href="/">"Back to Natter"</a></p>
            </div>
        </main>
    }
}
