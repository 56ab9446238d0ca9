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

/// One ingested event: a v2 event (`event_type`) or a LiveChat v3 event
/// (`action`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum IngestItem {
    V2(crate::api::openapi::IncomingEvent),
    V3(Box<V3IncomingEvent>),
}

/// A LiveChat v3 event as the platform reports it. `payload` has exactly
/// the action's top-level keys (LiveChat's SDK's dataclasses: every required
/// one, optional ones as known, nothing else) and is delivered byte for
/// byte; `context` is only for filters and additional data, never sent on.
#[derive(Serialize, ToSchema)]
pub struct V3IncomingEvent {
    #[schema(value_type = V3ActionName)]
    pub action: String,
    #[schema(value_type = crate::api::openapi::LicenseId)]
    pub license_id: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub context: Option<V3Context>,
}

/// What hookwire needs to know of a v3 event besides its payload.
#[derive(Serialize, ToSchema)]
pub struct V3Context {
    /// The author's type (`author_type` filters).
    pub author_type: Option<V3AuthorType>,
    /// The Client ID of the application whose client caused the event;
    /// absent or null: the system (`source_type` filters).
    pub source_client_id: Option<String>,
    pub chat_presence: Option<V3Presence>,
    /// The chat's properties (`chat_properties` additional data;
    /// `source.client_id` for `only_my_chats`).
    #[schema(value_type = Option<Object>)]
    pub chat_properties: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum V3AuthorType {
    Customer,
    Agent,
}

/// Who is in the chat (`chat_presence` filters, `chat_presence_user_ids`).
#[derive(Serialize, ToSchema)]
pub struct V3Presence {
    pub user_ids: Option<Vec<String>>,
    pub bots: Option<Vec<V3PresentBot>>,
}

#[derive(Serialize, ToSchema)]
pub struct V3PresentBot {
    pub id: String,
    pub owner_client_id: String,
}

/// A v3 action: the catalog of 3.5 (3.6 and 3.7 lack `incoming_customer`).
pub struct V3ActionName;

impl utoipa::PartialSchema for V3ActionName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(
                hookwire_livechat::v3::Action::ALL
                    .iter()
                    .map(|a| a.as_str()),
            ))
            .into()
    }
}

impl ToSchema for V3ActionName {}
