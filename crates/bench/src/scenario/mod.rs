//! The scenarios: each starts a fresh hookwire (fresh database) and fresh
//! receivers, drives load, waits until every delivery arrived, and answers
//! its figures as JSON, CPU per delivered event for each process included.
//! Progress goes to stderr while they run. This module holds what they
//! share and the baseline; the scenarios are in the submodules.

mod multitenant;
mod ordered;
mod prune;
mod shapes;
mod soak;
mod steady;

use crate::cpu::{self, Meter, Role, Used};
use crate::events::Events;
use crate::load::{self, Ingest, IngestTargets};
use crate::pg::Postgres;
use crate::process::{self, BoxError, Hookwire};
use crate::receiver::{Answer, Receiver};
use crate::Options;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// A run fails when nothing arrives for this long.
const STALL: Duration = Duration::from_secs(120);
const ANY: &str = "127.0.0.1:0";

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// The median of `v` (the upper one of an even count).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Waits until `count()` reaches `target`, printing progress and sampling
/// hookwire's RSS; answers the largest RSS seen.
async fn wait_for(
    label: &str,
    target: u64,
    count: impl Fn() -> u64,
    hw: &Hookwire,
    ingest: Option<&Ingest>,
) -> Result<u64, BoxError> {
    let mut rss_max = 0;
    let mut last = (0, std::time::Instant::now());
    let started = std::time::Instant::now();
    loop {
        let n = count();
        rss_max = rss_max.max(hw.rss().0);
        let sent = ingest.map_or(String::new(), |i| {
            format!("ingested {:>8} ", i.sent.load(Relaxed))
        });
        eprint!(
            "\r  [{label}] {sent}delivered {n:>8}/{target} ({:>7.0}/s) rss {:>5.1} MB   ",
            n as f64 / started.elapsed().as_secs_f64().max(1e-3),
            mb(hw.rss().0)
        );
        let _ = std::io::stderr().flush();
        if n >= target {
            eprintln!();
            return Ok(rss_max);
        }
        if n != last.0 {
            last = (n, std::time::Instant::now());
        } else if last.1.elapsed() > STALL {
            eprintln!();
            return Err(format!("[{label}] stalled at {n}/{target} deliveries").into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// p-th percentile (0..=100) of `v`, which must be sorted.
fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((p / 100.0) * (v.len() - 1) as f64).round() as usize]
}

/// End-to-end latencies in ms: ingest accepted -> receiver got it. An event
/// can arrive before its 202 reaches the generator; that counts as 0.
fn latencies(ingest: &Ingest, rx: &Receiver) -> Vec<f64> {
    latencies_from(&ingest.accepted, rx)
}

/// The same from when the ingest request was sent (includes ingest itself).
fn latencies_from(start: &[AtomicU64], rx: &Receiver) -> Vec<f64> {
    latencies_except(start, rx, |_| false)
}

/// The same from `start`, leaving out the events `skip` names (those a run
/// does not wait for, which never arrive: they would count as 0).
fn latencies_except(start: &[AtomicU64], rx: &Receiver, skip: impl Fn(usize) -> bool) -> Vec<f64> {
    let mut v: Vec<f64> = start
        .iter()
        .zip(rx.stats.arrivals.iter())
        .enumerate()
        .filter(|(seq, _)| !skip(*seq))
        .map(|(_, (a, r))| r.load(Relaxed).saturating_sub(a.load(Relaxed)) as f64 / 1e6)
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

pub(crate) struct Ctx<'a> {
    opts: &'a Options,
    bin: &'a Path,
    http: reqwest::Client,
    /// The runtimes the load generator and the receivers run on.
    generator: Role,
    receiver: Role,
    /// Every baseline measurement: (requests/s, CPU per request).
    baselines: Mutex<Vec<(f64, Value)>>,
}

impl Ctx<'_> {
    fn hookwire(&self, db: Option<&str>, config: &str) -> Result<Hookwire, BoxError> {
        self.hookwire_env(db, config, &[])
    }

    fn hookwire_env(
        &self,
        db: Option<&str>,
        config: &str,
        env: &[(&str, &str)],
    ) -> Result<Hookwire, BoxError> {
        process::start(
            self.bin,
            db,
            &format!("max_backlog = 100000000\nshutdown_grace = \"2s\"\n{config}"),
            env,
        )
    }

    /// A receiver on the receivers' runtime.
    fn receiver(&self, addr: &str, events: usize, answer: Answer) -> Result<Receiver, BoxError> {
        Ok(Receiver::start(
            self.receiver.handle(),
            addr.parse()?,
            events,
            answer,
        )?)
    }

    /// A receiver on the receivers' runtime for events spread over `chats`
    /// chats (`Events::over_chats`), which checks their order chat by chat.
    fn chat_receiver(
        &self,
        events: usize,
        chats: usize,
        answer: Answer,
    ) -> Result<Receiver, BoxError> {
        Ok(Receiver::start_chats(
            self.receiver.handle(),
            ANY.parse()?,
            events,
            chats,
            answer,
        )?)
    }

    /// The first baseline measured: what progress lines compare to.
    fn baseline(&self) -> f64 {
        self.baselines.lock().expect("the baselines")[0].0
    }

    /// Reads the CPU of hookwire (when given), the generator, the receiver
    /// and the PostgreSQL cluster (when given its postmaster).
    fn meter<'b>(&'b self, hw: Option<&Hookwire>, postgres: Option<u32>) -> Meter<'b> {
        Meter {
            hookwire: hw.map(Hookwire::pid),
            generator: &self.generator,
            receiver: &self.receiver,
            postgres,
        }
    }

    /// Closed-loop ingest of events 0..n into `hw`, on the generator's runtime.
    fn closed_loop(
        &self,
        hw: &Hookwire,
        events: Events,
        n: usize,
        per_request: usize,
        concurrency: usize,
        ingest: &Arc<Ingest>,
    ) -> Result<JoinHandle<Result<(), BoxError>>, BoxError> {
        Ok(self.generator.handle().spawn(load::closed_loop(
            IngestTargets::new(&hw.url)?,
            Arc::new(events),
            n,
            per_request,
            concurrency,
            ingest.clone(),
        )))
    }

    /// Open-loop ingest of events 0..n into `hw` at `rate`, on the generator's runtime.
    fn fixed_rate(
        &self,
        hw: &Hookwire,
        n: usize,
        rate: u64,
        ingest: &Arc<Ingest>,
    ) -> Result<JoinHandle<Result<(), BoxError>>, BoxError> {
        self.fixed_rate_seqs(hw, 0..n, rate, ingest)
    }

    /// Open-loop ingest of events `seqs` into `hw` at `rate`.
    fn fixed_rate_seqs(
        &self,
        hw: &Hookwire,
        seqs: std::ops::Range<usize>,
        rate: u64,
        ingest: &Arc<Ingest>,
    ) -> Result<JoinHandle<Result<(), BoxError>>, BoxError> {
        Ok(self.generator.handle().spawn(load::fixed_rate(
            IngestTargets::new(&hw.url)?,
            Arc::new(Events::single()),
            seqs,
            rate,
            ingest.clone(),
        )))
    }
}

