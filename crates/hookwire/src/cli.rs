//! The command line: `hookwire serve`, `hookwire licenses create`, `hookwire backup`, `hookwire config`,
//! and the integrator tools (`listen`, `trigger`, `check-receiver`, `replay`; see [`crate::tools`]).

use crate::config::{DatabaseUrl, LogFormat, Overrides, Settings, DEFAULT_CONFIG};
use crate::server::{self, BoxError, KeySource, RunningServer};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "hookwire",
    version,
    about = "A self-hosted webhook delivery server, LiveChat v2 compatible."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (HTTP API and delivery engine).
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<String>,
        /// Deliver to loopback and private addresses (trusted setups, tests).
        #[arg(long)]
        allow_private_targets: bool,
        /// Log lines on stderr: human (default) or json (overrides `log_format`).
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key; reread on SIGHUP).
        #[arg(long)]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long)]
        tls_key: Option<PathBuf>,
    },
    /// Manage licenses directly in the database.
    Licenses {
        #[command(subcommand)]
        command: LicenseCommand,
    },
    /// Create or upgrade the database schema, then exit (`serve` does this too).
    Migrate {
        #[command(flatten)]
        common: Common,
    },
    /// Copy a SQLite database while `serve` keeps running (PostgreSQL: use pg_dump).
    Backup {
        #[command(flatten)]
        common: Common,
        /// The file to write; it must not exist yet.
        #[arg(long)]
        to: PathBuf,
    },
    /// Print the default configuration file, with every key documented.
    Config,
    /// Receive webhooks locally and print them (for development).
    Listen(crate::tools::listen::Args),
    /// Send a sample event through a running hookwire.
    Trigger(crate::tools::trigger::Args),
    /// Run a conformance check against a webhook receiver.
    CheckReceiver(crate::tools::check_receiver::Args),
    /// Redeliver a license's deliveries since a time, in bulk.
    Replay(crate::tools::replay::Args),
    /// Print a shell completion script (e.g. `hookwire completions bash > /etc/bash_completion.d/hookwire`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page, hookwire(1), in roff (`hookwire man | man -l -`).
    Man,
}

#[derive(Subcommand)]
enum LicenseCommand {
    /// Create a license and print its API key (shown once).
    Create {
        license_id: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args)]
struct Common {
    /// A TOML config file (see `hookwire config`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB.
    #[arg(long)]
    database: Option<String>,
    /// Data directory (default ./hookwire-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl Common {
    /// The settings from every layer; `flags` are the command's own flags.
    fn settings(&self, flags: Overrides) -> Result<Settings, BoxError> {
        let overrides = Overrides {
            database: self.database.clone(),
            data_dir: self.data_dir.clone(),
            ..flags
        };
        Ok(Settings::load(self.config.as_deref(), &overrides)?)
    }
}

pub async fn run(cli: Cli) -> Result<(), BoxError> {
    match cli.command {
        Command::Serve {
            common,
            listen,
            allow_private_targets,
            log_format,
            tls_cert,
            tls_key,
        } => {
            let settings = common.settings(Overrides {
                listen,
                allow_private_targets: allow_private_targets.then_some(true),
                tls_cert,
                tls_key,
                ..Overrides::default()
            })?;
            init_logging(log_format.unwrap_or(settings.log_format));
            serve(settings).await
        }
        Command::Licenses {
            command: LicenseCommand::Create { license_id, common },
        } => {
            let settings = common.settings(Overrides::default())?;
            hookwire_livechat::event::validate_license_id(&license_id)?;
            let store = server::open_store(&settings, false).await?;
            let key = crate::service::create_license(store.as_ref(), &license_id).await?;
            println!("license {license_id} created");
            println!("API key (shown once, store it now): {}", key.expose());
            Ok(())
        }
        Command::Migrate { common } => {
            let settings = common.settings(Overrides::default())?;
            server::open_store(&settings, false).await?;
            println!("{}: schema is up to date", settings.database);
            Ok(())
        }
        Command::Backup { common, to } => {
            let settings = common.settings(Overrides::default())?;
            backup(&settings, &to).await
        }
        Command::Config => {
            print!("{DEFAULT_CONFIG}");
            Ok(())
        }
        Command::Listen(args) => crate::tools::listen::run(args).await,
        Command::Trigger(args) => crate::tools::trigger::run(args).await,
        Command::CheckReceiver(args) => crate::tools::check_receiver::run(args).await,
        Command::Replay(args) => crate::tools::replay::run(args).await,
        Command::Completions { shell } => {
            crate::manual::completions(shell, &mut std::io::stdout());
            Ok(())
        }
        Command::Man => Ok(crate::manual::man_page(&mut std::io::stdout())?),
    }
}

async fn serve(settings: Settings) -> Result<(), BoxError> {
    let database = settings.database.to_string();
    let data_dir = settings.data_dir.clone();
    let server = RunningServer::start(settings).await?;
    let url = format!("{}://{}", server.scheme(), server.addr);
    println!("hookwire listening on {url}");
    println!("  database: {database}");
    println!("  data directory: {}", data_dir.display());
    println!("  web app: {url}/ui (sign in with a license's API key, or the platform key)");
    // The next step's command, written so it works as printed.
    let bearer = match &server.key_source {
        KeySource::Environment => {
            println!("  platform key: from HOOKWIRE_PLATFORM_KEY");
            "$HOOKWIRE_PLATFORM_KEY".to_string()
        }
        KeySource::ConfigFile => {
            println!("  platform key: platform_key in the config file (set PK to it)");
            "$PK".to_string()
        }
        KeySource::File { path, generated } => {
            let verb = if *generated {
                "generated into"
            } else {
                "read from"
            };
            println!("  platform key: {verb} {}", path.display());
            format!("$(cat {})", shell_quote(&path.display().to_string()))
        }
    };
    println!("Create a license (prints its API key):");
    println!(
        "  curl -s -X POST {url}/api/v1/licenses -H \"Authorization: Bearer {bearer}\" -d '{{\"license_id\":\"1025707\"}}'"
    );
    wait_for_signal().await;
    tracing::info!("shutting down: finishing attempts in flight");
    server.shutdown().await;
    Ok(())
}

/// `hookwire backup`: SQLite's online copy, from this process, while the
/// server goes on serving.
async fn backup(settings: &Settings, to: &std::path::Path) -> Result<(), BoxError> {
    let source = match &settings.database {
        DatabaseUrl::Sqlite(path) => path.clone(),
        DatabaseUrl::Postgres(_) => {
            return Err(
                "hookwire backup copies SQLite databases; back PostgreSQL up with \
                        pg_dump (README, Operating)"
                    .into(),
            )
        }
    };
    let target = to.to_path_buf();
    let report =
        tokio::task::spawn_blocking(move || crate::store::sqlite::backup::backup(&source, &target))
            .await??;
    println!(
        "backed up {} to {} ({} bytes in {} ms); keep the encryption key apart from it",
        settings.database,
        to.display(),
        report.bytes,
        report.took.as_millis()
    );
    Ok(())
}

/// `text` as one shell word: unchanged when it is plainly safe, else in
/// single quotes.
fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

pub(crate) async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("HOOKWIRE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal: a file, journald or docker
    // would keep the escape codes, and NO_COLOR (no-color.org) turns it off.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
