//! Sign-up and log-in pages: one form, two modes.
//!
//! The shared domain types check the input before it leaves the browser (same rules, same
//! messages as the server); the server checks again and its answer is shown as is.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{LoginRequest, SignupRequest};
use crate::domain::{DisplayName, Password, Username};

use super::client;
use super::nav::{Redirect, use_nav};
use super::session::{AuthState, use_session};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Login,
    Signup,
}

#[component]
pub fn AuthPage(mode: AuthMode) -> impl IntoView {
    let session = use_session();
    let nav = use_nav();
    let username = RwSignal::new(String::new());
    let display_name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let name = username.get_untracked();
        let pass = password.get_untracked();
        let shown = display_name.get_untracked();
        if mode == AuthMode::Signup {
            let checked = Username::parse(&name).and(Password::parse(&pass)).and(
                if shown.trim().is_empty() {
                    Ok(())
                } else {
                    DisplayName::parse(&shown).map(|_| ())
                },
            );
            if let Err(e) = checked {
                error.set(Some(e.to_string()));
                return;
            }
        } else if name.trim().is_empty() || pass.is_empty() {
            error.set(Some("Enter your username and password.".into()));
            return;
        }
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let result = match mode {
                AuthMode::Login => {
                    client::login(&LoginRequest {
                        username: name,
                        password: pass,
                    })
                    .await
                }
                AuthMode::Signup => {
                    client::signup(&SignupRequest {
                        username: name,
                        password: pass,
                        display_name: (!shown.trim().is_empty()).then_some(shown),
                    })
                    .await
                }
            };
            busy.set(false);
            match result {
                Ok(auth) => {
                    password.set(String::new());
                    session.state.set(AuthState::SignedIn(auth.user));
                    nav.go("/");
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };

    let (title, action, busy_label) = match mode {
        AuthMode::Login => ("Log in to Natter", "Log in", "Logging in…"),
        AuthMode::Signup => ("Create your Natter account", "Sign up", "Creating account…"),
    };

    view! {
        <Show when=move || matches!(session.state.get(), AuthState::SignedIn(_))>
            <Redirect path="/"/>
        </Show>
        <main class="center-page">
            <form class="card auth-form" on:submit=on_submit novalidate=true>
                <div class="brand-mark" aria-hidden="true">"N"</div>
                <h1>{title}</h1>
                <label>
                    <span>"Username"</span>
                    <input
                        name="username"
                        autocomplete="username"
                        autocapitalize="none"
                        spellcheck="false"
                        bind:value=username
                    />
                </label>
                {(mode == AuthMode::Signup).then(|| view! {
                    <label>
                        <span>"Display name " <small>"(optional)"</small></span>
                        <input name="display_name" autocomplete="name" bind:value=display_name/>
                    </label>
                })}
                <label>
                    <span>"Password"</span>
                    <input
                        name="password"
                        type="password"
                        autocomplete=if mode == AuthMode::Signup { "new-password" } else { "current-password" }
                        bind:value=password
                    />
                </label>
                {(mode == AuthMode::Signup).then(|| view! {
                    <p class="hint">"3–32 characters of a–z, 0–9, _ . - for the username; 8 or more for the password."</p>
                })}
                <Show when=move || error.get().is_some()>
                    <p class="form-error" role="alert">{move || error.get().unwrap_or_default()}</p>
                </Show>
                <button type="submit" class="primary" disabled=move || busy.get()>
                    {move || if busy.get() { busy_label } else { action }}
                </button>
                {match mode {
                    AuthMode::Login => view! {
                        <p class="switch">"New here? " <a href="/signup">"Create an account"</a></p>
                    }.into_any(),
                    AuthMode::Signup => view! {
                        <p class="switch">"Already have an account? " <a href="/login">"Log in"</a></p>
                    }.into_any(),
                }}
            </form>
        </main>
    }
}
