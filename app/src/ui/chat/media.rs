//! Attachments in messages: images as inline thumbnails that open a lightbox, other files as a
//! download card. File names come from other users: they only ever reach the page as text
//! nodes and attribute values, never as markup.

use leptos::ev::KeyboardEvent;
use leptos::html;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::api::{Attachment, AttachmentKind};

/// Thumbnails are shown at most this wide and high (CSS pixels); the server makes them this
/// size too.
const THUMB_MAX: f64 = 400.0;

/// "532 B", "12.3 KB", "4.0 MB" (binary multiples, as file managers show them).
pub fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{} B", bytes.max(0));
    }
    let mut size = bytes as f64 / 1024.0;
    let mut unit = 0;
    // The next unit as soon as this one would show 1024.0.
    while size >= 1023.95 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    // Tenths as an integer: no float is formatted, so the client carries no float-printing
    // code (docs/perf.md, sixth round).
    let tenths = (size * 10.0).round() as u64;
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
}

/// An image's display size: its own, scaled down to fit a `THUMB_MAX` square.
fn fit(width: Option<u32>, height: Option<u32>) -> Option<(u32, u32)> {
    let (w, h) = (f64::from(width?), f64::from(height?));
    if w <= 0.0 || h <= 0.0 {
        return None;
    }
    let scale = (THUMB_MAX / w.max(h)).min(1.0);
    Some((
        ((w * scale).round() as u32).max(1),
        ((h * scale).round() as u32).max(1),
    ))
}

/// A paperclip (line icon, `currentColor`). Icons are SVG, not emoji: emoji fonts differ or
/// are missing from one system to the next.
pub fn paperclip_icon() -> impl IntoView {
    view! {
        <svg class="icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
            <path d="M21.44 11.05l-9.19 9.19a6 6 0 0 1-8.49-8.49l9.19-9.19a4 4 0 0 1 5.66 5.66l-9.2 9.19a2 2 0 0 1-2.83-2.83l8.49-8.48"/>
        </svg>
    }
}

fn file_icon() -> impl IntoView {
    view! {
        <svg class="icon file-icon" viewBox="0 0 24 24" width="28" height="28" aria-hidden="true">
            <path d="M13 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V9z"/>
            <path d="M13 2v7h7"/>
        </svg>
    }
}

/// Where the file downloads from (always as an attachment, whatever its type).
fn download_url(a: &Attachment) -> String {
    format!("{}?download=1", a.url)
}

/// A message's attachments: images first as a row of thumbnails, then file cards, each in the
/// order the sender attached them.
pub fn attachments_view(list: &[Attachment], lightbox: RwSignal<Option<Attachment>>) -> AnyView {
    if list.is_empty() {
        return ().into_any();
    }
    let images: Vec<Attachment> = list
        .iter()
        .filter(|a| a.kind == AttachmentKind::Image)
        .cloned()
        .collect();
    let files: Vec<Attachment> = list
        .iter()
        .filter(|a| a.kind != AttachmentKind::Image)
        .cloned()
        .collect();
    view! {
        <div class="attachments">
            {(!images.is_empty()).then(|| view! {
                <div class="attachment-images">
                    {images.into_iter().map(|a| image_view(a, lightbox)).collect_view()}
                </div>
            })}
            {files.into_iter().map(file_view).collect_view()}
        </div>
    }
    .into_any()
}

fn image_view(a: Attachment, lightbox: RwSignal<Option<Attachment>>) -> impl IntoView {
    let size = fit(a.width, a.height);
    let src = a.thumb_url.clone().unwrap_or_else(|| a.url.clone());
    let label = format!("Open image {}", a.name);
    let name = a.name.clone();
    view! {
        <button type="button" class="attachment-open" aria-label=label
            on:click=move |_| lightbox.set(Some(a.clone()))>
            <img class="attachment-image" src=src alt=name loading="lazy" decoding="async"
                width=size.map(|s| s.0.to_string()) height=size.map(|s| s.1.to_string())/>
        </button>
    }
}

fn file_view(a: Attachment) -> impl IntoView {
    let href = download_url(&a);
    let label = format!("Download {}", a.name);
    view! {
        <div class="attachment-file">
            {file_icon()}
            <span class="file-meta">
                <span class="file-name" title=a.name.clone()>{a.name.clone()}</span>
                <span class="file-size">{human_size(a.size)}</span>
            </span>
            <a class="file-download" href=href download=a.name.clone() aria-label=label>"Download"</a>
        </div>
    }
}

/// The full-size image over everything, with its name and a download link. Closes on Esc, on
/// the close button and on a click outside the image.
#[component]
pub fn Lightbox(shown: RwSignal<Option<Attachment>>) -> impl IntoView {
    move || {
        shown
            .get()
            .map(|a| view! { <LightboxView attachment=a on_close=Callback::new(move |()| shown.set(None))/> })
    }
}

#[component]
fn LightboxView(attachment: Attachment, on_close: Callback<()>) -> impl IntoView {
    let close_button = NodeRef::<html::Button>::new();
    // Esc from anywhere while it is open (focus may still be in the message list).
    let esc = window_event_listener(leptos::ev::keydown, move |ev: KeyboardEvent| {
        if ev.key() == "Escape" {
            ev.prevent_default();
            on_close.run(());
        }
    });
    on_cleanup(move || esc.remove());
    Effect::new(move |_| {
        if let Some(b) = close_button.get() {
            b.focus().ok();
        }
    });
    let a = attachment;
    let href = download_url(&a);
    view! {
        <div class="lightbox" role="dialog" aria-modal="true" aria-label=a.name.clone()
            on:click=move |ev| {
                // Only the backdrop itself: clicks on the image or the caption keep it open.
                // (Leptos delegates events, so `currentTarget` is not this element.)
                let on_backdrop = ev
                    .target()
                    .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                    .is_some_and(|el| el.class_list().contains("lightbox"));
                if on_backdrop {
                    on_close.run(());
                }
            }>
            <button type="button" class="icon-button lightbox-close" aria-label="Close" node_ref=close_button
                on:click=move |_| on_close.run(())>"✕"</button>
            <figure class="lightbox-figure">
                <img class="lightbox-image" src=a.url.clone() alt=a.name.clone()
                    width=a.width.map(|w| w.to_string()) height=a.height.map(|h| h.to_string())/>
                <figcaption class="lightbox-caption">
                    <span class="lightbox-name">{a.name.clone()}</span>
                    <a class="lightbox-download" href=href download=a.name.clone()>"Download"</a>
                </figcaption>
            </figure>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_read_as_file_managers_show_them() {
        let cases = [
            (-5, "0 B"),
            (0, "0 B"),
            (532, "532 B"),
            (1023, "1023 B"),
            (1024, "1.0 KB"),
            (1536, "1.5 KB"),
            (12_595, "12.3 KB"),
            (1024 * 1024 - 52, "1023.9 KB"),
            (1024 * 1024 - 51, "1.0 MB"),
            (4 * 1024 * 1024, "4.0 MB"),
            (5 * 1024 * 1024 * 1024 + 1024 * 1024 * 1024 / 2, "5.5 GB"),
            (3 << 40, "3.0 TB"),
        ];
        for (bytes, shown) in cases {
            assert_eq!(human_size(bytes), shown, "{bytes} B");
        }
    }
}
