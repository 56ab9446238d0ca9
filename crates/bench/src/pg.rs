//! A PostgreSQL cluster of the benchmark's own, on a free loopback port in
//! a temporary directory, with PostgreSQL's durable defaults (fsync on,
//! synchronous_commit on): the test harness's cluster turns those off,
//! which would flatter the figures. Stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    dir: PathBuf,
    port: u16,
}

fn find_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    dirs.sort();
    dirs.into_iter()
        .rev()
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// `program` as the postgres user when we are root (PostgreSQL refuses root).
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{what}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

impl Postgres {
    /// Starts a cluster, or says why there is none.
    pub fn start() -> Result<Postgres, String> {
        let bin = find_bin()
            .ok_or("no PostgreSQL under /usr/lib/postgresql (scripts/ensure-postgres)")?;
        let dir = std::env::temp_dir().join(format!("hookwire-bench-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        if is_root() {
            run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&dir),
                "chown",
            )?;
        }
        let data = dir.join("data");
        run(
            as_postgres(&bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8"]),
            "initdb",
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| e.to_string())?;
        let pg = Postgres {
            bin,
            data,
            dir,
            port,
        };
        run(
            as_postgres(&pg.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&pg.data)
                .arg("-l")
                .arg(pg.dir.join("server.log"))
                .arg("-o")
                .arg(format!(
                    "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 {}",
                    pg.port,
                    pg.dir.display(),
                    // For profiling only, e.g. "-c log_min_duration_statement=10";
                    // the published figures run without it.
                    std::env::var("HOOKWIRE_BENCH_PG_OPTIONS").unwrap_or_default()
                ))
                .args(["-w", "start"]),
            "pg_ctl start",
        )?;
        Ok(pg)
    }

    /// The postmaster's process id (the first line of `postmaster.pid`),
    /// whose children are the cluster's processes.
    pub fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Creates an empty database and answers its URL.
    pub fn fresh_database(&self, name: &str) -> Result<String, String> {
        run(
            as_postgres(&self.bin.join("createdb")).args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                name,
            ]),
            "createdb",
        )?;
        Ok(format!(
            "postgres://postgres@127.0.0.1:{}/{name}",
            self.port
        ))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
