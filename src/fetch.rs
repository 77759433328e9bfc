//! HTTP: conditional GET with limits, redirects followed by hand. Returns the raw
//! body and what the headers say; decoding is `parse`'s job, decisions the scheduler's.

use std::collections::HashSet;
use std::time::Duration;

use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZlibDecoder};
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::StreamReader;
use url::Url;

use crate::access::Secret;
use crate::config::FetchConfig;
use crate::model::Validators;

/// Why a fetch produced no feed body.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server answered with a status that is not success, redirect or 304.
    #[error("HTTP {status}")]
    Status {
        status: u16,
        /// `Retry-After`, when a 429 or 503 carried one.
        retry_after: Option<RetryAfter>,
    },
    /// The body was larger than `fetch.max_body_bytes`.
    #[error("response body larger than {limit} bytes")]
    TooLarge { status: u16, limit: u64 },
    /// The decoded body was larger than `fetch.max_decompressed_bytes`.
    #[error("decompressed body larger than {limit} bytes")]
    TooLargeDecompressed { status: u16, limit: u64 },
    /// More than `fetch.max_redirects` redirects.
    #[error("more than {limit} redirects")]
    TooManyRedirects { limit: usize },
    /// A redirect led back to a URL already visited.
    #[error("redirect loop at {url}")]
    RedirectLoop { url: String },
    /// The whole transfer took longer than `fetch.transfer_deadline`.
    #[error("transfer not finished within {}s", limit.as_secs())]
    Deadline { limit: Duration },
    /// Timeout, connection refused, DNS, TLS, a bad redirect, broken body…
    #[error("{0}")]
    Transport(String),
}

impl FetchError {
    /// The HTTP status that arrived, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. }
            | FetchError::TooLarge { status, .. }
            | FetchError::TooLargeDecompressed { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A `Retry-After` header: a number of seconds or an HTTP date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    Seconds(u64),
    At(DateTime<Utc>),
}

impl RetryAfter {
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            return value.parse().ok().map(RetryAfter::Seconds);
        }
        http_date(value).map(RetryAfter::At)
    }

    /// How long from `now` this asks to wait (zero if already past).
    pub fn delay_from(&self, now: DateTime<Utc>) -> Duration {
        match self {
            RetryAfter::Seconds(s) => Duration::from_secs(*s),
            RetryAfter::At(at) => (*at - now).to_std().unwrap_or_default(),
        }
    }
}

/// An HTTP date (IMF-fixdate, and the RFC 2822 forms it is a subset of).
pub fn http_date(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(value.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// What the server's caching headers say about when to come back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheHints {
    /// `Cache-Control: max-age`.
    pub max_age: Option<Duration>,
    /// `Expires`.
    pub expires: Option<DateTime<Utc>>,
    /// `Date`, to read `Expires` against the server's own clock.
    pub date: Option<DateTime<Utc>>,
}

impl CacheHints {
    fn of(headers: &HeaderMap) -> Self {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let max_age = text(header::CACHE_CONTROL).and_then(|cc| {
            cc.split(',').find_map(|d| {
                let (name, value) = d.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("max-age")
                    .then(|| value.trim().trim_matches('"').parse().ok())
                    .flatten()
                    .map(Duration::from_secs)
            })
        });
        Self {
            max_age,
            expires: text(header::EXPIRES).and_then(http_date),
            date: text(header::DATE).and_then(http_date),
        }
    }

    /// The longest wait these headers ask for, read at `now`.
    pub fn wait(&self, now: DateTime<Utc>) -> Option<Duration> {
        let expires = self.expires.and_then(|e| {
            let from = self.date.unwrap_or(now);
            (e - from).to_std().ok()
        });
        self.max_age.max(expires)
    }
}

/// One redirect that was followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// 301, 302, 303, 307 or 308.
    pub status: u16,
    /// Where it pointed (absolute).
    pub to: String,
}

impl Redirect {
    pub fn is_permanent(&self) -> bool {
        matches!(self.status, 301 | 308)
    }
}

