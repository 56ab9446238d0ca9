//! The OpenAPI description: served, complete, and in step with the router.

use crate::support::*;
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every operation the description lists is answered by a real route (not
/// the fallback's "no route" 404 or the wrong-method 405), and its shared
/// error answers are described.
#[tokio::test]
async fn every_described_operation_is_routed() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let spec: Value = r.json().await.unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let paths = spec["paths"].as_object().unwrap();
    let mut operations = 0;
    let mut ids = std::collections::HashSet::new();
    for (path, item) in paths {
        let concrete: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            operations += 1;
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_string()), "operationId {id} is used twice");
            assert!(op["responses"]["4XX"].is_object(), "{method} {path}");
            let r = app
                .http
                .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            assert_ne!(status, 405, "{method} {path} is described but not routed");
            assert!(
                !(status == 404 && body.contains("no route for")),
                "{method} {path} is described but not routed: {body}"
            );
        }
    }
    // LiveChat's routes (at / and /v2), /api/v1, and the operator routes.
    assert!(operations >= 28, "only {operations} operations");
    for path in [
        "/webhooks",
        "/v2/webhooks",
        "/api/v1/events",
        "/metrics",
        "/healthz",
        "/readyz",
        "/api/openapi.json",
        "/v3.5/configuration/action/{method}",
        "/v3.6/configuration/action/{method}",
        "/v3.7/configuration/action/{method}",
    ] {
        assert!(paths.contains_key(path), "{path} is not described");
    }
    // The Configuration API's routes describe their own error shape.
    assert_eq!(
        paths["/v3.6/configuration/action/{method}"]["post"]["responses"]["4XX"]["content"]
            ["application/json"]["schema"]["$ref"],
        "#/components/schemas/LivechatV3Error"
    );
    app.shutdown().await;
}

/// The other direction: every route the server answers is described. The
/// API router is built only from utoipa-axum's `routes!`, which registers a
/// handler and its operation together; a plain axum `.route(...)` outside
/// the web app (`api/ui`, HTML pages, not part of the API) would add an
/// undescribed route, so none may exist.
#[test]
fn api_routes_are_only_registered_with_their_description() {
    let api = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut checked = 0;
    for entry in std::fs::read_dir(&api).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            checked += 1;
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap();
                assert!(
                    !code.contains(".route(") && !code.contains(".route_service("),
                    "{}:{}: a route outside `routes!` is missing from the OpenAPI description: {line}",
                    path.display(),
                    n + 1
                );
            }
        }
    }
    assert!(
        checked >= 10,
        "read only {checked} files of {}",
        api.display()
    );
    // The handlers behind the description: each routed handler is annotated.
    let spec = hookwire::api::openapi::spec();
    assert!(spec
        .paths
        .paths
        .contains_key("/api/v1/webhooks/{id}/deliveries"));
}

/// The description's enums are the domain's lists.
#[test]
fn described_enums_match_the_domain() {
    use hookwire_livechat::{DataType, EventType};
    let spec: Value = serde_json::from_str(hookwire::api::openapi::spec_json()).unwrap();
    let names = |schema: &str| -> Vec<String> {
        spec["components"]["schemas"][schema]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema} has no enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let events: Vec<String> = EventType::ALL
        .iter()
        .map(|e| e.as_str().to_string())
        .collect();
    let data: Vec<String> = DataType::ALL
        .iter()
        .map(|d| d.as_str().to_string())
        .collect();
    assert_eq!(names("EventTypeName"), events);
    assert_eq!(names("DataTypeName"), data);
    let states: Vec<String> = hookwire::store::DeliveryState::ALL
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    assert_eq!(names("DeliveryStateName"), states);
    // The delivery view and the log's filters use that enum.
    let view = &spec["components"]["schemas"]["DeliveryView"]["properties"]["state"];
    assert_eq!(
        view["$ref"], "#/components/schemas/DeliveryStateName",
        "{view}"
    );
    let filter = spec["paths"]["/api/v1/deliveries"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "state")
        .unwrap();
    assert!(filter.to_string().contains("DeliveryStateName"), "{filter}");
    // Enabling may discard what a webhook held.
    let patch = &spec["components"]["schemas"]["WebhookPatch"]["properties"];
    assert!(patch["discard_held"].is_object(), "{patch}");
    let view = &spec["components"]["schemas"]["WebhookView"]["properties"];
    assert!(view["held_deliveries"].is_object(), "{view}");
    assert_eq!(names("V3Method"), hookwire::api::livechat_v3::METHODS);
    let actions: Vec<&str> = hookwire_livechat::v3::Action::ALL
        .iter()
        .map(|a| a.as_str())
        .collect();
    assert_eq!(names("V3ActionName"), actions);
    // Ingest takes either shape.
    let item = &spec["components"]["schemas"]["IngestItem"]["oneOf"];
    assert_eq!(item.as_array().map(Vec::len), Some(2), "{item}");
}
