//! Uploads (`POST /api/uploads`) and serving them (`GET /media/{id}`, `/media/{id}/thumb`).
//!
//! An upload is streamed to a temporary file under the data dir with its size counted, so the
//! size limit and the owner's quota are enforced while reading (and from `Content-Length`
//! before reading). Files are named by a random server id; the client's file name is kept in
//! the database for display and downloads only.
//!
//! Images (PNG, JPEG, GIF, WebP) must be what they claim: the magic bytes decide, not the name
//! or the declared type. Their dimensions are read from the header and checked before decoding
//! (pixel floods), then they are decoded and re-encoded, which drops every metadata block
//! (EXIF with GPS, XMP, comments), and a thumbnail is made. Decoding runs on the blocking pool,
//! one image at a time, so memory stays bounded whatever arrives.
//!
//! Serving checks the session and membership of the room the file was posted in (404 for
//! anyone else), and sends headers that keep a hostile file inert: `nosniff`, a sandboxing CSP,
//! and `Content-Disposition: attachment` for everything but raster images.

use std::io::{BufReader, Cursor};
use std::path::{Path, PathBuf};

use app::api::{Attachment, AttachmentKind};
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::auth::AuthSession;
use crate::auth::throttle::Key;
use crate::clock;
use crate::config::Limits;
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::UploadRecord;

/// Thumbnails fit in this square.
const THUMB_MAX: u32 = 400;
/// Longest file name kept (characters).
const NAME_MAX: usize = 200;
/// Uploads no message used are removed after this long.
pub const UNUSED_UPLOAD_TTL_MS: i64 = 24 * 60 * 60 * 1000;
/// The first bytes of an upload, kept to recognise its type.
const HEAD: usize = 8192;
/// Sent with every media response: the browser must not guess types, run scripts, or let
/// another site embed the file.
const MEDIA_CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox";

/// Routes under `/api`.
pub fn api_routes() -> Router<AppState> {
    Router::new().route("/uploads", post(upload))
}

/// Routes at the top level.
pub fn media_routes() -> Router<AppState> {
    Router::new()
        .route("/media/{id}", get(serve_file))
        .route("/media/{id}/thumb", get(serve_thumb))
}

/// Where files live: `<data dir>/media`, with `tmp/` for uploads in progress.
#[derive(Debug)]
pub struct MediaStore {
    root: PathBuf,
    /// One image decodes at a time: a 40-megapixel image takes 160 MB while it is processed.
    decoding: Semaphore,
}

impl MediaStore {
    pub fn open(data_dir: &Path) -> std::io::Result<Self> {
        let root = data_dir.join("media");
        std::fs::create_dir_all(root.join("tmp"))?;
        // Leftovers of uploads interrupted by a crash.
        for entry in std::fs::read_dir(root.join("tmp"))?.flatten() {
            std::fs::remove_file(entry.path()).ok();
        }
        Ok(Self {
            root,
            decoding: Semaphore::new(1),
        })
    }

    /// `media/ab/abcdef...`: ids are random, so the first two digits spread files evenly.
    fn path(&self, id: &str) -> PathBuf {
        self.root.join(&id[..2]).join(id)
    }

    fn thumb_path(&self, id: &str) -> PathBuf {
        self.root.join(&id[..2]).join(format!("{id}.thumb"))
    }

    fn tmp_path(&self, id: &str) -> PathBuf {
        self.root.join("tmp").join(id)
    }
}

/// Removes the files of deleted uploads (after the database no longer knows them).
pub async fn remove_files(state: &AppState, ids: &[String]) {
    for id in ids.iter().filter(|id| is_upload_id(id)) {
        for path in [state.media.path(id), state.media.thumb_path(id)] {
            if let Err(e) = tokio::fs::remove_file(&path).await
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(error = %e, path = %path.display(), "removing a media file failed");
            }
        }
    }
}

fn new_upload_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(anyhow::anyhow!("rng: {e}")))?;
    Ok(hex::encode(bytes))
}

fn is_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A client file name made safe to store and show: the last path component, no control
/// characters, trimmed, at most [`NAME_MAX`] characters. It never becomes a path.
pub fn clean_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let name: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(NAME_MAX)
        .collect();
    let name = name.trim();
    if name.is_empty() || name == "." || name == ".." {
        "file".to_owned()
    } else {
        name.to_owned()
    }
}

