//! Uploads and media: limits, types, images (pixel floods, frame bombs, metadata), who may
//! fetch a file, and the headers that keep a hostile file inert.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn upload(app: &TestApp, token: &str, name: &str, ty: &str, bytes: Vec<u8>) -> Response {
    bot()
        .post(app.url(&format!("/api/uploads?name={}&type={}", enc(name), enc(ty))))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .expect("request sent")
}

async fn upload_ok(app: &TestApp, token: &str, name: &str, ty: &str, bytes: Vec<u8>) -> Value {
    let resp = upload(app, token, name, ty, bytes).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().await.expect("json")
}

async fn fetch(app: &TestApp, token: &str, path: &str) -> Response {
    bot()
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent")
}

async fn post_with(
    app: &TestApp,
    token: &str,
    room: i64,
    client_id: &str,
    ids: &[&Value],
) -> Response {
    app.authed(
        token,
        Method::POST,
        &format!("/api/rooms/{room}/messages"),
        Some(json!({"client_id": client_id, "body": "", "attachments": ids})),
    )
    .await
}

/// Alice (owner) and Bob in a room; returns (alice, bob, room).
async fn two_in_a_room(app: &TestApp) -> (String, String, i64) {
    let alice = app.signup_ok(&bot(), "alice").await;
    let bob = app.signup_ok(&bot(), "bob").await;
    let room = app.create_room(&alice, "general", "public").await;
    assert_eq!(app.join(&bob, room).await.status(), StatusCode::OK);
    (alice, bob, room)
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A `w`×`h` PNG with a tEXt chunk holding `secret` (as cameras and editors leave metadata).
fn png_with_text(w: u32, h: u32, secret: &str) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 128]));
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    // Insert the chunk right after IHDR (8-byte signature + 25-byte IHDR chunk).
    let mut chunk = Vec::new();
    let data = [b"Comment\0".as_slice(), secret.as_bytes()].concat();
    chunk.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let typed = [b"tEXt".as_slice(), &data].concat();
    chunk.extend_from_slice(&typed);
    chunk.extend_from_slice(&crc32(&typed).to_be_bytes());
    [&png[..33], &chunk, &png[33..]].concat()
}

fn gif(w: u16, h: u16, frames: usize) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut out, w, h, &[0, 0, 0, 255, 255, 255]).unwrap();
        for i in 0..frames {
            let frame = gif::Frame {
                width: w,
                height: h,
                buffer: std::borrow::Cow::Owned(vec![
                    (i % 2) as u8;
                    usize::from(w) * usize::from(h)
                ]),
                ..Default::default()
            };
            enc.write_frame(&frame).unwrap();
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn an_image_is_cleaned_thumbnailed_and_only_the_rooms_members_may_fetch_it() {
    let app = spawn_app().await;
    let (alice, bob, room) = two_in_a_room(&app).await;
    let eve = app.signup_ok(&bot(), "eve").await;
    let png = png_with_text(1200, 800, "GPS 48.8584N 2.2945E");
    let att = upload_ok(&app, &alice, "holiday.png", "image/png", png).await;
    assert_eq!(att["kind"], "image");
    assert_eq!(
        (att["width"].as_u64(), att["height"].as_u64()),
        (Some(1200), Some(800))
    );
    let url = att["url"].as_str().unwrap().to_owned();
    let thumb = att["thumb_url"].as_str().unwrap().to_owned();

    // Before it is posted, only the uploader sees it.
    assert_eq!(fetch(&app, &alice, &url).await.status(), StatusCode::OK);
    assert_eq!(
        fetch(&app, &bob, &url).await.status(),
        StatusCode::NOT_FOUND
    );

    let resp = post_with(&app, &alice, room, "a1", &[&att["id"]]).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let msg: Value = resp.json().await.unwrap();
    assert_eq!(msg["attachments"][0], att);
    assert_eq!(msg["body"], "");

    let resp = fetch(&app, &bob, &url).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline;")
    );
    let bytes = resp.bytes().await.unwrap();
    assert!(image::load_from_memory(&bytes).is_ok());
    assert!(!contains(&bytes, b"GPS 48.8584N"), "metadata was stripped");

    let resp = fetch(&app, &bob, &thumb).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let t = image::load_from_memory(&resp.bytes().await.unwrap()).unwrap();
    assert!(t.width() <= 400 && t.height() <= 400 && t.width() == 400);

    // Outsiders, guessed ids, malformed ids and anonymous requests see nothing.
    assert_eq!(
        fetch(&app, &eve, &url).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        fetch(&app, &eve, &thumb).await.status(),
        StatusCode::NOT_FOUND
    );
    let guessed = format!("/media/{}", "0123456789abcdef0123456789abcdef");
    assert_eq!(
        fetch(&app, &bob, &guessed).await.status(),
        StatusCode::NOT_FOUND
    );
    for bad in [
        "/media/..%2F..%2Fnatter.db",
        "/media/jwt.key",
        "/media/..%2Fjwt.key",
    ] {
        assert_eq!(
            fetch(&app, &bob, bad).await.status(),
            StatusCode::NOT_FOUND,
            "{bad}"
        );
    }
    let anon = bot().get(app.url(&url)).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);

    // Bob's own request for a download gets an attachment disposition.
    let resp = fetch(&app, &bob, &format!("{url}?download=1")).await;
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
}

