//! LiveChat's Configuration API webhook methods, v3.5 to v3.7:
//! `POST /v3.x/configuration/action/<method>` with a JSON body.
//!
//! `register_webhook`, `list_webhooks`, `unregister_webhook`,
//! `enable_license_webhooks`, `disable_license_webhooks`,
//! `get_license_webhooks_state` (the license's API key, Bearer or Basic,
//! as on the v2 routes) and `list_webhook_names` (no key). Empty answers
//! are `{}`; errors have the Configuration API's shape (`errors`).

pub mod errors;
pub mod schemas;

use super::auth::License;
use super::error::{ApiResult, AppError};
use super::extract::{require_json, Body};
use super::AppState;
use crate::service::OpenedV3Webhook;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::Json;
use hookwire_livechat::v3::register::owner_client_id;
use hookwire_livechat::v3::{Registration, Version};
use serde_json::{json, Map, Value};

/// Where each version's methods live.
pub const VERSION_ROOTS: [&str; 3] = ["/v3.5", "/v3.6", "/v3.7"];

/// The webhook methods, as `list_webhook_names` and the routes name them.
pub const METHODS: [&str; 7] = [
    "register_webhook",
    "list_webhooks",
    "unregister_webhook",
    "enable_license_webhooks",
    "disable_license_webhooks",
    "get_license_webhooks_state",
    "list_webhook_names",
];

macro_rules! version_route {
    ($name:ident, $path:literal, $version:expr) => {
        #[utoipa::path(post, path = $path, tag = "livechat-v3",
            security((), ("license_key" = []), ("license_basic" = [])),
            params(("method" = crate::api::livechat_v3::schemas::V3Method, Path, description = "The Configuration API webhook method")),
            request_body(content = crate::api::livechat_v3::schemas::V3ConfigurationRequest, description = "The method's parameters (JSON)"),
            responses((status = 200, description = "The method's answer: `{\"id\"}` (register_webhook), a list of webhooks (list_webhooks), a list of actions (list_webhook_names), `{\"license_webhooks_enabled\"}` (get_license_webhooks_state), else `{}`", body = crate::api::livechat_v3::schemas::V3ConfigurationAnswer)))]
        pub async fn $name(
            State(state): State<AppState>,
            Path(method): Path<String>,
            req: Request,
        ) -> ApiResult<Json<Value>> {
            action(&state, $version, &method, req).await
        }
    };
}

version_route!(v35, "/v3.5/configuration/action/{method}", Version::V3_5);
version_route!(v36, "/v3.6/configuration/action/{method}", Version::V3_6);
version_route!(v37, "/v3.7/configuration/action/{method}", Version::V3_7);

/// Only these parameters, naming the first other one.
fn only(body: &Map<String, Value>, method: &str, keys: &[&str]) -> ApiResult<()> {
    match body.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => Err(AppError::invalid(
            k,
            format!(
                "unknown parameter; {method} takes {}",
                if keys.is_empty() {
                    "none".to_string()
                } else {
                    keys.join(", ")
                }
            ),
        )),
        None => Ok(()),
    }
}

async fn action(
    state: &AppState,
    version: Version,
    method: &str,
    req: Request,
) -> ApiResult<Json<Value>> {
    if !METHODS.contains(&method) {
        return Err(AppError::NotFound(format!(
            "no method {method} here; the webhook methods are {}",
            METHODS.join(", ")
        )));
    }
    let (mut parts, body) = req.into_parts();
    let license = if method == "list_webhook_names" {
        None
    } else {
        Some(License::from_request_parts(&mut parts, state).await?.0)
    };
    let headers = parts.headers.clone();
    let Body(bytes) = Body::from_request(Request::from_parts(parts, body), state).await?;
    let body: Map<String, Value> = if bytes.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        require_json(&headers, &bytes)?;
        serde_json::from_slice(&bytes)
            .map_err(|_| AppError::invalid("body", "must be a JSON object"))?
    };
    let service = state.service();
    let answer = match (method, license) {
        ("list_webhook_names", _) => {
            only(&body, method, &["version"])?;
            let asked = match body.get("version") {
                None | Some(Value::Null) => Version::STABLE,
                Some(Value::String(v)) => v.parse()?,
                Some(_) => return Err(AppError::invalid("version", "must be a string")),
            };
            webhook_names(asked)
        }
        ("register_webhook", Some(license)) => {
            let registration = Registration::parse(version, &body)?;
            let webhook = service
                .register_v3_webhook(&license, version, registration)
                .await?;
            json!({ "id": webhook.id })
        }
        ("list_webhooks", Some(license)) => {
            only(&body, method, &["owner_client_id"])?;
            let owner = owner_client_id(&body)?;
            let webhooks = service.list_v3_webhooks(&license, &owner).await?;
            Value::Array(webhooks.iter().map(listed).collect())
        }
        ("unregister_webhook", Some(license)) => {
            only(&body, method, &["id", "owner_client_id"])?;
            let id = hookwire_livechat::v3::register::required_string(&body, "id", 64)?;
            let owner = owner_client_id(&body)?;
            service.unregister_v3_webhook(&license, &owner, &id).await?;
            json!({})
        }
        ("enable_license_webhooks" | "disable_license_webhooks", Some(license)) => {
            only(&body, method, &["owner_client_id"])?;
            let owner = owner_client_id(&body)?;
            let enabled = method == "enable_license_webhooks";
            service
                .set_license_webhooks(&license, &owner, enabled)
                .await?;
            json!({})
        }
        ("get_license_webhooks_state", Some(license)) => {
            only(&body, method, &["owner_client_id"])?;
            let owner = owner_client_id(&body)?;
            let enabled = state
                .store()
                .license_webhooks_enabled(&license, &owner)
                .await?;
            json!({ "license_webhooks_enabled": enabled })
        }
        _ => return Err(AppError::NotFound(format!("no method {method} here"))),
    };
    Ok(Json(answer))
}

/// Whether the license has a v3 webhook `id` (its deliveries are in the
/// log like a v2 webhook's).
pub async fn is_v3_webhook(state: &AppState, license_id: &str, id: &str) -> ApiResult<bool> {
    Ok(state
        .store()
        .list_v3_webhooks(license_id, None)
        .await?
        .iter()
        .any(|w| w.id == id))
}

/// `list_webhook_names`: the version's catalog with each action's filters
/// and additional data.
fn webhook_names(version: Version) -> Value {
    Value::Array(
        version
            .actions()
            .map(|a| {
                json!({
                    "action": a.as_str(),
                    "filters": a.filters().iter().map(|f| f.as_str()).collect::<Vec<_>>(),
                    "additional_data": a.additional_data().iter().map(|d| d.as_str()).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// One webhook as `list_webhooks` answers it (its URL masked).
fn listed(w: &OpenedV3Webhook) -> Value {
    let hook = &w.webhook;
    let mut v = json!({
        "id": hook.id,
        "url": hook.url.masked(),
        "action": hook.action.as_str(),
        "secret_key": w.secret_key.expose(),
        "filters": hook.filters,
        "owner_client_id": hook.owner_client_id,
        "type": hook.kind.as_str(),
        "additional_data": hook.additional_data.names(),
    });
    if let Some(d) = &hook.description {
        v["description"] = json!(d);
    }
    v
}
