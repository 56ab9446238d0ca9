//! Configuration: the embedded defaults, then a TOML file, then `HOOKWIRE_*`
//! environment variables, then command-line flags; parsed into validated
//! [`Settings`] before anything uses them.

mod operator;

use crate::secret::Secret;
use crate::store::rules::retention::RetentionPeriod;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use operator::operator_webhook;
pub use operator::OperatorWebhook;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The embedded defaults, which double as the documented example config.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");

/// Every key the config accepts; environment variables are `HOOKWIRE_` + the
/// key in capitals.
const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database",
    "sqlite_synchronous",
    "pg_pool_size",
    "sqlite_max_size",
    "platform_key",
    "token_secret",
    "token_ttl",
    "encryption_key",
    "secret_rotation_grace",
    "disable_after",
    "max_retry_after",
    "max_backlog",
    "rate_limit_per_second",
    "allow_private_targets",
    "allowed_target_networks",
    "attempt_timeout",
    "retry_schedule",
    "v3_retry_schedule",
    "retry_jitter",
    "acknowledge",
    "per_target_concurrency",
    "max_in_flight",
    "lease",
    "poll_interval",
    "max_body_bytes",
    "shutdown_grace",
    "log_format",
    "tls_cert",
    "tls_key",
    "portal_link_ttl",
    "log_summary_interval",
    "portal_frame_ancestors",
    "operator_webhook_url",
    "operator_webhook_secret",
    "backlog_alert_threshold",
    "failed_alert_window",
    "retention",
    "prune_interval",
];

/// Lease time an attempt must leave unused beyond its timeout, so it ends
/// before the lease does even with some clock skew between nodes.
pub const LEASE_MARGIN: Duration = Duration::from_secs(2);

/// The config as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    listen: String,
    data_dir: PathBuf,
    database: String,
    sqlite_synchronous: String,
    pg_pool_size: usize,
    sqlite_max_size: u64,
    platform_key: Option<Secret>,
    token_secret: Option<Secret>,
    token_ttl: String,
    encryption_key: Option<Secret>,
    secret_rotation_grace: String,
    disable_after: String,
    max_retry_after: String,
    max_backlog: u64,
    rate_limit_per_second: f64,
    allow_private_targets: bool,
    allowed_target_networks: Schedule,
    attempt_timeout: String,
    retry_schedule: Schedule,
    v3_retry_schedule: Schedule,
    retry_jitter: f64,
    acknowledge: String,
    per_target_concurrency: usize,
    max_in_flight: usize,
    lease: String,
    poll_interval: String,
    max_body_bytes: usize,
    shutdown_grace: String,
    log_format: String,
    tls_cert: PathBuf,
    tls_key: PathBuf,
    portal_link_ttl: String,
    log_summary_interval: String,
    portal_frame_ancestors: Schedule,
    operator_webhook_url: String,
    operator_webhook_secret: Option<Secret>,
    backlog_alert_threshold: u64,
    failed_alert_window: String,
    retention: String,
    prune_interval: String,
}

/// A list as TOML writes it, or as one comma-separated string (the form an
/// environment variable gives).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Schedule {
    List(Vec<String>),
    Text(String),
}

fn list(value: Schedule) -> Vec<String> {
    match value {
        Schedule::List(list) => list,
        Schedule::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    }
}

/// Values given on the command line; `None` leaves the lower layers alone.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_private_targets: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
}

