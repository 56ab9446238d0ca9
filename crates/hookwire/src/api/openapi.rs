//! The OpenAPI 3.1 description of the HTTP API, served at `/api/openapi.json`.
//!
//! It is generated from the code: every API handler carries a
//! `#[utoipa::path]` annotation, and [`super::router`] registers the routes
//! through utoipa-axum's `routes!`, which adds a handler to the router and
//! its operation to this description in one step, so the two cannot drift.
//! The web app's HTML pages under `/ui` are not part of the API and are not
//! described. Handlers answer untyped JSON, so the schemas here are the
//! documented shapes of bodies (checked against the live server by
//! schemathesis in `.ci/run`). The components also describe what hookwire
//! sends rather than serves: the operator alerts (`OperatorAlert`), POSTed
//! to `operator_webhook_url`.

#![allow(dead_code)] // The schema structs only describe bodies; nothing builds them.

use serde::Serialize;
use std::sync::OnceLock;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Spec, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

pub const PLATFORM: &str = "platform_key";
pub const LICENSE: &str = "license_key";
pub const LICENSE_BASIC: &str = "license_basic";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookwire",
        description = "A self-hosted webhook delivery server, compatible with the LiveChat v2 webhooks API. \
                       Errors answer `{\"error\": {\"code\", \"message\", \"field\"}}`; on LiveChat's routes \
                       `{\"error\": \"<sentence>\", \"code\", \"field\"}`, as LiveChat's clients read it. Bodies marked JSON \
                       are also accepted as PHP-style forms (`application/x-www-form-urlencoded`) where noted.",
        license(name = "MIT OR Apache-2.0")
    ),
    tags(
        (name = "livechat-v2", description = "LiveChat's v2 REST routes, at `/` and at `/v2`."),
        (name = "livechat-v3", description = "LiveChat's Configuration API webhook methods, v3.5 to v3.7; errors answer `{\"error\": {\"type\", \"message\"}}`."),
        (name = "ingest", description = "The chat platform reports events (platform key)."),
        (name = "licenses", description = "Licenses and their API keys (platform key)."),
        (name = "webhooks", description = "hookwire's own webhook routes (license key)."),
        (name = "deliveries", description = "The delivery log and redelivery (license key)."),
        (name = "visitors", description = "Custom visitor details (the REST call-back)."),
        (name = "operations", description = "Health, readiness, metrics, this description."),
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        LivechatError,
        crate::api::livechat_v3::schemas::LivechatV3Error,
        crate::api::livechat_v3::schemas::V3Method,
        crate::api::livechat_v3::schemas::V3ActionName,
        OperatorAlert,
        AlertTypeName,
        AlertData,
        WebhookDisabledAlert,
        WebhookFailingAlert,
        DeliveryFailedAlert,
        BacklogHighAlert,
        DeliveryStateName
    )),
    modifiers(&Common)
)]
pub struct ApiDoc;

/// Adds what every operation shares: the security schemes and the error answers.
struct Common;

impl Modify for Common {
    fn modify(&self, spec: &mut Spec) {
        let components = spec.components.get_or_insert_with(Default::default);
        let bearer = |what: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(what.to_string());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(
            PLATFORM,
            bearer("The platform key (`HOOKWIRE_PLATFORM_KEY` or `<data_dir>/platform.key`)."),
        );
        components.add_security_scheme(LICENSE, bearer("A license's API key (`hwk_...`)."));
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some(
            "A license's API key as the basic-auth password (LiveChat's older clients).".into(),
        );
        components.add_security_scheme(LICENSE_BASIC, SecurityScheme::Http(basic));
    }
}

/// Any route may answer a 4xx (bad input, no key, unknown id, rate limit,
/// wrong method) or a 5xx (503: database unavailable, backlog full; 500:
/// stored data that cannot be read), always in the error format: LiveChat's
/// on LiveChat's routes, hookwire's elsewhere.
fn add_errors(op: &mut Operation, livechat: bool, v3: bool) {
    let error = || {
        let (description, schema) = if v3 {
            (
                "An error, in the Configuration API's format: `error.type` and `error.message`.",
                "LivechatV3Error",
            )
        } else if livechat {
            (
                "An error, in LiveChat's format: `error` is one sentence.",
                "LivechatError",
            )
        } else {
            ("An error, in hookwire's error format.", "ErrorBody")
        };
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(schema)))
                    .build(),
            )
            .build()
    };
    for status in ["4XX", "500", "503"] {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error().into());
    }
}

