//! Wiring: settings in, a running hookwire out (store, dispatcher, HTTP API),
//! and an orderly shutdown that drains.

use crate::api::{self, AppState};
use crate::config::{DatabaseUrl, Settings};
use crate::engine::alerts::{self, Alerter};
use crate::engine::attempt::Sender;
use crate::engine::dispatcher::Dispatcher;
use crate::engine::heartbeat;
use crate::engine::retry::RetryPolicy;
use crate::engine::{Engine, EngineSettings};
use crate::secret::{hmac_sha256, random_hex, Cipher, Secret};
use crate::service::Service;
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the platform key came from, for the start-up message.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `HOOKWIRE_PLATFORM_KEY` in the environment.
    Environment,
    /// `platform_key` in a config file.
    ConfigFile,
    File {
        path: PathBuf,
        generated: bool,
    },
}

pub struct RunningServer {
    pub addr: SocketAddr,
    pub key_source: KeySource,
    pub store: Arc<dyn Store>,
    stop: CancellationToken,
    http: JoinHandle<std::io::Result<()>>,
    dispatcher: Dispatcher,
    /// The operator alerts' sender, when there is an operator endpoint.
    alerts: Option<JoinHandle<()>>,
    /// Stops the heartbeat: last, once nothing acts on leases any more.
    heartbeat_stop: CancellationToken,
    settings: Settings,
}

/// The platform key: configured, or read from (or generated into) the data directory.
pub fn platform_key(settings: &Settings) -> Result<(Secret, KeySource), BoxError> {
    if let Some(key) = &settings.platform_key {
        // The environment overrides the file, so a set variable is the source.
        let from_env = std::env::var("HOOKWIRE_PLATFORM_KEY")
            .is_ok_and(|v| !v.trim().is_empty() && v.trim() == key.expose());
        let source = if from_env {
            KeySource::Environment
        } else {
            KeySource::ConfigFile
        };
        return Ok((key.clone(), source));
    }
    let path = settings.data_dir.join("platform.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let key = text.trim().to_string();
        if !key.is_empty() {
            return Ok((
                Secret::new(key),
                KeySource::File {
                    path,
                    generated: false,
                },
            ));
        }
    }
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
        format!(
            "creating data directory {}: {e}",
            settings.data_dir.display()
        )
    })?;
    let key = format!("hwp_{}", random_hex(24));
    write_private(&path, &key).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok((
        Secret::new(key),
        KeySource::File {
            path,
            generated: true,
        },
    ))
}

/// The key that encrypts secrets at rest: configured, or read from (or
/// generated into) `<data_dir>/encryption.key`.
pub fn encryption_key(settings: &Settings) -> Result<Cipher, BoxError> {
    if let Some(key) = &settings.encryption_key {
        return Ok(Cipher::from_base64(key.expose())?);
    }
    let path = settings.data_dir.join("encryption.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if !text.trim().is_empty() {
            return Cipher::from_base64(&text)
                .map_err(|e| format!("{}: {e}", path.display()).into());
        }
    }
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
        format!(
            "creating data directory {}: {e}",
            settings.data_dir.display()
        )
    })?;
    let key = Cipher::generate_key();
    write_private(&path, &key).map_err(|e| format!("writing {}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), "generated the encryption key for secrets at rest");
    Ok(Cipher::from_base64(&key)?)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(format!("{text}\n").as_bytes())?;
    file.sync_all()
}

/// Opens the configured database and brings its schema up to date. A node
/// about to serve (`recover`) also takes back work a crash left behind.
pub async fn open_store(settings: &Settings, recover: bool) -> Result<Arc<dyn Store>, BoxError> {
    match &settings.database {
        DatabaseUrl::Sqlite(path) => {
            let sqlite =
                SqliteStore::open(path, &settings.sqlite_synchronous, settings.sqlite_max_size)
                    .map_err(|e| format!("opening {}: {e}", settings.database))?;
            if recover {
                let voided = sqlite.void_leases().await?;
                if voided > 0 {
                    tracing::info!(
                        deliveries = voided,
                        "resuming deliveries that were in flight at the last stop"
                    );
                }
            }
            Ok(Arc::new(sqlite))
        }
        DatabaseUrl::Postgres(url) => {
            let store = PgStore::connect(url.expose(), settings.pg_pool_size)
                .await
                .map_err(|e| format!("opening {}: {e}", settings.database))?;
            Ok(Arc::new(store))
        }
    }
}

/// Serves `app` over TLS on `listener` until `stop`, then drains within
/// `grace`. SIGHUP reads the certificate files again: new handshakes use the
/// new certificate, connections already open keep theirs. A file that does
/// not load is reported and the certificate in use stays.
fn serve_https(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    files: &crate::config::TlsFiles,
    stop: CancellationToken,
    grace: std::time::Duration,
) -> Result<JoinHandle<std::io::Result<()>>, BoxError> {
    let config =
        axum_server::tls_rustls::RustlsConfig::from_config(crate::tls::server_config(files)?);
    let handle = axum_server::Handle::new();
    let server =
        axum_server::from_tcp_rustls(listener.into_std()?, config.clone())?.handle(handle.clone());
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = signal(SignalKind::hangup())?;
        let (files, stopped) = (files.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.cancelled() => return,
                    got = hangups.recv() => if got.is_none() { return },
                }
                match crate::tls::server_config(&files) {
                    Ok(new) => {
                        config.reload_from_config(new);
                        tracing::info!("TLS certificate reloaded");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "TLS certificate not reloaded; the one in use stays")
                    }
                }
            }
        });
    }
    tokio::spawn(async move {
        stop.cancelled().await;
        handle.graceful_shutdown(Some(grace));
    });
    Ok(tokio::spawn(async move {
        server.serve(app.into_make_service()).await
    }))
}

