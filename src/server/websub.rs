//! WebSub callbacks under `/websub/{token}`: the hub's verification of
//! intent (GET) and its content distribution (POST). A push with a valid
//! signature enters the pipeline where a fetched body does.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::model::FeedId;
use crate::scheduler::{Clock, Outcome, PushSink};
use crate::store::Store;
use crate::telemetry::record_websub_push;
use crate::websub::{self, Signature};

/// What the callback routes share.
#[derive(Debug)]
pub struct Callbacks {
    pub store: Store,
    pub clock: Clock,
    /// Where signed pushes go (the daemon's poller).
    pub sink: Arc<dyn PushSink>,
    /// `[fetch] max_body_bytes`: a push is held to a poll's limit.
    pub max_body_bytes: u64,
    /// Feeds whose unsigned or wrongly signed pushes were logged already.
    warned: Mutex<HashSet<FeedId>>,
    /// The built-in hub (`[websub] serve_hub`), if it runs.
    hub: Option<websub::BuiltInHub>,
}

impl Callbacks {
    pub fn new(store: Store, clock: Clock, sink: Arc<dyn PushSink>, max_body_bytes: u64) -> Self {
        Self {
            store,
            clock,
            sink,
            max_body_bytes,
            warned: Mutex::default(),
            hub: None,
        }
    }

    /// With the built-in hub answering `POST /hub`.
    pub fn with_hub(mut self, hub: websub::BuiltInHub) -> Self {
        self.hub = Some(hub);
        self
    }

    /// Logs a bad push once per feed (a hub retries; the log should not).
    fn warn_once(&self, feed_id: FeedId, what: &str) {
        let first = self
            .warned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(feed_id);
        if first {
            tracing::warn!(
                feed_id,
                "websub: ignored a push with {what} (further ones are only counted in /metrics)"
            );
        }
    }
}

pub fn router(callbacks: Arc<Callbacks>) -> Router {
    Router::new()
        .route("/websub/{token}", get(verify).post(push))
        .route("/hub", post(hub_request))
        .with_state(callbacks)
}

/// Our tokens are 64 lower-case hex digits; anything else names nothing.
fn plausible(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "no such subscription\n")
}

/// `GET /websub/{token}?hub.mode=…&hub.topic=…&hub.challenge=…`: answers
/// the challenge only for a request we sent that hub and it has not
/// verified yet, with the same mode and topic.
#[tracing::instrument(skip_all)]
async fn verify(
    State(cb): State<Arc<Callbacks>>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    if !plausible(&token) {
        return not_found();
    }
    let mut mode = None;
    let mut topic = None;
    let mut challenge = None;
    let mut lease = None;
    let mut reason = None;
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let slot = match name.as_ref() {
            "hub.mode" => &mut mode,
            "hub.topic" => &mut topic,
            "hub.challenge" => &mut challenge,
            "hub.lease_seconds" => &mut lease,
            "hub.reason" => &mut reason,
            _ => continue,
        };
        if slot.is_some() {
            return text(StatusCode::BAD_REQUEST, format!("{name} given twice\n"));
        }
        *slot = Some(value.into_owned());
    }
    let (Some(mode), Some(topic)) = (mode, topic) else {
        return text(
            StatusCode::BAD_REQUEST,
            "a verification needs hub.mode and hub.topic\n",
        );
    };
    let now = cb.clock.now();
    match mode.as_str() {
        "subscribe" | "unsubscribe" => {
            let Some(challenge) = challenge.filter(|c| !c.is_empty()) else {
                return text(StatusCode::BAD_REQUEST, "hub.challenge is missing\n");
            };
            let lease_seconds = if mode == "subscribe" {
                match websub::lease_of(lease.as_deref()) {
                    Some(lease) => lease,
                    None => {
                        return text(
                            StatusCode::BAD_REQUEST,
                            "hub.lease_seconds is not a number\n",
                        );
                    }
                }
            } else {
                0
            };
            let verified = cb
                .store
                .call(move |s| s.websub_verify(&token, &mode, &topic, lease_seconds, now))
                .await;
            match verified {
                Ok(true) => text(StatusCode::OK, challenge),
                Ok(false) => not_found(),
                Err(e) => super::internal_error(e),
            }
        }
        "denied" => {
            let reason = reason.unwrap_or_default();
            let retry = websub::after_denial(now);
            match cb
                .store
                .call(move |s| s.websub_denied(&token, &topic, &reason, retry))
                .await
            {
                Ok(true) => text(StatusCode::OK, "noted\n"),
                Ok(false) => not_found(),
                Err(e) => super::internal_error(e),
            }
        }
        _ => text(StatusCode::BAD_REQUEST, "unknown hub.mode\n"),
    }
}

