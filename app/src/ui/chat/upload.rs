//! Attachments for the next message: each file is uploaded the moment it is picked, dropped or
//! pasted (`POST /api/uploads`), so Send only has to name the upload ids.
//!
//! Uploads use XMLHttpRequest, not fetch: fetch reports no upload progress. The requests and
//! their JS callbacks are not `Send`, so they live here in a thread-local table keyed by the
//! upload's local key, while what the view shows (`PendingUpload`) lives in `Chat::uploads`.
//! Callbacks can fire after the user signed out (the chat is disposed): they check
//! `Chat::alive()` first, and logging out aborts every request (`abort_all`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{File, FileList, ProgressEvent, XmlHttpRequest};

use super::state::{Chat, PendingUpload, UploadState, use_chat};
use crate::api::Attachment;
use crate::domain::{MAX_ATTACHMENTS, RoomId};
use crate::error::ErrorBody;

/// A request in flight, with the callbacks the browser holds on to.
struct Request {
    xhr: XmlHttpRequest,
    _on_progress: Closure<dyn FnMut(ProgressEvent)>,
    _on_load: Closure<dyn FnMut()>,
    _on_error: Closure<dyn FnMut()>,
}

impl Drop for Request {
    /// Detaches the callbacks (the browser must never call a dropped closure) and aborts the
    /// request if it is still running.
    fn drop(&mut self) {
        if let Ok(upload) = self.xhr.upload() {
            upload.set_onprogress(None);
        }
        self.xhr.set_onload(None);
        self.xhr.set_onerror(None);
        if self.xhr.ready_state() != XmlHttpRequest::DONE {
            self.xhr.abort().ok();
        }
    }
}

thread_local! {
    static REQUESTS: RefCell<HashMap<u64, Request>> = RefCell::new(HashMap::new());
    static NEXT_KEY: Cell<u64> = const { Cell::new(1) };
}