pub async fn run_all(opts: &Options, bin: &Path) -> Result<Value, BoxError> {
    let mut out = json!({ "machine": machine(), "options": options_json(opts) });
    let ctx = Ctx {
        opts,
        bin,
        http: load::client(),
        generator: Role::new("bench-generator", opts.generator_threads)?,
        receiver: Role::new("bench-receiver", opts.receiver_threads)?,
        baselines: Mutex::new(Vec::new()),
    };
    let mut run_level = vec![measure_baseline(&ctx, "start").await?];
    let reqwest = measure_baseline_reqwest(&ctx).await?;

    if opts.runs("steady") {
        let (single, batch) = steady::rounds(&ctx, None).await?;
        out["footprint"] = json!({
            "idle_rss_bytes": single["idle_rss_bytes"],
            "rss_under_steady_bytes": single["rss_max_bytes"].as_u64().max(batch["rss_max_bytes"].as_u64()),
            "db_bytes_per_event": batch["db_bytes_per_event"],
        });
        out["steady"] = json!([single, batch]);
    }
    if opts.runs("postgres") {
        match Postgres::start() {
            Ok(pg) => {
                let (single, batch) = steady::rounds(&ctx, Some(&pg)).await?;
                let list = out["steady"].as_array_mut();
                match list {
                    Some(list) => list.extend([single, batch]),
                    None => out["steady"] = json!([single, batch]),
                }
            }
            Err(why) => {
                eprintln!("PostgreSQL skipped: {why}");
                out["postgres_skipped"] = json!(why);
            }
        }
    }
    // The machine's limit moves with whatever else runs on it: measured again
    // between the scenarios, and every ratio is taken against the highest.
    run_level.push(measure_baseline(&ctx, "middle").await?);
    if opts.runs("fixed") {
        let mut list = Vec::new();
        for &rate in &opts.rates {
            list.push(steady::fixed(&ctx, rate).await?);
        }
        out["fixed"] = json!(list);
    }
    if opts.runs("fanout") {
        out["fanout"] = shapes::fanout(&ctx).await?;
    }
    if opts.runs("isolation") {
        out["isolation"] = shapes::isolation(&ctx).await?;
    }
    if opts.runs("backlog") {
        let steady_rate = out["steady"][1]["delivered_per_s"].as_f64();
        out["backlog"] = shapes::backlog(&ctx, steady_rate).await?;
    }
    if opts.runs("multitenant") {
        out["multitenant"] = multitenant::run(&ctx, &out["steady"]).await?;
    }
    if opts.runs("ordered") {
        out["ordered"] = ordered::run(&ctx).await?;
    }
    if opts.runs("soak") {
        out["soak"] = soak::run(&ctx).await?;
    }
    if opts.runs("prune") {
        out["prune"] = prune::run(&ctx).await?;
    }
    run_level.push(measure_baseline(&ctx, "end").await?);
    let best = run_level.iter().copied().fold(0.0, f64::max);
    let every_cpu: Vec<Value> = ctx
        .baselines
        .lock()
        .expect("the baselines")
        .iter()
        .map(|(_, cpu)| cpu.clone())
        .collect();
    out["baseline"] = json!({ "requests": opts.events, "per_s": best, "samples_per_s": run_level,
        "concurrency": opts.concurrency, "body_bytes": crate::events::webhook_body(0).len(),
        "client": "hyper", "cpu_us_per_delivery": cpu::median(&every_cpu), "reqwest": reqwest });
    eprintln!("baseline: {best:.0}/s, the highest of {run_level:.0?}; ratios below are against it");
    for run in out["steady"].as_array_mut().into_iter().flatten() {
        run["ratio_to_baseline"] = json!(run["delivered_per_s"].as_f64().unwrap_or(0.0) / best);
    }
    if let Some(per_s) = out["fanout"]["deliveries_per_s"].as_f64() {
        out["fanout"]["ratio_to_baseline"] = json!(per_s / best);
    }
    for run in out["multitenant"]["runs"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        run["ratio_to_baseline"] = json!(run["deliveries_per_s"].as_f64().unwrap_or(0.0) / best);
    }
    for run in out["ordered"]["runs"].as_array_mut().into_iter().flatten() {
        run["ratio_to_baseline"] = json!(run["delivered_per_s"].as_f64().unwrap_or(0.0) / best);
    }
    Ok(out)
}