/// The description as served: the router's operations with the shared
/// error answers, and the LiveChat routes mounted twice (at `/` and `/v2`)
/// given distinct operation ids.
pub fn finish(mut spec: Spec) -> Spec {
    for (path, item) in spec.paths.paths.iter_mut() {
        let prefixed = path.starts_with("/v2/");
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            add_errors(
                op,
                super::livechat_error::is_livechat_path(path),
                super::livechat_v3::errors::is_v3_path(path),
            );
            if prefixed {
                if let Some(id) = &op.operation_id {
                    op.operation_id = Some(format!("v2_prefixed_{id}"));
                }
            }
        }
    }
    spec
}

/// The description of [`super::api_routes`], built once.
pub fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| finish(super::api_routes().split_for_parts().1))
}

/// [`spec`] as JSON text, built once.
pub fn spec_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| spec().to_pretty_json().expect("the description serializes"))
}

/// Every error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code, e.g. `invalid_request`, `unauthorized`.
    pub code: String,
    pub message: String,
    /// The offending field, for `invalid_request`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error on LiveChat's routes (`/webhooks`, `/visitors/...`, also under
/// `/v2`): what LiveChat's clients read as the message.
#[derive(Serialize, ToSchema)]
pub struct LivechatError {
    /// One readable sentence naming the problem (the field or value).
    pub error: String,
    /// hookwire's machine-readable code, as in its own error format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The offending field, for `invalid_request`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// LiveChat's event types (a test checks this list against the domain's).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventTypeName {
    ChatStarted,
    ChatEnded,
    VisitorQueued,
    ChatChanged,
    TicketCreated,
}

/// The data sections a webhook may ask for (which ones fit depends on the event type).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DataTypeName {
    Chat,
    Visitor,
    PreChatSurvey,
    Ticket,
}

/// A delivery's state (a test checks this list against the store's).
/// `pending` waits for its next attempt; `held` was made while its webhook
/// was disabled and waits for it to be enabled; `delivered`, `failed` and
/// `discarded` (held, then dropped with `discard_held` or by deleting the
/// webhook) and `filtered` (a v3 event its webhook's filters excluded,
/// logged because the webhook asks: `log_filtered`) are final.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStateName {
    Pending,
    Held,
    Delivered,
    Failed,
    Discarded,
    Filtered,
}

/// A license id: 1 to 64 letters, digits, `-`, `_` and `.`.
pub const LICENSE_ID_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";

/// A license id: 1 to 64 letters, digits, `-`, `_` and `.`, or a whole
/// number (LiveChat's ids are numbers).
pub struct LicenseId;

impl utoipa::PartialSchema for LicenseId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(LICENSE_ID_PATTERN)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .description(Some("A license id: a string of 1 to 64 letters, digits, `-`, `_`, `.`, or a whole number."))
            .into()
    }
}

impl ToSchema for LicenseId {}

/// `POST /api/v1/licenses`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLicense {
    #[schema(value_type = LicenseId)]
    pub license_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct LicenseCreated {
    pub license_id: String,
    /// Shown once: only its hash is stored.
    pub api_key: String,
}

/// A license's settings: its retention (how long its finished deliveries are
/// kept) and its organization id.
#[derive(Serialize, ToSchema)]
pub struct LicenseSettings {
    #[schema(value_type = LicenseId)]
    pub license_id: String,
    /// The v3 envelope's `organization_id`: generated when first needed (UUID
    /// layout) unless the platform set one.
    pub organization_id: String,
    /// What applies, as a duration (`30days`, `7days`, `2m`).
    pub retention: String,
    /// The same, in seconds.
    pub retention_seconds: u64,
    /// True when the license has no retention of its own and follows the
    /// server's `retention` setting.
    pub retention_is_default: bool,
    /// RFC 3339; when the license's oldest kept delivery was made (null: none).
    #[schema(format = DateTime)]
    pub oldest_kept_delivery_at: Option<String>,
}

