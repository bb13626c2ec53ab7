//! The client: first-load bytes, the brotli files `scripts/build-site.sh` writes and the server
//! sends to browsers that accept `br` (the budget counts the app, wasm + JS + CSS; the HTML
//! shell and the loader script are listed too, since a first visit fetches them as well); and
//! time to interactive in Chromium, measured by `bench/tti.mjs` against a running server.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

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

/// Time to interactive in Chromium: `node bench/tti.mjs base runs` (Playwright from
/// `end2end/node_modules`, Debian's Chromium) against the Natter server at `base`.
pub fn tti(base: &str, runs: usize) -> Result<Metrics> {
    println!("== client time to interactive (Chromium, {runs} runs per mode, {base}) ==");
    let out = Command::new("node")
        .args(["bench/tti.mjs", base, &runs.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .context("running node bench/tti.mjs (needs Node.js and end2end's npm packages)")?;
    if !out.status.success() {
        bail!("bench/tti.mjs failed: {}", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .last()
        .context("bench/tti.mjs printed nothing")?;
    let v: Value = serde_json::from_str(line).context("bench/tti.mjs output")?;
    let mut m = Metrics::default();
    for (mode, link) in [("loopback", "loopback"), ("throttled", "40 ms, 10 Mbit/s")] {
        for (kind, what) in [
            ("login", "sign-in form, first visit"),
            (
                "chat",
                "a room's messages + composer, first visit signed in",
            ),
            ("again", "the same, returning visit"),
        ] {
            let t = &v[format!("{mode}_{kind}_ms")];
            let (med, min, max) = (t["median"].as_f64(), t["min"].as_f64(), t["max"].as_f64());
            println!(
                "{link:17} {what:52} median {} ms (min {}, max {})",
                fmt_ms(med),
                fmt_ms(min),
                fmt_ms(max)
            );
            m.add(
                &format!("client.tti_{mode}_{kind}_ms"),
                &format!("client TTI, {what} ({link})"),
                "ms",
                med,
                Better::Lower,
            );
        }
    }
    let bytes = v["loopback_bytes"].as_f64();
    println!(
        "fetched on a first visit (Chromium's transferSize, headers included): {} B",
        bytes.map_or("-".into(), |b| group(b as i64))
    );
    m.add(
        "client.transfer_kb",
        "client first visit, bytes fetched by Chromium",
        "KB",
        bytes.map(|b| b / 1000.0),
        Better::Lower,
    );
    Ok(m)
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}
