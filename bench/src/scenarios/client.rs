//! First-load bytes of the client: the brotli files `scripts/build-site.sh` writes and the
//! server sends to browsers that accept `br`. The budget counts the app (wasm + JS + CSS); the
//! HTML shell and the loader script are listed too, since a first visit fetches them as well.

use anyhow::Result;

use crate::report::{Better, Metrics, group};

const APP: &[&str] = &[
    "pkg/natter.wasm.br",
    "pkg/natter.js.br",
    "pkg/natter.css.br",
];
const PAGE: &[&str] = &["shell.html.br", "boot.js.br"];

pub fn run(site: &str) -> Result<Metrics> {
    println!("== client first load (brotli, {site}) ==");
    let size = |f: &str| {
        std::fs::metadata(format!("{site}/{f}"))
            .map(|m| m.len())
            .ok()
    };
    let mut app = Some(0u64);
    for f in APP {
        let s = size(f);
        println!(
            "{f:24} {} B",
            s.map_or("missing".into(), |s| group(s as i64))
        );
        app = app.zip(s).map(|(a, s)| a + s);
    }
    let mut page = Some(0u64);
    for f in PAGE {
        let s = size(f);
        println!(
            "{f:24} {} B",
            s.map_or("missing".into(), |s| group(s as i64))
        );
        page = page.zip(s).map(|(a, s)| a + s);
    }
    println!(
        "app (wasm + js + css): {} B; with the shell and loader: {} B",
        app.map_or("-".into(), |a| group(a as i64)),
        app.zip(page)
            .map_or("-".into(), |(a, p)| group((a + p) as i64))
    );
    let mut m = Metrics::default();
    m.add(
        "client.first_load_kb",
        "client first load, wasm + js + css (brotli)",
        "KB",
        app.map(|a| a as f64 / 1000.0),
        Better::Lower,
    );
    m.add(
        "client.first_load_all_kb",
        "client first load incl. shell.html + boot.js",
        "KB",
        app.zip(page).map(|(a, p)| (a + p) as f64 / 1000.0),
        Better::Lower,
    );
    Ok(m)
}