/// The PEM files hookwire serves HTTPS with; read at start and again on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    /// A `postgres://` URL; it may carry a password, so it is a secret.
    Postgres(Secret),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(ConfigError::invalid(
                    "database",
                    "sqlite:// needs a file path",
                ));
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            url.parse::<url::Url>().map_err(|e| {
                ConfigError::invalid("database", format!("invalid PostgreSQL URL: {e}"))
            })?;
            return Ok(DatabaseUrl::Postgres(Secret::new(url)));
        }
        Err(ConfigError::invalid(
            "database",
            "unsupported database URL; expected sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB",
        ))
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => match url.expose().parse::<url::Url>() {
                Ok(mut u) => {
                    if u.password().is_some() {
                        let _ = u.set_password(Some("****"));
                    }
                    write!(f, "{u}")
                }
                Err(_) => f.write_str("postgres://****"),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acknowledge {
    /// Only HTTP 200 acknowledges, as LiveChat documents.
    Only200,
    AnySuccess,
}

impl Acknowledge {
    pub fn accepts(self, status: u16) -> bool {
        match self {
            Acknowledge::Only200 => status == 200,
            Acknowledge::AnySuccess => (200..300).contains(&status),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// How deliveries are attempted and retried.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub attempt_timeout: Duration,
    pub retry_schedule: Vec<Duration>,
    /// LiveChat v3 deliveries' retry delays (`retry_schedule` when empty).
    pub v3_retry_schedule: Vec<Duration>,
    pub retry_jitter: f64,
    pub acknowledge: Acknowledge,
    pub per_target_concurrency: usize,
    pub max_in_flight: usize,
    pub lease: Duration,
    pub poll_interval: Duration,
    pub allow_private_targets: bool,
    /// Networks the SSRF guard lets through although they are private.
    pub allowed_target_networks: Vec<ipnet::IpNet>,
    /// A webhook whose every attempt failed for this long is disabled.
    pub disable_after: Duration,
    /// The longest a receiver's `Retry-After` may push the next attempt back.
    pub max_retry_after: Duration,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: DatabaseUrl,
    pub sqlite_synchronous: String,
    pub pg_pool_size: usize,
    /// The most bytes the SQLite database may grow to; 0 = no limit.
    pub sqlite_max_size: u64,
    pub platform_key: Option<Secret>,
    pub token_secret: Option<Secret>,
    pub token_ttl: Duration,
    /// 32 bytes in base64; `None` means read or generate `<data_dir>/encryption.key`.
    pub encryption_key: Option<Secret>,
    /// How long a rotated-out signing secret keeps signing alongside the new one.
    pub secret_rotation_grace: Duration,
    /// Pending and held deliveries past which ingest answers 503.
    pub max_backlog: u64,
    /// Requests per second per key (token bucket, burst of one second); 0 = off.
    pub rate_limit_per_second: f64,
    pub delivery: DeliverySettings,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    /// Serve HTTPS with these files; `None` serves plain HTTP.
    pub tls: Option<TlsFiles>,
    pub portal: PortalSettings,
    /// How often the INFO summary line (attempts, backlog) is logged.
    pub log_summary_interval: Duration,
    /// Operator alerts go here; `None`: none are kept or sent.
    pub operator_webhook: Option<OperatorWebhook>,
    /// Pending and held deliveries past which a `backlog.high` alert is sent; 0 = never.
    pub backlog_alert_threshold: u64,
    /// A license's `delivery.failed` alerts are at least this far apart.
    pub failed_alert_window: Duration,
    /// How long finished work is kept, and how often the prune runs.
    pub retention: RetentionSettings,
}

/// What is kept and for how long (README, "Retention").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    /// How long a finished delivery (and its event) is kept after it
    /// finished, for licenses without a retention of their own.
    pub default: RetentionPeriod,
    /// How often the background prune runs.
    pub prune_interval: Duration,
}

/// The web app embedded in a platform's own dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSettings {
    /// How long a portal link may wait to be opened.
    pub link_ttl: Duration,
    /// Origins (`https://dashboard.example.com`) allowed to frame the web
    /// app; empty refuses every frame.
    pub frame_ancestors: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("reading config: {0}")]
    Load(String),
}

impl ConfigError {
    fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

impl Settings {
    /// Loads every layer: defaults, `file`, the environment, `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_CONFIG));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Load(format!(
                    "{} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment
            .merge(Env::prefixed("HOOKWIRE_").only(KEYS))
            .merge(Serialized::defaults(overrides));
        let raw: RawSettings = figment
            .extract()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        Self::validate(raw)
    }

