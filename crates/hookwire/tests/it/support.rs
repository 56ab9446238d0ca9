//! The shared harness lives in `hookwire::testing`; this adds the macro that
//! runs each test once per backend, and what needs this build's binary.

pub use hookwire::testing::*;

/// Turns `async fn name() { ... }` items into a module `name` with two tests,
/// `sqlite` and `postgres`, each running the body against that backend.
#[macro_export]
macro_rules! backend_tests {
    ($( $(#[$attr:meta])* async fn $name:ident() $body:block )*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$attr])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::support::run_on($crate::support::Backend::Sqlite, async move $body).await
            }

            $(#[$attr])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::support::run_on($crate::support::Backend::Postgres, async move $body).await
            }
        }
    )*};
}

/// `hookwire serve` (this build's binary) on a loopback port 0, delivering
/// to loopback, with the tests' platform key; add the rest and start it with
/// [`Serving::spawn`].
pub fn serve_command() -> std::process::Command {
    hookwire::testing::serve_command(std::path::Path::new(env!("CARGO_BIN_EXE_hookwire")))
}

/// Creates a license on a server at `url`; answers its API key.
pub async fn create_license_at(http: &reqwest::Client, url: &str, id: &str) -> String {
    let r = http
        .post(format!("{url}/api/v1/licenses"))
        .bearer_auth(PLATFORM_KEY)
        .json(&serde_json::json!({ "license_id": id }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<serde_json::Value>().await.unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The message LiveChat's PHP client (`livechat/api-client-php`) builds
/// from an error body: `error` when it is a string, else the strings of
/// `errors` joined, else what PHP prints for anything else, "Array". A
/// test that finds "Array" here has found an error its users cannot read.
pub fn livechat_client_message(body: &serde_json::Value) -> String {
    if let Some(error) = body["error"].as_str() {
        return error.to_string();
    }
    match body["errors"].as_array() {
        Some(list) if list.iter().all(|e| e.is_string()) => list
            .iter()
            .filter_map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => "Array".to_string(),
    }
}

/// Waits until the server at `url` lists no pending delivery for the license
/// of `key`: after that, nothing more is sent.
pub async fn wait_nothing_pending(http: &reqwest::Client, url: &str, key: &str) {
    let pending = format!("{url}/api/v1/deliveries?state=pending&limit=1");
    eventually(
        "no delivery left pending",
        std::time::Duration::from_secs(30),
        async || {
            let r = http.get(&pending).bearer_auth(key).send().await.unwrap();
            let body: serde_json::Value = r.json().await.unwrap();
            match body["deliveries"].as_array() {
                Some(list) if list.is_empty() => Ok(()),
                _ => Err(body),
            }
        },
    )
    .await
}
