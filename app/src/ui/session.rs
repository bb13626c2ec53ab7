//! Who is signed in, as a signal every view reads.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::User;

use super::client;

#[derive(Debug, Clone, PartialEq)]
pub enum AuthState {
    /// Asking the server whether the session cookie is still good.
    Checking,
    SignedOut,
    SignedIn(User),
}

#[derive(Clone, Copy)]
pub struct Session {
    pub state: RwSignal<AuthState>,
}

impl Session {
    /// Creates the signal and asks the server once whether the cookie holds a live session.
    ///
    /// Offline (the server cannot be reached, as opposed to answering "signed out"), the last
    /// signed-in user is assumed: the app opens with what it keeps offline, and the socket
    /// checks the session for real once it connects (closing with 4001 if it has ended).
    pub fn start() -> Self {
        let state = RwSignal::new(AuthState::Checking);
        spawn_local(async move {
            let next = match client::session().await {
                Ok(resp) => resp.user.map_or(AuthState::SignedOut, AuthState::SignedIn),
                Err(e) if e.code.is_none() => {
                    remembered_user().map_or(AuthState::SignedOut, AuthState::SignedIn)
                }
                Err(_) => AuthState::SignedOut,
            };
            state.set(next);
        });
        // Remember who is signed in, for the next offline start.
        Effect::new(move |_| match state.get() {
            AuthState::SignedIn(user) => remember_user(Some(&user)),
            AuthState::SignedOut => remember_user(None),
            AuthState::Checking => {}
        });
        Self { state }
    }

    pub fn user(&self) -> Option<User> {
        match self.state.get() {
            AuthState::SignedIn(user) => Some(user),
            _ => None,
        }
    }
}

pub fn use_session() -> Session {
    expect_context::<Session>()
}

const USER_KEY: &str = "natter.user";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn remembered_user() -> Option<User> {
    let text = storage()?.get_item(USER_KEY).ok().flatten()?;
    crate::json::decode(&text).ok()
}

fn remember_user(user: Option<&User>) {
    let Some(storage) = storage() else { return };
    match user.map(crate::json::encode) {
        Some(text) => {
            storage.set_item(USER_KEY, &text).ok();
        }
        None => {
            storage.remove_item(USER_KEY).ok();
        }
    }
}
