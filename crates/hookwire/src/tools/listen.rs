//! `hookwire listen`: a receiver for development. It answers every POST
//! with 200, prints each webhook readably (event, data types, key fields,
//! the signature's verdict) and can forward it, headers and body untouched,
//! to an app running locally.

use super::{data_types_of, error_message, http_client, summarize};
use crate::server::BoxError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use hookwire_receiver::{Verifier, WebhookPayload, WEBHOOK_SIGNATURE};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 to listen on (0 picks a free one).
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// Also POST each webhook, headers and body as received, to this URL.
    #[arg(long)]
    forward: Option<String>,
    /// Verify Standard Webhooks signatures with this secret (whsec_...).
    #[arg(long, env = "HOOKWIRE_SIGNING_SECRET", hide_env_values = true)]
    secret: Option<String>,
}

struct Listener {
    verifier: Option<Verifier>,
    forward: Option<reqwest::Url>,
    client: reqwest::Client,
}

/// Headers that make up a webhook and are passed on when forwarding.
const FORWARDED: [&str; 6] = [
    "content-type",
    "user-agent",
    "authorization",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

pub async fn run(args: Args) -> Result<(), BoxError> {
    let verifier = args
        .secret
        .as_deref()
        .map(Verifier::new)
        .transpose()
        .map_err(|e| format!("--secret: {e}"))?;
    let forward = args
        .forward
        .as_deref()
        .map(|u| reqwest::Url::parse(u).map_err(|e| format!("--forward {u:?}: {e}")))
        .transpose()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let addr = listener.local_addr()?;
    println!("hookwire listen: receiving webhooks on http://{addr}/ (any path)");
    match &forward {
        Some(url) => println!("  forwarding each one to {url}"),
        None => println!("  answering 200 to each one"),
    }
    if verifier.is_none() {
        println!("  signatures are not checked (pass --secret whsec_... to verify them)");
    }
    let state = Arc::new(Listener {
        verifier,
        forward,
        client: http_client(Duration::from_secs(30)),
    });
    let app = axum::Router::new().fallback(receive).with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(crate::cli::wait_for_signal())
        .await?;
    Ok(())
}

fn clock() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{:02}:{:02}:{:02}Z", now.hour(), now.minute(), now.second())
}

async fn receive(
    State(state): State<Arc<Listener>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let mut out = Vec::new();
    let payload: Result<WebhookPayload, _> = serde_json::from_slice(&body);
    match &payload {
        Ok(p) => {
            out.push(format!(
                "── {} {method} {uri}  {}  [{}]  {} bytes",
                clock(),
                p.event_type,
                data_types_of(p).join(", "),
                body.len()
            ));
            out.extend(summarize(p).into_iter().map(|l| format!("   {l}")));
        }
        Err(e) => {
            out.push(format!(
                "── {} {method} {uri}  {} bytes",
                clock(),
                body.len()
            ));
            out.push(format!("   not a webhook payload: {e}"));
        }
    }
    out.push(format!(
        "   signature: {}",
        verdict(&state, &headers, &body)
    ));
    if let Some(url) = &state.forward {
        out.push(format!(
            "   forwarded: {}",
            forward(&state, url, &headers, &body).await
        ));
    }
    // One write per webhook, so concurrent deliveries do not interleave.
    println!("{}", out.join("\n"));
    (StatusCode::OK, "ok")
}

fn verdict(state: &Listener, headers: &HeaderMap, body: &[u8]) -> String {
    let signed = headers.contains_key(WEBHOOK_SIGNATURE);
    match (&state.verifier, signed) {
        (_, false) => "unsigned (no webhook-signature header)".into(),
        (None, true) => "present, not checked (no --secret)".into(),
        (Some(v), true) => match v.verify(headers, body) {
            Ok(()) => "valid".into(),
            Err(e) => format!("INVALID: {e}"),
        },
    }
}

async fn forward(
    state: &Listener,
    url: &reqwest::Url,
    headers: &HeaderMap,
    body: &Bytes,
) -> String {
    let mut request = state.client.post(url.clone()).body(body.clone());
    for name in FORWARDED {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value.as_bytes());
        }
    }
    let start = Instant::now();
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let ms = start.elapsed().as_millis();
            if status == 200 {
                format!("{url} answered 200 in {ms} ms")
            } else {
                let text = response.text().await.unwrap_or_default();
                format!("{url} answered {} in {ms} ms", error_message(status, &text))
            }
        }
        Err(e) => format!("{url} failed: {e}"),
    }
}
