//! WebSub (W3C Recommendation, once PubSubHubbub), both ways: discovering
//! the hub a feed advertises, subscribing to it, renewing and ending the
//! subscription, checking the signature of what it pushes; and telling a hub
//! of ours when the river's own feeds change.
//!
//! The callback routes live in `server::websub`; a push enters the pipeline
//! where a fetched body does (`Poller::ingest_push`).

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::Rng;
use tokio::sync::watch;
use url::Url;

use crate::model::{FeedId, WebSubLinks};
use crate::scheduler::Clock;
use crate::store::{Store, WebSubTask, WebSubWork};

pub mod hub;

pub use hub::BuiltInHub;

/// The path under `[output] base_url` where hubs call back.
pub const CALLBACK_PREFIX: &str = "websub/";

/// The `rel="hub"` and `rel="self"` targets of HTTP `Link` header values
/// (RFC 8288), made absolute against `base`.
pub fn links_from_headers(values: &[String], base: Option<&Url>) -> WebSubLinks {
    let mut links = WebSubLinks::default();
    for value in values {
        for (target, rels) in link_values(value) {
            let Some(url) = absolute(&target, base) else {
                continue;
            };
            for rel in rels {
                if rel.eq_ignore_ascii_case("hub") && !links.hubs.contains(&url) {
                    links.hubs.push(url.clone());
                } else if rel.eq_ignore_ascii_case("self") && links.self_url.is_none() {
                    links.self_url = Some(url.clone());
                }
            }
        }
    }
    links
}

/// Each `<target>; param…` of one header value, with its relations.
fn link_values(value: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(len) = rest[open..].find('>') else {
            break;
        };
        let target = rest[open + 1..open + len].trim().to_string();
        rest = &rest[open + len + 1..];
        // The parameters run to the next comma outside quotes.
        let mut end = rest.len();
        let mut quoted = false;
        for (i, c) in rest.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let params = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or("");
        let rels = params
            .split(';')
            .filter_map(|p| p.split_once('='))
            .filter(|(name, _)| name.trim().eq_ignore_ascii_case("rel"))
            .flat_map(|(_, v)| {
                v.trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        out.push((target, rels));
    }
    out
}

fn absolute(href: &str, base: Option<&Url>) -> Option<String> {
    let url = match Url::parse(href) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => base?.join(href).ok()?,
        Err(_) => return None,
    };
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

/// The hub and topic to subscribe to: HTTP `Link` headers first, then the
/// document's own links, as the spec orders them. A hub without a self
/// link gets the feed's own URL as its topic.
pub fn discover(
    headers: &WebSubLinks,
    document: &WebSubLinks,
    feed_url: &str,
) -> Option<(String, String)> {
    let hub = headers.hubs.first().or(document.hubs.first())?.clone();
    let topic = headers
        .self_url
        .clone()
        .or_else(|| document.self_url.clone())
        .unwrap_or_else(|| feed_url.to_string());
    Some((hub, topic))
}

/// What an `X-Hub-Signature` header says about a push body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    Valid,
    Missing,
    /// Wrong, malformed, or with an algorithm we do not take.
    Invalid,
}

/// Checks `X-Hub-Signature: method=hex` (sha1, sha256, sha384 or sha512
/// HMAC of the body under the subscription's secret), in constant time.
pub fn check_signature(header: Option<&str>, secret: &[u8], body: &[u8]) -> Signature {
    let Some(header) = header else {
        return Signature::Missing;
    };
    let Some((method, digest)) = header.trim().split_once('=') else {
        return Signature::Invalid;
    };
    let Some(digest) = unhex(digest.trim()) else {
        return Signature::Invalid;
    };
    let valid = match method.trim().to_ascii_lowercase().as_str() {
        "sha1" => verify::<Hmac<sha1::Sha1>>(secret, body, &digest),
        "sha256" => verify::<Hmac<sha2::Sha256>>(secret, body, &digest),
        "sha384" => verify::<Hmac<sha2::Sha384>>(secret, body, &digest),
        "sha512" => verify::<Hmac<sha2::Sha512>>(secret, body, &digest),
        _ => false,
    };
    if valid {
        Signature::Valid
    } else {
        Signature::Invalid
    }
}

