//! Access control: secrets from the configuration (or the environment), the
//! bearer tokens that guard admin routes and, optionally, the published outputs.
//!
//! A `Secret` never prints itself: its `Debug` is redacted and it has no
//! `Display`, so a stray `{config:?}` in a log line cannot leak one.

use std::fmt;
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::{self, Deserializer};
use sha2::{Digest, Sha256};

/// A password, token or header value. Written in the TOML either as a string
/// or as `{ env = "NAME" }`, read from the environment when the configuration
/// is loaded (so a missing variable is a configuration error with a position).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares without an early exit on the first differing byte: both sides
    /// are hashed first, so timing tells nothing about the token.
    pub fn matches(&self, candidate: &str) -> bool {
        Sha256::digest(self.0.as_bytes()) == Sha256::digest(candidate.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Value(String),
            Env { env: String },
        }
        let raw = Raw::deserialize(d).map_err(|_| {
            de::Error::custom("write a secret as a string or as { env = \"VARIABLE\" }")
        })?;
        let value = match raw {
            Raw::Value(v) => v,
            Raw::Env { env } => std::env::var(&env).map_err(|_| {
                de::Error::custom(format!("the environment variable {env} is not set"))
            })?,
        };
        if value.is_empty() {
            return Err(de::Error::custom("a secret may not be empty"));
        }
        Ok(Self(value))
    }
}

/// The tokens in force; swapped as a whole on reload.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// Guards `/status`, `/metrics` and `/admin/*`. Without it, the read-only
    /// admin routes are open and admin actions (reload) are refused.
    pub admin: Option<Secret>,
    /// When set, the published outputs need this token (or the admin token).
    pub read: Option<Secret>,
}

/// The tokens, shared by the HTTP middleware and the reloader.
#[derive(Debug, Default)]
pub struct AccessControl {
    tokens: RwLock<Tokens>,
}

impl AccessControl {
    pub fn new(tokens: Tokens) -> Arc<Self> {
        Arc::new(Self {
            tokens: RwLock::new(tokens),
        })
    }

    pub fn set(&self, tokens: Tokens) {
        *self.tokens.write().unwrap_or_else(|p| p.into_inner()) = tokens;
    }

    pub fn tokens(&self) -> Tokens {
        self.tokens
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The token a request carries: `Authorization: Bearer …`, else `?token=…`
/// (for feed readers that only take a URL).
pub fn request_token(request: &Request) -> Option<String> {
    if let Some(value) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let mut parts = value.splitn(2, ' ');
        if let (Some(scheme), Some(token)) = (parts.next(), parts.next())
            && scheme.eq_ignore_ascii_case("bearer")
        {
            return Some(token.trim().to_string());
        }
    }
    request.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    })
}

fn unauthorized() -> Response {
    let mut response = (StatusCode::UNAUTHORIZED, "a valid token is required\n").into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"newsriver\""),
    );
    response
}

/// Which guard a path falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Always open: `/healthz`, for load balancers and service managers.
    Open,
    /// Read-only admin pages (`/status`, `/metrics`): the admin token when one
    /// is configured, else open (the server binds loopback by default).
    Admin,
    /// Admin actions (`/admin/…`, such as reload): the admin token, and refused
    /// outright when none is configured.
    AdminAction,
    /// Everything published: the read token (or the admin token) when a read
    /// token is configured, else open.
    Output,
}

impl Guard {
    pub fn of(path: &str) -> Self {
        match path {
            "/healthz" => Guard::Open,
            // WebSub callbacks: hubs carry no token of ours; the path's own
            // unguessable token and the push signature are the check.
            p if p.starts_with("/websub/") => Guard::Open,
            "/metrics" | "/status" => Guard::Admin,
            p if p.starts_with("/status/") || p.starts_with("/status.") => Guard::Admin,
            p if p.starts_with("/admin/") || p == "/admin" => Guard::AdminAction,
            _ => Guard::Output,
        }
    }
}

/// Middleware over every route: applies the guard of the request's path.
pub async fn guard(
    State(access): State<Arc<AccessControl>>,
    request: Request,
    next: Next,
) -> Response {
    let tokens = access.tokens();
    let token = request_token(&request);
    let is = |secret: &Option<Secret>| {
        secret
            .as_ref()
            .is_some_and(|s| token.as_deref().is_some_and(|t| s.matches(t)))
    };
    let allowed = match Guard::of(request.uri().path()) {
        Guard::Open => true,
        Guard::Admin => tokens.admin.is_none() || is(&tokens.admin),
        Guard::AdminAction => {
            if tokens.admin.is_none() {
                return (
                    StatusCode::FORBIDDEN,
                    "admin actions over HTTP need [access].admin_token in the configuration\n",
                )
                    .into_response();
            }
            is(&tokens.admin)
        }
        Guard::Output => tokens.read.is_none() || is(&tokens.read) || is(&tokens.admin),
    };
    if allowed {
        next.run(request).await
    } else {
        unauthorized()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert!(s.matches("hunter2") && !s.matches("hunter3"));
    }

    #[test]
    fn secret_reads_strings_and_environment_variables() {
        #[derive(Deserialize)]
        struct T {
            a: Secret,
            b: Option<Secret>,
        }
        // PATH is set in every test environment.
        let t: T = toml::from_str("a = \"x\"\nb = { env = \"PATH\" }\n").unwrap();
        assert_eq!(t.a.expose(), "x");
        assert_eq!(
            t.b.unwrap().expose(),
            std::env::var("PATH").unwrap().as_str()
        );
        let err = toml::from_str::<T>("a = { env = \"NEWSRIVER_SURELY_UNSET_VAR\" }\n")
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("NEWSRIVER_SURELY_UNSET_VAR is not set")
        );
    }

    #[test]
    fn paths_fall_under_the_right_guard() {
        assert_eq!(Guard::of("/healthz"), Guard::Open);
        // Hubs carry no token of ours: the callback's own token is the check.
        assert_eq!(Guard::of("/websub/0123abcd"), Guard::Open);
        assert_eq!(Guard::of("/metrics"), Guard::Admin);
        assert_eq!(Guard::of("/status"), Guard::Admin);
        assert_eq!(Guard::of("/status.json"), Guard::Admin);
        assert_eq!(Guard::of("/admin/reload"), Guard::AdminAction);
        assert_eq!(Guard::of("/feed.atom"), Guard::Output);
        assert_eq!(Guard::of("/feeds.opml"), Guard::Output);
        assert_eq!(Guard::of("/"), Guard::Output);
    }

    #[test]
    fn token_comes_from_bearer_header_or_query() {
        let r = Request::builder()
            .uri("/feed.atom")
            .header("authorization", "Bearer abc")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(request_token(&r).as_deref(), Some("abc"));
        let r = Request::builder()
            .uri("/feed.atom?x=1&token=a%20b")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(request_token(&r).as_deref(), Some("a b"));
    }
}
