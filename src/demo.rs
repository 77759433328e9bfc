//! The offline demo: bundled sample feeds from four fictional outlets, served
//! on loopback and aggregated into a temporary database.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::config::Config;

/// (file name, content type, body) of each bundled feed. Links in them name
/// `DEMO_HOST`, replaced by the address the sources are served on.
pub const FEEDS: &[(&str, &str, &str)] = &[
    (
        "wire.xml",
        "application/rss+xml",
        include_str!("demo/wire.xml"),
    ),
    (
        "harbour.atom",
        "application/atom+xml",
        include_str!("demo/harbour.atom"),
    ),
    (
        "valley.json",
        "application/feed+json",
        include_str!("demo/valley.json"),
    ),
    (
        "science.rdf",
        "application/rdf+xml",
        include_str!("demo/science.rdf"),
    ),
];

async fn serve_feed(
    UrlPath(name): UrlPath<String>,
    State(host): State<String>,
) -> impl IntoResponse {
    match FEEDS.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, body)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, *content_type)],
            body.replace("DEMO_HOST", &host),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Serves the bundled feeds on 127.0.0.1 (a free port) in the background and
/// returns the address.
pub async fn serve_sources() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/{name}", get(serve_feed))
        .with_state(addr.to_string());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "demo feed server stopped");
        }
    });
    Ok(addr)
}

/// The demo's configuration: the bundled feeds at `sources`, a database in `folder`.
pub fn config(sources: SocketAddr, folder: &Path, listen: SocketAddr) -> anyhow::Result<Config> {
    let mut toml = format!(
        "[server]\nlisten = \"{listen}\"\n\n[storage]\npath = {db:?}\n\n[fetch]\ninterval = \"5m\"\n\n[output]\ntitle = \"newsriver demo\"\n",
        db = folder.join("demo.db").display().to_string()
    );
    for (file, _, _) in FEEDS {
        toml.push_str(&format!(
            "\n[[feed]]\nurl = \"http://{sources}/{file}\"\ntags = [\"demo\"]\n"
        ));
        // Meridian Wire is a news agency: where others repost its reports,
        // it is credited as the primary source.
        if *file == "wire.xml" {
            toml.push_str("original = true\n");
        }
    }
    Ok(Config::parse(&toml, Path::new("<demo>"))?)
}

/// Runs the demo until `shutdown`: polls the bundled feeds once, then serves
/// the merged feed on `listen`, printing its URL. `on_ready` gets the URL.
pub async fn run(
    listen: SocketAddr,
    on_ready: impl FnOnce(&str),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let folder = tempfile::tempdir().context("cannot create a temporary folder")?;
    let sources = serve_sources()
        .await
        .context("cannot serve the demo feeds")?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (try --listen 127.0.0.1:0)"))?;
    let bound = listener.local_addr()?;
    let config = config(sources, folder.path(), bound)?;
    crate::daemon::poll_once(&config).await?;
    on_ready(&format!("http://{bound}/feed.atom"));
    crate::daemon::run(config, listener, shutdown).await
}
