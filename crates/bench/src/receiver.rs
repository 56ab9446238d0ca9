//! The counting receiver: a bare hyper HTTP/1.1 server on loopback that
//! answers 200 (or never answers, to play a hung endpoint) and records when
//! each event first arrived.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The webhooks a receiver counts separately (`/w/{i}`).
pub const HOOKS: usize = 128;

static BASE: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the benchmark started; never 0, so 0 can mean "not yet".
pub fn now_ns() -> u64 {
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1
}

pub struct Stats {
    /// Requests answered.
    pub total: AtomicU64,
    /// Events seen at least once.
    pub unique: AtomicU64,
    pub per_hook: Vec<AtomicU64>,
    /// First arrival of each event sequence number (`now_ns`), 0 = not yet.
    pub arrivals: Vec<AtomicU64>,
    /// When the last request arrived.
    pub last: AtomicU64,
    pub body_len: AtomicU64,
}

impl Stats {
    fn new(events: usize) -> Stats {
        Stats {
            total: AtomicU64::new(0),
            unique: AtomicU64::new(0),
            per_hook: (0..HOOKS).map(|_| AtomicU64::new(0)).collect(),
            arrivals: (0..events).map(|_| AtomicU64::new(0)).collect(),
            last: AtomicU64::new(0),
            body_len: AtomicU64::new(0),
        }
    }

    fn record(&self, hook: Option<usize>, body: &[u8]) {
        let now = now_ns();
        if let Some(i) = hook.filter(|i| *i < HOOKS) {
            self.per_hook[i].fetch_add(1, Relaxed);
        }
        if let Some(seq) = find_seq(body) {
            if let Some(slot) = self.arrivals.get(seq) {
                if slot.compare_exchange(0, now, Relaxed, Relaxed).is_ok() {
                    self.unique.fetch_add(1, Relaxed);
                }
            }
        }
        self.body_len.store(body.len() as u64, Relaxed);
        self.last.fetch_max(now, Relaxed);
        self.total.fetch_add(1, Relaxed);
    }

    pub fn healthy(&self, hooks: std::ops::Range<usize>) -> u64 {
        hooks.map(|i| self.per_hook[i].load(Relaxed)).sum()
    }
}

/// Events carry `"id":"bench-NNNNNNNNN"` in their chat; the number is the sequence.
pub fn find_seq(body: &[u8]) -> Option<usize> {
    let at = body.windows(6).position(|w| w == b"bench-")? + 6;
    let digits = body[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&body[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

fn hook_of(path: &str) -> Option<usize> {
    path.strip_prefix("/w/")?.parse().ok()
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    accept: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Receiver {
    /// Listens on `addr` (port 0 for any); `hang` never answers.
    pub async fn start(addr: SocketAddr, events: usize, hang: bool) -> std::io::Result<Receiver> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(Stats::new(events));
        let shared = stats.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let stats = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let stats = stats.clone();
                        async move {
                            if hang {
                                std::future::pending::<()>().await;
                            }
                            let hook = hook_of(req.uri().path());
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            stats.record(hook, &body);
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Receiver {
            addr,
            stats,
            accept,
        })
    }

    pub fn url(&self, hook: usize) -> String {
        format!("http://{}/w/{hook}", self.addr)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_sequence_number() {
        assert_eq!(
            super::find_seq(br#"{"chat":{"id":"bench-000000042","x":1}}"#),
            Some(42)
        );
        assert_eq!(super::find_seq(b"{}"), None);
    }
}