/// The bare hyper generator POSTing the webhook body straight to the
/// receiver: what this machine can do with no hookwire in between, right
/// now. Answers requests per second; every measurement and its CPU per
/// request are kept in `ctx.baselines`.
async fn measure_baseline(ctx: &Ctx<'_>, when: &str) -> Result<f64, BoxError> {
    eprintln!("baseline ({when}): the generator POSTs the webhook body straight to the receiver");
    let (per_s, cpu) = run_baseline(ctx, "baseline", false).await?;
    ctx.baselines
        .lock()
        .expect("the baselines")
        .push((per_s, cpu));
    Ok(per_s)
}

/// The same baseline with reqwest as the generator, once, for comparison.
async fn measure_baseline_reqwest(ctx: &Ctx<'_>) -> Result<Value, BoxError> {
    let (per_s, cpu) = run_baseline(ctx, "baseline/reqwest", true).await?;
    Ok(json!({ "per_s": per_s, "cpu_us_per_delivery": cpu }))
}

async fn run_baseline(ctx: &Ctx<'_>, label: &str, reqwest: bool) -> Result<(f64, Value), BoxError> {
    let n = ctx.opts.events;
    let rx = ctx.receiver(ANY, 1, Answer::Ok)?;
    let done = Arc::new(AtomicU64::new(0));
    let meter = ctx.meter(None, None);
    let before = meter.read();
    let run = if reqwest {
        ctx.generator.handle().spawn(load::baseline_reqwest(
            rx.url(0),
            n,
            ctx.opts.concurrency,
            done.clone(),
        ))
    } else {
        ctx.generator.handle().spawn(load::baseline(
            rx.url(0),
            n,
            ctx.opts.concurrency,
            done.clone(),
        ))
    };
    while !run.is_finished() {
        eprint!("\r  [{label}] {:>8}/{n}   ", done.load(Relaxed));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let per_s = run.await??;
    let cpu = before.until(&meter.read()).per(n as u64);
    eprintln!(
        "\r  [{label}] {n} requests: {per_s:.0}/s; CPU us per request: generator {:.1}, receiver {:.1}",
        cpu["generator"].as_f64().unwrap_or(0.0),
        cpu["receiver"].as_f64().unwrap_or(0.0)
    );
    Ok((per_s, cpu))
}

/// Prints a scenario's CPU per delivery on the progress lines.
fn cpu_line(label: &str, used: &Used, deliveries: u64) -> Value {
    let per = used.per(deliveries);
    let f = |k: &str| per[k].as_f64().map_or("-".into(), |v| format!("{v:.1}"));
    eprintln!(
        "  [{label}] CPU us per delivery: hookwire {}, generator {}, receiver {}, postgres {}",
        f("hookwire"),
        f("generator"),
        f("receiver"),
        f("postgres")
    );
    per
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_string();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    json!({
        "cpu": model,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "memory_gib": mem_kb as f64 / 1_048_576.0,
        "kernel": kernel.trim(),
        "load_average_at_start": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    })
}

fn options_json(o: &Options) -> Value {
    json!({ "events": o.events, "batch": o.batch, "concurrency": o.concurrency,
        "batch_concurrency": o.batch_concurrency, "rates": o.rates, "seconds": o.seconds,
        "fanout_events": o.fanout_events, "isolation_events": o.isolation_events,
        "backlog": o.backlog, "tenants": o.tenants, "tenant_webhooks": o.tenant_webhooks,
        "multitenant_events": o.multitenant_events,
        "ordered_events": o.ordered_events, "ordered_chats": o.ordered_chats, "soak_rate": o.soak_rate,
        "soak_minutes": o.soak_minutes, "soak_sample_seconds": o.soak_sample_seconds,
        "soak_database": o.soak_database,
        "prune_fill": o.prune_fill, "prune_rate": o.prune_rate, "prune_seconds": o.prune_seconds,
        "generator_threads": o.generator_threads, "receiver_threads": o.receiver_threads,
        "smoke": o.smoke, "scenario": o.scenario })
}