/// A declared media type reduced to `type/subtype` of token characters, lower case; anything
/// else becomes `application/octet-stream`.
pub fn clean_type(raw: &str) -> String {
    let essence = raw.split(';').next().unwrap_or_default().trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    match essence.split_once('/') {
        Some((t, sub)) if essence.len() <= 100 && token(t) && token(sub) => {
            essence.to_ascii_lowercase()
        }
        _ => "application/octet-stream".to_owned(),
    }
}

/// The raster formats shown inline, by declared media type.
fn raster_format(content_type: &str) -> Option<ImageFormat> {
    match content_type {
        "image/png" => Some(ImageFormat::Png),
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/gif" => Some(ImageFormat::Gif),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

/// `Content-Disposition` per RFC 6266: a quoted ASCII fallback and the exact name as
/// `filename*` (RFC 8187 UTF-8 percent-encoding).
pub fn content_disposition(kind: &str, name: &str) -> String {
    const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' && c != '%' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{kind}; filename=\"{fallback}\"; filename*=UTF-8''{}",
        utf8_percent_encode(name, ATTR_CHAR)
    )
}

#[derive(Deserialize)]
struct UploadQuery {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "type")]
    content_type: String,
}

/// `POST /api/uploads?name=<file name>&type=<media type>` with the raw bytes as the body.
#[tracing::instrument(skip_all, fields(user_id = %session.user_id))]
async fn upload(
    State(state): State<AppState>,
    session: AuthSession,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Attachment>), ApiError> {
    let limits = &state.config.limits;
    let too_large = || {
        ApiError::UploadTooLarge(format!(
            "Files are at most {}.",
            human_bytes(limits.upload_max_bytes)
        ))
    };
    let over_quota = || {
        ApiError::QuotaExceeded(format!(
            "Your files would take more than your {} of storage; delete some messages with \
             files first.",
            human_bytes(limits.upload_quota_bytes)
        ))
    };
    let declared: Option<u64> = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > limits.upload_max_bytes) {
        return Err(too_large());
    }
    let used = u64::try_from(state.storage.read_upload_usage(session.user_id).await?).unwrap_or(0);
    let room_left = limits.upload_quota_bytes.saturating_sub(used);
    if declared.is_some_and(|n| n > room_left) {
        return Err(over_quota());
    }
    state
        .throttle
        .hit(
            Key::HttpPost(session.user_id),
            limits.http_posts_per_minute,
            std::time::Duration::from_secs(60),
        )
        .map_err(|retry_after| ApiError::TooManyRequests { retry_after })?;

    let id = new_upload_id()?;
    let tmp = state.media.tmp_path(&id);
    let _cleanup = RemoveOnDrop(tmp.clone());
    let (size, head) = receive(body, &tmp, limits.upload_max_bytes.min(room_left))
        .await
        .map_err(|e| match e {
            Receive::TooLarge if room_left < limits.upload_max_bytes => over_quota(),
            Receive::TooLarge => too_large(),
            Receive::Client => ApiError::BadRequest("The upload was interrupted.".into()),
            Receive::Io(e) => ApiError::Internal(e.into()),
        })?;
    if size == 0 {
        return Err(ApiError::BadRequest("The file is empty.".into()));
    }

    let name = clean_name(&q.name);
    let claimed = clean_type(&q.content_type);
    let detected = infer::get(&head).map(|t| t.mime_type());
    let mut record = UploadRecord {
        id: id.clone(),
        owner_id: session.user_id,
        message_id: None,
        room_id: None,
        name,
        content_type: claimed.clone(),
        kind: AttachmentKind::File,
        size: i64::try_from(size).unwrap_or(i64::MAX),
        stored_size: 0,
        width: None,
        height: None,
        created_at: clock::now_millis(),
    };
    let final_path = state.media.path(&id);
    if let Some(parent) = final_path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
    }
    if let Some(format) = raster_format(&claimed) {
        if detected != Some(claimed.as_str()) {
            return Err(ApiError::TypeMismatch(format!(
                "This file is not a {} image.",
                claimed.trim_start_matches("image/").to_uppercase()
            )));
        }
        let permit = state
            .media
            .decoding
            .acquire()
            .await
            .map_err(|_| ApiError::Busy)?;
        let limits = limits.clone();
        let source = tmp.clone();
        let processed =
            tokio::task::spawn_blocking(move || process_image(&source, format, &limits))
                .await
                .map_err(|e| ApiError::Internal(e.into()))??;
        drop(permit);
        tokio::fs::write(&final_path, &processed.image)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        tokio::fs::write(state.media.thumb_path(&id), &processed.thumb)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        record.kind = AttachmentKind::Image;
        record.size = processed.image.len() as i64;
        record.stored_size = (processed.image.len() + processed.thumb.len()) as i64;
        record.width = Some(processed.width);
        record.height = Some(processed.height);
    } else {
        // Any other file is kept as is (and only ever served as a download). A binary format
        // with a magic number we know must have it. (Text formats have no magic number;
        // sniffing them is guesswork, and they are downloads anyway.)
        let has_magic = !claimed.starts_with("text/")
            && claimed != "application/octet-stream"
            && infer::is_mime_supported(&claimed);
        if has_magic && detected != Some(claimed.as_str()) {
            return Err(ApiError::TypeMismatch(format!(
                "This file's contents are not of type {claimed}."
            )));
        }
        tokio::fs::rename(&tmp, &final_path)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        record.stored_size = record.size;
    }
    let quota = i64::try_from(limits.upload_quota_bytes).unwrap_or(i64::MAX);
    if !state.storage.create_upload(&record, quota).await? {
        remove_files(&state, std::slice::from_ref(&id)).await;
        return Err(over_quota());
    }
    Ok((StatusCode::CREATED, Json(record.attachment())))
}