/// A successful fetch.
#[derive(Debug)]
pub enum Fetched {
    /// 304: the validators still hold (the body is empty).
    NotModified(Response),
    /// 2xx whose body hashes to the one the caller said it already has: the
    /// body was hashed as it arrived and not kept (`body` is empty).
    Unchanged(Response),
    /// 2xx with a body.
    Body(Response),
}

impl Fetched {
    pub fn response(&self) -> &Response {
        match self {
            Fetched::NotModified(r) | Fetched::Unchanged(r) | Fetched::Body(r) => r,
        }
    }
}

/// The change hash of a feed's body: XXH3-128, as `x3:` and 32 hex digits.
/// Not SHA-256 like the entry keys: this one runs over every byte of every
/// 200 (a re-poll of a 2,000-feed farm hashes 180 MB). Nothing relies on it
/// being hard to forge: a feed that forged a collision would only hide its
/// own update. A hash stored by an older version (SHA-256, longer) never
/// matches, so that feed is parsed once.
pub fn body_hash(body: &[u8]) -> String {
    crate::identity::x3_text(xxhash_rust::xxh3::xxh3_128(body))
}

#[derive(Debug, Default)]
pub struct Response {
    pub status: u16,
    pub body: Bytes,
    /// [`body_hash`] of the body, when the fetcher worked it out as the body
    /// arrived.
    pub body_hash: Option<String>,
    /// `Content-Type` header, for its charset.
    pub content_type: Option<String>,
    pub validators: Validators,
    /// Where the body came from after redirects.
    pub final_url: String,
    /// The redirects followed to get there, in order.
    pub redirects: Vec<Redirect>,
    pub cache: CacheHints,
    /// `Link` header values, for WebSub discovery.
    pub links: Vec<String>,
}

/// Something that fetches feeds: the real HTTP client, or a fake in tests that
/// run the scheduler on a paused clock (where real sockets cannot be used).
pub trait FetchFeed: Send + Sync + std::fmt::Debug + 'static {
    fn fetch(
        &self,
        url: &str,
        validators: &Validators,
    ) -> impl std::future::Future<Output = Result<Fetched, FetchError>> + Send;

    /// Fetches the feed configured as `feed_url` from `fetch_url` (the same,
    /// or the address it has permanently moved to). Fetchers that keep
    /// per-feed settings look them up by `feed_url`. `known_body` is the
    /// [`body_hash`] of the body stored last time: a fetcher may answer
    /// [`Fetched::Unchanged`] when the new body hashes the same.
    fn fetch_feed(
        &self,
        feed_url: &str,
        fetch_url: &str,
        validators: &Validators,
        known_body: Option<&str>,
    ) -> impl std::future::Future<Output = Result<Fetched, FetchError>> + Send {
        let _ = (feed_url, known_body);
        self.fetch(fetch_url, validators)
    }
}

impl FetchFeed for Fetcher {
    async fn fetch(&self, url: &str, validators: &Validators) -> Result<Fetched, FetchError> {
        Fetcher::fetch(self, url, validators).await
    }
}

/// An HTTP client configured from `[fetch]`.
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: reqwest::Client,
    max_body_bytes: u64,
    max_decompressed_bytes: u64,
    max_redirects: usize,
    deadline: Duration,
}

/// The wire-size limit, carried through the decoder as an io::Error.
#[derive(Debug)]
struct WireLimit;

impl std::fmt::Display for WireLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("body over the limit")
    }
}

impl std::error::Error for WireLimit {}

