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