    /// The defaults alone plus `overrides`, ignoring the environment: for tests.
    pub fn defaults_with(overrides: &Overrides) -> Result<Self, ConfigError> {
        let raw: RawSettings = Figment::from(Toml::string(DEFAULT_CONFIG))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        Self::validate(raw)
    }

    fn validate(raw: RawSettings) -> Result<Self, ConfigError> {
        let listen = raw
            .listen
            .parse()
            .map_err(|e| ConfigError::invalid("listen", format!("{:?}: {e}", raw.listen)))?;
        let database = if raw.database.is_empty() {
            DatabaseUrl::Sqlite(raw.data_dir.join("hookwire.db"))
        } else {
            DatabaseUrl::parse(&raw.database)?
        };
        let sqlite_synchronous = raw.sqlite_synchronous.to_ascii_lowercase();
        if !matches!(sqlite_synchronous.as_str(), "full" | "normal") {
            return Err(ConfigError::invalid(
                "sqlite_synchronous",
                "must be \"full\" or \"normal\"",
            ));
        }
        let schedule = list(raw.retry_schedule);
        let retry_schedule = schedule
            .iter()
            .map(|s| duration("retry_schedule", s))
            .collect::<Result<Vec<_>, _>>()?;
        let v3_retry_schedule = list(raw.v3_retry_schedule)
            .iter()
            .map(|s| duration("v3_retry_schedule", s))
            .collect::<Result<Vec<_>, _>>()?;
        if !(0.0..1.0).contains(&raw.retry_jitter) {
            return Err(ConfigError::invalid(
                "retry_jitter",
                "must be at least 0 and below 1",
            ));
        }
        let acknowledge = match raw.acknowledge.as_str() {
            "200" => Acknowledge::Only200,
            "2xx" => Acknowledge::AnySuccess,
            other => {
                return Err(ConfigError::invalid(
                    "acknowledge",
                    format!("{other:?}: expected \"200\" or \"2xx\""),
                ))
            }
        };
        let attempt_timeout = duration("attempt_timeout", &raw.attempt_timeout)?;
        let lease = duration("lease", &raw.lease)?;
        if lease <= attempt_timeout {
            return Err(ConfigError::invalid(
                "lease",
                "must be longer than attempt_timeout",
            ));
        }
        if raw.per_target_concurrency == 0 || raw.max_in_flight == 0 {
            return Err(ConfigError::invalid(
                "per_target_concurrency",
                "concurrency limits must be at least 1",
            ));
        }
        let allowed_target_networks = list(raw.allowed_target_networks)
            .iter()
            .map(|cidr| {
                cidr.parse::<ipnet::IpNet>().map_err(|_| {
                    ConfigError::invalid(
                        "allowed_target_networks",
                        format!("{cidr:?} is not a network like 10.0.0.0/8 or fd00::/8"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let log_format = match raw.log_format.as_str() {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::invalid(
                    "log_format",
                    format!("{other:?}: expected human or json"),
                ))
            }
        };
        if !(raw.rate_limit_per_second >= 0.0 && raw.rate_limit_per_second.is_finite()) {
            return Err(ConfigError::invalid(
                "rate_limit_per_second",
                "must be 0 (off) or a positive number",
            ));
        }
        let non_empty = |s: Option<Secret>| s.filter(|s| !s.expose().is_empty());
        let encryption_key = non_empty(raw.encryption_key);
        if let Some(key) = &encryption_key {
            crate::secret::Cipher::from_base64(key.expose())
                .map_err(|m| ConfigError::invalid("encryption_key", m))?;
        }
        let tls = match (
            raw.tls_cert.as_os_str().is_empty(),
            raw.tls_key.as_os_str().is_empty(),
        ) {
            (true, true) => None,
            (false, false) => Some(TlsFiles {
                cert: raw.tls_cert,
                key: raw.tls_key,
            }),
            (false, true) => {
                return Err(ConfigError::invalid(
                    "tls_key",
                    "is required with tls_cert (both PEM files, or neither)",
                ))
            }
            (true, false) => {
                return Err(ConfigError::invalid(
                    "tls_cert",
                    "is required with tls_key (both PEM files, or neither)",
                ))
            }
        };
        let portal = PortalSettings {
            link_ttl: positive("portal_link_ttl", &raw.portal_link_ttl)?,
            frame_ancestors: list(raw.portal_frame_ancestors)
                .into_iter()
                .map(|o| origin("portal_frame_ancestors", &o))
                .collect::<Result<_, _>>()?,
        };
        let operator_webhook = operator_webhook(
            &raw.operator_webhook_url,
            non_empty(raw.operator_webhook_secret),
        )?;
        Ok(Settings {
            listen,
            data_dir: raw.data_dir,
            database,
            sqlite_synchronous,
            pg_pool_size: raw.pg_pool_size.max(1),
            sqlite_max_size: raw.sqlite_max_size,
            platform_key: non_empty(raw.platform_key),
            token_secret: non_empty(raw.token_secret),
            token_ttl: duration("token_ttl", &raw.token_ttl)?,
            encryption_key,
            secret_rotation_grace: duration("secret_rotation_grace", &raw.secret_rotation_grace)?,
            max_backlog: raw.max_backlog,
            rate_limit_per_second: raw.rate_limit_per_second,
            delivery: DeliverySettings {
                attempt_timeout,
                retry_schedule,
                v3_retry_schedule,
                retry_jitter: raw.retry_jitter,
                acknowledge,
                per_target_concurrency: raw.per_target_concurrency,
                max_in_flight: raw.max_in_flight,
                lease,
                poll_interval: duration("poll_interval", &raw.poll_interval)?,
                allow_private_targets: raw.allow_private_targets,
                allowed_target_networks,
                disable_after: duration("disable_after", &raw.disable_after)?,
                max_retry_after: duration("max_retry_after", &raw.max_retry_after)?,
            },
            max_body_bytes: raw.max_body_bytes,
            shutdown_grace: duration("shutdown_grace", &raw.shutdown_grace)?,
            log_format,
            tls,
            portal,
            log_summary_interval: positive("log_summary_interval", &raw.log_summary_interval)?,
            operator_webhook,
            backlog_alert_threshold: raw.backlog_alert_threshold,
            failed_alert_window: duration("failed_alert_window", &raw.failed_alert_window)?,
            retention: RetentionSettings {
                default: RetentionPeriod::parse(&raw.retention)
                    .map_err(|m| ConfigError::invalid("retention", m))?,
                prune_interval: positive("prune_interval", &raw.prune_interval)?,
            },
        })
    }
}

/// A duration above zero.
fn positive(key: &str, text: &str) -> Result<Duration, ConfigError> {
    let d = duration(key, text)?;
    if d.is_zero() {
        return Err(ConfigError::invalid(key, "must be longer than zero"));
    }
    Ok(d)
}

/// An origin as CSP's `frame-ancestors` takes it: scheme, host and optional
/// port, nothing else (no path, no wildcard beyond a leading `*.` label).
fn origin(key: &str, text: &str) -> Result<String, ConfigError> {
    let bad = || {
        ConfigError::invalid(
            key,
            format!("{text:?} is not an origin like https://dashboard.example.com"),
        )
    };
    let url = url::Url::parse(text.replacen("*.", "wildcard.", 1).as_str()).map_err(|_| bad())?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && !text.ends_with('/');
    if plain {
        Ok(text.to_string())
    } else {
        Err(bad())
    }
}

fn duration(key: &str, text: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        ConfigError::invalid(
            key,
            format!("{text:?} is not a duration like 10s or 5m: {e}"),
        )
    })
}

#[cfg(test)]
// figment's Jail fixes the closure's error type; it is large, and only tests use it.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented() {
        let s = Settings::defaults_with(&Overrides::default()).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.delivery.retry_schedule.len(), 10);
        let total: Duration = s.delivery.retry_schedule.iter().sum();
        let worst = total.as_secs_f64() * (1.0 + s.delivery.retry_jitter);
        assert!(
            worst < 6.0 * 3600.0,
            "10 retries must fit in 6 hours, even with jitter"
        );
        assert_eq!(s.delivery.acknowledge, Acknowledge::Only200);
        assert_eq!(
            s.database,
            DatabaseUrl::Sqlite("hookwire-data/hookwire.db".into())
        );
    }

    #[test]
    fn env_wins_over_file_and_parses_schedule_text() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "h.toml",
                "retry_schedule = [\"1s\"]\nlisten = \"127.0.0.1:9000\"",
            )?;
            jail.set_env("HOOKWIRE_RETRY_SCHEDULE", "200ms,1s,5m");
            let s = Settings::load(Some(Path::new("h.toml")), &Overrides::default()).unwrap();
            assert_eq!(s.listen.port(), 9000);
            assert_eq!(
                s.delivery.retry_schedule,
                [
                    Duration::from_millis(200),
                    Duration::from_secs(1),
                    Duration::from_secs(300)
                ]
            );
            Ok(())
        });
    }

    #[test]
    fn safety_defaults_and_a_bad_encryption_key() {
        let s = Settings::defaults_with(&Overrides::default()).unwrap();
        assert_eq!(s.secret_rotation_grace, Duration::from_secs(24 * 3600));
        assert_eq!(s.delivery.disable_after, Duration::from_secs(5 * 86_400));
        assert_eq!(s.delivery.max_retry_after, Duration::from_secs(3600));
        assert_eq!(s.max_backlog, 1_000_000);
        assert_eq!(s.rate_limit_per_second, 0.0);
        assert_eq!(s.sqlite_max_size, 0);
        assert!(s.encryption_key.is_none());
        figment::Jail::expect_with(|jail| {
            jail.set_env("HOOKWIRE_ENCRYPTION_KEY", "dG9vIHNob3J0");
            let err = Settings::load(None, &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("encryption_key"), "{err}");
            assert!(!err.to_string().contains("dG9vIHNob3J0"), "{err}");
            jail.set_env(
                "HOOKWIRE_ENCRYPTION_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            );
            jail.set_env("HOOKWIRE_RATE_LIMIT_PER_SECOND", "2.5");
            let s = Settings::load(None, &Overrides::default()).unwrap();
            assert!(s.encryption_key.is_some());
            assert_eq!(s.rate_limit_per_second, 2.5);
            Ok(())
        });
    }

    #[test]
    fn bad_values_name_their_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HOOKWIRE_ATTEMPT_TIMEOUT", "soon");
            let err = Settings::load(None, &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("attempt_timeout"), "{err}");
            jail.set_env("HOOKWIRE_ATTEMPT_TIMEOUT", "10s");
            for (key, env, bad) in [
                ("retention", "HOOKWIRE_RETENTION", "0s"),
                ("retention", "HOOKWIRE_RETENTION", "a month"),
                ("prune_interval", "HOOKWIRE_PRUNE_INTERVAL", "0s"),
            ] {
                jail.set_env(env, bad);
                let err = Settings::load(None, &Overrides::default()).unwrap_err();
                assert!(err.to_string().contains(&format!("`{key}`")), "{err}");
                jail.set_env("HOOKWIRE_RETENTION", "30d");
                jail.set_env("HOOKWIRE_PRUNE_INTERVAL", "1m");
            }
            jail.set_env("HOOKWIRE_RETENTION", "90s");
            let s = Settings::load(None, &Overrides::default()).unwrap();
            assert_eq!(s.retention.default.as_millis(), 90_000);
            Ok(())
        });
    }

    #[test]
    fn allowed_networks_come_as_a_list_or_text() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HOOKWIRE_ALLOWED_TARGET_NETWORKS", "10.0.0.0/8, fd00::/8");
            let s = Settings::load(None, &Overrides::default()).unwrap();
            assert_eq!(s.delivery.allowed_target_networks.len(), 2);
            jail.set_env("HOOKWIRE_ALLOWED_TARGET_NETWORKS", "10.0.0.0/33");
            let err = Settings::load(None, &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("allowed_target_networks"), "{err}");
            Ok(())
        });
    }
}
