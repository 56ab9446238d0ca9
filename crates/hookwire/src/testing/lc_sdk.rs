//! LiveChat's official Python SDK (`lc-sdk-python`, installed pinned by
//! `scripts/python-clients` into the same venv as `standardwebhooks`), run
//! by tests: a script given as text reads its input as JSON on stdin and
//! prints its answer on stdout.

use super::clients::python;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `script` on `input` with the SDK, `SSL_CERT_FILE` set to `ca` (the
/// test certificate the SDK's HTTPS client is to trust): `Some(Ok(stdout))`
/// when it succeeds, `Some(Err(stderr))` when not. Without the venv it
/// fails under CI and is `None` (skipped, saying so) elsewhere.
pub fn run_lc_sdk(
    script: &str,
    input: &serde_json::Value,
    ca: Option<&Path>,
) -> Option<Result<String, String>> {
    let Some(python) = python() else {
        let msg = "lc-sdk-python is not installed: run scripts/python-clients";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED the lc-sdk-python check: {msg}");
        return None;
    };
    let mut command = Command::new(python);
    command.args(["-c", script]);
    if let Some(ca) = ca {
        command.env("SSL_CERT_FILE", ca);
    }
    let mut child = match command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Some(Err(format!("python did not start: {e}"))),
    };
    if let Err(e) = child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.to_string().as_bytes())
    {
        return Some(Err(e.to_string()));
    }
    Some(match child.wait_with_output() {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )),
        Err(e) => Err(e.to_string()),
    })
}
