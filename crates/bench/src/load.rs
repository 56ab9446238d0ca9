//! The load generator: event bodies (~1 KiB once rendered), closed-loop
//! ingest (one event per request or batches) with a fixed number of requests
//! in flight, open-loop ingest at a fixed rate, and the baseline that POSTs
//! the webhook body straight to the receiver.

use crate::process::{BoxError, PLATFORM_KEY};
use crate::receiver::now_ns;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Requests the fixed-rate generator keeps in flight at most.
const MAX_OPEN_LOOP_IN_FLIGHT: usize = 512;

/// The chat and visitor of every event; `{SEQ}` becomes the sequence number.
const CHAT: &str = r#"{"id":"bench-{SEQ}","messages":[{"author_name":"John Doe","user_type":"agent","text":"Hello, how can I help you today? We have a few offers running this week.","timestamp":1358937653},{"author_name":"Mary Brown","user_type":"visitor","text":"I would like to ask about the pricing of the annual plan for a team of twelve.","timestamp":1358937661},{"author_name":"John Doe","user_type":"agent","text":"Sure, the annual plan is billed per seat; let me send you the details by email.","timestamp":1358937670},{"author_name":"Mary Brown","user_type":"visitor","text":"Thank you, that works for me.","timestamp":1358937688}],"tags":["sales","pricing"],"started_timestamp":1358937653}"#;
const VISITOR: &str = r#"{"id":"S{SEQ}.0c151b0e1b","name":"Mary Brown","email":"mary.brown@email.com","ip":"203.0.113.7","city":"Gdansk","country":"Poland","language":"en"}"#;

fn chat(seq: usize) -> String {
    CHAT.replace("{SEQ}", &format!("{seq:09}"))
}

/// Each event has a visitor of its own, as real traffic does (one visitor
/// for every event would serialize PostgreSQL's visitor upserts on one row).
fn visitor(seq: usize) -> String {
    VISITOR.replace("{SEQ}", &format!("{:010}", 1_354_547_427 + seq))
}

/// One event as the platform reports it.
pub fn event(seq: usize) -> String {
    format!(
        r#"{{"event_type":"chat_started","license_id":"{}","chat":{},"visitor":{}}}"#,
        crate::process::LICENSE,
        chat(seq),
        visitor(seq)
    )
}

/// The body hookwire sends for `event(seq)` (same fields, same order and size).
pub fn webhook_body(seq: usize) -> String {
    format!(
        r#"{{"event_type":"chat_started","token":"{t}","license_id":"1","chat":{},"visitor":{},"event_unique_id":"{t}"}}"#,
        chat(seq),
        visitor(seq),
        t = "0123456789abcdef0123456789abcdef"
    )
}

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
        })
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

/// POSTs events `seqs` (one, or a batch) until accepted; 503 (backlog full) waits and retries.
async fn post_events(
    http: &reqwest::Client,
    base: &str,
    seqs: std::ops::Range<usize>,
    ingest: &Ingest,
) -> Result<(), BoxError> {
    let batch = seqs.len() > 1;
    let (url, body) = if batch {
        let items: Vec<String> = seqs.clone().map(event).collect();
        (
            format!("{base}/api/v1/events/batch"),
            format!("[{}]", items.join(",")),
        )
    } else {
        (format!("{base}/api/v1/events"), event(seqs.start))
    };
    let first_sent = now_ns();
    for seq in seqs.clone() {
        ingest.sent_at[seq].store(first_sent, Relaxed);
    }
    loop {
        let r = http
            .post(&url)
            .bearer_auth(PLATFORM_KEY)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await?;
        let status = r.status().as_u16();
        let text = r.bytes().await?;
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

/// Ingests events 0..events, `per_request` at a time, `concurrency` requests in flight.
pub async fn closed_loop(
    http: reqwest::Client,
    base: String,
    events: usize,
    per_request: usize,
    concurrency: usize,
    ingest: Arc<Ingest>,
) -> Result<(), BoxError> {
    ingest.started.store(now_ns(), Relaxed);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, base, next, ingest) = (http.clone(), base.clone(), next.clone(), ingest.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let start = next.fetch_add(per_request, Relaxed);
                if start >= events {
                    return Ok::<_, BoxError>(());
                }
                let end = (start + per_request).min(events);
                post_events(&http, &base, start..end, &ingest).await?;
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    ingest.ended.store(now_ns(), Relaxed);
    Ok(())
}

/// Ingests `events` events one per request at `rate` per second (open loop:
/// requests start on schedule whether or not earlier ones were answered).
pub async fn fixed_rate(
    http: reqwest::Client,
    base: String,
    events: usize,
    rate: u64,
    ingest: Arc<Ingest>,
) -> Result<(), BoxError> {
    ingest.started.store(now_ns(), Relaxed);
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut tasks = tokio::task::JoinSet::new();
    // Requests in flight are capped (sockets are finite); when hookwire
    // cannot keep up, the schedule slips and the achieved rate says so.
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_OPEN_LOOP_IN_FLIGHT));
    let mut issued = 0usize;
    while issued < events {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as usize).min(events);
        while issued < due {
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                break;
            };
            let (http, base, ingest) = (http.clone(), base.clone(), ingest.clone());
            let seq = issued;
            tasks.spawn(async move {
                let r = post_events(&http, &base, seq..seq + 1, &ingest).await;
                drop(slot);
                r
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

/// The baseline: the same body straight to the receiver, `concurrency`
/// keep-alive connections. Answers requests per second.
pub async fn baseline(
    http: reqwest::Client,
    url: String,
    requests: usize,
    concurrency: usize,
    done: Arc<AtomicU64>,
) -> Result<f64, BoxError> {
    let started = std::time::Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, url, next, done) = (http.clone(), url.clone(), next.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let seq = next.fetch_add(1, Relaxed);
                if seq >= requests {
                    return Ok::<_, BoxError>(());
                }
                let r = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(webhook_body(seq))
                    .send()
                    .await?;
                if r.status() != 200 {
                    return Err(format!("receiver answered {}", r.status()).into());
                }
                r.bytes().await?;
                done.fetch_add(1, Relaxed);
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(requests as f64 / started.elapsed().as_secs_f64())
}
