//! The load generator: closed-loop ingest (one event per request or
//! batches) with a fixed number of requests in flight (for events spread
//! over chats, never two events of one chat in flight), open-loop ingest at
//! a fixed rate, and the baseline that POSTs the webhook body straight to
//! the receiver. All of it on the bare hyper client (`client`), which costs
//! the least CPU per request; the baseline is also kept on reqwest, as a
//! second line, to show what the client costs.

use crate::client::{Conn, Pool, Target};
use crate::events::{webhook_body, Events};
use crate::process::{BoxError, PLATFORM_KEY};
use crate::receiver::now_ns;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Requests the fixed-rate generator keeps in flight at most.
const MAX_OPEN_LOOP_IN_FLIGHT: usize = 512;

/// What the generator did: when each event was accepted (`now_ns`), and
/// when ingest started and ended.
pub struct Ingest {
    pub accepted: Vec<AtomicU64>,
    /// When each event's request was first sent.
    pub sent_at: Vec<AtomicU64>,
    pub sent: AtomicU64,
    pub started: AtomicU64,
    pub ended: AtomicU64,
    pub rejected: AtomicU64,
    /// Requests that waited for an earlier event of their chat to be
    /// accepted (closed loop over chats only).
    pub chat_waits: AtomicU64,
}

impl Ingest {
    pub fn new(events: usize) -> Arc<Ingest> {
        Arc::new(Ingest {
            accepted: (0..events).map(|_| AtomicU64::new(0)).collect(),
            sent_at: (0..events).map(|_| AtomicU64::new(0)).collect(),
            sent: AtomicU64::new(0),
            started: AtomicU64::new(now_ns()),
            ended: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            chat_waits: AtomicU64::new(0),
        })
    }
}

/// reqwest, for the API calls that set a run up (not measured) and the
/// reqwest baseline.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

/// hookwire's two ingest endpoints.
pub struct IngestTargets {
    one: Target,
    batch: Target,
}

impl IngestTargets {
    pub fn new(base: &str) -> Result<Arc<IngestTargets>, BoxError> {
        Ok(Arc::new(IngestTargets {
            one: Target::new(&format!("{base}/api/v1/events"), Some(PLATFORM_KEY))?,
            batch: Target::new(&format!("{base}/api/v1/events/batch"), Some(PLATFORM_KEY))?,
        }))
    }
}

