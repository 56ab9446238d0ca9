//! Harness: hookwire's own (`hookwire::testing`: a real hookwire on port 0
//! and scripted receivers), plus the examples as tasks on their own ports.

use serde_json::{json, Value};
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use hookwire::testing::{eventually, spawn_app, TestReceiver};

pub const LICENSE: &str = "1025707";
pub const VISITOR_ID: &str = "S1354547427.0c151b0e1b";

/// A running example; stopped when dropped.
pub struct Example {
    pub addr: SocketAddr,
    task: JoinHandle<std::io::Result<()>>,
}

impl Drop for Example {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn spawn_example<F, Fut>(run: F) -> Example
where
    F: FnOnce(TcpListener) -> Fut,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    Example {
        addr,
        task: tokio::spawn(run(listener)),
    }
}

/// POSTs a raw body straight to an example, bypassing hookwire.
pub async fn post_raw(addr: SocketAddr, body: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{addr}/hook"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub fn visitor() -> Value {
    json!({
        "id": VISITOR_ID,
        "name": "Mary Brown",
        "email": "mary.brown@email.com",
        "custom_variables": [{"key": "Customer ID", "value": "POQ51023XZA"}]
    })
}

/// The documentation's chat, ended.
pub fn chat() -> Value {
    json!({
        "id": "MH022RD0K5",
        "started_timestamp": 1358937653,
        "ended_timestamp": 1358939109,
        "messages": [
            {"user_type": "agent", "author_name": "John Doe", "agent_id": "john.doe@mycompany.com", "text": "Hello", "timestamp": 1358937653},
            {"user_type": "supervisor", "author_name": "James Doe", "agent_id": "james@mycompany.com", "text": "This is whispered message.", "timestamp": 1358937658},
            {"user_type": "visitor", "author_name": "Mary Brown", "text": "How are you?", "timestamp": 1358937661}
        ],
        "tags": ["sales", "support", "feedback"]
    })
}

/// A webhook body as a sender would deliver it, for tests without hookwire.
pub fn webhook_body(event_type: &str) -> String {
    json!({
        "event_type": event_type, "token": "27f41c8da685c81a890f9e5f8ce48387", "license_id": LICENSE,
        "chat": chat(), "visitor": visitor(), "event_unique_id": "0123456789abcdef0123456789abcdef"
    })
    .to_string()
}

/// A webhook URL for an example listening on `addr`.
pub fn url_of(addr: SocketAddr) -> String {
    format!("http://{addr}/")
}