/// Removes expired web app sessions and portal links once a minute until
/// `stop` (every node may: the deletes are idempotent).
async fn prune_web_sessions(store: Arc<dyn Store>, stop: CancellationToken) {
    loop {
        if let Err(e) = store.prune_web_sessions(crate::store::now_millis()).await {
            tracing::warn!(error = %e, "pruning expired web sessions failed");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
        }
    }
}

impl RunningServer {
    /// Starts everything and begins listening; returns once the port is bound.
    pub async fn start(settings: Settings) -> Result<RunningServer, BoxError> {
        let (platform_key, key_source) = platform_key(&settings)?;
        let token_secret = settings.token_secret.clone().unwrap_or_else(|| {
            Secret::new(hex::encode(hmac_sha256(
                platform_key.expose().as_bytes(),
                b"hookwire token secret",
            )))
        });
        let cipher = encryption_key(&settings)?;
        let store = open_store(&settings, true).await?;
        let sender = Sender::new(&settings.delivery, token_secret.clone(), cipher.clone())?;
        let metrics = crate::telemetry::Metrics::new();
        // Joined before anything leases: a node is fresh from its start.
        let heartbeat_stop = CancellationToken::new();
        let liveness =
            heartbeat::start(store.clone(), metrics.clone(), heartbeat_stop.clone()).await?;
        let alerter = settings
            .operator_webhook
            .as_ref()
            .map(|_| Alerter::new(store.clone(), settings.failed_alert_window));
        let dispatcher = Dispatcher::start(
            store.clone(),
            sender.clone(),
            settings.delivery.clone(),
            metrics.clone(),
            alerter.clone(),
            liveness.clone(),
        );
        let alert_wake = alerter.as_ref().map(Alerter::wake_signal);
        let prune_metrics = metrics.clone();
        let engine = Arc::new(
            Engine::new(
                store.clone(),
                dispatcher.handle.clone(),
                EngineSettings {
                    token_secret,
                    token_ttl: settings.token_ttl,
                    lease: settings.delivery.lease,
                    max_backlog: settings.max_backlog,
                    metrics,
                    alerter,
                    backlog_alert_threshold: settings.backlog_alert_threshold,
                },
            )
            .with_sender(sender),
        );
        let service = Arc::new(Service::new(
            store.clone(),
            dispatcher.handle.clone(),
            cipher,
            settings.secret_rotation_grace,
            settings.portal.link_ttl,
            settings.retention.default,
        ));
        let sealed = service.seal_legacy_passwords().await?;
        if sealed > 0 {
            tracing::info!(
                webhooks = sealed,
                "encrypted URL passwords stored in the clear"
            );
        }
        let stop = CancellationToken::new();
        tokio::spawn(engine.clone().track_backlog(stop.clone()));
        tokio::spawn(
            engine
                .clone()
                .log_summaries(settings.log_summary_interval, stop.clone()),
        );
        tokio::spawn(prune_web_sessions(store.clone(), stop.clone()));
        tokio::spawn(crate::engine::prune::run(
            store.clone(),
            settings.retention,
            prune_metrics,
            stop.clone(),
        ));
        let state = AppState::new(store.clone(), engine, service, platform_key, &settings);
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .map_err(|e| format!("listening on {}: {e}", settings.listen))?;
        let addr = listener.local_addr()?;
        let app = api::router(state);
        let alerts = match (&settings.operator_webhook, alert_wake) {
            (Some(endpoint), Some(wake)) => {
                let d = &settings.delivery;
                let send = alerts::send::SendSettings {
                    endpoint: endpoint.clone(),
                    // The deliveries' schedule; an operator's endpoint
                    // sending Retry-After gets no say.
                    retry: RetryPolicy {
                        schedule: d.retry_schedule.clone(),
                        jitter: d.retry_jitter,
                        max_retry_after: d.max_retry_after,
                    },
                    timeout: d.attempt_timeout,
                    lease: d.lease,
                    poll_interval: d.poll_interval,
                };
                let task =
                    alerts::send::spawn(store.clone(), send, liveness.clone(), wake, stop.clone())?;
                Some(task)
            }
            _ => None,
        };
        let http = match &settings.tls {
            None => {
                let stopped = stop.clone();
                tokio::spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async move { stopped.cancelled().await })
                        .await
                })
            }
            Some(files) => {
                serve_https(listener, app, files, stop.clone(), settings.shutdown_grace)?
            }
        };
        Ok(RunningServer {
            addr,
            key_source,
            store,
            stop,
            http,
            dispatcher,
            alerts,
            heartbeat_stop,
            settings,
        })
    }

    /// `https` when it serves TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.settings.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Stops accepting requests, lets requests and attempts in flight finish
    /// within the grace period, and gives queued work back to the database.
    /// The heartbeat stops last: while it beats, no other node takes over
    /// the leases of attempts still finishing.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let grace = self.settings.shutdown_grace;
        if tokio::time::timeout(grace, self.http).await.is_err() {
            tracing::warn!("HTTP requests still open after the grace period");
        }
        self.dispatcher.shutdown(grace).await;
        if let Some(alerts) = self.alerts {
            // An alert still unsent is claimed again once its lease runs out.
            if tokio::time::timeout(grace, alerts).await.is_err() {
                tracing::warn!("operator alerts still sending after the grace period");
            }
        }
        self.heartbeat_stop.cancel();
    }
}
