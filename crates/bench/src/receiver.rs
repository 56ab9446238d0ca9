//! The counting receiver: a bare hyper HTTP/1.1 server on loopback that
//! answers 200 (or never answers, to play a hung endpoint, or answers 500
//! to every n-th request, to play a flaky one) and records when each event
//! first arrived and how often. It runs on the runtime it is given, so the
//! benchmark can read the CPU time of the receiver's threads alone.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// The webhooks a receiver counts separately (`/w/{i}`).
pub const HOOKS: usize = 128;

static BASE: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the benchmark started; never 0, so 0 can mean "not yet".
pub fn now_ns() -> u64 {
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1
}

/// How a receiver answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200 to every request.
    Ok,
    /// Never answers (accepts the connection and the request, then waits).
    Hang,
    /// 500 to every n-th request, 200 to the others.
    FailEvery(u64),
}

pub struct Stats {
    /// Requests answered 200 (recorded).
    pub total: AtomicU64,
    /// Requests answered 500 (not recorded as arrivals).
    pub failed: AtomicU64,
    /// Requests received, whatever the answer.
    requests: AtomicU64,
    /// Events seen at least once.
    pub unique: AtomicU64,
    pub per_hook: Vec<AtomicU64>,
    /// First arrival of each event sequence number (`now_ns`), 0 = not yet.
    pub arrivals: Vec<AtomicU64>,
    /// Arrivals (answered 200) of each event sequence number.
    pub copies: Vec<AtomicU32>,
    /// When the last request arrived.
    pub last: AtomicU64,
    pub body_len: AtomicU64,
}

impl Stats {
    fn new(events: usize) -> Stats {
        Stats {
            total: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            unique: AtomicU64::new(0),
            per_hook: (0..HOOKS).map(|_| AtomicU64::new(0)).collect(),
            arrivals: (0..events).map(|_| AtomicU64::new(0)).collect(),
            copies: (0..events).map(|_| AtomicU32::new(0)).collect(),
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
            if let Some(copies) = self.copies.get(seq) {
                copies.fetch_add(1, Relaxed);
            }
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

    /// Events 0..events that did not arrive exactly `expected` times.
    pub fn not_exactly(&self, events: usize, expected: u32) -> usize {
        self.copies[..events]
            .iter()
            .filter(|c| c.load(Relaxed) != expected)
            .count()
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
    /// Listens on `addr` (port 0 for any) and serves on the runtime `rt`.
    pub fn start(
        rt: &Handle,
        addr: SocketAddr,
        events: usize,
        answer: Answer,
    ) -> std::io::Result<Receiver> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = {
            let _in_rt = rt.enter();
            TcpListener::from_std(listener)?
        };
        let stats = Arc::new(Stats::new(events));
        let shared = stats.clone();
        let accept = rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let stats = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let stats = stats.clone();
                        async move { Ok::<_, Infallible>(answer_one(&stats, answer, req).await) }
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

async fn answer_one(
    stats: &Stats,
    answer: Answer,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let n = stats.requests.fetch_add(1, Relaxed) + 1;
    let fail = match answer {
        Answer::Hang => std::future::pending().await,
        Answer::Ok => false,
        Answer::FailEvery(k) => n.is_multiple_of(k.max(1)),
    };
    let hook = hook_of(req.uri().path());
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if fail {
        stats.failed.fetch_add(1, Relaxed);
        let mut r = Response::new(Full::new(Bytes::from_static(b"fail")));
        *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        return r;
    }
    stats.record(hook, &body);
    Response::new(Full::new(Bytes::from_static(b"ok")))
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
