//! The app's router: which page the address bar names, as a signal.
//!
//! Natter has five pages (`/`, `/rooms/:id`, `/login`, `/signup` and "not found"), so this is
//! the History API and a memo, not leptos_router: dropping that router made the client 47 KB
//! smaller compressed (docs/perf.md, "Client size").
//!
//! [`Nav::go`] pushes a history entry; Back and Forward (`popstate`) set the path; a click on a
//! link to one of our pages becomes [`Nav::go`] instead of a page load, unless it asks for
//! something else (a modifier key, another button, `target`, `download`).

use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};

use crate::domain::RoomId;

/// A page of the app, parsed from a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `/`: the signed-in welcome pane.
    Home,
    /// `/rooms/:id`; `None` when the id is not a positive number.
    Room(Option<RoomId>),
    Login,
    Signup,
    NotFound,
}

impl Page {
    /// The page a path names (no query or fragment). One trailing slash is ignored.
    pub fn parse(path: &str) -> Self {
        let path = match path.strip_suffix('/') {
            Some(rest) if !rest.is_empty() => rest,
            _ => path,
        };
        match path {
            "/" | "" => Self::Home,
            "/login" => Self::Login,
            "/signup" => Self::Signup,
            _ => match path.strip_prefix("/rooms/") {
                Some(id) if !id.contains('/') => {
                    Self::Room(id.parse::<i64>().ok().filter(|n| *n > 0).map(RoomId::new))
                }
                _ => Self::NotFound,
            },
        }
    }

    /// Pages that live inside the signed-in layout (the sidebar stays while they change).
    pub fn in_shell(self) -> bool {
        matches!(self, Self::Home | Self::Room(_))
    }
}

/// The current path and the page it names. Copy it into closures freely.
#[derive(Clone, Copy)]
pub struct Nav {
    path: RwSignal<String>,
    page: Memo<Page>,
}

impl Nav {
    /// Creates the router for the app's lifetime and provides it as context: reads the address
    /// bar, and listens to Back/Forward and to clicks on links to our pages.
    pub fn start() -> Self {
        let path = RwSignal::new(current_path());
        let page = Memo::new(move |_| path.with(|p| Page::parse(p)));
        let nav = Self { path, page };
        provide_context(nav);
        // Listeners for the app's lifetime (dropping the handles leaves them in place).
        window_event_listener(leptos::ev::popstate, move |_| path.set(current_path()));
        window_event_listener(leptos::ev::click, move |ev| {
            if let Some(to) = link_target(&ev) {
                ev.prevent_default();
                nav.go(&to);
            }
        });
        nav
    }

    /// The page the address bar names (tracked).
    pub fn page(&self) -> Page {
        self.page.get()
    }

    /// The path (tracked), e.g. to mark the link to the open room.
    pub fn path(&self) -> String {
        self.path.get()
    }

    /// Goes to `to` (a path of ours) and adds a history entry, so Back returns. Going where
    /// the tab already is adds none (a second click on the open room's link).
    pub fn go(&self, to: &str) {
        let location = window().location();
        let here = [location.pathname(), location.search(), location.hash()]
            .into_iter()
            .collect::<Result<String, _>>();
        self.set(to, here.is_ok_and(|here| here == to));
    }

    /// Goes to `to` in place of the current entry (redirects: Back skips them).
    pub fn replace(&self, to: &str) {
        self.set(to, true);
    }

    fn set(&self, to: &str, replace: bool) {
        if let Ok(history) = window().history() {
            let url = Some(to);
            let done = if replace {
                history.replace_state_with_url(&JsValue::NULL, "", url)
            } else {
                history.push_state_with_url(&JsValue::NULL, "", url)
            };
            if done.is_err() {
                return;
            }
        }
        let pathname = to.split(['?', '#']).next().unwrap_or(to).to_owned();
        if self.path.with_untracked(|p| *p != pathname) {
            self.path.set(pathname);
        }
    }
}

pub fn use_nav() -> Nav {
    expect_context::<Nav>()
}

/// Sends the browser elsewhere once mounted (as a replacement entry), e.g. to `/login` when
/// signed out.
#[component]
pub fn Redirect(path: &'static str) -> impl IntoView {
    let nav = use_nav();
    // Not during rendering: the page signal would change under the view being built.
    Effect::new(move |_| nav.replace(path));
}

fn current_path() -> String {
    window()
        .location()
        .pathname()
        .unwrap_or_else(|_| "/".into())
}

/// The path a click should navigate to inside the app, or `None` when the browser should do
/// what it does: the click was handled already, used a modifier key or another button, or the
/// link leaves the app (another origin, a file, a new tab, a download, not one of our pages).
fn link_target(ev: &web_sys::MouseEvent) -> Option<String> {
    if ev.default_prevented()
        || ev.button() != 0
        || ev.meta_key()
        || ev.alt_key()
        || ev.ctrl_key()
        || ev.shift_key()
    {
        return None;
    }
    let target = ev.target()?.dyn_into::<web_sys::Element>().ok()?;
    let link = target.closest("a[href]").ok()??;
    if link.has_attribute("download")
        || link
            .get_attribute("target")
            .is_some_and(|t| !t.is_empty() && t != "_self")
    {
        return None;
    }
    let href = link.get_attribute("href")?;
    let path = href.split(['?', '#']).next().unwrap_or(&href);
    // Root-relative links only ("//host/..." is another origin).
    if !path.starts_with('/') || path.starts_with("//") || Page::parse(path) == Page::NotFound {
        return None;
    }
    Some(href)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_pages() {
        assert_eq!(Page::parse("/"), Page::Home);
        assert_eq!(Page::parse("/login"), Page::Login);
        assert_eq!(Page::parse("/login/"), Page::Login);
        assert_eq!(Page::parse("/signup"), Page::Signup);
        assert_eq!(Page::parse("/rooms/42"), Page::Room(Some(RoomId::new(42))));
        assert_eq!(Page::parse("/rooms/42/"), Page::Room(Some(RoomId::new(42))));
        assert_eq!(Page::parse("/rooms/abc"), Page::Room(None));
        assert_eq!(Page::parse("/rooms/-3"), Page::Room(None));
        assert_eq!(Page::parse("/rooms/4/x"), Page::NotFound);
        assert_eq!(Page::parse("/rooms"), Page::NotFound);
        assert_eq!(Page::parse("/api/files/1"), Page::NotFound);
        assert_eq!(Page::parse("/nope"), Page::NotFound);
        assert!(Page::parse("/rooms/1").in_shell());
        assert!(!Page::parse("/login").in_shell());
    }
}
