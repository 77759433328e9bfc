//! A fault server: raw HTTP/1.1 on 127.0.0.1:0, so it can misbehave in ways a
//! framework would not let it (hang, drip, lie about lengths, loop, bomb).

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the server answers one path.
#[derive(Clone, Debug)]
pub enum Fault {
    /// A complete response.
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        /// Shared, so serving a huge body does not copy it per request.
        body: bytes::Bytes,
        /// Send Content-Length (else the body ends when the connection closes).
        length: bool,
    },
    /// Reads the request, then never answers.
    Hang,
    /// Headers, then one byte of body every `every`, forever.
    Drip { every: Duration },
    /// A 200 whose body is sent with `Transfer-Encoding: chunked` in HTTP
    /// chunks of `size` bytes.
    Chunked { body: bytes::Bytes, size: usize },
}

impl Fault {
    pub fn status(status: u16, headers: &[(&str, &str)]) -> Self {
        Fault::Answer {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: format!("status {status}\n").into(),
            length: true,
        }
    }

    pub fn body(content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Fault::Answer {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: bytes::Bytes::from(body.into()),
            length: true,
        }
    }

    pub fn redirect(status: u16, location: &str) -> Self {
        Fault::status(status, &[("Location", location)])
    }

    /// `decoded` bytes of zeros, gzip-compressed as concatenated members of
    /// 16 MiB each (about 16 KiB on the wire per member).
    pub fn gzip_bomb(decoded: usize) -> Self {
        const MEMBER: usize = 16 << 20;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; MEMBER]).unwrap();
        let member = enc.finish().unwrap();
        let body = member.repeat(decoded.div_ceil(MEMBER)).into();
        Fault::Answer {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "application/rss+xml".into()),
                ("Content-Encoding".into(), "gzip".into()),
            ],
            body,
            length: true,
        }
    }
}

/// The classic entity-expansion bomb: 10^9 "lol"s if a parser expands it.
pub const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title><guid>laugh</guid><description>&lol9;</description></item>
</channel></rss>"#;

#[derive(Default)]
struct Inner {
    routes: HashMap<String, Fault>,
    hits: Vec<String>,
    /// Each request's head (request line and headers), by path.
    heads: Vec<(String, String)>,
}

/// The fault server. Every connection gets one answer and is closed.
#[derive(Clone)]
pub struct FaultServer {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl FaultServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Mutex::new(Inner::default()));
        let shared = inner.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, shared.clone()));
            }
        });
        Self { addr, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn set(&self, path: &str, fault: Fault) {
        self.inner
            .lock()
            .unwrap()
            .routes
            .insert(path.to_string(), fault);
    }

    /// The heads (request line and headers, lower-cased) of requests for `path`.
    pub fn heads(&self, path: &str) -> Vec<String> {
        self.inner
            .lock()
            .unwrap()
            .heads
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, h)| h.clone())
            .collect()
    }

    /// Requests received for `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.inner
            .lock()
            .unwrap()
            .hits
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}

async fn serve(mut socket: TcpStream, inner: Arc<Mutex<Inner>>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65536 {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&request);
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_string();
    let fault = {
        let mut inner = inner.lock().unwrap();
        inner.hits.push(path.clone());
        inner.heads.push((path.clone(), head.to_ascii_lowercase()));
        inner.routes.get(&path).cloned()
    };
    let fault = fault.unwrap_or_else(|| Fault::status(404, &[]));
    match fault {
        Fault::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Fault::Drip { every } => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n<rss version=\"2.0\"><channel>";
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            loop {
                tokio::time::sleep(every).await;
                if socket.write_all(b" ").await.is_err() {
                    return;
                }
            }
        }
        Fault::Chunked { body, size } => {
            let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
            for chunk in body.chunks(size.max(1)) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            let _ = socket.write_all(&out).await;
            let _ = socket.shutdown().await;
        }
        Fault::Answer {
            status,
            headers,
            body,
            length,
        } => {
            let mut head = format!("HTTP/1.1 {status} Whatever\r\nConnection: close\r\n");
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            if length {
                head.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            head.push_str("\r\n");
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&body).await;
            let _ = socket.shutdown().await;
        }
    }
}

/// An address where connecting hangs: a listener with a backlog of 0 that
/// never accepts, its queue already filled, so the kernel drops further SYNs
/// and a client's connect waits until it times out. Keep the guard alive.
pub async fn connect_hang() -> (SocketAddr, Vec<TcpStream>, tokio::net::TcpListener) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    // Fill the accept queue; once full, connects stop completing.
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => fillers.push(stream),
            _ => break,
        }
    }
    (addr, fillers, listener)
}