/// `PATCH /api/v1/licenses/{license_id}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicensePatch {
    /// A duration above zero (`7d`, `36h`, `90s`); null returns the license
    /// to the server's default.
    #[schema(example = "7d")]
    pub retention: Option<String>,
    /// The platform's own organization id: 1 to 64 letters, digits, `-`, `_`
    /// and `.`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub organization_id: Option<String>,
}

/// A single-use link that signs a browser into the web app as the license.
#[derive(Serialize, ToSchema)]
pub struct PortalLinkCreated {
    /// `<scheme>://<host>/ui/portal/<token>`, the host as the request named it.
    pub url: String,
    /// RFC 3339; the link no longer signs in after this.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// An event as the platform reports it: `event_type`, `license_id`, and the
/// event's data sections (`chat`, `visitor`, `pre_chat_survey`, ...), passed
/// through untouched.
#[derive(Serialize, ToSchema)]
pub struct IncomingEvent {
    pub event_type: EventTypeName,
    #[schema(value_type = LicenseId)]
    pub license_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct EventAccepted {
    /// The event's unique id (`event_unique_id` in deliveries).
    pub id: String,
    /// How many webhooks it is delivered to, counting disabled ones, whose
    /// deliveries are held until they are enabled.
    pub deliveries: u64,
}

/// One answer per batch item, in order: an `EventAccepted` or an error,
/// with the item's own `status`.
#[derive(Serialize, ToSchema)]
pub struct BatchAnswer {
    pub results: Vec<serde_json::Value>,
}

/// A webhook to create (JSON, or a PHP-style form with `data_types[]`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    pub event_type: EventTypeName,
    /// The data sections to send, from the event type's table (none if left out).
    pub data_types: Option<Vec<DataTypeName>>,
    /// `https://` (or `http://`) URL; credentials in it are sent as basic auth.
    #[schema(example = "https://example.com/hook", pattern = "^https?://")]
    pub url: String,
}

/// A webhook to create through hookwire's own routes: LiveChat's fields,
/// and ordered delivery.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookV1 {
    pub event_type: EventTypeName,
    /// The data sections to send, from the event type's table (none if left out).
    pub data_types: Option<Vec<DataTypeName>>,
    /// `https://` (or `http://`) URL; credentials in it are sent as basic auth.
    #[schema(example = "https://example.com/hook", pattern = "^https?://")]
    pub url: String,
    /// Ordered delivery: a chat's deliveries (a visitor's for
    /// `visitor_queued`, a ticket's for `ticket_created`) go one at a time,
    /// in the order their events came (README, "Ordered delivery").
    pub ordered: Option<bool>,
}

/// Fields to change; those left out stay as they are.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    #[schema(pattern = "^https?://")]
    pub url: Option<String>,
    pub data_types: Option<Vec<DataTypeName>>,
    /// `true` delivers the deliveries held while the webhook was disabled,
    /// oldest first.
    pub enabled: Option<bool>,
    /// With `"enabled": true` only (a 400 otherwise): discard the held
    /// deliveries (state `discarded`) instead of delivering them.
    pub discard_held: Option<bool>,
    /// Attempts per second (1 to 10000); `null` removes the limit.
    #[schema(minimum = 1, maximum = 10000)]
    pub max_per_second: Option<u32>,
    /// Switches ordered delivery on or off (off: new deliveries go
    /// unordered; those made while on finish their lines).
    pub ordered: Option<bool>,
}

/// A webhook as hookwire's own routes show it.
#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub license_id: String,
    pub event_type: String,
    pub data_types: Vec<String>,
    /// The URL, with any password masked.
    pub url: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub max_per_second: Option<u32>,
    /// Ordered delivery per chat (visitor, ticket).
    pub ordered: bool,
    /// Deliveries carry Standard Webhooks signatures (a secret was made).
    pub signed: bool,
    /// Deliveries held while the webhook is disabled, waiting for it to be
    /// enabled (`PATCH` with `"enabled": true`).
    pub held_deliveries: u64,
    /// RFC 3339.
    pub created_at: String,
}