#[tokio::test]
async fn active_content_is_only_ever_a_download() {
    let app = spawn_app().await;
    let (alice, bob, room) = two_in_a_room(&app).await;
    let html = b"<html><script>alert(document.cookie)</script></html>".to_vec();
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>"#.to_vec();
    let a = upload_ok(&app, &alice, "page.html", "text/html", html).await;
    let b = upload_ok(&app, &alice, "logo.svg", "image/svg+xml", svg).await;
    let c = upload_ok(&app, &alice, "x.bin", "", b"\x00\x01".to_vec()).await;
    for att in [&a, &b, &c] {
        assert_eq!(att["kind"], "file");
        assert!(att.get("thumb_url").is_none());
    }
    assert_eq!(c["content_type"], "application/octet-stream");
    assert_eq!(
        post_with(&app, &alice, room, "a1", &[&a["id"], &b["id"], &c["id"]])
            .await
            .status(),
        StatusCode::CREATED
    );
    for att in [&a, &b] {
        let resp = fetch(&app, &bob, att["url"].as_str().unwrap()).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert!(
            h["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment;")
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("sandbox")
        );
    }
}

#[tokio::test]
async fn file_names_never_become_paths_or_headers() {
    let app = spawn_app().await;
    let (alice, bob, room) = two_in_a_room(&app).await;
    let traversal = upload_ok(
        &app,
        &alice,
        "../../../evil.sh",
        "text/plain",
        b"echo".to_vec(),
    )
    .await;
    assert_eq!(traversal["name"], "evil.sh");
    assert!(!app.data_dir.path().join("evil.sh").exists());
    assert!(!app.data_dir.path().join("data/evil.sh").exists());

    let injected = "a\"\r\nSet-Cookie: session=stolen\r\n\r\n<script>.txt";
    let att = upload_ok(&app, &alice, injected, "text/plain", b"hi".to_vec()).await;
    assert_eq!(att["name"], "a\"Set-Cookie: session=stolen<script>.txt");
    post_with(&app, &alice, room, "a1", &[&traversal["id"], &att["id"]]).await;
    let resp = fetch(&app, &bob, att["url"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get("set-cookie").is_none());
    let cd = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        cd,
        "attachment; filename=\"a_Set-Cookie: session=stolen<script>.txt\"; \
         filename*=UTF-8''a%22Set-Cookie%3A%20session%3Dstolen%3Cscript%3E.txt"
    );
    // Files on disk are named by the server's id only.
    let media = app.data_dir.path().join("data/media");
    for entry in walk(&media) {
        let name = entry.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_hexdigit() || c == '.' || c.is_ascii_lowercase()),
            "{name}"
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn bytes_must_match_the_claimed_type() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let png = png_with_text(10, 10, "x");
    for (name, ty, bytes) in [
        ("fake.png", "image/png", b"<html>not a png</html>".to_vec()),
        ("fake.jpg", "image/jpeg", png.clone()),
        ("fake.pdf", "application/pdf", png.clone()),
        ("fake.webp", "image/webp", gif(2, 2, 1)),
        ("fake.zip", "application/zip", b"just text".to_vec()),
    ] {
        let resp = upload(&app, &alice, name, ty, bytes).await;
        assert_eq!(
            error_code(resp, StatusCode::UNSUPPORTED_MEDIA_TYPE).await,
            "unsupported_media_type",
            "{name}"
        );
    }
    // A real PDF header is accepted as a PDF file.
    let pdf = upload_ok(
        &app,
        &alice,
        "ok.pdf",
        "application/pdf",
        b"%PDF-1.7\n%...".to_vec(),
    )
    .await;
    assert_eq!(pdf["content_type"], "application/pdf");
}

