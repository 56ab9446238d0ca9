//! "Notifying internal statusboard about a queued visitor": on
//! `visitor_queued`, make noise where the team will notice. Writes a terminal
//! bell and one line per queued visitor, and plays a sound file through
//! `aplay` or `paplay` when one is configured and a player is installed.

use crate::receiver::{self, Webhook};
use hookwire_livechat::payload::Visitor;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// Where alerts go: stdout for a terminal on the wall, anything else in tests.
pub type AlertSink = Arc<Mutex<dyn Write + Send>>;

pub struct Config {
    pub out: AlertSink,
    /// A sound to play per alert; without a player on PATH it is skipped.
    pub sound: Option<PathBuf>,
}

impl Config {
    pub fn stdout() -> Config {
        Config {
            out: Arc::new(Mutex::new(std::io::stdout())),
            sound: None,
        }
    }
}

/// The alert, bell included. Names come from visitors, so escapes are dropped.
pub fn alert_line(visitor: &Visitor) -> String {
    let id = receiver::printable(&visitor.id);
    match visitor.name.as_deref().map(receiver::printable) {
        Some(name) if !name.trim().is_empty() => {
            format!("\x07QUEUED: visitor {} ({id}) is waiting\n", name.trim())
        }
        _ => format!("\x07QUEUED: visitor {id} is waiting\n"),
    }
}

/// The first sound player on PATH.
pub fn find_player() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["paplay", "aplay"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
    })
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// Serves the receiver until the listener fails.
pub async fn run(listener: TcpListener, config: Config) -> std::io::Result<()> {
    // Looked up once: the player does not move while the board runs.
    let sound = match config.sound {
        Some(file) => match find_player() {
            Some(player) if !file.is_file() => {
                tracing::warn!(
                    "{} is not a file; {} will complain",
                    file.display(),
                    player.display()
                );
                Some((player, file))
            }
            Some(player) => Some((player, file)),
            None => {
                tracing::warn!("no aplay or paplay on PATH; alerts will be silent");
                None
            }
        },
        None => None,
    };
    let (out, sound) = (config.out, Arc::new(sound));
    receiver::serve(listener, "visitor_queued", move |hook: Webhook| {
        let (out, sound) = (out.clone(), sound.clone());
        async move {
            let Some(visitor) = hook.visitor else {
                tracing::warn!("visitor_queued without visitor data; add the `visitor` data type");
                return Ok(());
            };
            let line = alert_line(&visitor);
            {
                let mut out = out.lock().map_err(|_| "alert sink poisoned".to_string())?;
                out.write_all(line.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| format!("writing the alert: {e}"))?;
            }
            if let Some((player, file)) = sound.as_ref() {
                play(player, file);
            }
            Ok(())
        }
    })
    .await
}

/// Starts the player and lets it finish on its own; a broken player must not
/// turn an alert into a failed webhook.
fn play(player: &Path, file: &Path) {
    let child = tokio::process::Command::new(player)
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        // Waited on so it does not linger as a zombie.
        Ok(mut child) => {
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
        Err(e) => tracing::warn!("starting {}: {e}", player.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visitor(name: Option<&str>) -> Visitor {
        serde_json::from_value(serde_json::json!({"id": "S1354547427.0c151b0e1b", "name": name}))
            .unwrap()
    }

    #[test]
    fn alert_lines() {
        assert_eq!(
            alert_line(&visitor(Some("Mary Brown"))),
            "\x07QUEUED: visitor Mary Brown (S1354547427.0c151b0e1b) is waiting\n"
        );
        assert_eq!(
            alert_line(&visitor(None)),
            "\x07QUEUED: visitor S1354547427.0c151b0e1b is waiting\n"
        );
        assert_eq!(
            alert_line(&visitor(Some("\x1b]0;pwned\x07"))),
            "\x07QUEUED: visitor ]0;pwned (S1354547427.0c151b0e1b) is waiting\n"
        );
    }
}
