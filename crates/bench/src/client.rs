//! The generator's HTTP client: bare hyper HTTP/1.1 over keep-alive
//! connections, one connection per request in flight (no pool between the
//! caller and the socket), so that what the generator costs per request is
//! close to the least an HTTP client can cost. Each request reuses a
//! prepared header map and takes its body as `Bytes` (a reference-counted
//! buffer, so a body sent again is not copied).

use crate::process::BoxError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;

/// Where requests go: an address, a path and the headers every request has.
pub struct Target {
    pub addr: SocketAddr,
    uri: Uri,
    headers: HeaderMap,
}

impl Target {
    /// `url` is `http://IP:PORT/path` (loopback, no name to resolve);
    /// `bearer` adds an `Authorization` header.
    pub fn new(url: &str, bearer: Option<&str>) -> Result<Target, BoxError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("not an http:// URL: {url}"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(authority)?);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = bearer {
            headers.insert(
                AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {key}"))?,
            );
        }
        Ok(Target {
            addr: authority.parse()?,
            uri: path.parse()?,
            headers,
        })
    }
}

/// One keep-alive connection; its driver runs as a task on the runtime
/// that opened it.
pub struct Conn {
    tx: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Conn, BoxError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (tx, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { tx })
    }

    /// POSTs `body` to `target`; answers the status and the response body.
    pub async fn post(&mut self, target: &Target, body: Bytes) -> Result<(u16, Bytes), BoxError> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = target.uri.clone();
        *req.headers_mut() = target.headers.clone();
        self.tx.ready().await?;
        let resp = self.tx.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// Idle connections for the open-loop generator, whose requests in flight
/// come and go: a request takes one (or opens one) and gives it back.
#[derive(Clone)]
pub struct Pool {
    addr: SocketAddr,
    idle: Arc<Mutex<Vec<Conn>>>,
}

impl Pool {
    pub fn new(addr: SocketAddr) -> Pool {
        Pool {
            addr,
            idle: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub async fn take(&self) -> Result<Conn, BoxError> {
        let idle = self.idle.lock().expect("the pool lock").pop();
        match idle {
            Some(conn) => Ok(conn),
            None => Conn::open(self.addr).await,
        }
    }

    pub fn give_back(&self, conn: Conn) {
        self.idle.lock().expect("the pool lock").push(conn);
    }
}
