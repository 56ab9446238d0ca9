//! One delivery attempt: render the body, POST it, classify what happened
//! (the rules for that are pure functions, in `classify.rs`).

mod classify;
mod client;

pub use classify::{classify_status, reads_retry_after, AttemptFailure, Broke, Failure};

use super::ssrf;
use crate::config::{Acknowledge, DeliverySettings};
use crate::secret::{
    event_token, standard_webhooks_signature, Cipher, Secret, SIGNING_SECRET, V3_SECRET_KEY,
};
use crate::store::{DeliveryJob, EventBody, EventName};
use base64::Engine as _;
use bytes::Bytes;
use client::{ClientSettings, HttpClient};
use hookwire_livechat::v3::envelope::additional_data;
use hookwire_livechat::v3::{render_envelope, AdditionalDataSet, EnvelopeParts};
use hookwire_livechat::{render_payload, DataTypes, PayloadParts, TargetUrl};
use http_body_util::Full;
use hyper::http::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, USER_AGENT,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The Standard Webhooks headers.
const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

/// The part of a receiver's answer kept in the delivery log.
pub const EXCERPT_BYTES: usize = 4096;
/// The most of a receiver's answer read at all; past it the connection is dropped.
const READ_CAP: usize = 64 * 1024;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver acknowledged (HTTP 200, or any 2xx if so configured).
    Delivered {
        status: u16,
    },
    Failed(Failure),
}

/// The finished attempt, ready for the delivery log.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    pub outcome: AttemptOutcome,
    pub latency: Duration,
    pub response_excerpt: Option<String>,
}

/// Who a v3 delivery is for: its webhook's id and `secret_key` (in the
/// clear for a delivery, masked where the web app shows a body).
pub struct V3Recipient<'a> {
    pub webhook_id: &'a str,
    pub secret_key: &'a str,
}

/// The exact body of a delivery of `event` with `data_types` (for a v3
/// event, the additional data asked for): the same on every retry, and what
/// the web app shows as "sent". A v3 event renders the six-key envelope for
/// `v3`; without one (never the case for a delivery) it is empty.
pub fn render_body(
    token_secret: &Secret,
    event: &EventBody,
    data_types: DataTypes,
    v3: Option<V3Recipient<'_>>,
) -> Vec<u8> {
    match (event.event_type, &event.v3, v3) {
        (EventName::V2(event_type), _, _) => {
            let token = event_token(token_secret, &event.unique_id);
            render_payload(&PayloadParts {
                event_type,
                token: &token,
                license_id: &event.license_id,
                sections: &event.sections,
                data_types,
                event_unique_id: &event.unique_id,
            })
        }
        (EventName::V3(action), Some(body), Some(to)) => {
            let extra = &body.extra;
            let additional = additional_data(
                AdditionalDataSet::from_bits(data_types.bits()),
                extra.chat_properties.as_deref(),
                extra.chat_presence_user_ids.as_deref(),
            );
            render_envelope(&EnvelopeParts {
                webhook_id: to.webhook_id,
                secret_key: to.secret_key,
                action: action.as_str(),
                organization_id: &extra.organization_id,
                additional_data: &additional,
                payload: &body.payload,
            })
        }
        (EventName::V3(_), _, _) => Vec::new(),
    }
}

/// The host (and port, if any) a stored webhook URL points at, for logs:
/// never its credentials, path or query.
pub fn target_host(stored_url: &str) -> String {
    match url::Url::parse(stored_url) {
        Ok(url) => match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            _ => "-".to_string(),
        },
        Err(_) => "-".to_string(),
    }
}

/// Stored target URLs kept ready (see [`Sender::prepared`]); past this many
/// the cache starts over, so URLs of deleted webhooks do not pile up. Above
/// the webhooks a busy deployment sends to at once: at 4,096, 10,000
/// webhooks in turn found their URL gone nearly every time.
const MAX_CACHED_TARGETS: usize = 16_384;

/// A webhook's URL as a request needs it: without credentials, and their
/// `Authorization` header (decrypted, marked sensitive so it never prints).
struct PreparedTarget {
    uri: hyper::Uri,
    authorization: Option<HeaderValue>,
}

