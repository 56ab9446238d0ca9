//! The counting receiver: a bare hyper HTTP/1.1 server on loopback that
//! answers 200 (or never answers, to play a hung endpoint, or answers 500
//! to every n-th request, to play a flaky one, or to the first attempt of
//! chosen events, or to every attempt of one chat's events, to play a
//! chat stuck on an event its endpoint keeps refusing) and records when each event first arrived and how often.
//! Started for events spread over chats, it also counts the events whose
//! first arrival came after a later event of the same chat (out of order).
//! It runs on the runtime it is given, so the benchmark can read the CPU
//! time of the receiver's threads alone.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
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
    /// 500 to the first attempt of every n-th event of each chat (see
    /// `fails_first`), 200 to the others and to every retry; for a
    /// receiver started for events spread over chats (`start_chats`).
    FailFirst(u64),
    /// 500 to every attempt of every event of this chat, 200 to the other
    /// chats' events; for a receiver started for events spread over chats.
    /// An ordered webhook then retries the chat's first event for ever
    /// and never attempts its later ones (`Stats::stuck_attempts`).
    StuckChat(usize),
}

/// Whether event `seq` is one whose first attempt `Answer::FailFirst(every)`
/// fails: event k of chat c (seq = c + k * chats) when (k + c) % every == 0.
/// Each chat then fails one event in `every`, and the chats' failures are
/// staggered: a plain `seq % every` would pick every event of a few chats
/// (those with c % every == 0 when every divides chats) and none of the
/// others, which for ordered delivery means a few chats that wait on a
/// retry at each of their events.
pub fn fails_first(seq: usize, chats: usize, every: u64) -> bool {
    let chats = chats.max(1);
    ((seq / chats + seq % chats) as u64).is_multiple_of(every.max(1))
}

/// What a receiver started for events spread over chats keeps per chat.
struct Chats {
    count: usize,
    /// The highest sequence number that has arrived in each chat, plus one
    /// (0: none yet).
    latest: Vec<AtomicU64>,
    /// Events whose first arrival came after a later event of their chat.
    out_of_order: AtomicU64,
    /// Events whose first attempt has been failed (`Answer::FailFirst`).
    failed_once: Vec<AtomicBool>,
    /// Attempts at the first event of the stuck chat (`Answer::StuckChat`)
    /// and at its later ones: an ordered webhook must make none of the
    /// latter while the first is unfinished.
    stuck_first: AtomicU64,
    stuck_later: AtomicU64,
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
    /// For events spread over chats: what is kept per chat. Events are then
    /// told apart by their visitor id (their chat id is shared).
    chats: Option<Chats>,
}

