//! The hookwire under test: the real binary as a child process (so its RSS
//! and CPU can be read from /proc), with its own data directory and config
//! file, plus the API calls that set licenses and webhooks up and read its
//! metrics.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const PLATFORM_KEY: &str = "bench-platform-key-0123456789abcdef";
pub const LICENSE: &str = "1";

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub struct Hookwire {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
    /// The license's API key, once `setup` ran.
    pub key: String,
    pub postgres: bool,
}

impl Drop for Hookwire {
    /// SIGTERM first (a profiler wrapping hookwire writes its data on a
    /// clean exit), then SIGKILL if it has not gone within 20 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `bin serve` on a free loopback port. `config` is extra TOML;
/// `env` extra environment variables (settings the config file may not
/// know yet: the environment layer ignores keys it does not know).
pub fn start(
    bin: &Path,
    database: Option<&str>,
    config: &str,
    env: &[(&str, &str)],
) -> Result<Hookwire, BoxError> {
    let dir = tempfile::Builder::new()
        .prefix("hookwire-bench-")
        .tempdir()?;
    let config_path = dir.path().join("bench.toml");
    std::fs::write(
        &config_path,
        format!("listen = \"127.0.0.1:0\"\nallow_private_targets = true\n{config}\n"),
    )?;
    let stderr = std::fs::File::create(dir.path().join("stderr.log"))?;
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .arg("--config")
        .arg(&config_path)
        .arg("--data-dir")
        .arg(dir.path());
    if let Some(db) = database {
        cmd.args(["--database", db]);
    }
    cmd.envs(env.iter().copied());
    let mut child = cmd
        .env("HOOKWIRE_PLATFORM_KEY", PLATFORM_KEY)
        // Errors only, unless the run is being looked into.
        .env(
            "HOOKWIRE_LOG",
            std::env::var("BENCH_HOOKWIRE_LOG").unwrap_or_else(|_| "error".into()),
        )
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let first = match lines.next() {
        Some(Ok(line)) => line,
        _ => {
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
            return Err(format!("hookwire did not start: {log}").into());
        }
    };
    let url = first.rsplit(' ').next().unwrap_or_default().to_string();
    if !url.starts_with("http://127.0.0.1:") {
        return Err(format!("unexpected first line from hookwire: {first}").into());
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok(Hookwire {
        child,
        url,
        dir,
        key: String::new(),
        postgres: database.is_some(),
    })
}

impl Hookwire {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// (VmRSS, VmHWM) in bytes.
    pub fn rss(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(0, |kb| kb * 1024)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Bytes the SQLite database takes (main file, WAL, shared memory).
    pub fn sqlite_bytes(&self) -> u64 {
        let base: PathBuf = self.dir.path().join("hookwire.db");
        ["", "-wal", "-shm"]
            .iter()
            .filter_map(|s| std::fs::metadata(format!("{}{s}", base.display())).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Creates license `LICENSE` and keeps its API key.
    async fn create_license(&mut self, http: &reqwest::Client) -> Result<(), BoxError> {
        let r = http
            .post(format!("{}/api/v1/licenses", self.url))
            .bearer_auth(PLATFORM_KEY)
            .json(&json!({ "license_id": LICENSE }))
            .send()
            .await?;
        let body: Value = r.json().await?;
        self.key = body["api_key"]
            .as_str()
            .ok_or_else(|| format!("creating the license: {body}"))?
            .to_string();
        Ok(())
    }

    /// Creates the license and one webhook per URL (all for `chat_started`).
    pub async fn setup(
        &mut self,
        http: &reqwest::Client,
        urls: &[String],
    ) -> Result<Vec<String>, BoxError> {
        self.create_license(http).await?;
        let mut ids = Vec::new();
        for url in urls {
            let r = http
                .post(format!("{}/webhooks", self.url))
                .bearer_auth(&self.key)
                .json(&json!({"event_type": "chat_started", "data_types": ["chat", "visitor"], "url": url}))
                .send()
                .await?;
            let body: Value = r.json().await?;
            let id = body["events"][0]["id"]
                .as_str()
                .ok_or_else(|| format!("creating a webhook: {body}"))?;
            ids.push(id.to_string());
        }
        Ok(ids)
    }

    /// Creates the license and one webhook for `chat_started` at `url`
    /// through hookwire's own API (`POST /api/v1/webhooks`, the route that
    /// takes `"ordered"`), with `"ordered": true` when `ordered` (the field
    /// is left out otherwise, so a hookwire without ordered delivery takes
    /// the unordered webhook). Fails, with hookwire's answer, unless the
    /// webhook was created. Answers its id and the `ordered` hookwire
    /// echoed back, if any.
    pub async fn setup_webhook(
        &mut self,
        http: &reqwest::Client,
        url: &str,
        ordered: bool,
    ) -> Result<(String, Option<bool>), BoxError> {
        self.create_license(http).await?;
        let mut spec =
            json!({"event_type": "chat_started", "data_types": ["chat", "visitor"], "url": url});
        if ordered {
            spec["ordered"] = json!(true);
        }
        let r = http
            .post(format!("{}/api/v1/webhooks", self.url))
            .bearer_auth(&self.key)
            .json(&spec)
            .send()
            .await?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            let what = if ordered {
                "an ordered webhook (\"ordered\": true; does this hookwire have ordered delivery?)"
            } else {
                "a webhook"
            };
            return Err(format!("creating {what}: hookwire answered {status}: {text}").into());
        }
        let body: Value = serde_json::from_str(&text)?;
        let id = body["id"]
            .as_str()
            .ok_or_else(|| format!("creating a webhook: no id in {body}"))?;
        Ok((id.to_string(), body["ordered"].as_bool()))
    }

    /// Creates `tenants` licenses (`events::tenant_id`) and, for each, one
    /// webhook per URL `urls(tenant)` gives, `concurrency` API calls at a
    /// time (one license's calls run in order).
    pub async fn setup_tenants(
        &self,
        http: &reqwest::Client,
        tenants: usize,
        urls: impl Fn(usize) -> Vec<String>,
        concurrency: usize,
    ) -> Result<(), BoxError> {
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for tenant in 0..tenants {
            let (http, base, urls, slots) =
                (http.clone(), self.url.clone(), urls(tenant), slots.clone());
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await?;
                let body: Value = http
                    .post(format!("{base}/api/v1/licenses"))
                    .bearer_auth(PLATFORM_KEY)
                    .json(&json!({ "license_id": crate::events::tenant_id(tenant) }))
                    .send()
                    .await?
                    .json()
                    .await?;
                let key = body["api_key"]
                    .as_str()
                    .ok_or_else(|| format!("creating license {tenant}: {body}"))?
                    .to_string();
                for url in urls {
                    let r = http
                        .post(format!("{base}/webhooks"))
                        .bearer_auth(&key)
                        .json(&json!({"event_type": "chat_started", "data_types": ["chat", "visitor"], "url": url}))
                        .send()
                        .await?;
                    if !r.status().is_success() {
                        return Err(format!("creating a webhook: {}", r.text().await?).into());
                    }
                }
                Ok::<_, BoxError>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        Ok(())
    }

    /// hookwire's `/metrics` as (name with labels, value) pairs.
    pub async fn metrics(&self, http: &reqwest::Client) -> Result<Vec<(String, f64)>, BoxError> {
        let text = http
            .get(format!("{}/metrics", self.url))
            .send()
            .await?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                Some((name.to_string(), value.parse().ok()?))
            })
            .collect())
    }

    /// Pending deliveries, as the API pages them (stops counting at `limit`).
    pub async fn any_pending(&self, http: &reqwest::Client) -> Result<bool, BoxError> {
        let r = http
            .get(format!(
                "{}/api/v1/deliveries?state=pending&limit=1",
                self.url
            ))
            .bearer_auth(&self.key)
            .send()
            .await?;
        let body: Value = r.json().await?;
        let list = body["deliveries"]
            .as_array()
            .ok_or_else(|| format!("listing deliveries: {body}"))?;
        Ok(!list.is_empty())
    }

    /// Makes every failed delivery of the webhook pending and due now.
    pub async fn redeliver_failed(
        &self,
        http: &reqwest::Client,
        webhook: &str,
    ) -> Result<u64, BoxError> {
        let r = http
            .post(format!(
                "{}/api/v1/webhooks/{webhook}/redeliver?since=1970-01-01T00:00:00Z",
                self.url
            ))
            .bearer_auth(&self.key)
            .send()
            .await?;
        let body: Value = r.json().await?;
        body["redelivered"]
            .as_u64()
            .ok_or_else(|| format!("redelivering: {body}").into())
    }
}

/// The sum of every series of metric `name` (all its label sets), or None
/// when hookwire does not expose it.
pub fn metric(metrics: &[(String, f64)], name: &str) -> Option<f64> {
    let series: Vec<f64> = metrics
        .iter()
        .filter(|(k, _)| k == name || k.strip_prefix(name).is_some_and(|r| r.starts_with('{')))
        .map(|(_, v)| *v)
        .collect();
    (!series.is_empty()).then(|| series.iter().sum())
}

/// The one series of metric `name` whose labels include `label` (e.g.
/// `outcome="failed"`), or None.
pub fn metric_with(metrics: &[(String, f64)], name: &str, label: &str) -> Option<f64> {
    metrics
        .iter()
        .find(|(k, _)| k.starts_with(&format!("{name}{{")) && k.contains(label))
        .map(|(_, v)| *v)
}