/// Sends attempts over one pooled, keep-alive HTTP client.
pub struct Sender {
    client: HttpClient,
    acknowledge: Acknowledge,
    allow_private_targets: bool,
    guard: ssrf::Guard,
    token_secret: Secret,
    cipher: Cipher,
    /// Stored URL -> ready target. The stored URL holds the sealed password,
    /// so a changed URL or password is a different key.
    targets: std::sync::Mutex<std::collections::HashMap<String, Arc<PreparedTarget>>>,
}

impl Sender {
    pub fn new(
        settings: &DeliverySettings,
        token_secret: Secret,
        cipher: Cipher,
    ) -> Result<Arc<Self>, String> {
        let guard = ssrf::Guard::new(settings.allowed_target_networks.clone());
        let client = HttpClient::new(ClientSettings {
            attempt_timeout: settings.attempt_timeout,
            // The pool is keyed by host and port, and many webhooks share
            // one (a platform's customers behind one receiving service, or
            // one host with a URL per license): capped at one webhook's
            // share, the connections past it were closed when they went back
            // to the pool and the next attempts connected anew, which was
            // ~15 % of hookwire's CPU per delivery with 10,000 webhooks on
            // one host (docs/performance-log.md).
            max_idle_per_host: settings.max_in_flight,
            guard: (!settings.allow_private_targets).then(|| guard.clone()),
        })?;
        Ok(Arc::new(Sender {
            client,
            acknowledge: settings.acknowledge,
            allow_private_targets: settings.allow_private_targets,
            guard,
            token_secret,
            cipher,
            targets: Default::default(),
        }))
    }

    /// The exact body a delivery sends (the same on every retry). A v3
    /// delivery's carries its webhook's `secret_key`, opened here.
    pub fn body(&self, job: &DeliveryJob) -> Result<Vec<u8>, AttemptFailure> {
        let secret_key = match &job.v3_secret_key {
            Some(sealed) => Some(
                self.cipher
                    .open(V3_SECRET_KEY, sealed)
                    .and_then(|s| String::from_utf8(s).ok())
                    .ok_or_else(|| {
                        AttemptFailure::InvalidTarget(
                            "the webhook's secret_key cannot be decrypted (was encryption_key changed?)"
                                .into(),
                        )
                    })?,
            ),
            None => None,
        };
        let v3 = secret_key.as_deref().map(|secret_key| V3Recipient {
            webhook_id: &job.webhook_id,
            secret_key,
        });
        Ok(render_body(
            &self.token_secret,
            &job.event,
            job.data_types,
            v3,
        ))
    }

    pub async fn attempt(&self, job: &DeliveryJob) -> AttemptReport {
        let started = Instant::now();
        let (outcome, excerpt) = self.send(job).await;
        AttemptReport {
            outcome,
            latency: started.elapsed(),
            response_excerpt: excerpt,
        }
    }