fn verify<M: Mac + hmac::digest::KeyInit>(secret: &[u8], body: &[u8], digest: &[u8]) -> bool {
    let Ok(mut mac) = <M as Mac>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    // Constant time; a digest of the wrong length is refused.
    mac.verify_slice(digest).is_ok()
}

/// `sha256=…` for `body` under `secret`: what a hub sends (for hubs
/// written in tests, and the benchmark).
pub fn sign_sha256(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!(
        "sha256={}",
        crate::identity::hex(&mac.finalize().into_bytes())
    )
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.is_empty() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A random token (callback path, secret): 32 bytes as hex.
fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    crate::identity::hex(&bytes)
}

/// Sends form posts to hubs: the real HTTP client, or a hub written for
/// tests that run on a paused clock.
pub trait HubClient: Send + Sync + std::fmt::Debug + 'static {
    /// POSTs `form` (urlencoded) to `hub`; the HTTP status, or why none came.
    fn post_form(
        &self,
        hub: &str,
        form: Vec<(String, String)>,
    ) -> impl Future<Output = Result<u16, String>> + Send;
}

/// Hubs over HTTP.
#[derive(Debug, Clone)]
pub struct HttpHub {
    client: reqwest::Client,
}

impl HttpHub {
    pub fn new(user_agent: &str, timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| format!("cannot build the hub client: {e}"))?;
        Ok(Self { client })
    }
}

impl HubClient for HttpHub {
    async fn post_form(&self, hub: &str, form: Vec<(String, String)>) -> Result<u16, String> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .client
            .post(hub)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        Ok(response.status().as_u16())
    }
}

/// How the subscriber behaves; every limit has a default.
#[derive(Debug, Clone)]
pub struct SubscriberSettings {
    /// `[output] base_url`, ending in '/': callbacks are `{base_url}websub/{token}`.
    pub base_url: String,
    /// How often the subscriptions are looked over.
    pub tick: Duration,
    /// How long a hub may take to verify a request.
    pub verify_within: Duration,
    /// First retry after a failed request; doubles up to `max_retry`.
    pub retry: Duration,
    pub max_retry: Duration,
    /// The lease asked for (the hub decides).
    pub lease: Option<Duration>,
}

impl SubscriberSettings {
    pub fn new(base_url: &str) -> Self {
        let base_url = if base_url.ends_with('/') {
            base_url.to_string()
        } else {
            format!("{base_url}/")
        };
        Self {
            base_url,
            tick: Duration::from_secs(5),
            verify_within: Duration::from_secs(600),
            retry: Duration::from_secs(60),
            max_retry: Duration::from_secs(6 * 3600),
            lease: Some(Duration::from_secs(10 * 24 * 3600)),
        }
    }

    fn callback(&self, token: &str) -> String {
        format!("{}{CALLBACK_PREFIX}{token}", self.base_url)
    }

    fn backoff(&self, failures: u32) -> Duration {
        self.retry
            .saturating_mul(1 << failures.min(20))
            .min(self.max_retry)
    }
}

/// How often the subscriber checks whether anything was written (a poll
/// that found a hub, a reload that removed a feed): then it looks at once
/// rather than at its next tick.
const WRITES_CHECK: Duration = Duration::from_millis(250);

/// Looks over the subscriptions every `tick`, and soon after anything is
/// written, until `stop`: subscribes to newly discovered hubs, renews
/// leases before they end, unsubscribes from feeds no longer configured,
/// gives up on requests never verified.
pub async fn run_subscriber<H: HubClient>(
    store: Store,
    clock: Clock,
    hub: H,
    settings: SubscriberSettings,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        subscriber_pass(&store, &clock, &hub, &settings).await;
        let writes = store.local_writes();
        let next_tick = tokio::time::Instant::now() + settings.tick;
        loop {
            tokio::select! {
                () = tokio::time::sleep(WRITES_CHECK.min(settings.tick)) => {}
                () = crate::reload::stopped(&mut stop) => return,
            }
            if store.local_writes() != writes || tokio::time::Instant::now() >= next_tick {
                break;
            }
        }
    }
}

