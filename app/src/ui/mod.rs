//! The single-page app: routing, the session context, pages.
//!
//! State flows one way: server answers update the [`session::Session`] signal, and every view
//! reads from it. The next issues feed room and message signals from the WebSocket the same way.

mod auth_pages;
mod chat;
mod client;
mod session;
mod shell;

use leptos::prelude::*;
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::path;

use auth_pages::{AuthMode, AuthPage};
use session::Session;
use shell::{Drawer, Shell, Welcome};

#[component]
pub fn App() -> impl IntoView {
    let session = Session::start();
    provide_context(session);
    view! {
        <Router>
            <Routes fallback=|| view! { <NotFound/> }>
                <ParentRoute path=path!("/") view=Shell>
                    <Route path=path!("") view=Welcome/>
                    <Route path=path!("rooms/:id") view=RoomRoute/>
                </ParentRoute>
                <Route path=path!("/login") view=|| view! { <AuthPage mode=AuthMode::Login/> }/>
                <Route path=path!("/signup") view=|| view! { <AuthPage mode=AuthMode::Signup/> }/>
            </Routes>
        </Router>
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
