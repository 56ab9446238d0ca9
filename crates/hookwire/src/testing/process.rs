//! The built `hookwire` binary as a child process, for tests that kill it,
//! signal it, run several of it, or read its logs: started on port 0 and
//! waited for until it prints the address it listens on, and killed when
//! dropped, so a failing assertion leaves nothing running.
//!
//! The library cannot name the binary itself (`CARGO_BIN_EXE_hookwire` only
//! exists in the crate's own integration tests), so callers pass its path.

use super::wait::eventually;
use super::PLATFORM_KEY;
use crate::config::DatabaseUrl;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// How long a process may take to exit after SIGTERM: its shutdown grace
/// plus a loaded machine's slack.
const EXIT_DEADLINE: Duration = Duration::from_secs(30);

/// A running `hookwire serve`.
pub struct Serving {
    pub child: Child,
    /// `http://127.0.0.1:<port>` (`https` when it serves TLS), as the process printed it.
    pub url: String,
}

/// `binary serve` on a loopback port 0, delivering to loopback, with the
/// tests' platform key; add the rest (data directory, database, settings).
pub fn serve_command(binary: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--allow-private-targets",
        ])
        .env("HOOKWIRE_PLATFORM_KEY", PLATFORM_KEY);
    command
}

/// `database` as the `--database` argument takes it.
pub fn database_arg(database: &DatabaseUrl) -> String {
    match database {
        DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        DatabaseUrl::Postgres(url) => url.expose().to_string(),
    }
}

impl Serving {
    /// Runs `command` (a `hookwire serve` on port 0, or a wrapper that execs
    /// one) and waits for the address it prints first, which it prints once
    /// it listens; `None` if it exits without printing one. Its stdout keeps
    /// being drained so it never blocks on a full pipe.
    pub fn spawn(mut command: Command) -> Option<Self> {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("the command starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let Some(Ok(first)) = lines.next() else {
            let status = child.wait().unwrap();
            eprintln!("the server exited without printing its address: {status}");
            return None;
        };
        let url = first.rsplit(' ').next().unwrap().to_string();
        assert!(
            url.starts_with("http://127.0.0.1:") || url.starts_with("https://127.0.0.1:"),
            "{first}"
        );
        std::thread::spawn(move || for _ in lines {});
        Some(Self { child, url })
    }

    /// SIGKILL, and reaps it: nothing it had not committed survives.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM (a graceful shutdown) without waiting for it.
    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// SIGSTOP: the process is frozen as it is, connections open, until
    /// [`resume`](Self::resume) (a paused VM, a stalled host).
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} {}", self.child.id());
    }

    /// Waits (without blocking the runtime, whose receivers may be what the
    /// process is draining to) until it has exited.
    pub async fn exited(&mut self) -> ExitStatus {
        let child = &mut self.child;
        eventually("the server to exit", EXIT_DEADLINE, async || {
            child.try_wait().unwrap().ok_or("still running")
        })
        .await
    }

    /// Sends SIGTERM and asserts a clean exit.
    pub async fn terminate(mut self) {
        self.sigterm();
        let status = self.exited().await;
        assert!(status.success(), "exit 0 on SIGTERM: {status}");
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
