//! The shared harness lives in `hookwire::testing`; this adds the macro that
//! runs each test once per backend.

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

/// A real `hookwire serve` process (the built binary), for tests that kill,
/// signal or read the logs of the process itself. Killed on drop, so a
/// failing assertion leaves nothing running.
pub struct Serving {
    pub child: std::process::Child,
    pub url: String,
}

impl Serving {
    /// Runs `command` (a `hookwire serve` on port 0, or a wrapper that execs
    /// one) and waits for the address it prints first; `None` if it exits
    /// without printing one. Its stdout keeps being drained so it never
    /// blocks on a full pipe.
    pub fn spawn(mut command: std::process::Command) -> Option<Self> {
        use std::io::{BufRead, BufReader};
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the command starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let Some(Ok(first)) = lines.next() else {
            let status = child.wait().unwrap();
            eprintln!("the server exited without printing its address: {status}");
            return None;
        };
        let url = first.rsplit(' ').next().unwrap().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{first}");
        std::thread::spawn(move || for _ in lines {});
        Some(Self { child, url })
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(mut self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(self.child.wait().unwrap().success(), "exit 0 on SIGTERM");
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hookwire serve` on a loopback port 0, delivering to loopback, with the
/// tests' platform key; add the rest.
pub fn serve_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hookwire"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--allow-private-targets",
        ])
        .env("HOOKWIRE_PLATFORM_KEY", PLATFORM_KEY);
    command
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
