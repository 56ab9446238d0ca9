//! The test harness, for this crate's integration tests and for crates built
//! on hookwire (enable the `testing` feature): a real hookwire on port 0 with
//! its own SQLite database in a temporary directory, and real receivers on
//! port 0 that hand each request to the test and answer as it scripts.
//! Beside them: [`eventually`], to wait on a condition instead of sleeping;
//! [`LedgerReceiver`], a receiver that accounts for every delivery under
//! load; [`LineReceiver`], one that notes each ordering key's deliveries in
//! order and any two of a key in flight together; and [`Serving`], the
//! built binary as a child process.
//!
//! Everything here panics on failure: it is meant for tests only.

use crate::config::{DatabaseUrl, Overrides, Settings};
use crate::secret::Secret;
use crate::server::RunningServer;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::mpsc;

pub mod clients;
pub mod inspect;
pub mod lc_sdk;
mod ledger;
mod line;
pub mod postgres;
mod process;
mod wait;

pub use ledger::{Arrival, LedgerReceiver};
pub use line::{KeyedArrival, LineReceiver};
pub use process::{database_arg, serve_command, Serving};
pub use wait::{eventually, wait_for, Outcome};

pub const PLATFORM_KEY: &str = "test-platform-key";

/// The database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

tokio::task_local! {
    static BACKEND: Backend;
}

/// Runs a test body with `spawn_app` using `backend`. For PostgreSQL, when
/// no server can be had, the test fails if `CI` is set and is skipped with
/// a message otherwise.
pub async fn run_on<F: std::future::Future<Output = ()>>(backend: Backend, body: F) {
    if backend == Backend::Postgres {
        if let Err(why) = postgres::server().await {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL tests need a server and none could be started: {why}");
            }
            eprintln!("skipping the PostgreSQL variant: {why}");
            return;
        }
    }
    BACKEND.scope(backend, body).await
}

/// The backend of the running test (SQLite outside `run_on`).
pub fn backend() -> Backend {
    BACKEND.try_with(|b| *b).unwrap_or(Backend::Sqlite)
}

/// A database URL for a new test of the current backend.
pub async fn fresh_database(dir: &TempDir) -> DatabaseUrl {
    match backend() {
        Backend::Sqlite => DatabaseUrl::Sqlite(dir.path().join("hookwire.db")),
        Backend::Postgres => DatabaseUrl::Postgres(Secret::new(postgres::fresh_database().await)),
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub dir: Arc<TempDir>,
    pub database: DatabaseUrl,
    server: Option<RunningServer>,
}

/// Settings for tests: port 0, a fresh data directory, quick retries.
pub fn test_settings(dir: &TempDir) -> Settings {
    let mut s = Settings::defaults_with(&Overrides {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.path().to_path_buf()),
        allow_private_targets: Some(true),
        ..Overrides::default()
    })
    .expect("default settings");
    s.platform_key = Some(Secret::new(PLATFORM_KEY));
    s.delivery.retry_schedule = vec![Duration::from_millis(100), Duration::from_millis(100)];
    s.delivery.retry_jitter = 0.0;
    s.delivery.poll_interval = Duration::from_millis(50);
    s.delivery.attempt_timeout = Duration::from_secs(2);
    s.pg_pool_size = 4;
    s.shutdown_grace = Duration::from_secs(3);
    s
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts hookwire on the current test's backend with a fresh database.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = Arc::new(TempDir::new().expect("temp dir"));
    let mut settings = test_settings(&dir);
    settings.database = fresh_database(&dir).await;
    tweak(&mut settings);
    start(dir, settings).await
}