/// One look over the subscriptions; returns the requests sent.
pub async fn subscriber_pass<H: HubClient>(
    store: &Store,
    clock: &Clock,
    hub: &H,
    settings: &SubscriberSettings,
) -> usize {
    let now = clock.now();
    let within = settings.verify_within;
    let work = match store.call(move |s| s.websub_work(now, within)).await {
        Ok(work) => work,
        Err(e) => {
            tracing::error!(error = %e, "websub: cannot read the subscriptions");
            return 0;
        }
    };
    let mut sent = 0;
    for task in work {
        if handle(store, clock, hub, settings, task).await {
            sent += 1;
        }
    }
    sent
}

/// Carries out one task; true if a request went to the hub.
async fn handle<H: HubClient>(
    store: &Store,
    clock: &Clock,
    hub: &H,
    settings: &SubscriberSettings,
    task: WebSubTask,
) -> bool {
    let now = clock.now();
    let id = task.feed_id;
    let retry_at = now + chrono_of(settings.backoff(task.failures));
    let hub_url = task.hub.clone();
    let fail = |error: String| async move {
        tracing::warn!(feed_id = id, hub = %hub_url, %error, "websub: request failed");
        if let Err(e) = store
            .call(move |s| s.websub_failed(id, &error, retry_at, now))
            .await
        {
            tracing::error!(error = %e, "websub: cannot record a failure");
        }
    };
    let (mode, token, secret) = match task.work {
        WebSubWork::Expire => {
            let what = task.pending_mode.as_deref().unwrap_or("request");
            fail(format!(
                "the hub did not verify the {what} within {}s",
                settings.verify_within.as_secs()
            ))
            .await;
            return false;
        }
        WebSubWork::Subscribe => ("subscribe", random_token(), random_token()),
        WebSubWork::Renew => match (&task.token, &task.secret) {
            (Some(t), Some(s)) => ("subscribe", t.clone(), s.clone()),
            _ => ("subscribe", random_token(), random_token()),
        },
        WebSubWork::Unsubscribe => match (&task.token, &task.secret) {
            (Some(t), Some(s)) => ("unsubscribe", t.clone(), s.clone()),
            // Never subscribed: nothing to end.
            _ => return false,
        },
    };
    let (t, s) = (token.clone(), secret.clone());
    if let Err(e) = store
        .call(move |st| st.websub_begin(id, mode, &t, &s, now))
        .await
    {
        tracing::error!(error = %e, "websub: cannot record a request");
        return false;
    }
    let mut form = vec![
        ("hub.mode".to_string(), mode.to_string()),
        ("hub.topic".to_string(), task.topic.clone()),
        ("hub.callback".to_string(), settings.callback(&token)),
    ];
    if mode == "subscribe" {
        form.push(("hub.secret".to_string(), secret));
        if let Some(lease) = settings.lease {
            form.push(("hub.lease_seconds".to_string(), lease.as_secs().to_string()));
        }
    }
    match hub.post_form(&task.hub, form).await {
        Ok(status) if (200..300).contains(&status) => {
            tracing::info!(feed_id = id, hub = %task.hub, mode, "websub: request accepted; waiting for the hub's verification");
        }
        Ok(status) => fail(format!("the hub answered HTTP {status}")).await,
        Err(error) => fail(error).await,
    }
    true
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(365))
}

/// Most topics named in one publish notification.
const MAX_TOPICS_PER_PING: usize = 100;

/// How the publisher tells its hub of changes.
#[derive(Debug, Clone)]
pub struct PublisherSettings {
    /// The hub (`[websub] hub`).
    pub hub: String,
    /// `[output] base_url` ("…/"), the root of every topic URL.
    pub base_url: String,
    /// How often the data is checked for changes.
    pub check_every: Duration,
    /// Changes within this long of the first one go out in one ping.
    pub debounce: Duration,
    /// Retries of a failed ping, with doubling waits from `retry`.
    pub attempts: u32,
    pub retry: Duration,
}

