//! HTTPS served by the real binary: a self-signed certificate made at test
//! time, the API and `/healthz` over TLS, and a certificate renewed on
//! SIGHUP without dropping the connections already open.

use crate::support::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A fresh self-signed certificate for 127.0.0.1 and localhost, as PEM
/// texts (certificate, private key).
pub(crate) fn self_signed() -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("a self-signed certificate");
    (made.cert.pem(), made.signing_key.serialize_pem())
}

/// Writes a certificate and key into `dir`, answering their paths.
pub(crate) fn write_pair(dir: &Path, (cert, key): &(String, String)) -> (PathBuf, PathBuf) {
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    // Written beside and renamed, as a renewal tool does, so the server
    // never reads half a file.
    std::fs::write(dir.join("cert.pem.new"), cert).unwrap();
    std::fs::write(dir.join("key.pem.new"), key).unwrap();
    std::fs::rename(dir.join("key.pem.new"), &k).unwrap();
    std::fs::rename(dir.join("cert.pem.new"), &c).unwrap();
    (c, k)
}

/// A client that trusts only `cert_pem`.
pub(crate) fn client_trusting(cert_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

fn start(dir: &Path, cert: &Path, key: &Path) -> Serving {
    let mut command = serve_command();
    command
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key);
    Serving::spawn(command).expect("hookwire starts with TLS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_is_served_over_https_and_a_renewed_certificate_loads_on_sighup() {
    let dir = tempfile::TempDir::new().unwrap();
    let first = self_signed();
    let (cert, key) = write_pair(dir.path(), &first);
    let server = start(dir.path(), &cert, &key);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );

    let old = client_trusting(&first.0);
    let r = old
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ok");
    let r = old
        .post(format!("{}/api/v1/licenses", server.url))
        .bearer_auth(PLATFORM_KEY)
        .json(&json!({"license_id": "443"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "the API over TLS");
    // Plain HTTP on the TLS port gets no answer it could read.
    let plain = server.url.replacen("https://", "http://", 1);
    let r = reqwest::get(format!("{plain}/healthz")).await;
    assert!(r.is_err() || r.unwrap().status() != 200);

    // A renewed certificate, then SIGHUP.
    let second = self_signed();
    write_pair(dir.path(), &second);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let renewed = client_trusting(&second.0);
    eventually(
        "the renewed certificate to be served",
        Duration::from_secs(10),
        async || {
            renewed
                .get(format!("{}/healthz", server.url))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| format!("{e:?}"))
        },
    )
    .await;
    // The connection opened before the reload is kept: the old client, whose
    // trust ends at the first certificate, still gets answers over it.
    let r = old
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the open connection survived the reload");
    // A new connection trusting only the first certificate is refused now.
    let r = client_trusting(&first.0)
        .get(format!("{}/healthz", server.url))
        .send()
        .await;
    assert!(r.is_err(), "new handshakes use the renewed certificate");

    // A broken file on SIGHUP keeps the certificate in use.
    std::fs::write(&cert, "not a certificate").unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..3 {
        let r = client_trusting(&second.0)
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    server.terminate().await;
}

#[test]
fn tls_settings_are_checked_before_serving() {
    let dir = tempfile::TempDir::new().unwrap();
    let (cert, key) = write_pair(dir.path(), &self_signed());
    let run = |args: &[&std::ffi::OsStr]| {
        let out = serve_command()
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = run(&["--tls-cert".as_ref(), cert.as_os_str()]);
    assert!(err.contains("tls_key"), "{err}");
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    let empty = dir.path().join("empty.pem");
    let err = run(&[
        "--tls-cert".as_ref(),
        empty.as_os_str(),
        "--tls-key".as_ref(),
        key.as_os_str(),
    ]);
    assert!(
        err.contains("tls_cert") && err.contains("no PEM certificate"),
        "{err}"
    );
}