/// A webhook as LiveChat's v2 API shows it (note the spelling `licence`).
#[derive(Serialize, ToSchema)]
pub struct LivechatWebhook {
    /// A number when the license id is one.
    #[schema(value_type = LicenseId)]
    pub licence: String,
    pub event_type: EventTypeName,
    pub data_types: Vec<DataTypeName>,
    /// The URL, with any password masked.
    pub url: String,
    pub verified: bool,
    /// Sent in every delivery's body.
    pub token: String,
    pub id: String,
}

/// Webhooks in LiveChat's v2 format.
#[derive(Serialize, ToSchema)]
pub struct LivechatWebhooks {
    pub events: Vec<LivechatWebhook>,
}

/// LiveChat's answer to a change: `{"result": "..."}`.
#[derive(Serialize, ToSchema)]
pub struct ResultMessage {
    pub result: String,
}

/// A new signing secret (`whsec_...`), shown once.
#[derive(Serialize, ToSchema)]
pub struct SigningSecret {
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct Redelivered {
    /// The delivery id.
    pub id: String,
    /// `pending`.
    pub state: String,
}

#[derive(Serialize, ToSchema)]
pub struct RedeliveredCount {
    /// How many failed deliveries are pending again.
    pub redelivered: u64,
}

/// One batch of a bulk replay.
#[derive(Serialize, ToSchema)]
pub struct ReplayBatch {
    /// How many deliveries of this batch are pending again.
    pub redelivered: u64,
    /// The last delivery id of this batch: pass it as `after` for the next.
    pub last_id: Option<String>,
    /// Deliveries in the window after this batch.
    pub remaining: u64,
    /// The window's start as resolved (RFC 3339): pass it back as `since`.
    #[schema(format = DateTime)]
    pub since: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// One delivery of an event to a webhook, with its attempts.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub webhook_id: String,
    pub event_type: EventTypeName,
    pub state: DeliveryStateName,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; null once the delivery is final.
    pub next_attempt_at: Option<String>,
    pub attempts: Vec<AttemptView>,
    /// For an ordered webhook's delivery, its place in its key's line; null
    /// otherwise.
    pub ordering: Option<DeliveryOrdering>,
    /// For a `filtered` one: the filter that excluded its event, and why.
    pub filtered_by: Option<String>,
}

/// Where a delivery of an ordered webhook stands in its key's line.
#[derive(Serialize, ToSchema)]
pub struct DeliveryOrdering {
    /// The chat (visitor, ticket) id it is ordered by; null when its event
    /// had none, and it was delivered unordered.
    pub key: Option<String>,
    /// The delivery it waits for: the earlier (or in-flight) one of its key.
    pub waits_for: Option<String>,
    /// Earlier deliveries of its key that failed for good, which the line
    /// went on past (newest first, at most 3).
    pub after_failed: Vec<String>,
    /// The same, in a sentence.
    pub note: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AttemptView {
    /// RFC 3339.
    pub at: String,
    /// The receiver's HTTP status; null when no answer came.
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    /// The first 4 KiB of the answer.
    pub response_excerpt: Option<String>,
}

/// A page of the delivery log, newest first.
#[derive(Serialize, ToSchema)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `before` for the next page; null on the last.
    pub next_before: Option<String>,
}

/// Custom visitor details, posted by a receiver with a webhook's token.
#[derive(Serialize, ToSchema)]
pub struct VisitorDetails {
    #[schema(value_type = LicenseId)]
    pub license_id: String,
    /// The `token` of a delivery this receiver got.
    pub token: String,
    /// The set's id; posting it again replaces the set.
    pub id: String,
    pub icon: Option<String>,
    pub fields: Vec<DetailField>,
}

#[derive(Serialize, ToSchema)]
pub struct DetailField {
    pub name: String,
    pub value: String,
    pub url: Option<String>,
}

/// A visitor seen in events, with the details receivers posted.
#[derive(Serialize, ToSchema)]
pub struct VisitorView {
    pub visitor_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub last_event_type: Option<String>,
    /// RFC 3339.
    pub last_seen_at: Option<String>,
    pub details: Vec<DetailsSetView>,
}

#[derive(Serialize, ToSchema)]
pub struct DetailsSetView {
    pub id: String,
    pub icon: Option<String>,
    /// As posted: `{name, value, url}` objects.
    pub fields: Vec<serde_json::Value>,
    /// RFC 3339.
    pub updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct VisitorList {
    pub visitors: Vec<VisitorView>,
}

/// `{"status": "ok"}` or `{"status": "ready"}`.
#[derive(Serialize, ToSchema)]
pub struct Status {
    pub status: String,
}

/// An operator alert: one of hookwire's own events, POSTed as JSON to
/// `operator_webhook_url` (the Standard Webhooks payload convention). With
/// `operator_webhook_secret` set it carries `webhook-id` (the alert's id,
/// the same on every retry), `webhook-timestamp` and `webhook-signature`
/// (`v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`). Retried on the
/// deliveries' schedule until the endpoint answers 2xx.
#[derive(Serialize, ToSchema)]
pub struct OperatorAlert {
    #[serde(rename = "type")]
    pub kind: AlertTypeName,
    /// When it happened (for `delivery.failed`, its first failure), RFC 3339, UTC.
    #[schema(format = DateTime)]
    pub timestamp: String,
    pub data: AlertData,
}

/// What an operator alert tells (a test checks this list against the engine's).
#[derive(Serialize, ToSchema)]
pub enum AlertTypeName {
    /// A webhook was disabled: its receiver answered 410 Gone, or every
    /// attempt failed for longer than `disable_after`.
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled,
    /// A webhook's attempts began failing (the first failure after a
    /// success); at most once an hour per webhook.
    #[serde(rename = "webhook.failing")]
    WebhookFailing,
    /// Deliveries ran out of retries; one alert per license per
    /// `failed_alert_window`, counting those in between.
    #[serde(rename = "delivery.failed")]
    DeliveryFailed,
    /// Pending and held deliveries (all licenses) passed
    /// `backlog_alert_threshold`; again at most once an hour while they stay
    /// past, and anew after a fall.
    #[serde(rename = "backlog.high")]
    BacklogHigh,
}

/// An alert's `data`, by its `type`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum AlertData {
    WebhookDisabled(WebhookDisabledAlert),
    WebhookFailing(WebhookFailingAlert),
    DeliveryFailed(DeliveryFailedAlert),
    BacklogHigh(BacklogHighAlert),
}

/// The `data` of `webhook.disabled`.
#[derive(Serialize, ToSchema)]
pub struct WebhookDisabledAlert {
    pub webhook_id: String,
    #[schema(value_type = LicenseId)]
    pub license_id: String,
    /// `gone` (the receiver answered 410) or `failing` (for `disable_after`).
    #[schema(pattern = "^(gone|failing)$")]
    pub cause: String,
    /// As the webhook's `disabled_reason` says it.
    pub reason: String,
}

/// The `data` of `webhook.failing`.
#[derive(Serialize, ToSchema)]
pub struct WebhookFailingAlert {
    pub webhook_id: String,
    #[schema(value_type = LicenseId)]
    pub license_id: String,
    /// The failing run's first failure, RFC 3339, UTC.
    #[schema(format = DateTime)]
    pub failing_since: String,
    /// The HTTP status of that failure, if the receiver answered.
    pub status: Option<u16>,
    /// What went wrong, as the delivery log says it.
    pub error: Option<String>,
}

/// The `data` of `delivery.failed`.
#[derive(Serialize, ToSchema)]
pub struct DeliveryFailedAlert {
    #[schema(value_type = LicenseId)]
    pub license_id: String,
    /// Deliveries that failed for good since the license's previous alert.
    #[schema(minimum = 1)]
    pub count: u64,
    /// The first 100 of them (ids as the delivery log shows them).
    pub delivery_ids: Vec<String>,
    /// Their webhooks, each once.
    pub webhook_ids: Vec<String>,
}

/// The `data` of `backlog.high`.
#[derive(Serialize, ToSchema)]
pub struct BacklogHighAlert {
    /// Pending deliveries when it was raised.
    pub pending: u64,
    /// Held deliveries (of disabled webhooks) when it was raised; they count
    /// toward the threshold with the pending ones.
    pub held: u64,
    pub threshold: u64,
}