impl Fetcher {
    pub fn new(config: &FetchConfig) -> Result<Self, FetchError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/atom+xml, application/rss+xml, application/feed+json, application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8",
            ),
        );
        // Decompression is done here, not by reqwest, so that the size on the
        // wire and the decoded size can each be limited.
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate, br"),
        );
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .default_headers(headers)
            .timeout(config.timeout.0)
            .connect_timeout(config.connect_timeout.0)
            // Redirects are followed by hand, to see each hop's status.
            .redirect(reqwest::redirect::Policy::none())
            .no_gzip()
            .no_brotli()
            .no_deflate()
            .build()
            .map_err(|e| FetchError::Transport(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            client,
            max_body_bytes: config.max_body_bytes.0,
            max_decompressed_bytes: config.max_decompressed_bytes.0,
            max_redirects: config.max_redirects,
            deadline: config.transfer_deadline.0,
        })
    }

    /// GET `url`, sending the stored validators so an unchanged feed costs a
    /// 304, following redirects (each one recorded) within the transfer deadline.
    pub async fn fetch(&self, url: &str, validators: &Validators) -> Result<Fetched, FetchError> {
        self.fetch_with(url, validators, &RequestExtras::default(), None)
            .await
    }

    /// `fetch`, with a feed's own credentials and headers. They go only to
    /// the origin they were configured for, never to a redirect elsewhere.
    /// With `known_body` (the [`body_hash`] of the body stored last time), a
    /// body that hashes the same is answered as [`Fetched::Unchanged`].
    pub async fn fetch_with(
        &self,
        url: &str,
        validators: &Validators,
        extras: &RequestExtras,
        known_body: Option<&str>,
    ) -> Result<Fetched, FetchError> {
        let within = self.fetch_within(url, validators, extras, known_body);
        match tokio::time::timeout(self.deadline, within).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Deadline {
                limit: self.deadline,
            }),
        }
    }

    async fn fetch_within(
        &self,
        url: &str,
        validators: &Validators,
        extras: &RequestExtras,
        known_body: Option<&str>,
    ) -> Result<Fetched, FetchError> {
        let mut current =
            Url::parse(url).map_err(|e| FetchError::Transport(format!("invalid URL: {e}")))?;
        let mut visited = HashSet::from([current.to_string()]);
        let mut redirects = Vec::new();
        let credentials_origin = extras
            .origin
            .clone()
            .unwrap_or_else(|| current.origin().ascii_serialization());
        loop {
            let mut request = self.client.get(current.clone());
            if current.origin().ascii_serialization() == credentials_origin {
                if let Some((user, password)) = &extras.basic_auth {
                    request = request.basic_auth(user, password.as_ref().map(Secret::expose));
                }
                for (name, value) in &extras.headers {
                    request = request.header(name.clone(), value.clone());
                }
            }
            if let Some(etag) = &validators.etag {
                request = request.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(modified) = &validators.last_modified {
                request = request.header(header::IF_MODIFIED_SINCE, modified);
            }
            let response = request.send().await.map_err(transport_error)?;
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let next = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| current.join(l.trim()).ok())
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| {
                        FetchError::Transport(format!(
                            "HTTP {} without a usable Location",
                            status.as_u16()
                        ))
                    })?;
                if redirects.len() >= self.max_redirects {
                    return Err(FetchError::TooManyRedirects {
                        limit: self.max_redirects,
                    });
                }
                if !visited.insert(next.to_string()) {
                    return Err(FetchError::RedirectLoop {
                        url: next.to_string(),
                    });
                }
                redirects.push(Redirect {
                    status: status.as_u16(),
                    to: next.to_string(),
                });
                current = next;
                continue;
            }
            return self.finish(response, redirects, known_body).await;
        }
    }

    async fn finish(
        &self,
        response: reqwest::Response,
        redirects: Vec<Redirect>,
        known_body: Option<&str>,
    ) -> Result<Fetched, FetchError> {
        let status = response.status();
        let headers = response.headers();
        if !status.is_success() && status != StatusCode::NOT_MODIFIED {
            let retry_after = matches!(status.as_u16(), 429 | 503)
                .then(|| {
                    headers
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(RetryAfter::parse)
                })
                .flatten();
            return Err(FetchError::Status {
                status: status.as_u16(),
                retry_after,
            });
        }
        let text_header = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let meta = Response {
            status: status.as_u16(),
            body: Bytes::new(),
            content_type: text_header(header::CONTENT_TYPE),
            validators: Validators {
                etag: text_header(header::ETAG),
                last_modified: text_header(header::LAST_MODIFIED),
            },
            final_url: response.url().to_string(),
            redirects,
            cache: CacheHints::of(headers),
            body_hash: None,
            links: headers
                .get_all(header::LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_string)
                .collect(),
        };
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified(meta));
        }
        let encoding = text_header(header::CONTENT_ENCODING)
            .map(|e| e.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let status = meta.status;
        let announced = response.content_length();
        if announced.is_some_and(|len| len > self.max_body_bytes) {
            return Err(FetchError::TooLarge {
                status,
                limit: self.max_body_bytes,
            });
        }

        // Read the body as a stream so a lying or missing Content-Length, or a
        // decompression bomb, is cut off at its limit instead of filling memory.
        let wire_limit = self.max_body_bytes;
        if matches!(encoding.as_str(), "" | "identity") {
            // Hashed chunk by chunk as it arrives, and kept in pieces (see
            // `Pieces`): a body the same as last time (the common answer to
            // a re-poll) is never copied into one piece.
            let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
            let mut pieces = Pieces::default();
            let mut size = 0u64;
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(transport_error)?;
                size += chunk.len() as u64;
                if size > wire_limit {
                    return Err(FetchError::TooLarge {
                        status,
                        limit: wire_limit,
                    });
                }
                hasher.update(&chunk);
                pieces.push(chunk);
            }
            let hash = crate::identity::x3_text(hasher.digest128());
            return Ok(answer(meta, hash, known_body, || pieces.join(size)));
        }
        let mut on_wire = 0u64;
        let stream = response.bytes_stream().map(move |chunk| {
            let chunk = chunk.map_err(std::io::Error::other)?;
            on_wire += chunk.len() as u64;
            if on_wire > wire_limit {
                return Err(std::io::Error::other(WireLimit));
            }
            Ok(chunk)
        });
        let raw = StreamReader::new(stream);
        let (mut reader, decoded_limit): (Box<dyn AsyncRead + Send + Unpin>, u64) =
            match encoding.as_str() {
                "gzip" | "x-gzip" => {
                    // Concatenated gzip members are one valid body.
                    let mut gz = GzipDecoder::new(raw);
                    gz.multiple_members(true);
                    (Box::new(gz), self.max_decompressed_bytes)
                }
                "deflate" => (Box::new(ZlibDecoder::new(raw)), self.max_decompressed_bytes),
                "br" => (
                    Box::new(BrotliDecoder::new(raw)),
                    self.max_decompressed_bytes,
                ),
                other => {
                    return Err(FetchError::Transport(format!(
                        "unsupported Content-Encoding {other:?}"
                    )));
                }
            };
        // Decoded straight into the body (no scratch buffer), which starts at
        // the size on the wire when Content-Length gives it (already checked
        // against the limit) and grows a READ_CHUNK at a time.
        let mut body = BytesMut::with_capacity(
            announced
                .and_then(|len| usize::try_from(len).ok())
                .map_or(READ_CHUNK, |len| len + 1),
        );
        loop {
            if body.len() == body.capacity() {
                body.reserve(READ_CHUNK);
            }
            match reader.read_buf(&mut body).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.get_ref().is_some_and(|i| i.is::<WireLimit>()) => {
                    return Err(FetchError::TooLarge {
                        status,
                        limit: wire_limit,
                    });
                }
                Err(e) => {
                    let inner = e
                        .get_ref()
                        .and_then(|i| i.downcast_ref::<reqwest::Error>())
                        .map(|r| transport_error_ref(r).to_string());
                    return Err(FetchError::Transport(inner.unwrap_or_else(|| {
                        format!("cannot decode the {encoding} body: {e}")
                    })));
                }
            };
            if body.len() as u64 > decoded_limit {
                return Err(FetchError::TooLargeDecompressed {
                    status,
                    limit: decoded_limit,
                });
            }
        }
        let hash = body_hash(&body);
        Ok(answer(meta, hash, known_body, || body.freeze()))
    }
}

