//! CPU time per process, read from /proc: hookwire's (`/proc/PID/stat`,
//! whose utime + stime cover all its threads, exited ones included), the
//! load generator's and the receiver's (each runs on a tokio runtime of its
//! own, whose threads are recorded as they start; their CPU is read from
//! `/proc/self/task/TID/stat`), and PostgreSQL's (the bench's own cluster:
//! the postmaster with the CPU of the children it has reaped, plus every
//! live child). Ticks are converted with `getconf CLK_TCK`, read once.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::runtime::{Handle, Runtime};

/// Clock ticks per second of /proc's CPU times (100 on Linux x86-64).
fn ticks_per_s() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t: &f64| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// The fields of a `stat` file after the command name (which may hold
/// spaces and parentheses, so the split is at the last `)`): index 0 is
/// field 3 (state), 1 is ppid, 11..=14 are utime, stime, cutime, cstime.
fn stat_fields(path: &str) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(path).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(
        rest.split_whitespace()
            .skip(1)
            .map(|f| f.parse::<i64>().unwrap_or(0).max(0) as u64)
            .collect(),
    )
}

const PPID: usize = 0;
const UTIME: usize = 10;
const STIME: usize = 11;
const CUTIME: usize = 12;
const CSTIME: usize = 13;

/// utime + stime of a process (all its threads) in ticks.
fn process_ticks(pid: u32) -> u64 {
    stat_fields(&format!("/proc/{pid}/stat")).map_or(0, |f| f[UTIME] + f[STIME])
}

/// A PostgreSQL cluster's CPU in ticks: the postmaster's own, that of the
/// backends it has reaped (cutime + cstime), and every live child's.
/// A backend that exits between two readings moves from the last term to
/// the second, so differences stay right.
pub fn cluster_ticks(postmaster: u32) -> u64 {
    let Some(own) = stat_fields(&format!("/proc/{postmaster}/stat")) else {
        return 0;
    };
    let mut total = own[UTIME] + own[STIME] + own[CUTIME] + own[CSTIME];
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(f) = stat_fields(&format!("/proc/{pid}/stat")) {
            if f[PPID] == postmaster as u64 {
                total += f[UTIME] + f[STIME];
            }
        }
    }
    total
}

/// This thread's id (the TID in /proc), read without libc.
fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// A tokio runtime for one role of the bench (generator or receiver),
/// whose threads are known so that their CPU time can be read.
pub struct Role {
    rt: Option<Runtime>,
    tids: Arc<Mutex<Vec<u32>>>,
}

impl Role {
    pub fn new(name: &str, threads: usize) -> std::io::Result<Role> {
        let tids = Arc::new(Mutex::new(Vec::new()));
        let seen = tids.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(name)
            .on_thread_start(move || {
                if let Some(tid) = current_tid() {
                    seen.lock().expect("the thread list").push(tid);
                }
            })
            .enable_all()
            .build()?;
        Ok(Role { rt: Some(rt), tids })
    }

    pub fn handle(&self) -> &Handle {
        self.rt
            .as_ref()
            .expect("the runtime runs until dropped")
            .handle()
    }

    /// Ticks used by each of the role's threads that still runs.
    fn ticks(&self) -> BTreeMap<u32, u64> {
        let tids = self.tids.lock().expect("the thread list").clone();
        tids.into_iter()
            .filter_map(|tid| {
                let f = stat_fields(&format!("/proc/self/task/{tid}/stat"))?;
                Some((tid, f[UTIME] + f[STIME]))
            })
            .collect()
    }
}

impl Drop for Role {
    /// Dropping a runtime blocks, which an async context forbids: shut it
    /// down in the background instead.
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// What one reading covers: hookwire's process, the two roles, and the
/// PostgreSQL cluster when there is one.
pub struct Meter<'a> {
    pub hookwire: Option<u32>,
    pub generator: &'a Role,
    pub receiver: &'a Role,
    pub postgres: Option<u32>,
}

/// CPU times at one moment, in ticks.
pub struct Reading {
    hookwire: Option<u64>,
    generator: BTreeMap<u32, u64>,
    receiver: BTreeMap<u32, u64>,
    postgres: Option<u64>,
}

impl Meter<'_> {
    pub fn read(&self) -> Reading {
        Reading {
            hookwire: self.hookwire.map(process_ticks),
            generator: self.generator.ticks(),
            receiver: self.receiver.ticks(),
            postgres: self.postgres.map(cluster_ticks),
        }
    }
}

/// Ticks each thread used between two readings (threads gone by `after`
/// count nothing: a role's threads live as long as its runtime).
fn threads_delta(before: &BTreeMap<u32, u64>, after: &BTreeMap<u32, u64>) -> u64 {
    after
        .iter()
        .map(|(tid, t)| t.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum()
}

/// CPU used between two readings, in microseconds per process.
#[derive(Clone, Copy, Default)]
pub struct Used {
    pub hookwire: Option<f64>,
    pub generator: f64,
    pub receiver: f64,
    pub postgres: Option<f64>,
}

impl Reading {
    pub fn until(&self, after: &Reading) -> Used {
        let us = |ticks: u64| ticks as f64 * 1e6 / ticks_per_s();
        let pair = |a: Option<u64>, b: Option<u64>| Some(us(b?.saturating_sub(a?)));
        Used {
            hookwire: pair(self.hookwire, after.hookwire),
            generator: us(threads_delta(&self.generator, &after.generator)),
            receiver: us(threads_delta(&self.receiver, &after.receiver)),
            postgres: pair(self.postgres, after.postgres),
        }
    }
}

impl Used {
    /// Microseconds per delivered event (or request), per process and in all.
    pub fn per(&self, deliveries: u64) -> Value {
        let n = deliveries.max(1) as f64;
        let total = self.hookwire.unwrap_or(0.0)
            + self.generator
            + self.receiver
            + self.postgres.unwrap_or(0.0);
        json!({
            "hookwire": self.hookwire.map(|v| v / n),
            "generator": self.generator / n,
            "receiver": self.receiver / n,
            "postgres": self.postgres.map(|v| v / n),
            "total": total / n,
            "deliveries": deliveries,
        })
    }
}

/// The median, process by process, of several `Used::per` values (rounds
/// of one scenario); a process absent from every round stays null.
pub fn median(per: &[Value]) -> Value {
    let field = |name: &str| {
        let mut v: Vec<f64> = per.iter().filter_map(|p| p[name].as_f64()).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    json!({
        "hookwire": field("hookwire"), "generator": field("generator"),
        "receiver": field("receiver"), "postgres": field("postgres"), "total": field("total"),
        "rounds": per.len(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process_and_thread() {
        let me = std::process::id();
        let fields = super::stat_fields(&format!("/proc/{me}/stat")).expect("our own stat");
        assert!(fields.len() > super::CSTIME);
        assert!(super::current_tid().is_some());
        assert!(super::ticks_per_s() > 0.0);
    }
}