#[tokio::test]
async fn pixel_floods_and_frame_bombs_are_refused_before_decoding() {
    let app = spawn_app_with(|c| c.limits.image_max_frames = 20).await;
    let alice = app.signup_ok(&bot(), "alice").await;
    // A GIF whose header claims 65535 × 65535 (4.3 gigapixels) in a few dozen bytes.
    let mut flood = gif(1, 1, 1);
    flood[6..8].copy_from_slice(&65535u16.to_le_bytes());
    flood[8..10].copy_from_slice(&65535u16.to_le_bytes());
    let resp = upload(&app, &alice, "flood.gif", "image/gif", flood).await;
    assert_eq!(
        error_code(resp, StatusCode::PAYLOAD_TOO_LARGE).await,
        "payload_too_large"
    );

    let resp = upload(&app, &alice, "bomb.gif", "image/gif", gif(8, 8, 21)).await;
    assert_eq!(
        error_code(resp, StatusCode::BAD_REQUEST).await,
        "invalid_upload"
    );
    // Within the limits, an animation stays animated.
    let ok = upload_ok(&app, &alice, "ok.gif", "image/gif", gif(8, 8, 20)).await;
    let bytes = fetch(&app, &alice, ok["url"].as_str().unwrap())
        .await
        .bytes()
        .await
        .unwrap();
    let mut decoder = gif::DecodeOptions::new().read_info(&bytes[..]).unwrap();
    let mut frames = 0;
    while decoder.read_next_frame().unwrap().is_some() {
        frames += 1;
    }
    assert_eq!(frames, 20);
    // Garbage after a valid header is an unreadable image.
    let mut broken = png_with_text(50, 50, "x");
    broken.truncate(60);
    let resp = upload(&app, &alice, "broken.png", "image/png", broken).await;
    assert_eq!(
        error_code(resp, StatusCode::BAD_REQUEST).await,
        "invalid_upload"
    );
}

#[tokio::test]
async fn the_size_limit_answers_413_before_the_body_is_read() {
    let app = spawn_app_with(|c| c.limits.upload_max_bytes = 1000).await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let resp = upload(&app, &alice, "big.txt", "text/plain", vec![b'x'; 1001]).await;
    assert_eq!(
        error_code(resp, StatusCode::PAYLOAD_TOO_LARGE).await,
        "payload_too_large"
    );
    upload_ok(&app, &alice, "fits.txt", "text/plain", vec![b'x'; 1000]).await;

    // Announce 100 MB and send none of it: the answer comes anyway.
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "POST /api/uploads?name=x HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {alice}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 104857600\r\n\r\n",
        app.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");

    // Without a Content-Length (chunked), the stream is cut at the limit.
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "POST /api/uploads?name=chunked.txt HTTP/1.1\r\nHost: {}\r\n\
         Authorization: Bearer {alice}\r\nContent-Type: application/octet-stream\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        app.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    for _ in 0..20 {
        let chunk = format!("64\r\n{}\r\n", "y".repeat(100));
        // The server may answer (and stop reading) before all chunks are out.
        if tcp.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    tcp.write_all(b"0\r\n\r\n").await.ok();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
}

