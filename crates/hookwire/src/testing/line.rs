//! A receiver for ordered delivery's tests: it notes, per ordering key
//! (the body's `chat.id`, else `visitor.id`, else a v3 `payload.chat_id`), every request in the order it
//! came, how it was answered, and any request that came while another of
//! the same key was still being answered: two deliveries of one key in
//! flight together.
//!
//! Each event is answered as the test's `reply` says, given the body and
//! how many times the event came before; a short pause before answering
//! keeps each request open long enough for an overlap to show.

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// One request, as the receiver noted it.
#[derive(Debug, Clone)]
pub struct KeyedArrival {
    /// The body's `event_unique_id` (a v3 envelope's: its payload's text).
    pub event: String,
    /// The ordering key the body carries (its chat's id, else its visitor's).
    pub key: String,
    /// The status it was answered with.
    pub status: u16,
}

#[derive(Default)]
struct Book {
    arrivals: Vec<KeyedArrival>,
    /// Requests per event so far (the next one's attempt number).
    seen: HashMap<String, u32>,
    in_flight: HashSet<String>,
    /// Keys that had two requests open at once (one entry per such request).
    overlaps: Vec<String>,
}

/// A real HTTP server on 127.0.0.1:0; see the module's documentation.
pub struct LineReceiver {
    /// The webhook URL to point at it.
    pub url: String,
    book: Arc<Mutex<Book>>,
}

/// Takes a key off the in-flight set when its request ends, however it
/// ends (the server drops the handler when the sender goes away).
struct Open(Arc<Mutex<Book>>, String);

impl Drop for Open {
    fn drop(&mut self) {
        if let Ok(mut book) = self.0.lock() {
            book.in_flight.remove(&self.1);
        }
    }
}

/// The ordering key a delivered body carries: a v2 body's chat (else its
/// visitor), a v3 envelope's `payload.chat_id`.
fn key_of(body: &Value) -> String {
    body["chat"]["id"]
        .as_str()
        .or_else(|| body["visitor"]["id"].as_str())
        .or_else(|| body["payload"]["chat_id"].as_str())
        .unwrap_or_default()
        .to_string()
}

impl LineReceiver {
    /// Starts one. `reply(body, attempt)` (attempt 1 for an event's first
    /// request) is the status to answer; every answer comes after `pause`.
    pub async fn start(
        pause: Duration,
        reply: impl Fn(&Value, u32) -> u16 + Send + Sync + 'static,
    ) -> Self {
        let book: Arc<Mutex<Book>> = Arc::default();
        let reply = Arc::new(reply);
        let shared = book.clone();
        let app = axum::Router::new().fallback(move |body: Bytes| {
            let (book, reply) = (shared.clone(), reply.clone());
            async move {
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                // A v3 envelope has no event id: its payload names it.
                let event = match body["event_unique_id"].as_str() {
                    Some(id) => id.to_string(),
                    None => body["payload"].to_string(),
                };
                let event = event.as_str();
                let key = key_of(&body);
                let status = {
                    let mut b = book.lock().unwrap_or_else(PoisonError::into_inner);
                    if !b.in_flight.insert(key.clone()) {
                        b.overlaps.push(key.clone());
                    }
                    let attempt = b.seen.entry(event.to_string()).or_default();
                    *attempt += 1;
                    let status = reply(&body, *attempt);
                    b.arrivals.push(KeyedArrival {
                        event: event.to_string(),
                        key: key.clone(),
                        status,
                    });
                    status
                };
                let _open = Open(book.clone(), key);
                tokio::time::sleep(pause).await;
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let url = format!(
            "http://{}/",
            listener.local_addr().expect("a bound listener's address")
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        LineReceiver { url, book }
    }

    /// Every request so far, in the order they came.
    pub fn arrivals(&self) -> Vec<KeyedArrival> {
        self.book
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .arrivals
            .clone()
    }

    /// Per key, the events answered 200, in the order they came (an event
    /// delivered twice, as at least once allows, is listed once, where it
    /// first got its 200).
    pub fn delivered_by_key(&self) -> HashMap<String, Vec<String>> {
        let mut lines: HashMap<String, Vec<String>> = HashMap::new();
        let mut done = HashSet::new();
        for a in self.arrivals() {
            if a.status == 200 && done.insert(a.event.clone()) {
                lines.entry(a.key).or_default().push(a.event);
            }
        }
        lines
    }

    /// Per key, every event in the order its requests came, repeats of the
    /// same event in a row folded into one: attempts of a key's events
    /// never interleave when its order holds.
    pub fn attempted_by_key(&self) -> HashMap<String, Vec<String>> {
        let mut lines: HashMap<String, Vec<String>> = HashMap::new();
        for a in self.arrivals() {
            let line = lines.entry(a.key).or_default();
            if line.last() != Some(&a.event) {
                line.push(a.event);
            }
        }
        lines
    }

    /// How many distinct events were answered 200.
    pub fn delivered(&self) -> usize {
        self.arrivals()
            .iter()
            .filter(|a| a.status == 200)
            .map(|a| a.event.as_str().to_string())
            .collect::<HashSet<_>>()
            .len()
    }

    /// Keys that had two requests open at once.
    pub fn overlaps(&self) -> Vec<String> {
        self.book
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .overlaps
            .clone()
    }
}
