//! The one API error type. Every failure answers JSON:
//! `{"error": {"code": "...", "message": "...", "field": "..."}}`.

use crate::service::ServiceError;
use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hookwire_livechat::ValidationError;
use serde_json::json;

#[derive(Debug)]
pub enum AppError {
    /// Bad input: 400, naming the field.
    Invalid(ValidationError),
    Unauthorized(String),
    NotFound(String),
    Conflict(String),
    /// The request is well-formed but cannot be processed (an idempotency key
    /// reused for a different request).
    Unprocessable(String),
    PayloadTooLarge(usize),
    UnsupportedMediaType(String),
    MethodNotAllowed,
    /// The database cannot take writes right now; nothing was committed.
    Unavailable(String),
    /// Stored data hookwire cannot read: 500, since retrying will not help.
    Internal(String),
    /// Too many pending and held deliveries: ingest refuses work for now (503).
    Overloaded,
    /// The caller's key is over its request rate; retry after that many seconds (429).
    RateLimited(u64),
}

impl AppError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        AppError::Invalid(ValidationError::new(field, message))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Invalid(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Unavailable(_) | AppError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::Invalid(_) => "invalid_request",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::Unprocessable(_) => "unprocessable",
            AppError::PayloadTooLarge(_) => "payload_too_large",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal",
            AppError::Overloaded => "backlog_full",
            AppError::RateLimited(_) => "rate_limited",
        }
    }

    /// The body's `error` object; batch answers reuse it per item.
    pub fn body(&self) -> serde_json::Value {
        let message = match self {
            AppError::Invalid(e) => e.message.clone(),
            AppError::PayloadTooLarge(limit) => {
                format!("request body is larger than {limit} bytes")
            }
            AppError::MethodNotAllowed => "method not allowed on this route".to_string(),
            AppError::Overloaded => {
                "too many deliveries are pending or held; nothing was stored, retry later"
                    .to_string()
            }
            AppError::RateLimited(secs) => {
                format!("too many requests for this key; retry in {secs} s")
            }
            AppError::Unauthorized(m)
            | AppError::NotFound(m)
            | AppError::Conflict(m)
            | AppError::Unprocessable(m)
            | AppError::UnsupportedMediaType(m)
            | AppError::Unavailable(m)
            | AppError::Internal(m) => m.clone(),
        };
        let mut error = json!({ "code": self.code(), "message": message });
        if let AppError::Invalid(e) = self {
            error["field"] = json!(e.field);
        }
        error
    }
}

impl From<ValidationError> for AppError {
    fn from(e: ValidationError) -> Self {
        AppError::Invalid(e)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => {
                AppError::Conflict(format!("conflicts with what is stored ({what})"))
            }
            StoreError::Unavailable { source } => {
                tracing::error!(error = %source, "database unavailable");
                AppError::Unavailable(
                    "the database cannot be used right now; nothing was stored, retry later".into(),
                )
            }
            StoreError::Corrupt(detail) => {
                tracing::error!(%detail, "stored data cannot be read");
                AppError::Internal("stored data cannot be read; the operator's log names it".into())
            }
            StoreError::Closed => AppError::Unavailable("hookwire is shutting down".into()),
        }
    }
}

impl From<ServiceError> for AppError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(e) => AppError::Invalid(e),
            ServiceError::NotFound(m) => AppError::NotFound(m),
            ServiceError::Conflict(m) => AppError::Conflict(m),
            ServiceError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(json!({ "error": self.body() }))).into_response();
        match self {
            AppError::Unavailable(_) | AppError::Overloaded => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            AppError::RateLimited(secs) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            }
            AppError::Unauthorized(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

pub type ApiResult<T> = Result<T, AppError>;