#[tokio::test]
async fn the_quota_counts_what_a_user_keeps_and_deleting_frees_it() {
    let app = spawn_app_with(|c| c.limits.upload_quota_bytes = 2500).await;
    let (alice, bob, room) = two_in_a_room(&app).await;
    let first = upload_ok(&app, &alice, "1.txt", "text/plain", vec![b'a'; 1500]).await;
    let resp = upload(&app, &alice, "2.txt", "text/plain", vec![b'b'; 1500]).await;
    assert_eq!(
        error_code(resp, StatusCode::PAYLOAD_TOO_LARGE).await,
        "quota_exceeded"
    );
    // Someone else's quota is their own.
    upload_ok(&app, &bob, "b.txt", "text/plain", vec![b'b'; 1500]).await;

    let msg: Value = post_with(&app, &alice, room, "a1", &[&first["id"]])
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/rooms/{room}/messages/{}", msg["id"]);
    assert_eq!(
        app.authed(&alice, Method::DELETE, &path, None)
            .await
            .status(),
        StatusCode::OK
    );
    // The deleted message's file is gone, for everyone, and its bytes are free again.
    assert_eq!(
        fetch(&app, &bob, first["url"].as_str().unwrap())
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let id = first["id"].as_str().unwrap();
    assert!(
        !app.data_dir
            .path()
            .join("data/media")
            .join(&id[..2])
            .join(id)
            .exists()
    );
    upload_ok(&app, &alice, "2.txt", "text/plain", vec![b'b'; 1500]).await;
}

#[tokio::test]
async fn attachments_must_be_your_own_unused_uploads() {
    let app = spawn_app().await;
    let (alice, bob, room) = two_in_a_room(&app).await;
    let mine = upload_ok(&app, &alice, "a.txt", "text/plain", b"a".to_vec()).await;
    let bobs = upload_ok(&app, &bob, "b.txt", "text/plain", b"b".to_vec()).await;
    let resp = post_with(&app, &alice, room, "a1", &[&bobs["id"]]).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        post_with(&app, &alice, room, "a2", &[&mine["id"]])
            .await
            .status(),
        StatusCode::CREATED
    );
    // Used once: not again (a retry with the same client id is the same message, though).
    assert_eq!(
        post_with(&app, &alice, room, "a3", &[&mine["id"]])
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post_with(&app, &alice, room, "a2", &[&mine["id"]])
            .await
            .status(),
        StatusCode::OK
    );
    let made_up = json!("0123456789abcdef0123456789abcdef");
    assert_eq!(
        post_with(&app, &alice, room, "a4", &[&made_up])
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    let many: Vec<Value> = (0..11).map(|_| made_up.clone()).collect();
    let refs: Vec<&Value> = many.iter().collect();
    let resp = post_with(&app, &alice, room, "a5", &refs).await;
    assert_eq!(
        error_code(resp, StatusCode::BAD_REQUEST).await,
        "invalid_message"
    );

    // Over the socket too, with the text alongside.
    let two = upload_ok(&app, &alice, "c.txt", "text/plain", b"c".to_vec()).await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    a.send(
        json!({"type": "send", "room_id": room, "client_id": "w1", "body": "see file",
                  "attachments": [two["id"]]}),
    )
    .await;
    let sent = a.recv("sent").await;
    assert_eq!(sent["message"]["attachments"][0]["name"], "c.txt");
    let live = b.recv("message").await;
    assert_eq!(live["message"]["body"], "see file");
    assert_eq!(live["message"]["attachments"][0]["id"], two["id"]);
    // Without text or attachments, a message is still refused.
    a.send(json!({"type": "send", "room_id": room, "client_id": "w2", "body": " "}))
        .await;
    assert_eq!(a.recv("error").await["code"], "invalid_message");
}

/// A `w`×`h` JPEG with an EXIF block saying "rotate 90° clockwise" and carrying `secret`.
fn jpeg_with_exif(w: u32, h: u32, secret: &str) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, _| image::Rgb([(x * 3) as u8, 90, 30]));
    let mut jpg = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut jpg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08".to_vec();
    exif.extend_from_slice(&[0, 1]); // one IFD entry
    exif.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]); // Orientation = 6
    exif.extend_from_slice(&[0, 0, 0, 0]); // no next IFD
    exif.extend_from_slice(secret.as_bytes());
    let len = u16::try_from(exif.len() + 2).unwrap().to_be_bytes();
    [&jpg[..2], &[0xFF, 0xE1], &len, &exif, &jpg[2..]].concat()
}

#[tokio::test]
async fn jpeg_metadata_is_dropped_and_its_orientation_applied() {
    let app = spawn_app().await;
    let alice = app.signup_ok(&bot(), "alice").await;
    let jpg = jpeg_with_exif(64, 32, "GPS-SECRET-48.85N");
    let att = upload_ok(&app, &alice, "photo.jpg", "image/jpeg", jpg).await;
    // Rotated by the EXIF orientation: 64 × 32 becomes 32 × 64.
    assert_eq!(
        (att["width"].as_u64(), att["height"].as_u64()),
        (Some(32), Some(64))
    );
    let bytes = fetch(&app, &alice, att["url"].as_str().unwrap())
        .await
        .bytes()
        .await
        .unwrap();
    assert!(!contains(&bytes, b"GPS-SECRET"));
    assert!(!contains(&bytes, b"Exif"));
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((img.width(), img.height()), (32, 64));
}
