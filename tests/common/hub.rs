//! A WebSub hub and a publisher (an outlet) written for the tests, each on
//! 127.0.0.1:0. The hub verifies intent like a real one (GET with a
//! challenge, checked), keeps verified subscribers, delivers signed pushes
//! when told to, and records publish pings.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

/// A subscribe or unsubscribe request as the hub received it.
#[derive(Clone, Debug)]
pub struct HubRequest {
    pub mode: String,
    pub topic: String,
    pub callback: String,
    pub secret: Option<String>,
    pub lease: Option<String>,
    pub at: Instant,
}

/// A verification the hub made: mode, callback, whether the challenge came back.
#[derive(Clone, Debug)]
pub struct Verification {
    pub mode: String,
    pub callback: String,
    pub status: u16,
    pub echoed: bool,
}

#[derive(Clone, Debug)]
pub struct Subscriber {
    pub topic: String,
    pub callback: String,
    pub secret: Option<String>,
}

#[derive(Default, Debug)]
pub struct HubState {
    pub requests: Vec<HubRequest>,
    pub verifications: Vec<Verification>,
    pub subscribers: Vec<Subscriber>,
    /// The `hub.url` values of each publish ping, in order, with when.
    pub pings: Vec<(Instant, Vec<String>)>,
    /// Publish pings still to refuse with a 503.
    pub refuse_pings: u32,
    /// The lease granted, in seconds.
    pub lease: u64,
}

/// How a push is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sign {
    Good,
    Wrong,
    Missing,
}

#[derive(Clone)]
pub struct TestHub {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<HubState>>,
    client: reqwest::Client,
}

impl TestHub {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(HubState {
            lease: 3600,
            ..Default::default()
        }));
        let client = reqwest::Client::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/", post(hub_post))
            .with_state((state.clone(), client.clone()));
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            state,
            client,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut HubState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    /// Waits (real time) until `check` holds, for at most `secs`.
    pub async fn wait_for(&self, what: &str, secs: u64, check: impl Fn(&HubState) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !check(&self.state.lock().unwrap()) {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Delivers `body` to every verified subscriber of `topic`; their statuses.
    pub async fn push(&self, topic: &str, body: &[u8], content_type: &str, sign: Sign) -> Vec<u16> {
        let subs: Vec<Subscriber> = self.with(|s| {
            s.subscribers
                .iter()
                .filter(|sub| sub.topic == topic)
                .cloned()
                .collect()
        });
        let mut statuses = Vec::new();
        for sub in subs {
            statuses.push(deliver(&self.client, &sub, body, content_type, sign).await);
        }
        statuses
    }
}

/// POSTs one push to one subscriber's callback.
pub async fn deliver(
    client: &reqwest::Client,
    sub: &Subscriber,
    body: &[u8],
    content_type: &str,
    sign: Sign,
) -> u16 {
    let mut request = client
        .post(&sub.callback)
        .header(header::CONTENT_TYPE, content_type)
        .body(body.to_vec());
    let secret = sub.secret.clone().unwrap_or_default();
    match sign {
        Sign::Good => {
            request = request.header(
                "X-Hub-Signature",
                newsriver::websub::sign_sha256(secret.as_bytes(), body),
            )
        }
        Sign::Wrong => {
            request = request.header(
                "X-Hub-Signature",
                newsriver::websub::sign_sha256(b"not the secret", body),
            )
        }
        Sign::Missing => {}
    }
    request.send().await.map_or(0, |r| r.status().as_u16())
}

type Shared = (Arc<Mutex<HubState>>, reqwest::Client);

async fn hub_post(State((state, client)): State<Shared>, body: Bytes) -> Response {
    let mut form: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        form.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    let one = |k: &str| form.get(k).and_then(|v| v.first()).cloned();
    let Some(mode) = one("hub.mode") else {
        return (StatusCode::BAD_REQUEST, "no hub.mode").into_response();
    };
    if mode == "publish" {
        let mut s = state.lock().unwrap();
        if s.refuse_pings > 0 {
            s.refuse_pings -= 1;
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let urls = form.get("hub.url").cloned().unwrap_or_default();
        s.pings.push((Instant::now(), urls));
        return StatusCode::NO_CONTENT.into_response();
    }
    let (Some(topic), Some(callback)) = (one("hub.topic"), one("hub.callback")) else {
        return (StatusCode::BAD_REQUEST, "no topic or callback").into_response();
    };
    let request = HubRequest {
        mode: mode.clone(),
        topic: topic.clone(),
        callback: callback.clone(),
        secret: one("hub.secret"),
        lease: one("hub.lease_seconds"),
        at: Instant::now(),
    };
    let lease = {
        let mut s = state.lock().unwrap();
        s.requests.push(request.clone());
        s.lease
    };
    // Verification of intent, after answering (as hubs do).
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let challenge = format!("c{}", rand_digits());
        let url = format!(
            "{callback}?hub.mode={mode}&hub.topic={}&hub.challenge={challenge}&hub.lease_seconds={lease}",
            url::form_urlencoded::byte_serialize(topic.as_bytes()).collect::<String>()
        );
        let (status, text) = match client.get(&url).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.text().await.unwrap_or_default())
            }
            Err(_) => (0, String::new()),
        };
        let echoed = status == 200 && text == challenge;
        let mut s = state.lock().unwrap();
        s.verifications.push(Verification {
            mode: mode.clone(),
            callback: callback.clone(),
            status,
            echoed,
        });
        if echoed {
            s.subscribers
                .retain(|sub| !(sub.topic == topic && sub.callback == callback));
            if mode == "subscribe" {
                s.subscribers.push(Subscriber {
                    topic,
                    callback,
                    secret: request.secret,
                });
            }
        }
    });
    StatusCode::ACCEPTED.into_response()
}

