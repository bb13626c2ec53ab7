//! HTTP plumbing shared by every route: the router, the CSRF guard, JSON extraction with our
//! error shape, security headers, and serving the built single-page app.

use std::path::Path;

use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// The client may only load code and data from us. `wasm-unsafe-eval` lets the page compile
/// its WebAssembly; nothing else is relaxed (no inline scripts or styles).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .nest("/auth", crate::auth::routes())
        .merge(crate::rooms::routes())
        .merge(crate::media::api_routes())
        .merge(crate::read_state::routes())
        .merge(crate::push::routes())
        .route("/health", get(health))
        .fallback(api_not_found)
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.limits.max_json_body_bytes,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), csrf_guard))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(state.clone());

    let mut ws = Router::new()
        .route("/ws", get(crate::realtime::connection::upgrade))
        .route("/emoji.json", get(crate::emoji::emoji_json))
        .merge(crate::media::media_routes());
    if state.config.ws_echo {
        ws = ws.route("/ws/echo", get(crate::realtime::connection::echo));
    }
    Router::new()
        .nest("/api", api)
        .merge(ws.with_state(state.clone()))
        .merge(site(&state.config.site_root))
        .layer(CompressionLayer::new())
        .layer(header_default(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header_default(header::REFERRER_POLICY, "same-origin"))
        .layer(header_default(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header_default(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(TraceLayer::new_for_http())
}

/// The built client, served precompressed (`.br`, `.gz` made by scripts/build-site.sh) when the
/// browser accepts it. Any path that is not a file gets `shell.html` (history-API routing);
/// `/pkg/` (the wasm, JS and CSS) answers 404 for missing files instead, so a stale page gets a
/// clear failure rather than HTML where it expects code.
fn site(root: &Path) -> Router {
    // Not `index.html`: cargo-leptos reserves that name in the site directory.
    let index = ServeFile::new(root.join("shell.html"))
        .precompressed_br()
        .precompressed_gzip();
    let pkg = ServeDir::new(root.join("pkg"))
        .precompressed_br()
        .precompressed_gzip();
    let files = ServeDir::new(root)
        .append_index_html_on_directories(false)
        .precompressed_br()
        .precompressed_gzip()
        .fallback(index);
    Router::new()
        .nest_service("/pkg", pkg)
        .fallback_service(files)
        // File names are not content-hashed, so browsers revalidate (cheap: Last-Modified).
        .layer(header_default(header::CACHE_CONTROL, "no-cache"))
}

fn header_default(
    name: header::HeaderName,
    value: &'static str,
) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn api_not_found() -> ApiError {
    ApiError::NotFound
}

/// Refuses state-changing API requests that a browser sent on behalf of another site.
///
/// - `Origin`, when present, must be one of ours (browsers send it on every cross-origin and
///   on same-origin POSTs); failing that, `Referer`'s origin must be. `Sec-Fetch-Site:
///   cross-site` is refused too. Requests with none of these come from non-browser clients.
/// - A POST body must be declared JSON or, for uploads, octet-stream: an HTML form cannot
///   send either type, and a script
///   on another site cannot either without a CORS preflight, which we never grant.
async fn csrf_guard(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(next.run(req).await);
    }
    let headers = req.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let origin_ok = match (text(header::ORIGIN), text(header::REFERER)) {
        (Some(origin), _) => state.origins.allows(origin),
        (None, Some(referer)) => url::Url::parse(referer)
            .map(|u| state.origins.allows(&u.origin().ascii_serialization()))
            .unwrap_or(false),
        (None, None) => true,
    };
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    if !origin_ok || cross_site {
        tracing::warn!(origin = ?text(header::ORIGIN), "cross-site request refused");
        return Err(ApiError::CrossSite);
    }
    // Only POST can come from an HTML form; PUT, PATCH and DELETE cannot be sent cross-site
    // without a CORS preflight, which we never grant. (Handlers still insist on JSON bodies.)
    if req.method() != Method::POST {
        return Ok(next.run(req).await);
    }
    // Uploads are raw bytes declared `application/octet-stream`: no more a "simple" type than
    // JSON, so a cross-site script still needs the preflight we never grant.
    let is_ours = text(header::CONTENT_TYPE)
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json")
                || mime.eq_ignore_ascii_case("application/octet-stream")
        });
    if !is_ours {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok(next.run(req).await)
}

/// `axum::Json`, but failures come out in our error shape with a stable code.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(match rejection.status().as_u16() {
                413 => ApiError::PayloadTooLarge,
                415 => ApiError::UnsupportedMediaType,
                _ => ApiError::BadRequest(rejection.body_text()),
            }),
        }
    }
}
