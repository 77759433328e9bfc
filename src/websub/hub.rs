//! The built-in hub (`[websub] serve_hub`): readers subscribe to the
//! river's own feeds at `{base_url}hub`; when a feed changes (the
//! publisher's ping, in process) its current document goes to each
//! subscriber, signed with the subscriber's secret. Bounded: a subscriber
//! limit, a timeout on every request to a subscriber, each delivery on a
//! task of its own (at most `MAX_DELIVERIES` at once), so one slow
//! subscriber never delays the others.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use url::Url;

use super::HubClient;
use crate::access::Secret;
use crate::scheduler::Clock;
use crate::store::{HubSubscriber, Store};

/// Deliveries in flight at once, over all subscribers.
const MAX_DELIVERIES: usize = 32;
/// Attempts of one delivery, waiting `RETRY`, doubling, between them.
const ATTEMPTS: u32 = 3;
const RETRY: Duration = Duration::from_secs(2);
/// The lease granted when a subscriber asks for none, and the longest.
const DEFAULT_LEASE: u64 = 10 * 24 * 3600;
const MAX_LEASE: u64 = 30 * 24 * 3600;
/// `hub.secret` is at most this long (the spec's limit).
const MAX_SECRET: usize = 200;
const MAX_CALLBACK: usize = 2000;

/// How the built-in hub is set up.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// `[output] base_url`: topics are our feeds under it.
    pub base_url: String,
    /// Where this daemon answers, to read a topic's current document.
    pub local: std::net::SocketAddr,
    /// `[access] read_token`, sent when reading our own documents.
    pub read_token: Option<Secret>,
    /// `[websub] max_subscribers`.
    pub max_subscribers: u64,
    /// `[websub] delivery_timeout`: each request to a subscriber.
    pub timeout: Duration,
    pub user_agent: String,
}

/// What the built-in hub needs.
#[derive(Debug, Clone)]
pub struct BuiltInHub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    clock: Clock,
    client: reqwest::Client,
    /// `[output] base_url` ("…/"): topics are our feeds under it.
    base_url: String,
    /// Where this daemon answers, to read a topic's current document.
    local: String,
    /// `[access] read_token`, sent when reading our own documents.
    read_token: Option<Secret>,
    max_subscribers: u64,
    deliveries: Semaphore,
}

/// A subscription request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRequest {
    pub subscribe: bool,
    pub topic: String,
    pub callback: String,
    pub secret: Option<String>,
    pub lease_seconds: u64,
}

/// Why the hub refuses a request (each a 4xx, nothing stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubRefusal {
    #[error("{0}")]
    Malformed(String),
    #[error("this hub has reached its limit of {0} subscriptions")]
    Full(u64),
}

