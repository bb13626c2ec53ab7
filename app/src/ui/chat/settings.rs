//! The settings dialog: read receipts (privacy) and push notifications on this device.
//!
//! Notifications: ask the browser's permission, subscribe through the service worker's push
//! manager with the server's VAPID key, and hand the subscription to the server. "Send a test"
//! asks the server to push to every device of the user; "Turn off" unsubscribes this device.

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Notification, NotificationPermission, PushSubscription, PushSubscriptionOptionsInit,
    ServiceWorkerRegistration,
};

use super::dialogs::Modal;
use crate::api::Settings;
use crate::ui::client;

/// What this device's notifications look like.
#[derive(Debug, Clone, PartialEq)]
enum PushState {
    Checking,
    /// The browser has no service workers or push (or the page is not a secure context).
    Unsupported,
    Denied,
    Off,
    On,
}

fn js_error(e: JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| "The browser refused.".into())
}

fn supported() -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let has = |obj: &JsValue, key: &str| {
        js_sys::Reflect::has(obj, &JsValue::from_str(key)).unwrap_or(false)
    };
    has(&window.navigator(), "serviceWorker")
        && has(&window, "PushManager")
        && has(&window, "Notification")
}

async fn registration() -> Result<ServiceWorkerRegistration, String> {
    let window = web_sys::window().ok_or("no window")?;
    let ready = window
        .navigator()
        .service_worker()
        .ready()
        .map_err(js_error)?;
    JsFuture::from(ready)
        .await
        .map_err(js_error)?
        .dyn_into::<ServiceWorkerRegistration>()
        .map_err(|_| "no service worker".to_owned())
}

async fn current_subscription() -> Result<Option<PushSubscription>, String> {
    let reg = registration().await?;
    let promise = reg
        .push_manager()
        .map_err(js_error)?
        .get_subscription()
        .map_err(js_error)?;
    let sub = JsFuture::from(promise).await.map_err(js_error)?;
    Ok(sub.dyn_into::<PushSubscription>().ok())
}

/// base64url (no padding) → bytes, through the browser's `atob`.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut b64: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !b64.len().is_multiple_of(4) {
        b64.push('=');
    }
    let binary = web_sys::window()?.atob(&b64).ok()?;
    Some(binary.chars().map(|c| c as u32 as u8).collect())
}

async fn turn_on() -> Result<(), String> {
    let permission = JsFuture::from(Notification::request_permission().map_err(js_error)?)
        .await
        .map_err(js_error)?;
    if permission.as_string().as_deref() != Some("granted") {
        return Err("Notifications are blocked for this site in the browser's settings.".into());
    }
    let key = client::push_key().await.map_err(|e| e.message)?;
    let key = base64url_decode(&key).ok_or("The server's key is malformed.")?;
    let options = PushSubscriptionOptionsInit::new();
    options.set_user_visible_only(true);
    options.set_application_server_key(&js_sys::Uint8Array::from(key.as_slice()));
    let reg = registration().await?;
    let promise = reg
        .push_manager()
        .map_err(js_error)?
        .subscribe_with_options(&options)
        .map_err(js_error)?;
    let sub = JsFuture::from(promise).await.map_err(js_error)?;
    let json = js_sys::JSON::stringify(&sub)
        .map_err(js_error)?
        .as_string()
        .ok_or("The subscription could not be read.")?;
    client::push_subscribe(&json).await.map_err(|e| e.message)
}

async fn turn_off() -> Result<(), String> {
    if let Some(sub) = current_subscription().await? {
        client::push_unsubscribe(&sub.endpoint())
            .await
            .map_err(|e| e.message)?;
        JsFuture::from(sub.unsubscribe().map_err(js_error)?)
            .await
            .map_err(js_error)?;
    }
    Ok(())
}

async fn push_state() -> PushState {
    if !supported() {
        return PushState::Unsupported;
    }
    if Notification::permission() == NotificationPermission::Denied {
        return PushState::Denied;
    }
    match current_subscription().await {
        Ok(Some(_)) if Notification::permission() == NotificationPermission::Granted => {
            PushState::On
        }
        Ok(_) => PushState::Off,
        Err(_) => PushState::Unsupported,
    }
}

#[component]
pub fn SettingsDialog(on_close: Callback<()>) -> impl IntoView {
    let settings = RwSignal::new(None::<Settings>);
    let push = RwSignal::new(PushState::Checking);
    let busy = RwSignal::new(false);
    let note = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    spawn_local(async move {
        match client::settings().await {
            Ok(s) => {
                settings.try_set(Some(s));
            }
            Err(e) => {
                error.try_set(Some(e.message));
            }
        }
        push.try_set(push_state().await);
    });
    let toggle_receipts = move |ev: leptos::ev::Event| {
        let share = event_target_checked(&ev);
        spawn_local(async move {
            match client::update_settings(&Settings {
                share_receipts: share,
            })
            .await
            {
                Ok(s) => {
                    settings.try_set(Some(s));
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    let run = move |action: &'static str| {
        busy.set(true);
        note.set(None);
        error.set(None);
        spawn_local(async move {
            let result = match action {
                "on" => turn_on().await.map(|()| None),
                "off" => turn_off().await.map(|()| None),
                _ => client::push_test()
                    .await
                    .map(|sent| {
                        Some(if sent == 0 {
                            "No device accepted the test: turn notifications on first.".to_owned()
                        } else {
                            format!(
                                "Test sent to {sent} device{}.",
                                if sent == 1 { "" } else { "s" }
                            )
                        })
                    })
                    .map_err(|e| e.message),
            };
            match result {
                Ok(text) => {
                    note.try_set(text);
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
            push.try_set(push_state().await);
            busy.try_set(false);
        });
    };
    view! {
        <Modal title="Settings" on_close=on_close>
            <section class="settings-section">
                <h3>"Privacy"</h3>
                <label class="check">
                    <input type="checkbox" name="share_receipts"
                        prop:checked=move || settings.with(|s| s.as_ref().is_none_or(|s| s.share_receipts))
                        disabled=move || settings.with(Option::is_none)
                        on:change=toggle_receipts/>
                    " Send read receipts"
                </label>
                <p class="hint">"When off, others do not see when you have read their messages, and you do not see theirs."</p>
            </section>
            <section class="settings-section">
                <h3>"Notifications on this device"</h3>
                <p class="push-state" role="status">{move || match push.get() {
                    PushState::Checking => "Checking…",
                    PushState::Unsupported => "This browser cannot receive push notifications here.",
                    PushState::Denied => "Blocked in the browser's site settings.",
                    PushState::Off => "Off. Turn them on to hear about direct messages and mentions when Natter is closed.",
                    PushState::On => "On: direct messages and mentions reach you when no Natter tab is in front of you.",
                }}</p>
                <div class="actions">
                    <Show when=move || push.get() == PushState::Off>
                        <button class="primary" disabled=move || busy.get() on:click=move |_| run("on")>"Turn on"</button>
                    </Show>
                    <Show when=move || push.get() == PushState::On>
                        <button class="secondary" disabled=move || busy.get() on:click=move |_| run("test")>"Send a test"</button>
                        <button class="secondary" disabled=move || busy.get() on:click=move |_| run("off")>"Turn off"</button>
                    </Show>
                </div>
                {move || note.get().map(|n| view! { <p class="hint" role="status">{n}</p> })}
            </section>
            {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
        </Modal>
    }
}
