//! Emoji: the list is fetched from `/emoji.json` the first time the user reaches for emoji
//! (picker or `:shortcode`), so it costs nothing on the initial download. Recently used emoji
//! are remembered in localStorage.

use std::sync::Arc;

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::state::Chat;
use crate::api::EmojiEntry;

const RECENT_KEY: &str = "natter.recent_emoji";
const RECENT_MAX: usize = 24;

/// Starts loading the emoji list if it is not there yet.
pub fn ensure_loaded(chat: Chat) {
    if chat.emoji.with_untracked(Option::is_some) || chat.emoji_loading.get_untracked() {
        return;
    }
    chat.emoji_loading.set(true);
    spawn_local(async move {
        let list = async {
            gloo_net::http::Request::get("/emoji.json")
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()
                .and_then(|text| crate::json::decode::<Vec<EmojiEntry>>(&text).ok())
        }
        .await;
        chat.emoji_loading.try_set(false);
        if let Some(list) = list {
            chat.emoji.try_set(Some(Arc::new(list)));
        }
    });
}

pub fn recent() -> Vec<String> {
    window()
        .local_storage()
        .ok()
        .flatten()
        .and_then(|s| s.get_item(RECENT_KEY).ok().flatten())
        .and_then(|json| crate::json::decode(&json).ok())
        .unwrap_or_default()
}

pub fn remember(emoji: &str) {
    let mut list = recent();
    list.retain(|e| e != emoji);
    list.insert(0, emoji.to_owned());
    list.truncate(RECENT_MAX);
    if let Some(storage) = window().local_storage().ok().flatten() {
        let json = crate::json::encode(&list);
        // Private browsing may refuse storage; recents are a convenience.
        storage.set_item(RECENT_KEY, &json).ok();
    }
}

/// Emoji whose shortcode starts with `partial`, at most `limit`.
pub fn by_shortcode(list: &[EmojiEntry], partial: &str, limit: usize) -> Vec<(String, String)> {
    list.iter()
        .filter_map(|e| {
            e.s.iter()
                .find(|s| s.starts_with(partial))
                .map(|s| (e.e.clone(), s.clone()))
        })
        .take(limit)
        .collect()
}

#[component]
pub fn EmojiPicker(on_pick: Callback<String>, on_close: Callback<()>) -> impl IntoView {
    let chat = super::state::use_chat();
    ensure_loaded(chat);
    let query = RwSignal::new(String::new());
    let group = RwSignal::new("Smileys & Emotion".to_owned());
    let recents = RwSignal::new(recent());
    let groups = move || {
        chat.emoji.with(|l| {
            let mut seen: Vec<String> = Vec::new();
            for e in l.iter().flat_map(|l| l.iter()) {
                if !seen.contains(&e.g) {
                    seen.push(e.g.clone());
                }
            }
            seen
        })
    };
    let shown = move || {
        let q = super::lower_case(query.get().trim());
        let g = group.get();
        chat.emoji.with(|l| {
            l.iter()
                .flat_map(|l| l.iter())
                .filter(|e| {
                    if q.is_empty() {
                        e.g == g
                    } else {
                        e.n.contains(&q) || e.s.iter().any(|s| s.contains(&q))
                    }
                })
                .take(400)
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    let pick = move |e: String| {
        remember(&e);
        recents.set(recent());
        on_pick.run(e);
    };
    view! {
        <div class="emoji-picker" role="dialog" aria-label="Emoji picker"
            on:keydown=move |ev| if ev.key() == "Escape" { on_close.run(()) }>
            <input class="emoji-search" type="search" placeholder="Search emoji" aria-label="Search emoji"
                bind:value=query autofocus=true/>
            <Show when=move || !recents.get().is_empty() && query.get().is_empty()>
                <div class="emoji-row" aria-label="Recently used">
                    {move || recents.get().into_iter().map(|e| {
                        let x = e.clone();
                        view! { <button type="button" class="emoji" on:click=move |_| pick(x.clone())>{e}</button> }
                    }).collect_view()}
                </div>
            </Show>
            <div class="emoji-groups" role="tablist">
                {move || groups().into_iter().map(|g| {
                    let name = g.clone();
                    let selected = {
                        let g = g.clone();
                        move || group.get() == g && query.get().is_empty()
                    };
                    view! {
                        <button type="button" role="tab" class="emoji-group" class:selected=selected.clone()
                            aria-selected=move || selected().to_string()
                            on:click=move |_| { query.set(String::new()); group.set(name.clone()); }>{g}</button>
                    }
                }).collect_view()}
            </div>
            <div class="emoji-grid">
                {move || if chat.emoji.with(Option::is_none) {
                    view! { <p class="muted">"Loading emoji…"</p> }.into_any()
                } else {
                    shown().into_iter().map(|e| {
                        let x = e.e.clone();
                        view! {
                            <button type="button" class="emoji" title=e.n.clone() aria-label=e.n.clone()
                                on:click=move |_| pick(x.clone())>{e.e.clone()}</button>
                        }
                    }).collect_view().into_any()
                }}
            </div>
        </div>
    }
}