/// A 2xx whose whole body is in and hashed (`hash`): unchanged, and the body
/// dropped, when that is the hash the caller knows; else the body.
fn answer(
    mut meta: Response,
    hash: String,
    known_body: Option<&str>,
    body: impl FnOnce() -> Bytes,
) -> Fetched {
    let unchanged = known_body == Some(hash.as_str());
    meta.body_hash = Some(hash);
    if unchanged {
        return Fetched::Unchanged(meta);
    }
    meta.body = body();
    Fetched::Body(meta)
}

/// Chunks of this size or more are kept as they came; smaller ones are
/// copied together, so a server that sends a body a few bytes at a time
/// costs about as much memory as the body, as a large one does (a kept
/// chunk costs its own 32 bytes and holds on to the buffer it was read into).
const KEPT_CHUNK: usize = 8 * 1024;

/// A body as it arrives, in order: its large chunks as they are, runs of
/// small ones copied into one piece.
#[derive(Default)]
struct Pieces {
    done: Vec<Bytes>,
    small: BytesMut,
}

impl Pieces {
    fn push(&mut self, chunk: Bytes) {
        if chunk.len() >= KEPT_CHUNK {
            self.end_small();
            self.done.push(chunk);
        } else {
            self.small.extend_from_slice(&chunk);
        }
    }

