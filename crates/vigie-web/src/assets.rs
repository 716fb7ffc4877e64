//! The console's two assets, embedded at build: `vigie.css` and `vigie.js`. Served under
//! `/assets/` with a year of caching; pages link them with `?v=<hash of both>`, so a new build's
//! pages never get a stale copy.
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// The stylesheet.
pub const CSS: &str = include_str!("../assets/vigie.css");
/// The script.
pub const JS: &str = include_str!("../assets/vigie.js");

const fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x100000001b3);
        i += 1;
    }
    h
}

const HASH: u64 = fnv(JS.as_bytes(), fnv(CSS.as_bytes(), 0xcbf29ce484222325));

const fn hex_digit(n: u64) -> u8 {
    let d = (n & 0xf) as u8;
    if d < 10 { b'0' + d } else { b'a' + d - 10 }
}

const VERSION_BYTES: [u8; 12] = {
    let mut out = [0u8; 12];
    let mut i = 0;
    while i < 12 {
        out[i] = hex_digit(HASH >> (4 * (11 - i)));
        i += 1;
    }
    out
};

/// The assets' version: 12 hex digits of a hash of both.
pub fn version() -> &'static str {
    std::str::from_utf8(&VERSION_BYTES).unwrap_or("0")
}

fn cached(content_type: &'static str, body: &'static str) -> axum::response::Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        body,
    )
        .into_response()
}

/// `/assets/vigie.css` and `/assets/vigie.js`, for any state.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/assets/vigie.css", get(|| async { cached("text/css; charset=utf-8", CSS) }))
        .route("/assets/vigie.js", get(|| async { cached("text/javascript; charset=utf-8", JS) }))
}