/// Deletes a temporary file however the request ends (error, client gone, success after the
/// rename: then there is nothing left to delete).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        std::fs::remove_file(&self.0).ok();
    }
}

enum Receive {
    TooLarge,
    Client,
    Io(std::io::Error),
}

/// Streams the body to `path`, stopping as soon as it passes `max` bytes. Returns the size
/// and the first [`HEAD`] bytes.
async fn receive(body: Body, path: &Path, max: u64) -> Result<(u64, Vec<u8>), Receive> {
    let mut file = tokio::fs::File::create(path).await.map_err(Receive::Io)?;
    let mut stream = body.into_data_stream();
    let mut size: u64 = 0;
    let mut head = Vec::with_capacity(HEAD);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Receive::Client)?;
        size += chunk.len() as u64;
        if size > max {
            return Err(Receive::TooLarge);
        }
        if head.len() < HEAD {
            let take = (HEAD - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        file.write_all(&chunk).await.map_err(Receive::Io)?;
    }
    file.sync_all().await.map_err(Receive::Io)?;
    Ok((size, head))
}

struct Processed {
    image: Vec<u8>,
    thumb: Vec<u8>,
    width: u32,
    height: u32,
}

/// Checks, cleans and thumbnails an image (blocking: runs on the blocking pool).
fn process_image(path: &Path, format: ImageFormat, limits: &Limits) -> Result<Processed, ApiError> {
    let invalid = |_| ApiError::InvalidUpload("This image could not be read.");
    let open = || -> Result<_, ApiError> {
        let file = std::fs::File::open(path).map_err(|e| ApiError::Internal(e.into()))?;
        Ok(ImageReader::with_format(BufReader::new(file), format))
    };
    // The header alone first: a pixel flood is refused before anything is allocated for it.
    let (width, height) = open()?.into_dimensions().map_err(invalid)?;
    if u64::from(width) * u64::from(height) > limits.image_max_pixels {
        return Err(ApiError::UploadTooLarge(format!(
            "Images are at most {} megapixels; this one is {width} × {height}.",
            limits.image_max_pixels / 1_000_000
        )));
    }
    let mut decode_limits = image::Limits::default();
    decode_limits.max_alloc = Some(limits.image_max_pixels * 4 + (64 << 20));
    let image = if format == ImageFormat::Gif {
        clean_gif(path, limits, width, height)?
    } else {
        let mut reader = open()?;
        reader.limits(decode_limits);
        let mut decoder = reader.into_decoder().map_err(invalid)?;
        let orientation = decoder.orientation().map_err(invalid)?;
        let mut img = DynamicImage::from_decoder(decoder).map_err(invalid)?;
        // Metadata goes with re-encoding, so the EXIF orientation must be applied to pixels.
        img.apply_orientation(orientation);
        encode(&img, format)?
    };
    let shown = image::load_from_memory_with_format(&image, format).map_err(invalid)?;
    let thumb_img = if shown.width() > THUMB_MAX || shown.height() > THUMB_MAX {
        shown.thumbnail(THUMB_MAX, THUMB_MAX)
    } else {
        shown.clone()
    };
    let thumb_format = if thumb_img.color().has_alpha() {
        ImageFormat::Png
    } else {
        ImageFormat::Jpeg
    };
    Ok(Processed {
        thumb: encode(&thumb_img, thumb_format)?,
        width: shown.width(),
        height: shown.height(),
        image,
    })
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Result<Vec<u8>, ApiError> {
    let failed = |e: image::ImageError| ApiError::Internal(anyhow::anyhow!("encoding: {e}"));
    let mut out = Cursor::new(Vec::new());
    match format {
        ImageFormat::Jpeg => {
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 88);
            DynamicImage::ImageRgb8(img.to_rgb8())
                .write_with_encoder(encoder)
                .map_err(failed)?;
        }
        ImageFormat::WebP => {
            let encoder = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
            let img = if img.color().has_alpha() {
                DynamicImage::ImageRgba8(img.to_rgba8())
            } else {
                DynamicImage::ImageRgb8(img.to_rgb8())
            };
            img.write_with_encoder(encoder).map_err(failed)?;
        }
        _ => {
            let encoder = image::codecs::png::PngEncoder::new(&mut out);
            let img = if img.color().has_alpha() {
                DynamicImage::ImageRgba8(img.to_rgba8())
            } else {
                DynamicImage::ImageRgb8(img.to_rgb8())
            };
            img.write_with_encoder(encoder).map_err(failed)?;
        }
    }
    Ok(out.into_inner())
}