fn rand_digits() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

/// The outlet's document: body, content type, `Link` header.
type Doc = Arc<Mutex<(Vec<u8>, String, Option<String>)>>;

/// An outlet: one feed document at `/feed`, optionally with `Link` headers.
#[derive(Clone)]
pub struct Outlet {
    pub addr: SocketAddr,
    doc: Doc,
}

impl Outlet {
    pub async fn start(body: &str, content_type: &str, link: Option<&str>) -> Self {
        let doc = Arc::new(Mutex::new((
            body.as_bytes().to_vec(),
            content_type.to_string(),
            link.map(str::to_string),
        )));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/feed", get(outlet_get))
            .with_state(doc.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, doc }
    }

    pub fn url(&self) -> String {
        format!("http://{}/feed", self.addr)
    }

    pub fn set_link(&self, link: &str) {
        self.doc.lock().unwrap().2 = Some(link.to_string());
    }

    pub fn set_body(&self, body: &str) {
        self.doc.lock().unwrap().0 = body.as_bytes().to_vec();
    }
}

async fn outlet_get(State(doc): State<Doc>, _headers: HeaderMap) -> Response {
    let (body, content_type, link) = doc.lock().unwrap().clone();
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Some(link) = link {
        response
            .headers_mut()
            .insert(header::LINK, link.parse().unwrap());
    }
    response
}

/// An Atom feed titled `title` with `entries` (id, title), advertising `hub`
/// and `self_url` in the document when given.
pub fn atom(
    title: &str,
    hub: Option<&str>,
    self_url: Option<&str>,
    entries: &[(&str, &str)],
) -> String {
    let mut links = String::new();
    if let Some(hub) = hub {
        links.push_str(&format!("<link rel=\"hub\" href=\"{hub}\"/>"));
    }
    if let Some(s) = self_url {
        links.push_str(&format!("<link rel=\"self\" href=\"{s}\"/>"));
    }
    let items: String = entries
        .iter()
        .map(|(id, t)| {
            format!(
                "<entry><id>{id}</id><title>{t}</title><link href=\"https://outlet.example/{id}\"/><updated>2026-12-01T10:00:00Z</updated><content type=\"html\">&lt;p&gt;{t} body text&lt;/p&gt;</content></entry>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><feed xmlns=\"http://www.w3.org/2005/Atom\"><title>{title}</title><id>urn:outlet:{title}</id><updated>2026-12-01T10:00:00Z</updated>{links}{items}</feed>"
    )
}

/// Each delivery a reader got: when, its body, its `X-Hub-Signature`, its `Link`.
type Deliveries = Arc<Mutex<Vec<(Instant, Vec<u8>, Option<String>, Option<String>)>>>;

/// A reader subscribed to a hub: answers verifications (echoes the
/// challenge) and records each delivery; or, `hanging`, never answers one.
#[derive(Clone)]
pub struct Reader {
    pub addr: SocketAddr,
    pub verified: Arc<Mutex<Vec<String>>>,
    pub deliveries: Deliveries,
}

type ReaderState = (Arc<Mutex<Vec<String>>>, Deliveries, bool);

impl Reader {
    pub async fn start(hanging: bool) -> Self {
        let verified = Arc::new(Mutex::new(Vec::new()));
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/cb", get(reader_verify).post(reader_delivery))
            .with_state((verified.clone(), deliveries.clone(), hanging));
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            verified,
            deliveries,
        }
    }

    pub fn callback(&self) -> String {
        format!("http://{}/cb", self.addr)
    }
}

async fn reader_verify(
    State((verified, _, _)): State<ReaderState>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let pairs: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let mode = pairs.get("hub.mode").cloned().unwrap_or_default();
    verified.lock().unwrap().push(mode);
    pairs
        .get("hub.challenge")
        .cloned()
        .unwrap_or_default()
        .into_response()
}

async fn reader_delivery(
    State((_, deliveries, hanging)): State<ReaderState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if hanging {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    deliveries.lock().unwrap().push((
        Instant::now(),
        body.to_vec(),
        text("x-hub-signature"),
        text("link"),
    ));
    StatusCode::OK.into_response()
}
