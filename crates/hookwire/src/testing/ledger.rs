//! A receiver that keeps a ledger of every delivery it is sent, for tests
//! that put hookwire under load, kill it, and then account for each event:
//! which arrived, how often, when, whether it was answered, and whether one
//! event was ever being delivered twice at the same time.
//!
//! Unlike [`TestReceiver`](super::TestReceiver) it scripts nothing (every
//! request is answered 200) and the test reads the ledger when it likes
//! rather than taking requests one by one.

use axum::body::Bytes;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as the ledger recorded it.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The body's `event_unique_id` (empty if it had none).
    pub event: String,
    pub received: Instant,
    /// When the answer was handed back; `None` when the sender went away
    /// first (the handler was dropped mid-pause), or has not been answered yet.
    pub answered: Option<Instant>,
}

#[derive(Default)]
struct Book {
    arrivals: Vec<Arrival>,
    in_flight: HashSet<String>,
    overlaps: Vec<String>,
}

/// A real HTTP server on 127.0.0.1:0 that answers every request 200 after a
/// pause and records it in its ledger.
pub struct LedgerReceiver {
    /// The webhook URL to point at it.
    pub url: String,
    book: Arc<Mutex<Book>>,
}

/// Takes an event off the in-flight set when its request ends, however it
/// ends: the server drops the handler when the sender gives up mid-pause.
struct InFlight(Arc<Mutex<Book>>, String);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut book) = self.0.lock() {
            book.in_flight.remove(&self.1);
        }
    }
}

impl LedgerReceiver {
    /// Starts one; request number `n` (from 0) is answered after `pause(n)`,
    /// which keeps attempts in flight long enough for a kill to catch some.
    pub async fn start(pause: impl Fn(usize) -> Duration + Send + Sync + 'static) -> Self {
        let book: Arc<Mutex<Book>> = Arc::default();
        let pause = Arc::new(pause);
        let shared = book.clone();
        let app = axum::Router::new().fallback(move |body: Bytes| {
            let (book, pause) = (shared.clone(), pause.clone());
            async move {
                let event = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v["event_unique_id"].as_str().map(String::from))
                    .unwrap_or_default();
                let index = {
                    let mut b = book.lock().unwrap();
                    if !b.in_flight.insert(event.clone()) {
                        b.overlaps.push(event.clone());
                    }
                    b.arrivals.push(Arrival {
                        event: event.clone(),
                        received: Instant::now(),
                        answered: None,
                    });
                    b.arrivals.len() - 1
                };
                let _leaving = InFlight(book.clone(), event);
                tokio::time::sleep(pause(index)).await;
                book.lock().unwrap().arrivals[index].answered = Some(Instant::now());
                "ok"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        LedgerReceiver { url, book }
    }

    /// Every request so far, in the order they arrived.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.book.lock().unwrap().arrivals.clone()
    }

    /// How many times each event arrived.
    pub fn counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for a in &self.book.lock().unwrap().arrivals {
            *counts.entry(a.event.clone()).or_default() += 1;
        }
        counts
    }

    /// How many distinct events arrived.
    pub fn distinct(&self) -> usize {
        let book = self.book.lock().unwrap();
        book.arrivals
            .iter()
            .map(|a| a.event.as_str())
            .collect::<HashSet<_>>()
            .len()
    }

    /// The events that were answered at least once.
    pub fn answered(&self) -> HashSet<String> {
        let book = self.book.lock().unwrap();
        book.arrivals
            .iter()
            .filter(|a| a.answered.is_some())
            .map(|a| a.event.clone())
            .collect()
    }

    /// When each event first arrived.
    pub fn first_arrivals(&self) -> HashMap<String, Instant> {
        let mut first = HashMap::new();
        for a in &self.book.lock().unwrap().arrivals {
            first.entry(a.event.clone()).or_insert(a.received);
        }
        first
    }

    /// The events that arrived while an earlier request for the same event
    /// was still being answered (one entry per such arrival).
    pub fn overlaps(&self) -> Vec<String> {
        self.book.lock().unwrap().overlaps.clone()
    }
}