async fn start(dir: Arc<TempDir>, settings: Settings) -> TestApp {
    let database = settings.database.clone();
    let server = RunningServer::start(settings)
        .await
        .expect("hookwire starts");
    TestApp {
        addr: server.addr,
        http: reqwest::Client::new(),
        dir,
        database,
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The running server's store, to look at what it keeps.
    pub fn store(&self) -> Arc<dyn crate::store::Store> {
        self.server
            .as_ref()
            .expect("the server is running")
            .store
            .clone()
    }

    /// Stops this instance (draining) and starts a new one on the same database.
    pub async fn restart(mut self, tweak: impl FnOnce(&mut Settings)) -> TestApp {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        let mut settings = test_settings(&self.dir);
        settings.database = self.database.clone();
        tweak(&mut settings);
        start(self.dir.clone(), settings).await
    }

    /// Stops this instance, runs `offline` on its data directory (to tamper
    /// with the database as an older version would have left it), and starts
    /// a new one on it.
    pub async fn restart_after(mut self, offline: impl FnOnce(&std::path::Path)) -> TestApp {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        offline(self.dir.path());
        let mut settings = test_settings(&self.dir);
        settings.database = self.database.clone();
        start(self.dir.clone(), settings).await
    }

    pub async fn create_license(&self, id: &str) -> String {
        let r = self
            .http
            .post(self.url("/api/v1/licenses"))
            .bearer_auth(PLATFORM_KEY)
            .json(&json!({ "license_id": id }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        body["api_key"].as_str().unwrap().to_string()
    }

    /// Creates a webhook through LiveChat's v2 API; answers its id.
    pub async fn create_webhook(
        &self,
        key: &str,
        event: &str,
        data_types: &[&str],
        url: &str,
    ) -> String {
        let r = self
            .http
            .post(self.url("/webhooks"))
            .bearer_auth(key)
            .json(&json!({ "event_type": event, "data_types": data_types, "url": url }))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body["events"][0]["id"].as_str().unwrap().to_string()
    }

    pub async fn ingest(&self, event: &Value) -> (u16, Value) {
        self.post_platform("/api/v1/events", event).await
    }

    /// Reports an event that must be accepted; answers its id.
    pub async fn ingest_accepted(&self, event: &Value) -> String {
        let (status, body) = self.ingest(event).await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Stops this instance, draining attempts in flight.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    pub async fn post_platform(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(PLATFORM_KEY)
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn patch(&self, key: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .patch(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn delete(&self, key: &str, path: &str) -> u16 {
        let r = self
            .http
            .delete(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    }

    pub async fn post(&self, key: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Polls the delivery log until `done` holds for the webhook's deliveries.
    pub async fn wait_deliveries(
        &self,
        key: &str,
        webhook: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let path = format!("/api/v1/webhooks/{webhook}/deliveries?limit=500");
        eventually(
            "the deliveries to reach the expected state",
            Duration::from_secs(30),
            async || {
                let (_, body) = self.get(key, &path).await;
                let list = body["deliveries"].as_array().cloned().unwrap_or_default();
                if done(&list) {
                    Ok(list)
                } else {
                    Err(format!("{body:#}"))
                }
            },
        )
        .await
    }
}

/// One request as a receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("receiver got JSON")
    }
}

/// What a receiver does with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16, &'static str),
    /// Wait this long before answering 200 (for timeouts).
    Sleep(Duration),
    Redirect(&'static str),
    /// A status with extra headers (e.g. `429` with `Retry-After`).
    WithHeaders(u16, Vec<(&'static str, String)>),
}

/// A real HTTP server on 127.0.0.1:0. Answers each request with the next
/// scripted reply (200 once the script runs out) and sends it to the test.
pub struct TestReceiver {
    pub addr: SocketAddr,
    requests: mpsc::UnboundedReceiver<Received>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl TestReceiver {
    pub async fn start() -> TestReceiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let script: Arc<Mutex<VecDeque<Reply>>> = Arc::default();
        let replies = script.clone();
        let handler = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            let replies = replies.clone();
            async move {
                let _ = tx.send(Received {
                    method,
                    uri,
                    headers,
                    body,
                });
                let reply = replies
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or(Reply::Status(200, "ok"));
                match reply {
                    Reply::Status(code, text) => (
                        StatusCode::from_u16(code).unwrap(),
                        HeaderMap::new(),
                        text.to_string(),
                    ),
                    Reply::Sleep(d) => {
                        tokio::time::sleep(d).await;
                        (StatusCode::OK, HeaderMap::new(), "late".to_string())
                    }
                    Reply::WithHeaders(code, headers) => {
                        let mut h = HeaderMap::new();
                        for (name, value) in headers {
                            h.insert(name, value.parse().unwrap());
                        }
                        (StatusCode::from_u16(code).unwrap(), h, String::new())
                    }
                    Reply::Redirect(to) => {
                        let mut h = HeaderMap::new();
                        h.insert("location", to.parse().unwrap());
                        (StatusCode::FOUND, h, String::new())
                    }
                }
            }
        };
        let app = axum::Router::new().fallback(handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        TestReceiver {
            addr,
            requests: rx,
            script,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().unwrap().extend(replies);
    }

    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(10), self.requests.recv())
            .await
            .expect("the receiver got a request in time")
            .expect("receiver open")
    }

    /// The requests received and not yet taken, without waiting.
    pub fn drain(&mut self) -> Vec<Received> {
        std::iter::from_fn(|| self.requests.try_recv().ok()).collect()
    }

    /// Asserts nothing arrives within `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Ok(Some(r)) = tokio::time::timeout(wait, self.requests.recv()).await {
            panic!(
                "expected no request, got {} {}",
                r.method,
                String::from_utf8_lossy(&r.body)
            );
        }
    }
}

pub fn chat_started(license: &str) -> Value {
    json!({
        "event_type": "chat_started",
        "license_id": license,
        "chat": {
            "id": "MH022RD0K5",
            "started_timestamp": 1358937653,
            "messages": [
                {"user_type": "agent", "author_name": "John Doe", "agent_id": "john.doe@mycompany.com", "text": "Hello", "timestamp": 1358937653},
                {"user_type": "supervisor", "author_name": "James Doe", "agent_id": "james@mycompany.com", "text": "This is whispered message.", "timestamp": 1358937658},
                {"user_type": "visitor", "author_name": "Mary Brown", "text": "How are you?", "timestamp": 1358937661}
            ],
            "tags": ["sales", "support", "feedback"]
        },
        "visitor": {
            "id": "S1354547427.0c151b0e1b",
            "name": "Mary Brown",
            "email": "mary.brown@email.com",
            "custom_variables": [{"key": "Customer ID", "value": "POQ51023XZA"}]
        }
    })
}