impl BuiltInHub {
    pub fn new(store: Store, clock: Clock, settings: HubSettings) -> Result<Self, String> {
        let HubSettings {
            base_url,
            local,
            read_token,
            max_subscribers,
            timeout,
            user_agent,
        } = settings;
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the hub's client: {e}"))?;
        let base_url = if base_url.ends_with('/') {
            base_url
        } else {
            format!("{base_url}/")
        };
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                clock,
                client,
                base_url,
                local: format!("http://{local}/"),
                read_token,
                max_subscribers,
                deliveries: Semaphore::new(MAX_DELIVERIES),
            }),
        })
    }

    /// The hub's own address.
    pub fn url(&self) -> String {
        format!("{}hub", self.inner.base_url)
    }

    /// Whether `topic` is one of the feeds this daemon publishes.
    fn is_our_topic(&self, topic: &str) -> bool {
        let Some(path) = topic.strip_prefix(&self.inner.base_url) else {
            return false;
        };
        let path = path.split('?').next().unwrap_or("");
        let parts: Vec<&str> = path.split('/').collect();
        let file = |f: &str| crate::publish::Format::from_file_name(f).is_some();
        match parts.as_slice() {
            [f] => file(f),
            // Named searches are not pinged (see `topics_of`): not offered.
            ["tags" | "feeds", name, f] => !name.is_empty() && file(f),
            _ => false,
        }
    }

    /// Checks a `POST /hub` form: a subscribe or unsubscribe for one of
    /// our feeds, a callback we may call, a secret within the limit.
    pub fn check(&self, form: &[(String, String)]) -> Result<HubRequest, HubRefusal> {
        let bad = |m: &str| Err(HubRefusal::Malformed(m.to_string()));
        let mut one = std::collections::HashMap::new();
        for (k, v) in form {
            if one.insert(k.as_str(), v.as_str()).is_some() {
                return Err(HubRefusal::Malformed(format!("{k} given twice")));
            }
        }
        let subscribe = match one.get("hub.mode") {
            Some(&"subscribe") => true,
            Some(&"unsubscribe") => false,
            Some(&"publish") => return bad("this hub announces its own feeds only"),
            Some(_) => return bad("unknown hub.mode"),
            None => return bad("hub.mode is missing"),
        };
        let Some(topic) = one.get("hub.topic").map(|t| t.to_string()) else {
            return bad("hub.topic is missing");
        };
        if !self.is_our_topic(&topic) {
            return bad("hub.topic is not a feed published here");
        }
        let Some(callback) = one.get("hub.callback").map(|c| c.to_string()) else {
            return bad("hub.callback is missing");
        };
        let callback_ok = callback.len() <= MAX_CALLBACK
            && Url::parse(&callback).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some_and(|h| !h.is_empty())
            });
        if !callback_ok {
            return bad("hub.callback is not an http(s) URL");
        }
        let secret = match one.get("hub.secret") {
            Some(s) if s.is_empty() || s.len() > MAX_SECRET => {
                return bad("hub.secret must be 1 to 200 bytes");
            }
            Some(s) => Some(s.to_string()),
            None => None,
        };
        let lease_seconds = match one.get("hub.lease_seconds") {
            None => DEFAULT_LEASE,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(s) => s.clamp(60, MAX_LEASE),
                Err(_) => return bad("hub.lease_seconds is not a number"),
            },
        };
        Ok(HubRequest {
            subscribe,
            topic,
            callback,
            secret,
            lease_seconds,
        })
    }

    /// Takes a checked request: refused when the hub is full, else the
    /// verification of intent runs on a task of its own (answered 202).
    pub async fn accept(&self, request: HubRequest) -> Result<(), HubRefusal> {
        let inner = &self.inner;
        if request.subscribe {
            let now = inner.clock.now();
            let (topic, callback) = (request.topic.clone(), request.callback.clone());
            let (count, already) = inner
                .store
                .call(move |s| s.hub_subscriber_count(&topic, &callback, now))
                .await
                .map_err(|e| HubRefusal::Malformed(format!("storage: {e}")))?;
            if !already && count >= inner.max_subscribers {
                return Err(HubRefusal::Full(inner.max_subscribers));
            }
        }
        let hub = self.clone();
        tokio::spawn(async move { hub.verify(request).await });
        Ok(())
    }

    /// Verification of intent: GET the callback with a challenge; only an
    /// exact echo makes (or ends) the subscription.
    async fn verify(&self, request: HubRequest) {
        let inner = &self.inner;
        let challenge = super::random_token();
        let mode = if request.subscribe {
            "subscribe"
        } else {
            "unsubscribe"
        };
        let Ok(mut url) = Url::parse(&request.callback) else {
            return;
        };
        url.query_pairs_mut()
            .append_pair("hub.mode", mode)
            .append_pair("hub.topic", &request.topic)
            .append_pair("hub.challenge", &challenge)
            .append_pair("hub.lease_seconds", &request.lease_seconds.to_string());
        let echoed = match inner.client.get(url).send().await {
            Ok(r) if r.status().is_success() => r
                .bytes()
                .await
                .is_ok_and(|b| b.len() <= 1024 && b.as_ref() == challenge.as_bytes()),
            _ => false,
        };
        if !echoed {
            tracing::info!(topic = %request.topic, mode, "websub hub: the callback did not confirm; nothing changed");
            return;
        }
        let now = inner.clock.now();
        let lease_end = now + chrono::Duration::seconds(request.lease_seconds as i64);
        let stored = if request.subscribe {
            inner
                .store
                .call(move |s| {
                    s.hub_subscribe(
                        &request.topic,
                        &request.callback,
                        request.secret.as_deref(),
                        lease_end,
                        now,
                    )
                })
                .await
        } else {
            inner
                .store
                .call(move |s| {
                    s.hub_unsubscribe(&request.topic, &request.callback)
                        .map(|_| ())
                })
                .await
        };
        match stored {
            Ok(()) => tracing::info!(mode, "websub hub: subscription verified"),
            Err(e) => tracing::error!(error = %e, "websub hub: cannot store a subscription"),
        }
    }

    /// Sends `topic`'s current document to each of its subscribers, each
    /// on a task of its own.
    async fn distribute(&self, topic: String) {
        let inner = &self.inner;
        let now = inner.clock.now();
        let t = topic.clone();
        let subscribers = match inner
            .store
            .call(move |s| s.hub_subscribers_of(&t, now))
            .await
        {
            Ok(subs) if !subs.is_empty() => subs,
            Ok(_) => return,
            Err(e) => {
                tracing::error!(error = %e, "websub hub: cannot read subscribers");
                return;
            }
        };
        let Some(path) = topic.strip_prefix(&inner.base_url) else {
            return;
        };
        let mut request = inner.client.get(format!("{}{path}", inner.local));
        if let Some(token) = &inner.read_token {
            request = request.bearer_auth(token.expose());
        }
        let document = match request.send().await {
            Ok(r) if r.status().is_success() => {
                let content_type = r
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/octet-stream")
                    .to_string();
                match r.bytes().await {
                    Ok(body) => (content_type, body),
                    Err(_) => return,
                }
            }
            _ => {
                tracing::warn!(%topic, "websub hub: cannot read the topic's document");
                return;
            }
        };
        let document = Arc::new(document);
        for subscriber in subscribers {
            let (hub, document) = (self.clone(), document.clone());
            tokio::spawn(async move { hub.deliver(subscriber, &document).await });
        }
    }

    /// One subscriber's delivery, retried; the outcome is stored.
    async fn deliver(&self, subscriber: HubSubscriber, document: &(String, bytes::Bytes)) {
        let inner = &self.inner;
        let Ok(_slot) = inner.deliveries.acquire().await else {
            return;
        };
        let (content_type, body) = document;
        let link = super::link_header(&self.url(), &subscriber.topic);
        let mut wait = RETRY;
        let mut error = None;
        for attempt in 1..=ATTEMPTS {
            let mut request = inner
                .client
                .post(&subscriber.callback)
                .header(reqwest::header::CONTENT_TYPE, content_type.as_str())
                .header(reqwest::header::LINK, link.as_str())
                .body(body.clone());
            if let Some(secret) = &subscriber.secret {
                request = request.header(
                    "X-Hub-Signature",
                    super::sign_sha256(secret.as_bytes(), body),
                );
            }
            error = match request.send().await {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("HTTP {}", r.status().as_u16())),
                Err(e) => Some(e.without_url().to_string()),
            };
            if error.is_none() || attempt == ATTEMPTS {
                break;
            }
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
        if let Some(e) = &error {
            tracing::warn!(topic = %subscriber.topic, error = %e, "websub hub: delivery failed");
        }
        let id = subscriber.id;
        if let Err(e) = inner
            .store
            .call(move |s| s.hub_delivered(id, error.as_deref()))
            .await
        {
            tracing::error!(error = %e, "websub hub: cannot record a delivery");
        }
    }
}

/// The publisher's pings, in process: each topic named is distributed.
impl HubClient for BuiltInHub {
    async fn post_form(&self, _hub: &str, form: Vec<(String, String)>) -> Result<u16, String> {
        for (name, topic) in form {
            if name == "hub.url" {
                let hub = self.clone();
                tokio::spawn(async move { hub.distribute(topic).await });
            }
        }
        Ok(202)
    }
}
