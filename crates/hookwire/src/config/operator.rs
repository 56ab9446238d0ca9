//! The operator alerts' settings: where hookwire sends its own events
//! (`operator_webhook_url`), the secret that signs them
//! (`operator_webhook_secret`), checked before use.

use super::ConfigError;
use crate::secret::Secret;

/// Where hookwire sends its own events (operator alerts).
#[derive(Clone)]
pub struct OperatorWebhook {
    pub url: url::Url,
    /// A `whsec_` secret: alerts are signed (Standard Webhooks) when set.
    pub secret: Option<Secret>,
}

impl std::fmt::Debug for OperatorWebhook {
    /// The URL may carry credentials or a token: only its host prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorWebhook")
            .field("host", &self.url.host_str())
            .field("signed", &self.secret.is_some())
            .finish()
    }
}

/// The operator's endpoint: an http(s) URL, or empty for none; its secret,
/// if any, a Standard Webhooks `whsec_` one. Errors never quote the secret.
pub(super) fn operator_webhook(
    url: &str,
    secret: Option<Secret>,
) -> Result<Option<OperatorWebhook>, ConfigError> {
    const KEY: &str = "operator_webhook_url";
    let url = url.trim();
    if url.is_empty() {
        return match secret {
            Some(_) => Err(ConfigError::invalid(
                KEY,
                "is empty, but operator_webhook_secret is set: alerts need somewhere to go",
            )),
            None => Ok(None),
        };
    }
    let parsed =
        url::Url::parse(url).map_err(|e| ConfigError::invalid(KEY, format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ConfigError::invalid(
            KEY,
            "must be an http:// or https:// URL",
        ));
    }
    if let Some(s) = &secret {
        if !crate::secret::is_standard_webhooks_secret(s.expose()) {
            return Err(ConfigError::invalid(
                "operator_webhook_secret",
                "must be a Standard Webhooks secret: whsec_ followed by base64",
            ));
        }
    }
    Ok(Some(OperatorWebhook {
        url: parsed,
        secret,
    }))
}

#[cfg(test)]
// figment's Jail fixes the closure's error type; it is large, and only tests use it.
#[allow(clippy::result_large_err)]
mod tests {
    use crate::config::{Overrides, Settings};

    #[test]
    fn operator_alert_settings_are_checked_and_name_their_key() {
        let s = Settings::defaults_with(&Overrides::default()).unwrap();
        assert!(s.operator_webhook.is_none());
        assert_eq!(s.backlog_alert_threshold, 100_000);
        figment::Jail::expect_with(|jail| {
            let load = || Settings::load(None, &Overrides::default());
            jail.set_env("HOOKWIRE_OPERATOR_WEBHOOK_URL", "ftp://ops.example/alerts");
            let err = load().unwrap_err().to_string();
            assert!(err.contains("operator_webhook_url"), "{err}");
            jail.set_env(
                "HOOKWIRE_OPERATOR_WEBHOOK_URL",
                "https://ops.example/alerts",
            );
            jail.set_env("HOOKWIRE_OPERATOR_WEBHOOK_SECRET", "hunter2hunter2");
            let err = load().unwrap_err().to_string();
            assert!(err.contains("operator_webhook_secret"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
            jail.set_env(
                "HOOKWIRE_OPERATOR_WEBHOOK_SECRET",
                "whsec_c2VjcmV0LXNlY3JldA==",
            );
            jail.set_env("HOOKWIRE_BACKLOG_ALERT_THRESHOLD", "5");
            let s = load().unwrap();
            let operator = s.operator_webhook.unwrap();
            assert_eq!(operator.url.as_str(), "https://ops.example/alerts");
            assert!(!format!("{operator:?}").contains("whsec_"));
            assert_eq!(s.backlog_alert_threshold, 5);
            jail.set_env("HOOKWIRE_OPERATOR_WEBHOOK_URL", "");
            let err = load().unwrap_err().to_string();
            assert!(err.contains("operator_webhook_url"), "{err}");
            Ok(())
        });
    }
}
