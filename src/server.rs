//! HTTP: the merged feed and the front page. `serve` takes a bound listener and
//! a shutdown signal, so tests can bind 127.0.0.1:0 and stop it when they like.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;

use crate::publish::{self, River};
use crate::store::Store;

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
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/feed.atom", get(feed_atom))
        .layer(CompressionLayer::new())
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

async fn home(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let river = state.river(&headers);
    let limit = state.entries.min(50);
    match state.store.call(move |s| s.stories(limit)).await {
        Ok(stories) => document(
            &headers,
            "text/html; charset=utf-8",
            publish::home_html(&river, &stories),
        ),
        Err(e) => internal_error(e),
    }
}

async fn feed_atom(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let river = state.river(&headers);
    let limit = state.entries;
    match state.store.call(move |s| s.stories(limit)).await {
        Ok(stories) => document(
            &headers,
            "application/atom+xml",
            publish::atom(&river, &stories),
        ),
        Err(e) => internal_error(e),
    }
}

/// A generated document with a strong ETag; 304 when the client has it.
fn document(request: &HeaderMap, content_type: &'static str, body: String) -> Response {
    let digest = Sha256::digest(body.as_bytes());
    let etag: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let etag = format!("\"{etag}\"");
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}

fn internal_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "cannot read the database");
    (StatusCode::INTERNAL_SERVER_ERROR, "database error\n").into_response()
}
