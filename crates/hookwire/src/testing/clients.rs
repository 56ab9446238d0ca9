//! Published clients that the tests hold hookwire to, rather than our own
//! reading of a specification: `scripts/python-clients` installs them,
//! pinned, from PyPI into `target/python-clients-venv`, and the functions
//! here run them on what a test received.

use super::Received;
use base64::Engine as _;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The venv's python, if `scripts/python-clients` has installed it.
pub(super) fn python() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let python = target.join("python-clients-venv/bin/python");
    python.exists().then_some(python)
}

/// Verifies a signed request with `standardwebhooks` (the Standard Webhooks
/// reference library) under `secret` (`whsec_...`): `Ok` when it accepts
/// the body and the `webhook-*` headers, `Err` with its complaint when not.
/// Without the venv the check fails under CI and is skipped, saying so,
/// elsewhere.
pub fn standardwebhooks_verifies(secret: &str, received: &Received) -> Result<(), String> {
    let Some(python) = python() else {
        let msg = "standardwebhooks is not installed: run scripts/python-clients";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED the standardwebhooks check: {msg}");
        return Ok(());
    };
    let headers: serde_json::Map<String, serde_json::Value> = received
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.into())))
        .collect();
    let input = serde_json::json!({
        "secret": secret,
        "body": base64::engine::general_purpose::STANDARD.encode(&received.body),
        "headers": headers,
    });
    let script = "import base64, json, sys\n\
                  from standardwebhooks import Webhook\n\
                  i = json.load(sys.stdin)\n\
                  Webhook(i['secret']).verify(base64.b64decode(i['body']), i['headers'])\n\
                  print('verified')\n";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("python did not start: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() && String::from_utf8_lossy(&out.stdout).contains("verified") {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}
