//! The chat UI: state fed by the WebSocket (`state`, `socket`), the sidebar, the room pane
//! (`room`, its rows in `message`, attachments in `media`, uploads in `upload`) and the dialogs.

pub mod dialogs;
mod emoji;
mod format;
mod media;
mod message;
pub mod offline;
mod room;
pub mod settings;
mod sidebar;
pub mod socket;
pub mod state;
pub mod upload;

pub use room::{RoomPane, start_timers};
pub use sidebar::Sidebar;

/// "HH:MM" in the browser's time zone.
pub fn clock_time(ms: i64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
}

/// A day label for separators: "Today", "Yesterday", or the date.
pub fn day_label(ms: i64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    let day = String::from(d.to_date_string());
    let now = js_sys::Date::new_0();
    if now.to_date_string() == day {
        return "Today".into();
    }
    let yesterday = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
        now.get_time() - 86_400_000.0,
    ));
    if yesterday.to_date_string() == day {
        return "Yesterday".into();
    }
    day
}

/// The key of a message's day, for grouping.
pub fn day_key(ms: i64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    String::from(d.to_date_string())
}

// Text is cased and compared with the browser's Unicode tables: Rust's own (`str::to_lowercase`
// and friends) would add their tables to the client's download (docs/perf.md, sixth round).

/// `text` in lower case, for case-insensitive matching.
pub fn lower_case(text: &str) -> String {
    js_sys::JsString::from(text).to_lower_case().into()
}

/// `text` in upper case (an avatar's initial).
pub fn upper_case(text: &str) -> String {
    js_sys::JsString::from(text).to_upper_case().into()
}

/// The order of two names in the user's language (`localeCompare`), as a sorted list shows them.
pub fn collate(a: &str, b: &str) -> std::cmp::Ordering {
    js_sys::JsString::from(a)
        .locale_compare(b, &js_sys::Array::new(), &js_sys::Object::new())
        .cmp(&0)
}
