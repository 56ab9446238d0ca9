//! The OpenAPI description's schemas of the Configuration API webhook
//! routes: the method names, the union of their parameters, the answers,
//! and the error shape.

#![allow(dead_code)] // The schema structs only describe bodies; nothing builds them.

use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, Schema};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

/// The webhook methods of the Configuration API.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum V3Method {
    RegisterWebhook,
    ListWebhooks,
    UnregisterWebhook,
    EnableLicenseWebhooks,
    DisableLicenseWebhooks,
    GetLicenseWebhooksState,
    ListWebhookNames,
}

/// The methods' parameters; each method takes its own (see the README's
/// v3 section). `register_webhook`: `action`, `secret_key`, `url` (at most
/// 500 characters), `type` (`license` or `bot`), `owner_client_id`,
/// optional `description`, `additional_data` and `filters`;
/// `list_webhooks`, `enable_license_webhooks`, `disable_license_webhooks`
/// and `get_license_webhooks_state`: `owner_client_id`;
/// `unregister_webhook`: `id` and `owner_client_id`;
/// `list_webhook_names`: optional `version`.
#[derive(Serialize, ToSchema)]
pub struct V3ConfigurationRequest {
    pub action: Option<String>,
    pub secret_key: Option<String>,
    pub url: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub owner_client_id: Option<String>,
    pub description: Option<String>,
    pub additional_data: Option<Vec<String>>,
    pub filters: Option<serde_json::Value>,
    pub id: Option<String>,
    pub version: Option<String>,
}

/// A method's answer: `{"id"}`, a list, `{"license_webhooks_enabled"}` or `{}`.
pub struct V3ConfigurationAnswer;

impl utoipa::PartialSchema for V3ConfigurationAnswer {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
            .description(Some(
                "register_webhook: {\"id\"}; list_webhooks: [{\"id\", \"url\", \"description\", \"action\", \"secret_key\", \"filters\", \"owner_client_id\", \"type\", \"additional_data\"}]; list_webhook_names: [{\"action\", \"filters\", \"additional_data\"}]; get_license_webhooks_state: {\"license_webhooks_enabled\"}; the rest: {}",
            ))
            .into()
    }
}

impl ToSchema for V3ConfigurationAnswer {}

/// An error on the Configuration API's routes.
#[derive(Serialize, ToSchema)]
pub struct LivechatV3Error {
    pub error: LivechatV3ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct LivechatV3ErrorDetail {
    /// `validation`, `authentication`, `authorization`, `not_found`,
    /// `too_many_requests` or `internal`.
    #[serde(rename = "type")]
    pub kind: String,
    /// One readable sentence naming the problem.
    pub message: String,
}