impl Stats {
    fn new(events: usize, chats: Option<usize>) -> Stats {
        Stats {
            chats: chats.map(|count| Chats {
                count,
                latest: (0..count).map(|_| AtomicU64::new(0)).collect(),
                out_of_order: AtomicU64::new(0),
                failed_once: (0..events).map(|_| AtomicBool::new(false)).collect(),
                stuck_first: AtomicU64::new(0),
                stuck_later: AtomicU64::new(0),
            }),
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

    /// The event a webhook body carries: its chat's number, or, for events
    /// spread over chats, its visitor's.
    fn seq_of(&self, body: &[u8]) -> Option<usize> {
        match self.chats {
            None => find_seq(body),
            Some(_) => find_visitor_seq(body),
        }
    }

    /// Whether this attempt of event `seq` is to fail, as the first of an
    /// event that `Answer::FailFirst(every)` picks (remembered, so its
    /// retry succeeds).
    fn fail_first(&self, seq: Option<usize>, every: u64) -> bool {
        let (Some(seq), Some(chats)) = (seq, &self.chats) else {
            return false;
        };
        let Some(once) = chats.failed_once.get(seq) else {
            return false;
        };
        fails_first(seq, chats.count, every) && !once.swap(true, Relaxed)
    }

    /// Whether this attempt of event `seq` is to fail as one of the stuck
    /// chat's (`Answer::StuckChat(chat)`); counts the attempt if so.
    fn fail_stuck(&self, seq: Option<usize>, chat: usize) -> bool {
        let (Some(seq), Some(chats)) = (seq, &self.chats) else {
            return false;
        };
        if seq % chats.count != chat {
            return false;
        }
        // Event `chat` is the chat's first (seq = chat + k * chats).
        let attempts = if seq == chat {
            &chats.stuck_first
        } else {
            &chats.stuck_later
        };
        attempts.fetch_add(1, Relaxed);
        true
    }

    /// Attempts at the stuck chat's first event and at its later events
    /// (`Answer::StuckChat`; 0 and 0 otherwise).
    pub fn stuck_attempts(&self) -> (u64, u64) {
        self.chats.as_ref().map_or((0, 0), |c| {
            (c.stuck_first.load(Relaxed), c.stuck_later.load(Relaxed))
        })
    }

    fn record(&self, hook: Option<usize>, seq: Option<usize>, body_len: usize) {
        let now = now_ns();
        if let Some(i) = hook.filter(|i| *i < HOOKS) {
            self.per_hook[i].fetch_add(1, Relaxed);
        }
        if let Some(seq) = seq {
            if let Some(copies) = self.copies.get(seq) {
                copies.fetch_add(1, Relaxed);
            }
            if let Some(slot) = self.arrivals.get(seq) {
                if slot.compare_exchange(0, now, Relaxed, Relaxed).is_ok() {
                    self.unique.fetch_add(1, Relaxed);
                    self.check_order(seq);
                }
            }
        }
        self.body_len.store(body_len as u64, Relaxed);
        self.last.fetch_max(now, Relaxed);
        self.total.fetch_add(1, Relaxed);
    }

    /// A first arrival of event `seq`: out of order when a later event of
    /// its chat arrived before it. Sound for a webhook that delivers a
    /// chat's events one at a time: the next attempt starts only once this
    /// one was answered, and it is recorded before the answer goes out.
    fn check_order(&self, seq: usize) {
        let Some(chats) = &self.chats else {
            return;
        };
        let mark = seq as u64 + 1;
        let latest = &chats.latest[seq % chats.count];
        if latest.fetch_max(mark, Relaxed) > mark {
            chats.out_of_order.fetch_add(1, Relaxed);
        }
    }

    /// Events whose first arrival came after a later event of their chat
    /// (0 unless started for events spread over chats).
    pub fn out_of_order(&self) -> u64 {
        self.chats
            .as_ref()
            .map_or(0, |c| c.out_of_order.load(Relaxed))
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

/// Events carry `"id":"S{VISITOR_BASE + seq}"` in their visitor, the last
/// object but one of a webhook body: searched from the end, it is close.
pub fn find_visitor_seq(body: &[u8]) -> Option<usize> {
    const MARK: &[u8] = b"\"id\":\"S";
    let at = body.windows(MARK.len()).rposition(|w| w == MARK)? + MARK.len();
    let digits = body[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    let visitor: usize = std::str::from_utf8(&body[at..at + digits])
        .ok()?
        .parse()
        .ok()?;
    visitor.checked_sub(crate::events::VISITOR_BASE)
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
        Receiver::start_with(rt, addr, Stats::new(events, None), answer)
    }

    /// The same for events spread over `chats` chats (`Events::over_chats`):
    /// told apart by visitor id, and their order checked chat by chat.
    pub fn start_chats(
        rt: &Handle,
        addr: SocketAddr,
        events: usize,
        chats: usize,
        answer: Answer,
    ) -> std::io::Result<Receiver> {
        Receiver::start_with(rt, addr, Stats::new(events, Some(chats.max(1))), answer)
    }

    fn start_with(
        rt: &Handle,
        addr: SocketAddr,
        stats: Stats,
        answer: Answer,
    ) -> std::io::Result<Receiver> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = {
            let _in_rt = rt.enter();
            TcpListener::from_std(listener)?
        };
        let stats = Arc::new(stats);
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
        Answer::Ok | Answer::FailFirst(_) | Answer::StuckChat(_) => false,
        Answer::FailEvery(k) => n.is_multiple_of(k.max(1)),
    };
    let hook = hook_of(req.uri().path());
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let seq = stats.seq_of(&body);
    let fail = match answer {
        Answer::FailFirst(every) => stats.fail_first(seq, every),
        Answer::StuckChat(chat) => stats.fail_stuck(seq, chat),
        _ => fail,
    };
    if fail {
        stats.failed.fetch_add(1, Relaxed);
        let mut r = Response::new(Full::new(Bytes::from_static(b"fail")));
        *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        return r;
    }
    stats.record(hook, seq, body.len());
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

    #[test]
    fn finds_the_visitor_sequence_number() {
        let body = crate::events::webhook_body(123_456);
        assert_eq!(super::find_visitor_seq(body.as_bytes()), Some(123_456));
        assert_eq!(super::find_visitor_seq(b"{}"), None);
    }

    #[test]
    fn first_attempt_failures_are_one_in_every_of_each_chat() {
        let (chats, every) = (1_000, 100);
        let failing: Vec<usize> = (0..200_000)
            .filter(|&seq| super::fails_first(seq, chats, every))
            .collect();
        assert_eq!(failing.len(), 2_000);
        let mut per_chat = vec![0; chats];
        for seq in failing {
            per_chat[seq % chats] += 1;
        }
        assert!(per_chat.iter().all(|&n| n == 2), "{per_chat:?}");
    }

    #[test]
    fn counts_first_arrivals_out_of_order_per_chat() {
        let stats = super::Stats::new(10, Some(2));
        // Chat 0: 0, 4, 2 (2 after 4: out of order); chat 1: 1, 3, 3 again.
        for seq in [0, 4, 1, 2, 3, 3] {
            stats.record(None, Some(seq), 0);
        }
        assert_eq!(stats.out_of_order(), 1);
        assert_eq!(stats.unique.load(std::sync::atomic::Ordering::Relaxed), 5);
    }

    #[test]
    fn the_stuck_chat_fails_every_attempt_and_counts_first_and_later() {
        let stats = super::Stats::new(10, Some(3));
        // Chat 1 is stuck: events 1, 4, 7.
        let failed: Vec<usize> = [0, 1, 1, 2, 3, 4, 5]
            .into_iter()
            .filter(|&seq| stats.fail_stuck(Some(seq), 1))
            .collect();
        assert_eq!(failed, [1, 1, 4]);
        assert_eq!(stats.stuck_attempts(), (2, 1));
    }
}
