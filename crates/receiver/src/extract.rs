//! The axum extractor: a handler that takes a [`Webhook`] only runs for a
//! request whose credentials and signature check out and whose body is a
//! webhook payload; anything else is answered 401 or 400 with a JSON body
//! saying why, which hookwire records in its delivery log.

use crate::{AuthError, BasicAuth, Verifier, VerifyError, WebhookPayload};
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

/// What the [`Webhook`] extractor checks; put it in the router's state (or
/// make it reachable with [`FromRef`]).
#[derive(Clone, Debug, Default)]
pub struct Receiver {
    verifier: Option<Verifier>,
    basic_auth: Option<BasicAuth>,
}

impl Receiver {
    /// Accepts any well-formed webhook, signed or not.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires a valid Standard Webhooks signature.
    pub fn verify_with(mut self, verifier: Verifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Requires these basic-auth credentials.
    pub fn basic_auth(mut self, auth: BasicAuth) -> Self {
        self.basic_auth = Some(auth);
        self
    }

    /// Checks a request as the extractor does, for frameworks other than axum.
    pub fn check(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookPayload, WebhookRejection> {
        if let Some(auth) = &self.basic_auth {
            auth.check(headers)
                .map_err(WebhookRejection::Unauthorized)?;
        }
        if let Some(verifier) = &self.verifier {
            verifier
                .verify(headers, body)
                .map_err(WebhookRejection::BadSignature)?;
        }
        serde_json::from_slice(body).map_err(|e| WebhookRejection::BadPayload(e.to_string()))
    }
}

/// A webhook whose credentials and signature (as far as the [`Receiver`]
/// asks) were checked, with its typed payload and the raw body.
///
/// ```
/// use axum::{routing::post, Router, body::Body, http::Request};
/// use hookwire_receiver::{Deduplicator, Receiver, Verifier, Webhook};
/// use tower::ServiceExt;
///
/// async fn handle(webhook: Webhook) -> &'static str {
///     // In a real receiver: skip repeats with a Deduplicator, then do the work.
///     assert_eq!(webhook.payload.license_id, "1025707");
///     "ok"
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// let receiver = Receiver::new().verify_with(Verifier::new(secret).unwrap());
/// let app = Router::new().route("/hook", post(handle)).with_state(receiver);
///
/// let body = r#"{"event_type":"visitor_queued","token":"t","license_id":"1025707",
///     "visitor":{"id":"S1"},"event_unique_id":"0123456789abcdef0123456789abcdef"}"#;
/// let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
/// let signature = Verifier::new(secret).unwrap().sign("0123456789abcdef0123456789abcdef", now, body.as_bytes());
/// let request = |signature: &str| Request::post("/hook")
///     .header("webhook-id", "0123456789abcdef0123456789abcdef")
///     .header("webhook-timestamp", now.to_string())
///     .header("webhook-signature", signature)
///     .body(Body::from(body))
///     .unwrap();
///
/// let ok = app.clone().oneshot(request(&signature)).await.unwrap();
/// assert_eq!(ok.status(), 200);
/// let forged = app.oneshot(request("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")).await.unwrap();
/// assert_eq!(forged.status(), 401);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Webhook {
    pub payload: WebhookPayload,
    /// The body exactly as received (what the signature covers).
    pub body: Bytes,
    /// Whether a signature was required and verified.
    pub verified: bool,
}

/// Why the extractor refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRejection {
    #[error("unauthorized: {0}")]
    Unauthorized(AuthError),
    #[error("bad signature: {0}")]
    BadSignature(VerifyError),
    #[error("not a webhook payload: {0}")]
    BadPayload(String),
    #[error("cannot read the body: {0}")]
    Body(String),
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        let (status, error) = match &self {
            WebhookRejection::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            WebhookRejection::BadSignature(_) => (StatusCode::UNAUTHORIZED, "bad_signature"),
            WebhookRejection::BadPayload(_) => (StatusCode::BAD_REQUEST, "bad_payload"),
            WebhookRejection::Body(_) => (StatusCode::BAD_REQUEST, "bad_body"),
        };
        let body = serde_json::json!({ "error": error, "message": self.to_string() });
        (status, axum::Json(body)).into_response()
    }
}

impl<S> FromRequest<S> for Webhook
where
    Receiver: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = WebhookRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let receiver = Receiver::from_ref(state);
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| WebhookRejection::Body(e.body_text()))?;
        let payload = receiver.check(&headers, &body)?;
        Ok(Webhook {
            payload,
            body,
            verified: receiver.verifier.is_some(),
        })
    }
}
