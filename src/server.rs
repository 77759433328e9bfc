//! HTTP: the merged feed in every format and view, the front page and `/status`. `serve` takes a bound listener and
//! a shutdown signal, so tests can bind 127.0.0.1:0 and stop it when they like.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;

use crate::publish::River;
use crate::store::Store;

mod documents;
pub mod websub;

pub use documents::RenderCache;

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub river_id: String,
    pub title: String,
    /// Configured public base URL ("…/"); otherwise taken from the request.
    pub base_url: Option<String>,
    pub entries: usize,
    /// `[output] attribution` template, if any.
    pub attribution: Option<String>,
    /// Rendered documents, re-rendered only when the stored data changed.
    pub cache: Arc<RenderCache>,
    /// Named searches (`[[search]]`), swapped on reload.
    pub searches: Arc<crate::search::Searches>,
    /// `[websub] hub`: announced in every published feed.
    pub hub: Option<String>,
    /// Whether the feed list in force is this daemon's own (`/status` says
    /// when it is not).
    pub agreement: Arc<crate::reload::Agreement>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(documents::home))
        .route("/status", get(documents::status))
        .route("/status.json", get(documents::status_json))
        .route("/status/feeds/{id}", get(documents::status_feed))
        .route("/feed.atom", get(documents::river_atom))
        .route("/feed.rss", get(documents::river_rss))
        .route("/feed.json", get(documents::river_json))
        .route("/tags/{tag}/{file}", get(documents::tag_feed))
        .route("/feeds/{id}/{file}", get(documents::source_feed))
        .route("/search", get(documents::search_html))
        .route("/search.atom", get(documents::search_atom))
        .route("/search.rss", get(documents::search_rss))
        .route("/search.json", get(documents::search_json))
        .route("/searches/{name}/{file}", get(documents::named_search_feed))
        // Brotli's default (quality 11) costs tens of milliseconds per feed;
        // 5 compresses nearly as well for a fraction of the time.
        .layer(CompressionLayer::new().quality(CompressionLevel::Precise(5)))
        .layer(axum::middleware::map_response(documents::mark_encoded_etag))
        .with_state(Arc::new(state))
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// `serve`, with more routes (metrics, health, reload, OPML) and the access
/// guard (`access::guard`) over every route.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    extra: Router,
    access: Arc<crate::access::AccessControl>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state)
        .merge(extra)
        .layer(axum::middleware::from_fn_with_state(
            access,
            crate::access::guard,
        ));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

impl AppState {
    fn river(&self, headers: &HeaderMap) -> River {
        let base_url = self.base_url.clone().unwrap_or_else(|| {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| is_plain_host(h))
                .unwrap_or("localhost");
            format!("http://{host}/")
        });
        River {
            id: self.river_id.clone(),
            title: self.title.clone(),
            base_url,
            attribution: self.attribution.clone(),
        }
    }
}

/// A Host header we are willing to echo into links.
fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

fn internal_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "cannot read the database");
    (StatusCode::INTERNAL_SERVER_ERROR, "database error\n").into_response()
}
