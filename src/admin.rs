//! Routes for running the service: `/metrics`, `/healthz`, `POST /admin/reload`
//! and `GET /feeds.opml`. Which token each needs is decided by `access::guard`,
//! which wraps every route of the server.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::reload::Reloader;
use crate::telemetry::Health;

/// What the operations routes need.
#[derive(Debug, Clone)]
pub struct Ops {
    pub health: Health,
    /// `None` when another metrics recorder owns the process.
    pub metrics: Option<PrometheusHandle>,
    /// `None` when the daemon was started without a configuration file.
    pub reloader: Option<Arc<Reloader>>,
    /// Title of the OPML export.
    pub title: String,
}

pub fn router(ops: Ops) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/admin/reload", post(reload))
        .route("/feeds.opml", get(feeds_opml))
        .with_state(Arc::new(ops))
}

async fn metrics(State(ops): State<Arc<Ops>>) -> Response {
    let Some(handle) = ops.metrics.clone() else {
        return (
            StatusCode::NOT_FOUND,
            "metrics are not recorded in this process\n",
        )
            .into_response();
    };
    let now = ops.health.clock.now();
    match ops.health.store.call(move |s| s.ops_snapshot(now)).await {
        Ok(snapshot) => {
            let lag = ops.health.lag(&snapshot);
            (
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                crate::telemetry::render(&handle, &snapshot, lag),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read figures for /metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, "database error\n").into_response()
        }
    }
}

async fn healthz(State(ops): State<Arc<Ops>>) -> Response {
    let report = ops.health.check().await;
    let status = if report.healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, [(header::CACHE_CONTROL, "no-store")], report.text()).into_response()
}

async fn reload(State(ops): State<Arc<Ops>>) -> Response {
    let Some(reloader) = ops.reloader.clone() else {
        return (
            StatusCode::CONFLICT,
            "this daemon was not started from a configuration file\n",
        )
            .into_response();
    };
    match reloader.reload().await {
        Ok(summary) => (StatusCode::OK, format!("reloaded: {summary}\n")).into_response(),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("not reloaded, the running configuration stays: {e}\n"),
        )
            .into_response(),
    }
}

async fn feeds_opml(State(ops): State<Arc<Ops>>) -> Response {
    match ops.health.store.call(|s| s.subscriptions()).await {
        Ok(subs) => (
            [(header::CONTENT_TYPE, "text/x-opml; charset=utf-8")],
            crate::opml::write(&ops.title, &subs),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read subscriptions for /feeds.opml");
            (StatusCode::INTERNAL_SERVER_ERROR, "database error\n").into_response()
        }
    }
}
