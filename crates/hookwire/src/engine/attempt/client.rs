//! The HTTP client attempts go out on: hyper's pooled keep-alive client
//! directly, over rustls with the Web PKI roots, resolving names through the
//! SSRF guard. reqwest was the client before; its own layers (the URL parsed
//! again twice per request, the redirect policy, request and response
//! wrappers) were ~8-10 % of hookwire's CPU per delivered event
//! (docs/performance-log.md). Redirects are never followed here: hyper's
//! client does not follow them.

use super::classify::AttemptFailure;
use super::ssrf;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::http::{HeaderMap, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{timeout_at, Instant};

/// What the client needs to know, from `DeliverySettings`.
pub struct ClientSettings {
    /// Connecting, sending and reading the whole answer must fit in it.
    pub attempt_timeout: Duration,
    /// Idle keep-alive connections kept per host and port.
    pub max_idle_per_host: usize,
    /// `None`: any address (`allow_private_targets`).
    pub guard: Option<ssrf::Guard>,
}

/// An answer as far as it was read.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body, read until it ended or held `cap` bytes (the frame that
    /// crossed `cap` is kept whole).
    pub body: Vec<u8>,
    /// Why reading the body stopped early, if it broke off.
    pub broken: Option<AttemptFailure>,
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector<ssrf::Resolver>>;

/// One pooled client for every attempt of the node.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
    attempt_timeout: Duration,
}

impl HttpClient {
    pub fn new(settings: ClientSettings) -> Result<HttpClient, String> {
        let mut http = HttpConnector::new_with_resolver(ssrf::Resolver::new(settings.guard));
        http.enforce_http(false);
        http.set_nodelay(true);
        // No connect timeout of its own: the attempt's deadline covers
        // connecting too, so a connection that never comes is `Timeout`,
        // whichever part of the attempt it was in.
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS for webhook targets: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(settings.max_idle_per_host)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(HttpClient {
            client,
            attempt_timeout: settings.attempt_timeout,
        })
    }

    /// Sends `request` and reads at most `cap` bytes of its answer, all
    /// within the attempt timeout.
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
        cap: usize,
    ) -> Result<Answer, AttemptFailure> {
        let deadline = Instant::now() + self.attempt_timeout;
        let response = match timeout_at(deadline, self.client.request(request)).await {
            Err(_) => return Err(AttemptFailure::Timeout),
            Ok(Err(e)) => return Err(classify_error(&e)),
            Ok(Ok(response)) => response,
        };
        let (parts, mut incoming) = response.into_parts();
        let mut body = Vec::new();
        let broken = loop {
            if body.len() >= cap {
                break None;
            }
            match timeout_at(deadline, incoming.frame()).await {
                Err(_) => break Some(AttemptFailure::Timeout),
                Ok(None) => break None,
                Ok(Some(Err(e))) => break Some(classify_body_error(&e)),
                Ok(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        body.extend_from_slice(data);
                    }
                }
            }
        };
        Ok(Answer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            broken,
        })
    }
}

/// A request that failed below HTTP, by what hyper says of it.
fn classify_error(e: &hyper_util::client::legacy::Error) -> AttemptFailure {
    let chain = error_chain(e);
    if chain.contains(ssrf::REFUSED) {
        AttemptFailure::Blocked
    } else if e.is_connect() {
        AttemptFailure::Connect(chain)
    } else {
        AttemptFailure::Request(chain)
    }
}

fn classify_body_error(e: &hyper::Error) -> AttemptFailure {
    let chain = error_chain(e);
    if e.is_timeout() {
        AttemptFailure::Timeout
    } else {
        AttemptFailure::Request(chain)
    }
}

/// The error and its causes in one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