impl PublisherSettings {
    pub fn new(hub: &str, base_url: &str) -> Self {
        let base_url = if base_url.ends_with('/') {
            base_url.to_string()
        } else {
            format!("{base_url}/")
        };
        Self {
            hub: hub.to_string(),
            base_url,
            check_every: Duration::from_millis(500),
            debounce: Duration::from_secs(2),
            attempts: 6,
            retry: Duration::from_secs(2),
        }
    }
}

/// The topic URLs (every format) of the views a changed feed shows in:
/// the river, its own source view and its tags' views.
pub fn topics_of(base_url: &str, changed: &[(FeedId, Vec<String>)]) -> Vec<String> {
    let mut views: BTreeSet<String> = BTreeSet::new();
    if !changed.is_empty() {
        views.insert(String::new());
    }
    for (id, tags) in changed {
        views.insert(format!("feeds/{id}/"));
        for tag in tags {
            views.insert(format!("tags/{}/", crate::publish::html::path_segment(tag)));
        }
    }
    views
        .iter()
        .flat_map(|view| {
            crate::publish::Format::ALL
                .iter()
                .map(move |f| format!("{base_url}{view}{}", f.file_name()))
        })
        .collect()
}

/// Watches the store for changed published documents until `stop`, and
/// tells the hub: debounced (the changes of `debounce` go out in one ping),
/// retried with backoff, on its own task so polling never waits for it.
pub async fn run_publisher<H: HubClient>(
    store: Store,
    clock: Clock,
    hub: H,
    settings: PublisherSettings,
    mut stop: watch::Receiver<bool>,
) {
    // A second back: a poll that stored just before this task started.
    let mut since = clock.now() - chrono::Duration::seconds(1);
    let mut writes = store.local_writes();
    loop {
        tokio::select! {
            () = tokio::time::sleep(settings.check_every) => {}
            () = crate::reload::stopped(&mut stop) => break,
        }
        if store.local_writes() == writes {
            continue;
        }
        // Something was written: wait out the debounce, then gather every
        // change since the last ping in one.
        tokio::select! {
            () = tokio::time::sleep(settings.debounce) => {}
            () = crate::reload::stopped(&mut stop) => break,
        }
        writes = store.local_writes();
        let now = clock.now();
        let from = since;
        let changed = match store.call(move |s| s.published_changes_since(from)).await {
            Ok(changed) => changed,
            Err(e) => {
                tracing::error!(error = %e, "websub: cannot read what changed");
                continue;
            }
        };
        // Seconds resolution: the next look starts at this second again.
        since = now;
        if changed.is_empty() {
            continue;
        }
        let topics = topics_of(&settings.base_url, &changed);
        publish_with_retries(&hub, &settings, topics, &mut stop).await;
    }
}

/// One publish notification (in chunks of topics), retried with backoff.
pub async fn publish_with_retries<H: HubClient>(
    hub: &H,
    settings: &PublisherSettings,
    topics: Vec<String>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let mut all_ok = true;
    for chunk in topics.chunks(MAX_TOPICS_PER_PING) {
        let mut form = vec![("hub.mode".to_string(), "publish".to_string())];
        form.extend(chunk.iter().map(|t| ("hub.url".to_string(), t.clone())));
        let mut wait = settings.retry;
        let mut ok = false;
        for attempt in 1..=settings.attempts.max(1) {
            match hub.post_form(&settings.hub, form.clone()).await {
                Ok(status) if (200..300).contains(&status) => {
                    ok = true;
                    break;
                }
                Ok(status) => {
                    tracing::warn!(hub = %settings.hub, status, attempt, "websub: publish ping refused")
                }
                Err(error) => {
                    tracing::warn!(hub = %settings.hub, %error, attempt, "websub: publish ping failed")
                }
            }
            crate::telemetry::record_websub_ping(false);
            if attempt < settings.attempts {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = crate::reload::stopped(stop) => return false,
                }
                wait = wait.saturating_mul(2);
            }
        }
        if ok {
            crate::telemetry::record_websub_ping(true);
        }
        all_ok &= ok;
    }
    all_ok
}