    fn end_small(&mut self) {
        if !self.small.is_empty() {
            self.done.push(self.small.split().freeze());
        }
    }

    /// The whole body (`size` bytes): a body that is one piece is taken as it
    /// is; others are copied once, into a buffer of their total size.
    fn join(mut self, size: u64) -> Bytes {
        self.end_small();
        if self.done.len() == 1 {
            return self.done.pop().unwrap_or_default();
        }
        let mut body = BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
        for piece in &self.done {
            body.extend_from_slice(piece);
        }
        body.freeze()
    }
}

/// Room made for a body when it is full (and its first allocation when no
/// Content-Length says how long it is).
const READ_CHUNK: usize = 64 * 1024;

/// A feed's own credentials and headers, taken from the configuration by feed
/// URL at each poll (never stored in the database). `Debug` shows no values.
#[derive(Clone, Default)]
pub struct RequestExtras {
    pub basic_auth: Option<(String, Option<Secret>)>,
    /// Marked sensitive, so that HTTP tooling does not print them either.
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
    /// The only origin (`scheme://host:port`) they are sent to; `None`: the
    /// origin of the URL fetched.
    pub origin: Option<String>,
}

impl std::fmt::Debug for RequestExtras {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestExtras")
            .field("basic_auth", &self.basic_auth.as_ref().map(|(u, _)| u))
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl RequestExtras {
    /// From a `[[feed]]`; header names and values were validated with the config.
    pub fn of(feed: &crate::config::FeedConfig) -> Self {
        let headers = feed
            .headers
            .iter()
            .filter_map(|(name, value)| {
                let name = header::HeaderName::from_bytes(name.as_bytes()).ok()?;
                let mut value = HeaderValue::from_str(value.expose()).ok()?;
                value.set_sensitive(true);
                Some((name, value))
            })
            .collect();
        Self {
            basic_auth: feed
                .auth
                .as_ref()
                .map(|a| (a.username.clone(), a.password.clone())),
            headers,
            origin: Some(feed.url().origin().ascii_serialization()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.basic_auth.is_none() && self.headers.is_empty()
    }
}

/// reqwest's errors name only the outermost layer; include the causes.
fn transport_error(error: reqwest::Error) -> FetchError {
    transport_error_ref(&error)
}

fn transport_error_ref(error: &reqwest::Error) -> FetchError {
    let mut message = if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_redirect() {
        "too many redirects".to_string()
    } else if error.is_connect() {
        "cannot connect".to_string()
    } else {
        error.to_string()
    };
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = inner.source();
    }
    FetchError::Transport(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_hashes_tell_bodies_apart_and_never_match_an_older_sha256() {
        let a = body_hash(b"<rss><channel><item>one</item></channel></rss>");
        assert_eq!(
            a,
            body_hash(b"<rss><channel><item>one</item></channel></rss>")
        );
        assert_ne!(
            a,
            body_hash(b"<rss><channel><item>two</item></channel></rss>")
        );
        assert!(a.starts_with("x3:") && a.len() == 35, "{a}");
        // What an older version stored: 64 hex digits, so never equal.
        let sha256 = "3b5d7e2b3a0f6c1d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d";
        assert_ne!(a, sha256);
    }

    #[test]
    fn a_body_hashed_chunk_by_chunk_hashes_as_it_does_whole() {
        // Lengths around XXH3's internal block and buffer sizes, cut into
        // chunks of several sizes.
        let text: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for len in [
            0,
            1,
            16,
            17,
            128,
            129,
            240,
            241,
            1024,
            1025,
            256 * 1024,
            300_000,
        ] {
            let whole = body_hash(&text[..len]);
            for chunk in [1, 7, 64, 1000, 16 * 1024] {
                if len > 20_000 && chunk < 64 {
                    continue;
                }
                let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
                for piece in text[..len].chunks(chunk) {
                    hasher.update(piece);
                }
                assert_eq!(
                    crate::identity::x3_text(hasher.digest128()),
                    whole,
                    "{len} bytes in chunks of {chunk}"
                );
            }
        }
    }

    #[test]
    fn a_body_in_chunks_is_joined_in_order_and_one_large_chunk_is_not_copied() {
        let large = Bytes::from(vec![b'x'; KEPT_CHUNK]);
        let mut one = Pieces::default();
        one.push(large.clone());
        assert_eq!(one.join(large.len() as u64).as_ptr(), large.as_ptr());

        let mut mixed = Pieces::default();
        let mut expected = Vec::new();
        for chunk in [&b"ab"[..], b"", b"cde", &large, b"f", &large, b"gh"] {
            mixed.push(Bytes::copy_from_slice(chunk));
            expected.extend_from_slice(chunk);
        }
        // Small runs between the large chunks are one piece each.
        assert_eq!(mixed.done.len(), 4);
        assert_eq!(mixed.join(expected.len() as u64), expected);
        assert!(Pieces::default().join(0).is_empty());
    }

    #[test]
    fn a_body_sent_a_byte_at_a_time_is_kept_in_one_piece() {
        let mut pieces = Pieces::default();
        for i in 0..100_000u32 {
            pieces.push(Bytes::copy_from_slice(&[(i % 251) as u8]));
        }
        assert!(pieces.done.is_empty());
        assert_eq!(pieces.small.len(), 100_000);
        let body = pieces.join(100_000);
        assert!(body.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(RetryAfter::parse(" 120 "), Some(RetryAfter::Seconds(120)));
        let at = RetryAfter::parse("Wed, 21 Oct 2026 07:28:00 GMT").unwrap();
        let RetryAfter::At(when) = at else {
            panic!("{at:?}")
        };
        assert_eq!(when.to_rfc3339(), "2026-10-21T07:28:00+00:00");
        assert_eq!(
            at.delay_from(when - chrono::Duration::minutes(5)),
            Duration::from_secs(300)
        );
        assert_eq!(
            at.delay_from(when + chrono::Duration::minutes(5)),
            Duration::ZERO
        );
        assert_eq!(RetryAfter::parse("soon"), None);
        assert_eq!(RetryAfter::parse("-5"), None);
    }

    #[test]
    fn cache_hints_take_the_longest_wait() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=600"),
        );
        headers.insert(
            header::DATE,
            HeaderValue::from_static("Wed, 21 Oct 2026 07:00:00 GMT"),
        );
        headers.insert(
            header::EXPIRES,
            HeaderValue::from_static("Wed, 21 Oct 2026 08:00:00 GMT"),
        );
        let hints = CacheHints::of(&headers);
        assert_eq!(hints.max_age, Some(Duration::from_secs(600)));
        // Expires is read against the server's Date, whatever our clock says.
        assert_eq!(hints.wait(Utc::now()), Some(Duration::from_secs(3600)));
        assert_eq!(CacheHints::of(&HeaderMap::new()).wait(Utc::now()), None);
        let mut bad = HeaderMap::new();
        bad.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=\"x\""),
        );
        bad.insert(header::EXPIRES, HeaderValue::from_static("0"));
        assert_eq!(CacheHints::of(&bad).wait(Utc::now()), None);
    }
}