/// The files of a picker, drop or paste.
pub fn files_of(list: &FileList) -> Vec<File> {
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

/// Starts uploading `files` for the next message in `room`. Returns a note for the user when
/// some were left out because a message takes at most `MAX_ATTACHMENTS`.
pub fn add_files(chat: Chat, room: RoomId, files: Vec<File>) -> Option<String> {
    if files.is_empty() || !chat.alive() {
        return None;
    }
    let held = chat.uploads.with_untracked(|u| {
        u.iter()
            .filter(|p| p.room_id == room && !matches!(p.state, UploadState::Failed(_)))
            .count()
    });
    let free = MAX_ATTACHMENTS.saturating_sub(held);
    let left_out = files.len().saturating_sub(free);
    for file in files.into_iter().take(free) {
        start(chat, room, file);
    }
    (left_out > 0).then(|| {
        format!(
            "A message takes at most {MAX_ATTACHMENTS} attachments; {left_out} file{} left out.",
            if left_out == 1 { " was" } else { "s were" }
        )
    })
}

fn set_state(chat: Chat, key: u64, state: UploadState) {
    if !chat.alive() {
        return;
    }
    chat.uploads.update(|u| {
        if let Some(p) = u.iter_mut().find(|p| p.key == key) {
            p.state = state;
        }
    });
}

/// Forgets a finished request. Not from inside its own callback: dropping the closure that is
/// running is left to the next turn of the event loop.
fn finish(key: u64) {
    set_timeout(
        move || {
            let done = REQUESTS.with(|r| r.borrow_mut().remove(&key));
            drop(done);
        },
        Duration::ZERO,
    );
}

fn start(chat: Chat, room: RoomId, file: File) {
    let key = NEXT_KEY.with(|k| {
        let key = k.get();
        k.set(key + 1);
        key
    });
    let name = file.name();
    chat.uploads.update(|u| {
        u.push(PendingUpload {
            key,
            room_id: room,
            name: name.clone(),
            state: UploadState::Uploading(None),
        })
    });
    let fail = move |why: &str| set_state(chat, key, UploadState::Failed(why.to_owned()));
    let Ok(xhr) = XmlHttpRequest::new() else {
        fail("This browser cannot upload files.");
        return;
    };
    let media_type = match file.type_() {
        t if t.is_empty() => "application/octet-stream".to_owned(),
        t => t,
    };
    let url = format!(
        "/api/uploads?name={}&type={}",
        js_sys::encode_uri_component(&name),
        js_sys::encode_uri_component(&media_type)
    );
    if xhr.open("POST", &url).is_err()
        || xhr
            .set_request_header("Content-Type", "application/octet-stream")
            .is_err()
    {
        fail("The upload could not start.");
        return;
    }

    let on_progress = Closure::<dyn FnMut(ProgressEvent)>::new(move |ev: ProgressEvent| {
        if !ev.length_computable() || ev.total() <= 0.0 || !chat.alive() {
            return;
        }
        let sent = (ev.loaded() / ev.total()).clamp(0.0, 1.0);
        chat.uploads.update(|u| {
            if let Some(p) = u.iter_mut().find(|p| p.key == key)
                && matches!(p.state, UploadState::Uploading(_))
            {
                p.state = UploadState::Uploading(Some(sent));
            }
        });
    });
    // The callbacks reach the request through a cell that the first of them to run empties:
    // the request ends once (load or error), and no reference cycle outlives it.
    let this: Rc<RefCell<Option<XmlHttpRequest>>> = Rc::new(RefCell::new(Some(xhr.clone())));
    let on_load = {
        let this = this.clone();
        Closure::<dyn FnMut()>::new(move || {
            let Some(xhr) = this.borrow_mut().take() else {
                return;
            };
            let status = xhr.status().unwrap_or(0);
            let text = xhr.response_text().ok().flatten().unwrap_or_default();
            set_state(chat, key, outcome(status, &text));
            finish(key);
        })
    };
    let on_error = Closure::<dyn FnMut()>::new(move || {
        this.borrow_mut().take();
        set_state(
            chat,
            key,
            UploadState::Failed("Cannot reach the server. Remove the file and try again.".into()),
        );
        finish(key);
    });
    if let Ok(upload) = xhr.upload() {
        upload.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
    }
    xhr.set_onload(Some(on_load.as_ref().unchecked_ref()));
    xhr.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    if xhr.send_with_opt_blob(Some(&file)).is_err() {
        fail("The upload could not start.");
        return;
    }
    REQUESTS.with(|r| {
        r.borrow_mut().insert(
            key,
            Request {
                xhr,
                _on_progress: on_progress,
                _on_load: on_load,
                _on_error: on_error,
            },
        )
    });
}

/// What the server's answer means for the chip.
fn outcome(status: u16, text: &str) -> UploadState {
    if (200..300).contains(&status) {
        return match crate::json::decode::<Attachment>(text) {
            Ok(a) => UploadState::Done(a),
            Err(_) => UploadState::Failed("The server sent an unexpected answer.".into()),
        };
    }
    match crate::json::decode::<ErrorBody>(text) {
        Ok(body) => UploadState::Failed(body.error.message),
        Err(_) => UploadState::Failed(format!("Upload failed (the server answered {status}).")),
    }
}

/// Removes a chip, aborting its upload if it is still running.
pub fn cancel(chat: Chat, key: u64) {
    let request = REQUESTS.with(|r| r.borrow_mut().remove(&key));
    drop(request);
    if chat.alive() {
        chat.uploads.update(|u| u.retain(|p| p.key != key));
    }
}

/// Aborts every upload (logout).
pub fn abort_all() {
    let all: Vec<Request> = REQUESTS.with(|r| r.borrow_mut().drain().map(|(_, v)| v).collect());
    drop(all);
}

/// Whether a file for `room` is still being uploaded (Send waits for it).
pub fn busy(chat: Chat, room: RoomId) -> bool {
    chat.uploads.with(|u| {
        u.iter()
            .any(|p| p.room_id == room && matches!(p.state, UploadState::Uploading(_)))
    })
}

/// Whether `room` has uploaded files waiting to be sent.
pub fn has_done(chat: Chat, room: RoomId) -> bool {
    chat.uploads.with(|u| {
        u.iter()
            .any(|p| p.room_id == room && matches!(p.state, UploadState::Done(_)))
    })
}

/// The finished uploads of `room`, in the order they were added, removed from the chips (they
/// go with the message now). Failed chips stay until the user removes them.
pub fn take_done(chat: Chat, room: RoomId) -> Vec<Attachment> {
    let mut done = Vec::new();
    chat.uploads.update(|u| {
        u.retain(|p| match &p.state {
            UploadState::Done(a) if p.room_id == room => {
                done.push(a.clone());
                false
            }
            _ => true,
        })
    });
    done
}

/// The chips above the composer: name, progress, the server's reason when it failed, ×.
#[component]
pub fn UploadChips(room_id: RoomId) -> impl IntoView {
    let chat = use_chat();
    let chips = Memo::new(move |_| {
        chat.uploads.with(|u| {
            u.iter()
                .filter(|p| p.room_id == room_id)
                .map(|p| (p.key, p.name.clone()))
                .collect::<Vec<_>>()
        })
    });
    view! {
        <Show when=move || chips.with(|c| !c.is_empty())>
            <ul class="upload-chips" aria-label="Attachments">
                <For each=move || chips.get() key=|(key, _)| *key let((key, name))>
                    {
                        let state = move || {
                            chat.uploads.with(|u| u.iter().find(|p| p.key == key).map(|p| p.state.clone()))
                        };
                        let label = format!("Remove {name}");
                        view! {
                            <li class="upload-chip"
                                class:failed=move || matches!(state(), Some(UploadState::Failed(_)))
                                class:done=move || matches!(state(), Some(UploadState::Done(_)))>
                                {super::media::paperclip_icon()}
                                <span class="upload-name" title=name.clone()>{name.clone()}</span>
                                {move || match state() {
                                    Some(UploadState::Uploading(sent)) => view! {
                                        <progress class="upload-progress" max="100"
                                            value=sent.map(|s| ((s * 100.0).round() as u32).to_string())
                                            aria-label=format!("Uploading {name}")></progress>
                                    }.into_any(),
                                    Some(UploadState::Done(a)) => view! {
                                        <span class="upload-size muted">{super::media::human_size(a.size)}</span>
                                    }.into_any(),
                                    Some(UploadState::Failed(why)) => view! {
                                        <span class="upload-error" role="alert">{why}</span>
                                    }.into_any(),
                                    None => ().into_any(),
                                }}
                                <button type="button" class="chip-remove" aria-label=label
                                    on:click=move |_| cancel(chat, key)>"×"</button>
                            </li>
                        }
                    }
                </For>
            </ul>
        </Show>
    }
}