/// The `Link` header value announcing `hub` for the document at `self_url`.
pub fn link_header(hub: &str, self_url: &str) -> String {
    format!("<{hub}>; rel=\"hub\", <{self_url}>; rel=\"self\"")
}

/// The lease a verification grants: `hub.lease_seconds`, kept within a
/// minute and a year; a hub that names none gets a day. `None`: not a number.
pub fn lease_of(value: Option<&str>) -> Option<u64> {
    match value {
        None => Some(24 * 3600),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .map(|s| s.clamp(60, 365 * 24 * 3600)),
    }
}

/// When the next retry after a denial may go: a day.
pub fn after_denial(now: DateTime<Utc>) -> DateTime<Utc> {
    now + chrono::Duration::days(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_give_hub_and_self() {
        let base = Url::parse("https://a.example/feed").ok();
        let links = links_from_headers(
            &[
                "<https://hub.example/>; rel=\"hub\", </feed>; rel=\"self\"".into(),
                "<https://hub2.example/>; rel=\"alternate hub\"; title=\"a, b\"".into(),
            ],
            base.as_ref(),
        );
        assert_eq!(
            links.hubs,
            ["https://hub.example/", "https://hub2.example/"]
        );
        assert_eq!(links.self_url.as_deref(), Some("https://a.example/feed"));
        let none = links_from_headers(&["<mailto:x@y>; rel=hub, garbage".into()], None);
        assert!(none.hubs.is_empty());
    }

    #[test]
    fn headers_win_over_the_document_and_the_feed_url_is_the_last_resort() {
        let headers = WebSubLinks {
            hubs: vec!["https://h.example/".into()],
            self_url: None,
        };
        let doc = WebSubLinks {
            hubs: vec!["https://d.example/".into()],
            self_url: Some("https://a.example/self".into()),
        };
        assert_eq!(
            discover(&headers, &doc, "https://a.example/f"),
            Some(("https://h.example/".into(), "https://a.example/self".into()))
        );
        assert_eq!(
            discover(&Default::default(), &Default::default(), "x"),
            None
        );
    }

    #[test]
    fn signatures_of_every_method_are_checked() {
        let body = b"<feed/>";
        let good = sign_sha256(b"k", body);
        assert_eq!(check_signature(Some(&good), b"k", body), Signature::Valid);
        assert_eq!(
            check_signature(Some(&good), b"other", body),
            Signature::Invalid
        );
        assert_eq!(check_signature(None, b"k", body), Signature::Missing);
        for bad in ["sha256", "sha256=zz", "md5=00", "sha256=", "sha1=00ff"] {
            assert_eq!(
                check_signature(Some(bad), b"k", body),
                Signature::Invalid,
                "{bad}"
            );
        }
        let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(b"k").unwrap();
        mac.update(body);
        let sha1 = format!(
            "sha1={}",
            crate::identity::hex(&mac.finalize().into_bytes())
        );
        assert_eq!(check_signature(Some(&sha1), b"k", body), Signature::Valid);
        let mut mac = <Hmac<sha2::Sha512> as Mac>::new_from_slice(b"k").unwrap();
        mac.update(body);
        let sha512 = format!(
            "SHA512={}",
            crate::identity::hex(&mac.finalize().into_bytes())
        );
        assert_eq!(check_signature(Some(&sha512), b"k", body), Signature::Valid);
    }

    #[test]
    fn topics_cover_every_format_of_every_view_touched() {
        let topics = topics_of("http://r.example/", &[(3, vec!["world news".into()])]);
        assert_eq!(topics.len(), 9);
        assert!(topics.contains(&"http://r.example/feed.atom".to_string()));
        assert!(topics.contains(&"http://r.example/feeds/3/feed.json".to_string()));
        assert!(
            topics
                .iter()
                .any(|t| t.starts_with("http://r.example/tags/world") && t.ends_with("feed.rss"))
        );
        assert!(topics_of("http://r.example/", &[]).is_empty());
    }
}
