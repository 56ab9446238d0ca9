//! A throwaway PostgreSQL for tests: one cluster per test process, started
//! on a free loopback port in a temporary directory (as the `postgres` user
//! when running as root, since PostgreSQL refuses to run as root), with a
//! fresh database per test. A watchdog stops the cluster and removes its
//! directory when the test process ends. `HOOKWIRE_TEST_POSTGRES_URL` (or
//! `DATABASE_URL`) points the tests at an existing server instead.

use super::wait::wait_for;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tokio::sync::OnceCell;

static SERVER: OnceCell<Result<String, String>> = OnceCell::const_new();

/// The server's base URL (no database), or why there is none.
pub async fn server() -> Result<String, String> {
    SERVER.get_or_init(start).await.clone()
}

/// Creates an empty database and answers its URL.
pub async fn fresh_database() -> String {
    let base = server()
        .await
        .unwrap_or_else(|why| panic!("no PostgreSQL for tests: {why}"));
    let name = format!("hw_{}", crate::secret::random_hex(8));
    let (client, connection) =
        tokio_postgres::connect(&format!("{base}/postgres"), tokio_postgres::NoTls)
            .await
            .expect("connect to the test PostgreSQL");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    format!("{base}/{name}")
}

async fn start() -> Result<String, String> {
    for var in ["HOOKWIRE_TEST_POSTGRES_URL", "DATABASE_URL"] {
        if let Ok(url) = std::env::var(var) {
            if url.starts_with("postgres") {
                // Tests create their own databases next to the one named.
                let mut base = url::Url::parse(&url).map_err(|e| format!("{var}: {e}"))?;
                base.set_path("");
                return Ok(base.as_str().trim_end_matches('/').to_string());
            }
        }
    }
    let bin = find_bin_dir().ok_or(
        "initdb/postgres not found (install the postgresql package: scripts/ensure-postgres)",
    )?;
    let (base, dir) = tokio::task::spawn_blocking(move || launch(&bin))
        .await
        .map_err(|e| e.to_string())??;
    // Accepting TCP is not yet accepting logins: wait for a real one.
    let login = wait_for(Duration::from_secs(30), async || {
        tokio_postgres::connect(&format!("{base}/postgres"), tokio_postgres::NoTls)
            .await
            .map(drop)
    })
    .await;
    match login {
        Ok(()) => Ok(base),
        Err(why) => {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            Err(format!("postgres did not start ({why}): {log}"))
        }
    }
}

fn find_bin_dir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("initdb").exists() && dir.join("postgres").exists())
        .map(|dir| {
            std::fs::canonicalize(dir.join("postgres"))
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or(dir)
        })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

/// `cmd` as the postgres user when we are root.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Creates a cluster and starts its server under a watchdog; answers the
/// server's base URL and the cluster's directory, without waiting for it.
fn launch(bin: &Path) -> Result<(String, PathBuf), String> {
    let dir = std::env::temp_dir().join(format!("hookwire-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status();
        if !status.is_ok_and(|s| s.success()) {
            return Err(format!(
                "could not hand {} to the postgres user",
                dir.display()
            ));
        }
    }
    let data = dir.join("data");
    let out = as_postgres(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        .output()
        .map_err(|e| format!("running initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())?;
    // The watchdog: postgres runs as its child and is stopped (and its
    // directory removed) as soon as this test process is gone. The signal
    // goes to the postmaster itself (its pid file), since runuser does not
    // pass signals on.
    let runuser = if is_root() {
        "runuser -u postgres -- "
    } else {
        ""
    };
    let script = format!(
        "{runuser}{postgres} -D {data} -p {port} -k {dir} -c listen_addresses=127.0.0.1 \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400 \
         >{dir}/server.log 2>&1 & pg=$!; \
         while kill -0 {parent} 2>/dev/null; do sleep 1; done; \
         kill -INT $(head -1 {data}/postmaster.pid) 2>/dev/null; wait $pg; rm -rf {dir}",
        postgres = bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
        parent = std::process::id(),
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("starting postgres: {e}"))?;
    Ok((format!("postgres://postgres@127.0.0.1:{port}"), dir))
}

/// A PostgreSQL cluster of a test's own, which the test can stop and start
/// again (to play a database outage). Stopped and removed when dropped.
pub struct Dedicated {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Dedicated {
    /// Starts a new cluster; `None` when PostgreSQL is not installed.
    pub fn start() -> Option<Dedicated> {
        let bin = find_bin_dir()?;
        let dir =
            std::env::temp_dir().join(format!("hookwire-pg-own-{}", crate::secret::random_hex(4)));
        std::fs::create_dir_all(&dir).ok()?;
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .ok()?;
        }
        let ok = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .output()
            .ok()?
            .status
            .success();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let cluster = Dedicated { bin, dir, port };
        (ok && cluster.up()).then_some(cluster)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) -> bool {
        as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Starts (again) on the same port; true once it accepts connections.
    pub fn up(&self) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        self.pg_ctl(&[
            "-w",
            "-l",
            &self.dir.join("log").display().to_string(),
            "-o",
            &options,
            "start",
        ])
    }

    /// Stops at once, dropping every connection.
    pub fn down(&self) -> bool {
        self.pg_ctl(&["-w", "-m", "immediate", "stop"])
    }
}

impl Drop for Dedicated {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
