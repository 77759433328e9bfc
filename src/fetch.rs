//! HTTP: conditional GET with limits. Returns the raw body; decoding is `parse`'s job.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};

use crate::access::Secret;
use crate::config::FetchConfig;
use crate::model::Validators;

/// Why a fetch produced no feed body.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server answered with a status that is not success, redirect or 304.
    #[error("HTTP {status}")]
    Status { status: u16 },
    /// The body was larger than `fetch.max_body_bytes`.
    #[error("response body larger than {limit} bytes")]
    TooLarge { status: u16, limit: u64 },
    /// Timeout, connection refused, DNS, TLS, too many redirects, broken body…
    #[error("{0}")]
    Transport(String),
}

impl FetchError {
    /// The HTTP status that arrived, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status } | FetchError::TooLarge { status, .. } => Some(*status),
            FetchError::Transport(_) => None,
        }
    }
}

/// A successful fetch.
#[derive(Debug)]
pub enum Fetched {
    /// 304: the validators still hold.
    NotModified,
    /// 2xx with a body.
    Body(Response),
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Bytes,
    /// `Content-Type` header, for its charset.
    pub content_type: Option<String>,
    pub validators: Validators,
    /// Where the body came from after redirects.
    pub final_url: String,
}

/// Something that fetches feeds: the real HTTP client, or a fake in tests that
/// run the scheduler on a paused clock (where real sockets cannot be used).
pub trait FetchFeed: Send + Sync + std::fmt::Debug + 'static {
    fn fetch(
        &self,
        url: &str,
        validators: &Validators,
    ) -> impl std::future::Future<Output = Result<Fetched, FetchError>> + Send;
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
}

impl Fetcher {
    pub fn new(config: &FetchConfig) -> Result<Self, FetchError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/atom+xml, application/rss+xml, application/feed+json, application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8",
            ),
        );
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .default_headers(headers)
            .timeout(config.timeout.0)
            .connect_timeout(config.connect_timeout.0)
            .redirect(reqwest::redirect::Policy::limited(config.max_redirects))
            .gzip(true)
            .brotli(true)
            .deflate(true)
            .build()
            .map_err(|e| FetchError::Transport(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            client,
            max_body_bytes: config.max_body_bytes.0,
        })
    }

    /// GET `url`, sending the stored validators so an unchanged feed costs a 304.
    pub async fn fetch(&self, url: &str, validators: &Validators) -> Result<Fetched, FetchError> {
        self.fetch_with(url, validators, &RequestExtras::default())
            .await
    }

    /// `fetch`, with a feed's own credentials and headers.
    pub async fn fetch_with(
        &self,
        url: &str,
        validators: &Validators,
        extras: &RequestExtras,
    ) -> Result<Fetched, FetchError> {
        let mut request = self.client.get(url);
        if let Some((user, password)) = &extras.basic_auth {
            request = request.basic_auth(user, password.as_ref().map(Secret::expose));
        }
        for (name, value) in &extras.headers {
            request = request.header(name.clone(), value.clone());
        }
        if let Some(etag) = &validators.etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(modified) = &validators.last_modified {
            request = request.header(header::IF_MODIFIED_SINCE, modified);
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                status: status.as_u16(),
            });
        }
        let headers = response.headers();
        let text_header = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = text_header(header::CONTENT_TYPE);
        let validators = Validators {
            etag: text_header(header::ETAG),
            last_modified: text_header(header::LAST_MODIFIED),
        };
        let final_url = response.url().to_string();
        let status = status.as_u16();
        if response
            .content_length()
            .is_some_and(|len| len > self.max_body_bytes)
        {
            return Err(FetchError::TooLarge {
                status,
                limit: self.max_body_bytes,
            });
        }

        // Read the body as a stream so a lying or missing Content-Length, or a
        // decompression bomb, is cut off at the limit instead of filling memory.
        let mut body = BytesMut::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(transport_error)?;
            if body.len() as u64 + chunk.len() as u64 > self.max_body_bytes {
                return Err(FetchError::TooLarge {
                    status,
                    limit: self.max_body_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched::Body(Response {
            status,
            body: body.freeze(),
            content_type,
            validators,
            final_url,
        }))
    }
}

/// A feed's own credentials and headers, taken from the configuration by feed
/// URL at each poll (never stored in the database). `Debug` shows no values.
#[derive(Clone, Default)]
pub struct RequestExtras {
    pub basic_auth: Option<(String, Option<Secret>)>,
    /// Marked sensitive, so that HTTP tooling does not print them either.
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
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
        }
    }

    pub fn is_empty(&self) -> bool {
        self.basic_auth.is_none() && self.headers.is_empty()
    }
}

/// reqwest's errors name only the outermost layer; include the causes.
fn transport_error(error: reqwest::Error) -> FetchError {
    let mut message = if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_redirect() {
        "too many redirects".to_string()
    } else if error.is_connect() {
        "cannot connect".to_string()
    } else {
        error.to_string()
    };
    let mut cause = std::error::Error::source(&error);
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
