//! The web console, built by `build.rs` into `web-console/dist` and embedded in the binary:
//! `/` is the caller chat, `/console/` the staff console. Hashed assets are cached for good;
//! pages are revalidated so a new release is picked up at once.

use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web-console/dist"]
struct Assets;

/// Serves a console file, or 404.
pub async fn serve(uri: Uri) -> Response {
    let mut path = uri.path().trim_start_matches('/').to_owned();
    if path.is_empty() || path.ends_with('/') {
        path.push_str("index.html");
    }
    let Some(file) = Assets::get(&path).or_else(|| Assets::get(&format!("{path}/index.html")))
    else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, file.metadata.mimetype().to_owned()),
            (header::CACHE_CONTROL, cache.to_owned()),
        ],
        file.data,
    )
        .into_response()
}
