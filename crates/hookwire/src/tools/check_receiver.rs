//! `hookwire check-receiver URL`: sends the receiver every kind of webhook
//! hookwire can send (see [`samples`](super::samples)) plus a duplicate
//! delivery, exactly as hookwire would (headers, basic auth from the URL,
//! Standard Webhooks signatures with `--secret`), and prints a pass/fail
//! table of how it answered and how fast. A case passes on HTTP 200, which is
//! what hookwire counts as delivered; the exit status is non-zero if any fails.

use super::http_client;
use super::samples::{conformance_cases, Case};
use crate::server::BoxError;
use hookwire_receiver::Verifier;
use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// The receiver's URL; `https://user:password@host/path` sends basic auth.
    url: String,
    /// Sign every webhook with this Standard Webhooks secret (whsec_...).
    #[arg(long, env = "HOOKWIRE_SIGNING_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// The license id the webhooks carry.
    #[arg(long, default_value = "1025707")]
    license: String,
    /// How long to wait for each answer (hookwire's default attempt timeout).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// How the receiver answered one case.
struct Outcome {
    name: String,
    status: Option<u16>,
    elapsed: Duration,
    note: String,
}

impl Outcome {
    fn passed(&self) -> bool {
        self.status == Some(200)
    }
}

struct Target {
    client: reqwest::Client,
    url: reqwest::Url,
    basic: Option<(String, String)>,
    verifier: Option<Verifier>,
}

impl Target {
    async fn send(&self, name: &str, case: &Case) -> Outcome {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("hookwire/", env!("CARGO_PKG_VERSION")))
            .body(case.body.clone());
        if let Some(verifier) = &self.verifier {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            request = request
                .header("webhook-id", &case.event_unique_id)
                .header("webhook-timestamp", now.to_string())
                .header(
                    "webhook-signature",
                    verifier.sign(&case.event_unique_id, now, &case.body),
                );
        }
        if let Some((user, password)) = &self.basic {
            request = request.basic_auth(user, Some(password));
        }
        let start = Instant::now();
        let result = request.send().await;
        let (status, note) = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                let note = if status == 200 {
                    String::new()
                } else {
                    super::cut(&text.split_whitespace().collect::<Vec<_>>().join(" "), 60)
                };
                (Some(status), note)
            }
            Err(e) if e.is_timeout() => (None, "timed out".to_string()),
            Err(e) => (
                None,
                format!("connection failed: {}", super::cut(&e.to_string(), 60)),
            ),
        };
        Outcome {
            name: name.to_string(),
            status,
            elapsed: start.elapsed(),
            note,
        }
    }
}

pub async fn run(args: Args) -> Result<(), BoxError> {
    // Parsed as hookwire parses webhook URLs: http(s) only, credentials
    // percent-decoded and sent as basic auth, never in the request line.
    let target_url = hookwire_livechat::TargetUrl::parse(&args.url)?;
    let basic = target_url.credentials().map(|c| (c.user, c.password));
    let url = target_url.without_credentials();
    let verifier = args
        .secret
        .as_deref()
        .map(Verifier::new)
        .transpose()
        .map_err(|e| format!("--secret: {e}"))?;
    hookwire_livechat::event::validate_license_id(&args.license)?;
    let target = Target {
        client: http_client(args.timeout),
        url,
        basic,
        verifier,
    };

    let cases = conformance_cases(&args.license)?;
    println!(
        "Checking {} with {} webhooks ({})",
        target.url,
        cases.len() + 1,
        if target.verifier.is_some() {
            "signed"
        } else {
            "unsigned"
        }
    );
    let mut outcomes = Vec::with_capacity(cases.len() + 1);
    for case in &cases {
        outcomes.push(target.send(&case.name, case).await);
    }
    // At least once: a retry resends the same event_unique_id, and the
    // receiver must acknowledge it again (without doing the work twice).
    // The first event with all its data, where double work would hurt most.
    let full =
        &cases[super::samples::combinations(hookwire_livechat::EventType::ChatStarted).len() - 1];
    outcomes.push(
        target
            .send(&format!("duplicate delivery of {}", full.name), full)
            .await,
    );

    print_table(&outcomes);
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    println!(
        "{} passed, {failed} failed (a webhook counts as delivered only on HTTP 200)",
        outcomes.len() - failed
    );
    if failed > 0 {
        return Err(format!("{failed} of {} checks failed", outcomes.len()).into());
    }
    Ok(())
}

fn print_table(outcomes: &[Outcome]) {
    let width = outcomes
        .iter()
        .map(|o| o.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<width$}  {:>6}  {:>9}  RESULT",
        "CHECK", "STATUS", "TIME"
    );
    for o in outcomes {
        let status = o
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        let time = format!("{:.1} ms", o.elapsed.as_secs_f64() * 1000.0);
        let verdict = if o.passed() {
            "pass".to_string()
        } else {
            format!("FAIL {}", o.note)
        };
        println!(
            "{:<width$}  {status:>6}  {time:>9}  {}",
            o.name,
            verdict.trim_end()
        );
    }
}