    async fn send(&self, job: &DeliveryJob) -> (AttemptOutcome, Option<String>) {
        let fail = |cause| AttemptOutcome::Failed(Failure::new(cause));
        let target = match self.prepared(&job.url) {
            Ok(t) => t,
            Err(cause) => return (fail(cause), None),
        };
        let body = match self.body(job) {
            Ok(b) => b,
            Err(cause) => return (fail(cause), None),
        };
        let signature = match self.signature(job, &body) {
            Ok(s) => s,
            Err(e) => return (fail(AttemptFailure::InvalidTarget(e)), None),
        };
        let mut request = hyper::Request::post(target.uri.clone());
        if let Some(headers) = request.headers_mut() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(
                USER_AGENT,
                HeaderValue::from_static(concat!("hookwire/", env!("CARGO_PKG_VERSION"))),
            );
            if let Some((timestamp, signature)) = signature {
                let values = [
                    HeaderValue::from_str(&job.event.unique_id),
                    HeaderValue::from_str(&timestamp.to_string()),
                    HeaderValue::from_str(&signature),
                ];
                for (name, value) in [WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE]
                    .into_iter()
                    .zip(values)
                {
                    match value {
                        Ok(value) => {
                            headers.insert(name, value);
                        }
                        Err(e) => {
                            return (fail(AttemptFailure::InvalidTarget(e.to_string())), None)
                        }
                    }
                }
            }
            if let Some(authorization) = &target.authorization {
                headers.insert(AUTHORIZATION, authorization.clone());
            }
        }
        let request = match request.body(Full::new(Bytes::from(body))) {
            Ok(r) => r,
            Err(e) => return (fail(AttemptFailure::InvalidTarget(e.to_string())), None),
        };
        let answer = match self.client.send(request, READ_CAP).await {
            Ok(answer) => answer,
            Err(cause) => return (fail(cause), None),
        };
        let status = answer.status;
        let retry_after = if reads_retry_after(status) {
            retry_after(&answer.headers)
        } else {
            None
        };
        let excerpt = excerpt(&answer.body);
        if let Some(cause) = answer.broken {
            let failure = Failure {
                cause: cause.while_reading_answer(),
                status: Some(status),
                retry_after: None,
            };
            return (AttemptOutcome::Failed(failure), excerpt);
        }
        match classify_status(self.acknowledge, status) {
            Ok(()) => (AttemptOutcome::Delivered { status }, excerpt),
            Err(cause) => {
                let failure = Failure {
                    cause,
                    status: Some(status),
                    retry_after,
                };
                (AttemptOutcome::Failed(failure), excerpt)
            }
        }
    }

    /// The stored URL made ready to send to, from the cache when it was seen
    /// before: parsing it and decrypting its password took a few percent of
    /// hookwire's CPU when done for every attempt (BENCHMARKS.md).
    fn prepared(&self, stored: &str) -> Result<Arc<PreparedTarget>, AttemptFailure> {
        let cached = self
            .targets
            .lock()
            .ok()
            .and_then(|cache| cache.get(stored).cloned());
        if let Some(target) = cached {
            return Ok(target);
        }
        let target = Arc::new(self.prepare(stored)?);
        if let Ok(mut cache) = self.targets.lock() {
            if cache.len() >= MAX_CACHED_TARGETS {
                cache.clear();
            }
            cache.insert(stored.to_string(), target.clone());
        }
        Ok(target)
    }

    fn prepare(&self, stored: &str) -> Result<PreparedTarget, AttemptFailure> {
        let target = TargetUrl::parse_stored(stored)
            .map_err(|e| e.to_string())
            .and_then(|t| self.cipher.open_url(&t))
            .map_err(AttemptFailure::InvalidTarget)?;
        let url = target.without_credentials();
        if !self.allow_private_targets && self.guard.refuses_literal_host(&url) {
            return Err(AttemptFailure::Blocked);
        }
        let uri: hyper::Uri = url
            .as_str()
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| {
                AttemptFailure::InvalidTarget(e.to_string())
            })?;
        let authorization = match target.credentials() {
            Some(creds) => {
                let pair = format!("{}:{}", creds.user, creds.password);
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                let mut value = HeaderValue::try_from(format!("Basic {encoded}"))
                    .map_err(|e| AttemptFailure::InvalidTarget(e.to_string()))?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(PreparedTarget { uri, authorization })
    }

    /// The Standard Webhooks headers' values for a signed webhook: the
    /// timestamp (Unix seconds) and one `v1,` signature per secret in force,
    /// space-separated. `None` for an unsigned webhook.
    fn signature(&self, job: &DeliveryJob, body: &[u8]) -> Result<Option<(i64, String)>, String> {
        if job.signing_secrets.is_empty() {
            return Ok(None);
        }
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut signatures = Vec::with_capacity(job.signing_secrets.len());
        for sealed in &job.signing_secrets {
            let secret = self
                .cipher
                .open(SIGNING_SECRET, sealed)
                .and_then(|s| String::from_utf8(s).ok())
                .and_then(|s| {
                    standard_webhooks_signature(&s, &job.event.unique_id, timestamp, body)
                })
                .ok_or("the webhook's signing secret cannot be decrypted (was encryption_key changed?)")?;
            signatures.push(secret);
        }
        Ok(Some((timestamp, signatures.join(" "))))
    }
}

/// `Retry-After` as delay-seconds or an HTTP date; a date in the past is no delay.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn excerpt(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let cut = &body[..body.len().min(EXCERPT_BYTES)];
    Some(String::from_utf8_lossy(cut).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(120)));
        let later = std::time::SystemTime::now() + Duration::from_secs(600);
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(590) && d <= Duration::from_secs(600),
            "{d:?}"
        );
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