/// `POST /websub/{token}`: a hub's push. Only a body signed with the
/// subscription's secret is stored; a missing or wrong signature is
/// answered 202 as the spec asks (so the hub does not retry) and ignored.
#[tracing::instrument(skip_all)]
async fn push(
    State(cb): State<Arc<Callbacks>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !plausible(&token) {
        return not_found();
    }
    let target = match cb.store.call(move |s| s.websub_push_target(&token)).await {
        Ok(Some(target)) => target,
        Ok(None) => return not_found(),
        Err(e) => return super::internal_error(e),
    };
    let limit = usize::try_from(cb.max_body_bytes).unwrap_or(usize::MAX);
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(body) => body,
        Err(_) => {
            record_websub_push("too_large");
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a push may carry at most {limit} bytes\n"),
            );
        }
    };
    let signature = headers
        .get("x-hub-signature")
        .map(|v| v.to_str().unwrap_or("invalid"));
    match websub::check_signature(signature, target.secret.as_bytes(), &body) {
        Signature::Valid => {}
        Signature::Missing => {
            record_websub_push("missing_signature");
            cb.warn_once(target.feed_id, "no X-Hub-Signature");
            return StatusCode::ACCEPTED.into_response();
        }
        Signature::Invalid => {
            record_websub_push("bad_signature");
            cb.warn_once(target.feed_id, "a wrong X-Hub-Signature");
            return StatusCode::ACCEPTED.into_response();
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match cb.sink.push(target.feed_id, body, content_type).await {
        Ok(Outcome::Stored { new, updated, .. }) => {
            record_websub_push("stored");
            tracing::info!(
                feed_id = target.feed_id,
                new,
                updated,
                "websub: push stored"
            );
            StatusCode::OK.into_response()
        }
        Ok(Outcome::Failed { error, .. }) => {
            record_websub_push("unreadable");
            tracing::warn!(feed_id = target.feed_id, %error, "websub: a signed push is not a readable feed");
            StatusCode::ACCEPTED.into_response()
        }
        Ok(_) => {
            record_websub_push("unchanged");
            StatusCode::OK.into_response()
        }
        Err(e) => super::internal_error(e),
    }
}

/// `POST /hub`: a reader's subscribe or unsubscribe on the built-in hub
/// (`[websub] serve_hub`). Answered 202 and verified with the callback
/// afterwards; a malformed request is a 400, a full hub a 429, and neither
/// changes anything. 404 when the built-in hub does not run.
#[tracing::instrument(skip_all)]
async fn hub_request(State(cb): State<Arc<Callbacks>>, body: axum::body::Bytes) -> Response {
    let Some(hub) = &cb.hub else {
        return text(StatusCode::NOT_FOUND, "no hub here\n");
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let refused = match hub.check(&form) {
        Ok(request) => match hub.accept(request).await {
            Ok(()) => return StatusCode::ACCEPTED.into_response(),
            Err(refusal) => refusal,
        },
        Err(refusal) => refusal,
    };
    let status = match refused {
        websub::hub::HubRefusal::Full(_) => StatusCode::TOO_MANY_REQUESTS,
        websub::hub::HubRefusal::Malformed(_) => StatusCode::BAD_REQUEST,
    };
    text(status, format!("{refused}\n"))
}