/// Re-writes a GIF frame by frame, keeping its palette-indexed pixels and timing, dropping
/// comments and application blocks (XMP): lossless, and animation survives. Frames past
/// `image_max_frames`, or more decoded pixels than ten full-size images, are refused.
fn clean_gif(path: &Path, limits: &Limits, width: u32, height: u32) -> Result<Vec<u8>, ApiError> {
    let invalid = |_: gif::DecodingError| ApiError::InvalidUpload("This GIF could not be read.");
    let unreadable = || ApiError::InvalidUpload("This GIF could not be read.");
    let file = std::fs::File::open(path).map_err(|e| ApiError::Internal(e.into()))?;
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    let mut decoder = options.read_info(BufReader::new(file)).map_err(invalid)?;
    let palette = decoder
        .global_palette()
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let repeat = decoder.repeat();
    let mut out = Vec::new();
    {
        let w = u16::try_from(width).map_err(|_| unreadable())?;
        let h = u16::try_from(height).map_err(|_| unreadable())?;
        let mut encoder = gif::Encoder::new(&mut out, w, h, &palette).map_err(|_| unreadable())?;
        encoder.set_repeat(repeat).map_err(|_| unreadable())?;
        let budget = limits.image_max_pixels.saturating_mul(10);
        let mut frames = 0usize;
        let mut pixels = 0u64;
        while let Some(frame) = decoder.read_next_frame().map_err(invalid)? {
            frames += 1;
            pixels += u64::from(frame.width) * u64::from(frame.height);
            if frames > limits.image_max_frames || pixels > budget {
                return Err(ApiError::InvalidUpload(
                    "This animation has too many frames.",
                ));
            }
            encoder.write_frame(frame).map_err(|_| unreadable())?;
        }
        if frames == 0 {
            return Err(ApiError::InvalidUpload("This GIF has no frames."));
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct ServeQuery {
    #[serde(default)]
    download: Option<String>,
}

async fn serve_file(
    State(state): State<AppState>,
    session: AuthSession,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<ServeQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let record = visible_upload(&state, &session, &id).await?;
    let download = q.download.is_some_and(|v| v != "0");
    let inline = record.kind == AttachmentKind::Image && !download;
    let path = state.media.path(&record.id);
    let disposition =
        content_disposition(if inline { "inline" } else { "attachment" }, &record.name);
    send_file(path, &record.content_type, &disposition, req).await
}

async fn serve_thumb(
    State(state): State<AppState>,
    session: AuthSession,
    UrlPath(id): UrlPath<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let record = visible_upload(&state, &session, &id).await?;
    if record.kind != AttachmentKind::Image {
        return Err(ApiError::NotFound);
    }
    let path = state.media.thumb_path(&record.id);
    // Thumbnails are PNG (with transparency) or JPEG: the first byte tells.
    let mut first = [0u8; 1];
    let content_type = match tokio::fs::File::open(&path).await {
        Ok(mut f) => {
            use tokio::io::AsyncReadExt;
            f.read_exact(&mut first).await.ok();
            if first[0] == 0x89 {
                "image/png"
            } else {
                "image/jpeg"
            }
        }
        Err(_) => return Err(ApiError::NotFound),
    };
    let disposition = content_disposition("inline", &format!("thumb-{}", record.name));
    send_file(path, content_type, &disposition, req).await
}

/// The upload if the session may see it: its owner before it is used, then the members of the
/// room it was posted in. Everyone else, and malformed ids, get 404.
async fn visible_upload(
    state: &AppState,
    session: &AuthSession,
    id: &str,
) -> Result<UploadRecord, ApiError> {
    if !is_upload_id(id) {
        return Err(ApiError::NotFound);
    }
    let record = state
        .storage
        .read_upload(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let allowed = match record.room_id {
        None => record.owner_id == session.user_id,
        Some(room) => state
            .storage
            .read_role(room, session.user_id)
            .await?
            .is_some(),
    };
    if allowed {
        Ok(record)
    } else {
        Err(ApiError::NotFound)
    }
}

/// Serves a stored file (ranges and conditional requests included) with the media headers.
async fn send_file(
    path: PathBuf,
    content_type: &str,
    disposition: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let mut response = ServeFile::new(&path)
        .oneshot(req)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .into_response();
    if response.status() == StatusCode::NOT_FOUND {
        return Err(ApiError::NotFound);
    }
    let headers = response.headers_mut();
    let value = |v: &str| {
        HeaderValue::from_str(v)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
    };
    headers.insert(header::CONTENT_TYPE, value(content_type));
    if let Ok(v) = HeaderValue::from_str(disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(MEDIA_CSP),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    // Ids are never reused, so a file never changes; only its viewer may cache it.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    Ok(response)
}

fn human_bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= 1024 * MIB && n.is_multiple_of(1024 * MIB) {
        format!("{} GiB", n / (1024 * MIB))
    } else if n >= MIB {
        format!("{:.0} MiB", n as f64 / MIB as f64)
    } else {
        format!("{} KiB", n.div_ceil(1024))
    }
}

/// Removes uploads nobody used in a message within [`UNUSED_UPLOAD_TTL_MS`].
pub async fn sweep_unused(state: &AppState) {
    match state
        .storage
        .delete_unused_uploads(clock::now_millis() - UNUSED_UPLOAD_TTL_MS)
        .await
    {
        Ok(ids) if !ids.is_empty() => {
            tracing::info!(count = ids.len(), "removed unused uploads");
            remove_files(state, &ids).await;
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = ?e, "sweeping unused uploads failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_carry_paths_or_control_characters() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\x\\report.pdf"), "report.pdf");
        assert_eq!(clean_name("a\r\nSet-Cookie: x.txt"), "aSet-Cookie: x.txt");
        assert_eq!(clean_name(".."), "file");
        assert_eq!(clean_name("   "), "file");
        assert_eq!(clean_name(&"é".repeat(500)).chars().count(), NAME_MAX);
    }

    #[test]
    fn declared_types_are_reduced_to_a_safe_essence() {
        assert_eq!(clean_type("image/PNG"), "image/png");
        assert_eq!(clean_type("text/plain; charset=utf-8"), "text/plain");
        assert_eq!(clean_type("text/html\r\nX: y"), "application/octet-stream");
        assert_eq!(clean_type(""), "application/octet-stream");
    }

    #[test]
    fn dispositions_follow_rfc_6266() {
        assert_eq!(
            content_disposition("attachment", "résumé \"final\".pdf"),
            "attachment; filename=\"r_sum_ _final_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf"
        );
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(25 * 1024 * 1024), "25 MiB");
        assert_eq!(human_bytes(1024 * 1024 * 1024), "1 GiB");
        assert_eq!(human_bytes(1000), "1 KiB");
    }
}