/// POSTs events `seqs` (one, or a batch) until accepted; 503 (backlog
/// full) and 429 wait and retry.
async fn post_events(
    conn: &mut Conn,
    to: &IngestTargets,
    events: &Events,
    seqs: std::ops::Range<usize>,
    ingest: &Ingest,
) -> Result<(), BoxError> {
    let batch = seqs.len() > 1;
    let body = events.body(seqs.clone(), batch);
    let target = if batch { &to.batch } else { &to.one };
    let first_sent = now_ns();
    for seq in seqs.clone() {
        ingest.sent_at[seq].store(first_sent, Relaxed);
    }
    loop {
        let (status, text) = conn.post(target, body.clone()).await?;
        if status == 503 || status == 429 {
            ingest.rejected.fetch_add(1, Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let ok = if batch {
            status == 200 && !text.windows(12).any(|w| w == b"\"status\":400")
        } else {
            status == 202
        };
        if !ok {
            return Err(format!(
                "ingest answered {status}: {}",
                String::from_utf8_lossy(&text)
            )
            .into());
        }
        let now = now_ns();
        for seq in seqs.clone() {
            ingest.accepted[seq].store(now, Relaxed);
        }
        ingest.sent.fetch_add(seqs.len() as u64, Relaxed);
        return Ok(());
    }
}

/// Waits until every event of an earlier request in the same chat as one
/// of `seqs` has been accepted (event `seq`'s previous one in its chat is
/// `seq - chats`; those inside `seqs` itself go in the batch's order). So
/// hookwire takes each chat's events in sequence order, and a receiver can
/// check they arrive in it. With far more chats than events in flight this
/// almost never waits; `Ingest::chat_waits` counts the requests that did.
async fn wait_for_chat_turn(ingest: &Ingest, seqs: std::ops::Range<usize>, chats: usize) {
    let earlier = seqs.start.saturating_sub(chats)..seqs.end.saturating_sub(chats).min(seqs.start);
    let mut waited = false;
    for seq in earlier {
        while ingest.accepted[seq].load(Relaxed) == 0 {
            waited = true;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    if waited {
        ingest.chat_waits.fetch_add(1, Relaxed);
    }
}

/// Ingests events 0..n, `per_request` at a time, `concurrency` requests in
/// flight, each on a connection of its own. For events spread over chats
/// (`Events::over_chats`), a request waits until the previous events of its
/// chats were accepted. Runs on the generator's runtime.
pub async fn closed_loop(
    to: Arc<IngestTargets>,
    events: Arc<Events>,
    n: usize,
    per_request: usize,
    concurrency: usize,
    ingest: Arc<Ingest>,
) -> Result<(), BoxError> {
    let mut conns = Vec::new();
    for _ in 0..concurrency {
        conns.push(Conn::open(to.one.addr).await?);
    }
    ingest.started.store(now_ns(), Relaxed);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for mut conn in conns {
        let (to, events, next, ingest) = (to.clone(), events.clone(), next.clone(), ingest.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let start = next.fetch_add(per_request, Relaxed);
                if start >= n {
                    return Ok::<_, BoxError>(());
                }
                let end = (start + per_request).min(n);
                if let Some(chats) = events.chats() {
                    wait_for_chat_turn(&ingest, start..end, chats).await;
                }
                post_events(&mut conn, &to, &events, start..end, &ingest).await?;
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    ingest.ended.store(now_ns(), Relaxed);
    Ok(())
}

/// Ingests events `seqs` one per request at `rate` per second (open loop:
/// requests start on schedule whether or not earlier ones were answered).
pub async fn fixed_rate(
    to: Arc<IngestTargets>,
    events: Arc<Events>,
    seqs: std::ops::Range<usize>,
    rate: u64,
    ingest: Arc<Ingest>,
) -> Result<(), BoxError> {
    let (first, n) = (seqs.start, seqs.len());
    let pool = Pool::new(to.one.addr);
    ingest.started.store(now_ns(), Relaxed);
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut tasks = tokio::task::JoinSet::new();
    // Requests in flight are capped (sockets are finite); when hookwire
    // cannot keep up, the schedule slips and the achieved rate says so.
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_OPEN_LOOP_IN_FLIGHT));
    let mut issued = 0usize;
    while issued < n {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as usize).min(n);
        while issued < due {
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                break;
            };
            let (to, events, ingest, pool) =
                (to.clone(), events.clone(), ingest.clone(), pool.clone());
            let seq = first + issued;
            tasks.spawn(async move {
                let mut conn = pool.take().await?;
                post_events(&mut conn, &to, &events, seq..seq + 1, &ingest).await?;
                pool.give_back(conn);
                drop(slot);
                Ok::<_, BoxError>(())
            });
            issued += 1;
        }
        while let Some(done) = tasks.try_join_next() {
            done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    ingest.ended.store(now_ns(), Relaxed);
    Ok(())
}

/// The baseline on the bare hyper client: one webhook body (the same
/// `Bytes` every time) straight to `url`, `concurrency` keep-alive
/// connections. Answers requests per second.
pub async fn baseline(
    url: String,
    requests: usize,
    concurrency: usize,
    done: Arc<AtomicU64>,
) -> Result<f64, BoxError> {
    let target = Arc::new(Target::new(&url, None)?);
    let body = Bytes::from(webhook_body(0));
    let mut conns = Vec::new();
    for _ in 0..concurrency {
        conns.push(Conn::open(target.addr).await?);
    }
    let started = std::time::Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for mut conn in conns {
        let (target, body, next, done) = (target.clone(), body.clone(), next.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, Relaxed) < requests {
                let (status, _) = conn.post(&target, body.clone()).await?;
                if status != 200 {
                    return Err::<(), BoxError>(format!("receiver answered {status}").into());
                }
                done.fetch_add(1, Relaxed);
            }
            Ok(())
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(requests as f64 / started.elapsed().as_secs_f64())
}

/// The same baseline on reqwest (the generator before the bare hyper one).
pub async fn baseline_reqwest(
    url: String,
    requests: usize,
    concurrency: usize,
    done: Arc<AtomicU64>,
) -> Result<f64, BoxError> {
    let http = client();
    let body = Bytes::from(webhook_body(0));
    let started = std::time::Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, url, body, next, done) = (
            http.clone(),
            url.clone(),
            body.clone(),
            next.clone(),
            done.clone(),
        );
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, Relaxed) < requests {
                let r = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                if r.status() != 200 {
                    return Err::<(), BoxError>(format!("receiver answered {}", r.status()).into());
                }
                r.bytes().await?;
                done.fetch_add(1, Relaxed);
            }
            Ok(())
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(requests as f64 / started.elapsed().as_secs_f64())
}
