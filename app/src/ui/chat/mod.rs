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
