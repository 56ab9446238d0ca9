//! HTTPS: the certificate chain and private key read from PEM files into a
//! rustls server configuration, at start and again whenever the operator
//! asks (SIGHUP), so a renewed certificate takes effect without a restart.
//!
//! The crypto provider is named here (ring) rather than taken from the
//! process default: the dependency tree builds rustls with more than one
//! provider, and then no default is chosen for us.

use crate::config::TlsFiles;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// A server configuration from `files`, offering HTTP/2 and HTTP/1.1;
/// the error names the file and what is wrong with it.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, String> {
    let cert_path = files.cert.display();
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| format!("tls_cert {cert_path}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls_cert {cert_path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("tls_cert {cert_path}: no PEM certificate in it"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("tls_key {}: {e}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_cert and tls_key do not go together: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
