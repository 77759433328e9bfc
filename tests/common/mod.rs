//! Shared test helpers: a fixture server on 127.0.0.1:0 and config builders.
#![allow(dead_code)]

pub mod process;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, Response, StatusCode, header};
use newsriver::Config;

pub mod backend;
pub mod faults;
pub mod hub;

#[allow(unused_imports)]
pub use backend::{open_store, storage_toml};

/// What the fixture server answers on one path.
#[derive(Clone, Debug)]
pub enum Route {
    /// A feed document; with validators, conditional requests get a 304.
    Feed {
        body: Vec<u8>,
        content_type: String,
        etag: Option<String>,
        last_modified: Option<String>,
    },
    /// Just a status code.
    Status(u16),
}

impl Route {
    pub fn feed(body: impl Into<Vec<u8>>, content_type: &str) -> Self {
        Route::Feed {
            body: body.into(),
            content_type: content_type.to_string(),
            etag: None,
            last_modified: None,
        }
    }

    pub fn fixture(name: &str) -> Self {
        let content_type = match name.rsplit('.').next() {
            Some("json") => "application/feed+json",
            Some("rdf") => "application/rdf+xml",
            _ if name.starts_with("atom") => "application/atom+xml",
            _ => "application/rss+xml",
        };
        Route::feed(fixture(name), content_type)
    }

    pub fn with_validators(self, etag: &str, last_modified: &str) -> Self {
        match self {
            Route::Feed {
                body, content_type, ..
            } => Route::Feed {
                body,
                content_type,
                etag: Some(etag.to_string()),
                last_modified: Some(last_modified.to_string()),
            },
            other => other,
        }
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// When the request arrived.
    pub at: std::time::Instant,
    pub path: String,
    pub headers: HeaderMap,
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    routes: HashMap<String, Route>,
    seen: Vec<Seen>,
}

/// An HTTP server on 127.0.0.1:0 serving routes the test sets, and recording
/// every request it receives.
#[derive(Clone)]
pub struct FixtureServer {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl FixtureServer {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(answer).with_state(inner.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn set(&self, path: &str, route: Route) {
        self.inner
            .lock()
            .unwrap()
            .routes
            .insert(path.to_string(), route);
    }

    pub fn seen(&self, path: &str) -> Vec<Seen> {
        self.inner
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

async fn answer(State(inner): State<Arc<Mutex<Inner>>>, request: Request<Body>) -> Response<Body> {
    let path = request.uri().path().to_string();
    let headers = request.headers().clone();
    let mut inner = inner.lock().unwrap();
    let route = inner.routes.get(&path).cloned();
    let response = match route {
        None => status(404),
        Some(Route::Status(code)) => status(code),
        Some(Route::Feed {
            body,
            content_type,
            etag,
            last_modified,
        }) => {
            let etag_matches = etag.is_some()
                && headers
                    .get(header::IF_NONE_MATCH)
                    .and_then(|v| v.to_str().ok())
                    == etag.as_deref();
            let date_matches = last_modified.is_some()
                && headers
                    .get(header::IF_MODIFIED_SINCE)
                    .and_then(|v| v.to_str().ok())
                    == last_modified.as_deref();
            let mut builder = Response::builder();
            if let Some(e) = &etag {
                builder = builder.header(header::ETAG, e);
            }
            if let Some(m) = &last_modified {
                builder = builder.header(header::LAST_MODIFIED, m);
            }
            if etag_matches || date_matches {
                builder.status(304).body(Body::empty()).unwrap()
            } else {
                builder
                    .status(200)
                    .header(header::CONTENT_TYPE, content_type)
                    .body(Body::from(body))
                    .unwrap()
            }
        }
    };
    inner.seen.push(Seen {
        at: std::time::Instant::now(),
        path,
        headers,
        status: response.status().as_u16(),
    });
    response
}

fn status(code: u16) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .body(Body::from(format!("status {code}\n")))
        .unwrap()
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join("core").join(name)).unwrap()
}

/// A config for `feeds` with its database in `dir`.
pub fn config_for(dir: &Path, feeds: &[String], extra: &str) -> Config {
    let mut toml = format!(
        "{}[fetch]\ntimeout = \"5s\"\nconnect_timeout = \"2s\"\nhost_gap = \"5ms\"\n{extra}\n",
        storage_toml(&dir.join("river.db"))
    );
    toml.push_str(&feed_tables(feeds));
    Config::parse(&toml, Path::new("test.toml")).unwrap()
}

/// A `[[feed]]` table for each URL, to end a config file with.
pub fn feed_tables(urls: &[String]) -> String {
    urls.iter()
        .map(|url| format!("[[feed]]\nurl = \"{url}\"\n"))
        .collect()
}

/// A loopback address on which nothing listens.
pub async fn unreachable_addr() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}
