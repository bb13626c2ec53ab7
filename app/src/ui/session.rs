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
    pub fn start() -> Self {
        let state = RwSignal::new(AuthState::Checking);
        spawn_local(async move {
            let next = match client::session().await {
                Ok(resp) => resp.user.map_or(AuthState::SignedOut, AuthState::SignedIn),
                Err(_) => AuthState::SignedOut,
            };
            state.set(next);
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
