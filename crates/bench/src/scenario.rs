//! The scenarios: each starts a fresh hookwire (fresh database) and a fresh
//! receiver, drives load, waits until every delivery arrived, and answers
//! its figures as JSON. Progress goes to stderr while they run.

use crate::load::{self, Ingest};
use crate::pg::Postgres;
use crate::process::{self, BoxError, Hookwire};
use crate::receiver::{now_ns, Receiver};
use crate::Options;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// A run fails when nothing arrives for this long.
const STALL: Duration = Duration::from_secs(120);
const ANY: &str = "127.0.0.1:0";

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
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
    let mut v: Vec<f64> = start
        .iter()
        .zip(rx.stats.arrivals.iter())
        .map(|(a, r)| r.load(Relaxed).saturating_sub(a.load(Relaxed)) as f64 / 1e6)
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

struct Ctx<'a> {
    opts: &'a Options,
    bin: &'a Path,
    http: reqwest::Client,
    baseline: f64,
}

impl Ctx<'_> {
    fn hookwire(&self, db: Option<&str>, config: &str) -> Result<Hookwire, BoxError> {
        process::start(
            self.bin,
            db,
            &format!("max_backlog = 100000000\nshutdown_grace = \"2s\"\n{config}"),
        )
    }
}

pub async fn run_all(opts: &Options, bin: &Path) -> Result<Value, BoxError> {
    let http = load::client();
    let mut out = json!({ "machine": machine(), "options": options_json(opts) });

    let mut baselines = vec![measure_baseline(opts, &http, "start").await?];
    let ctx = Ctx {
        opts,
        bin,
        http: http.clone(),
        baseline: baselines[0],
    };

    if opts.runs("steady") {
        let (single, batch) = steady_rounds(&ctx, None).await?;
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
                let (single, batch) = steady_rounds(&ctx, Some(&pg)).await?;
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
    baselines.push(measure_baseline(opts, &http, "middle").await?);
    if opts.runs("fixed") {
        let mut list = Vec::new();
        for &rate in &opts.rates {
            list.push(fixed(&ctx, rate).await?);
        }
        out["fixed"] = json!(list);
    }
    if opts.runs("fanout") {
        out["fanout"] = fanout(&ctx).await?;
    }
    if opts.runs("isolation") {
        out["isolation"] = isolation(&ctx).await?;
    }
    if opts.runs("backlog") {
        let steady_rate = out["steady"][1]["delivered_per_s"].as_f64();
        out["backlog"] = backlog(&ctx, steady_rate).await?;
    }
    baselines.push(measure_baseline(opts, &http, "end").await?);
    let best = baselines.iter().copied().fold(0.0, f64::max);
    out["baseline"] = json!({ "requests": opts.events, "per_s": best, "samples_per_s": baselines,
        "concurrency": opts.concurrency, "body_bytes": load::webhook_body(0).len() });
    eprintln!("baseline: {best:.0}/s, the highest of {baselines:.0?}; ratios below are against it");
    for run in out["steady"].as_array_mut().into_iter().flatten() {
        run["ratio_to_baseline"] = json!(run["delivered_per_s"].as_f64().unwrap_or(0.0) / best);
    }
    if let Some(per_s) = out["fanout"]["deliveries_per_s"].as_f64() {
        out["fanout"]["ratio_to_baseline"] = json!(per_s / best);
    }
    Ok(out)
}

/// The same generator POSTing the webhook body straight to the receiver:
/// what this machine can do with no hookwire in between, right now.
async fn measure_baseline(
    opts: &Options,
    http: &reqwest::Client,
    when: &str,
) -> Result<f64, BoxError> {
    eprintln!("baseline ({when}): the generator POSTs the webhook body straight to the receiver");
    let rx = Receiver::start(ANY.parse()?, opts.events, false).await?;
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let run = tokio::spawn(load::baseline(
        http.clone(),
        rx.url(0),
        opts.events,
        opts.concurrency,
        done.clone(),
    ));
    while !run.is_finished() {
        eprint!(
            "\r  [baseline] {:>8}/{}   ",
            done.load(Relaxed),
            opts.events
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let per_s = run.await??;
    eprintln!("\r  [baseline] {} requests: {per_s:.0}/s", opts.events);
    Ok(per_s)
}

/// Scenario 1, `steady_rounds` times (one per request, then batched, each
/// on a fresh hookwire and database), each run between two measurements
/// of the baseline. A run lasts seconds and the machine's speed drifts over
/// minutes, so each run's ratio is taken against the baseline measured
/// next to it (the higher of the two around it), and each mode reports the
/// run with the median of those ratios; every run's rate and ratio are in
/// `rounds_delivered_per_s` and `rounds_paired_ratio`.
async fn steady_rounds(ctx: &Ctx<'_>, pg: Option<&Postgres>) -> Result<(Value, Value), BoxError> {
    let (mut singles, mut batches) = (Vec::new(), Vec::new());
    let mut before = measure_baseline(ctx.opts, &ctx.http, "before a steady run").await?;
    for round in 0..ctx.opts.steady_rounds.max(1) {
        for per_request in [1, ctx.opts.batch] {
            let mode = if per_request == 1 { "single" } else { "batch" };
            let db = match pg {
                Some(pg) => Some(
                    pg.fresh_database(&format!("bench_{mode}_{round}"))
                        .map_err(BoxError::from)?,
                ),
                None => None,
            };
            let idle = pg.is_none() && round == 0 && per_request == 1;
            let mut run = steady(ctx, db.as_deref(), per_request, idle).await?;
            let after = measure_baseline(ctx.opts, &ctx.http, "after a steady run").await?;
            let paired = before.max(after);
            run["paired_baseline_per_s"] = json!(paired);
            run["paired_ratio"] = json!(run["delivered_per_s"].as_f64().unwrap_or(0.0) / paired);
            before = after;
            if per_request == 1 {
                singles.push(run);
            } else {
                batches.push(run);
            }
        }
    }
    let idle = singles[0]["idle_rss_bytes"].clone();
    let rss_max = singles
        .iter()
        .chain(&batches)
        .filter_map(|r| r["rss_max_bytes"].as_u64())
        .max();
    let (mut single, batch) = (median_round(singles), median_round(batches));
    if !idle.is_null() {
        single["idle_rss_bytes"] = idle;
    }
    single["rss_max_bytes"] = json!(rss_max);
    Ok((single, batch))
}

/// The run with the median paired ratio, carrying every run's rate and
/// ratio (in the order they ran) and the duplicates of all of them.
fn median_round(runs: Vec<Value>) -> Value {
    let field = |r: &Value, name: &str| r[name].as_f64().unwrap_or(0.0);
    let rates: Vec<f64> = runs.iter().map(|r| field(r, "delivered_per_s")).collect();
    let ratios: Vec<f64> = runs.iter().map(|r| field(r, "paired_ratio")).collect();
    let duplicates: u64 = runs.iter().filter_map(|r| r["duplicates"].as_u64()).sum();
    let mut sorted = runs;
    sorted.sort_by(|a, b| field(a, "paired_ratio").total_cmp(&field(b, "paired_ratio")));
    let mut median = sorted.swap_remove(sorted.len() / 2);
    median["rounds_delivered_per_s"] = json!(rates);
    median["rounds_paired_ratio"] = json!(ratios);
    median["duplicates"] = json!(duplicates);
    median
}

/// Scenario 1: `events` events to one webhook, `per_request` per request.
async fn steady(
    ctx: &Ctx<'_>,
    db: Option<&str>,
    per_request: usize,
    idle: bool,
) -> Result<Value, BoxError> {
    let n = ctx.opts.events;
    let backend = if db.is_some() { "postgres" } else { "sqlite" };
    let mode = if per_request == 1 { "single" } else { "batch" };
    let label = format!("steady/{backend}/{mode}");
    let rx = Receiver::start(ANY.parse()?, n, false).await?;
    let mut hw = ctx.hookwire(db, "")?;
    hw.setup(&ctx.http, &[rx.url(0)]).await?;
    let idle_rss = if idle {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Some(hw.rss().0)
    } else {
        None
    };
    let ingest = Ingest::new(n);
    let concurrency = if per_request == 1 {
        ctx.opts.concurrency
    } else {
        ctx.opts.batch_concurrency
    };
    let run = tokio::spawn(load::closed_loop(
        ctx.http.clone(),
        hw.url.clone(),
        n,
        per_request,
        concurrency,
        ingest.clone(),
    ));
    let stats = rx.stats.clone();
    let rss_max = wait_for(
        &label,
        n as u64,
        || stats.unique.load(Relaxed),
        &hw,
        Some(&ingest),
    )
    .await?;
    run.await??;
    let start = ingest.started.load(Relaxed);
    let ingest_per_s = n as f64 / secs(ingest.ended.load(Relaxed) - start);
    let delivered_per_s = n as f64 / secs(rx.stats.last.load(Relaxed) - start);
    let lat = latencies(&ingest, &rx);
    let from_send = latencies_from(&ingest.sent_at, &rx);
    let mut v = json!({
        "p50_from_send_ms": pct(&from_send, 50.0), "p99_from_send_ms": pct(&from_send, 99.0),
        "backend": backend, "mode": mode, "events": n, "per_request": per_request, "concurrency": concurrency,
        "ingest_per_s": ingest_per_s, "delivered_per_s": delivered_per_s,
        "ratio_to_baseline": delivered_per_s / ctx.baseline,
        "p50_ms": pct(&lat, 50.0), "p95_ms": pct(&lat, 95.0), "p99_ms": pct(&lat, 99.0),
        "duplicates": rx.stats.total.load(Relaxed) - n as u64,
        "rss_max_bytes": rss_max, "peak_rss_bytes": hw.rss().1,
        "receiver_body_bytes": rx.stats.body_len.load(Relaxed),
    });
    if let Some(idle) = idle_rss {
        v["idle_rss_bytes"] = json!(idle);
    }
    if db.is_none() {
        v["db_bytes"] = json!(hw.sqlite_bytes());
        v["db_bytes_per_event"] = json!(hw.sqlite_bytes() as f64 / n as f64);
    }
    eprintln!(
        "  [{label}] ingest {ingest_per_s:.0}/s, delivered {delivered_per_s:.0}/s ({:.2} x baseline), p50/p95/p99 {:.1}/{:.1}/{:.1} ms",
        delivered_per_s / ctx.baseline, pct(&lat, 50.0), pct(&lat, 95.0), pct(&lat, 99.0)
    );
    Ok(v)
}

/// Scenario 2: one event per request at a fixed rate, on SQLite.
async fn fixed(ctx: &Ctx<'_>, rate: u64) -> Result<Value, BoxError> {
    let n = (rate * ctx.opts.seconds) as usize;
    let label = format!("fixed/{rate}/s");
    let rx = Receiver::start(ANY.parse()?, n, false).await?;
    let mut hw = ctx.hookwire(None, "")?;
    hw.setup(&ctx.http, &[rx.url(0)]).await?;
    let ingest = Ingest::new(n);
    let run = tokio::spawn(load::fixed_rate(
        ctx.http.clone(),
        hw.url.clone(),
        n,
        rate,
        ingest.clone(),
    ));
    let stats = rx.stats.clone();
    wait_for(
        &label,
        n as u64,
        || stats.unique.load(Relaxed),
        &hw,
        Some(&ingest),
    )
    .await?;
    run.await??;
    let achieved = n as f64 / secs(ingest.ended.load(Relaxed) - ingest.started.load(Relaxed));
    let lat = latencies(&ingest, &rx);
    let from_send = latencies_from(&ingest.sent_at, &rx);
    eprintln!(
        "  [{label}] achieved {achieved:.0}/s, p50/p99 {:.2}/{:.2} ms",
        pct(&lat, 50.0),
        pct(&lat, 99.0)
    );
    Ok(
        json!({ "rate": rate, "events": n, "achieved_per_s": achieved,
        "p50_ms": pct(&lat, 50.0), "p95_ms": pct(&lat, 95.0), "p99_ms": pct(&lat, 99.0),
        "p50_from_send_ms": pct(&from_send, 50.0), "p99_from_send_ms": pct(&from_send, 99.0) }),
    )
}

/// Scenario 3: each event to 100 webhooks.
async fn fanout(ctx: &Ctx<'_>) -> Result<Value, BoxError> {
    let n = ctx.opts.fanout_events;
    let rx = Receiver::start(ANY.parse()?, n, false).await?;
    let mut hw = ctx.hookwire(None, "")?;
    let urls: Vec<String> = (0..100).map(|i| rx.url(i)).collect();
    hw.setup(&ctx.http, &urls).await?;
    let ingest = Ingest::new(n);
    // Ingested ten at a time, so the delivery side rather than ingest
    // round trips sets the pace.
    let run = tokio::spawn(load::closed_loop(
        ctx.http.clone(),
        hw.url.clone(),
        n,
        10,
        4,
        ingest.clone(),
    ));
    let stats = rx.stats.clone();
    let target = 100 * n as u64;
    wait_for(
        "fanout/100",
        target,
        || stats.total.load(Relaxed),
        &hw,
        Some(&ingest),
    )
    .await?;
    run.await??;
    let per_s = target as f64 / secs(rx.stats.last.load(Relaxed) - ingest.started.load(Relaxed));
    let all_hooks = (0..100).all(|i| rx.stats.per_hook[i].load(Relaxed) == n as u64);
    if !all_hooks {
        return Err("fan-out: some webhook did not get every event exactly once".into());
    }
    eprintln!(
        "  [fanout/100] {per_s:.0} deliveries/s ({:.2} x baseline)",
        per_s / ctx.baseline
    );
    Ok(
        json!({ "events": n, "webhooks": 100, "deliveries": target, "events_per_request": 10, "deliveries_per_s": per_s,
        "ratio_to_baseline": per_s / ctx.baseline }),
    )
}

/// Runs of each kind in the isolation scenario.
const ISOLATION_PAIRS: usize = 5;

/// Scenario 4: 20 healthy webhooks, with and without one that never answers.
async fn isolation(ctx: &Ctx<'_>) -> Result<Value, BoxError> {
    // Short timeout and retries, so the hung webhook keeps attempts timing
    // out during the whole run rather than once at its end.
    let config = "attempt_timeout = \"2s\"\nretry_schedule = [\"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\"]";
    // Five pairs of runs, each pair back to back (which run of a pair goes
    // first alternates), and the median of the pairs' ratios: on a shared
    // machine the rate drifted by a third over one scenario, which a ratio
    // of the two kinds' medians reads as the hung webhook's doing.
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let order = (0..ISOLATION_PAIRS).flat_map(|pair| [pair % 2 == 1, pair % 2 == 0]);
    for hung in order {
        let n = ctx.opts.isolation_events;
        let label = if hung {
            "isolation/20+hung"
        } else {
            "isolation/20"
        };
        let rx = Receiver::start(ANY.parse()?, n, false).await?;
        let dead = Receiver::start(ANY.parse()?, 0, true).await?;
        let mut hw = ctx.hookwire(None, config)?;
        let mut urls: Vec<String> = (0..20).map(|i| rx.url(i)).collect();
        if hung {
            urls.push(dead.url(0));
        }
        hw.setup(&ctx.http, &urls).await?;
        let ingest = Ingest::new(n);
        let run = tokio::spawn(load::closed_loop(
            ctx.http.clone(),
            hw.url.clone(),
            n,
            ctx.opts.batch.min(n),
            2,
            ingest.clone(),
        ));
        let stats = rx.stats.clone();
        let target = 20 * n as u64;
        wait_for(label, target, || stats.healthy(0..20), &hw, Some(&ingest)).await?;
        run.await??;
        let per_s =
            target as f64 / secs(rx.stats.last.load(Relaxed) - ingest.started.load(Relaxed));
        eprintln!("  [{label}] healthy {per_s:.0} deliveries/s");
        rates[hung as usize].push(per_s);
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (healthy, with_hung) = (median(&rates[0]), median(&rates[1]));
    let pair_ratios: Vec<f64> = rates[1].iter().zip(&rates[0]).map(|(h, a)| h / a).collect();
    Ok(
        json!({ "events": ctx.opts.isolation_events, "healthy_webhooks": 20,
        "all_healthy_per_s": healthy, "with_hung_per_s": with_hung, "ratio": median(&pair_ratios),
        "pair_ratios": pair_ratios,
        "all_healthy_samples_per_s": rates[0], "with_hung_samples_per_s": rates[1],
        "attempt_timeout": "2s" }),
    )
}

/// Scenario 5: deliveries pile up while the receiver is down, then drain.
async fn backlog(ctx: &Ctx<'_>, steady: Option<f64>) -> Result<Value, BoxError> {
    let n = ctx.opts.backlog;
    // A port nobody listens on yet: attempts meet a refused connection.
    let port = std::net::TcpListener::bind(ANY)?.local_addr()?.port();
    let url = format!("http://127.0.0.1:{port}/w/0");
    // No retries: each delivery fails once and waits in the database
    // until the receiver is back and the backlog is redelivered at once.
    let mut hw = ctx.hookwire(None, "retry_schedule = []")?;
    let ids = hw.setup(&ctx.http, &[url]).await?;
    let ingest = Ingest::new(n);
    let started = now_ns();
    let run = tokio::spawn(load::closed_loop(
        ctx.http.clone(),
        hw.url.clone(),
        n,
        ctx.opts.batch,
        ctx.opts.batch_concurrency,
        ingest.clone(),
    ));
    let sent = ingest.clone();
    wait_for(
        "backlog/pile-up (ingest)",
        n as u64,
        || sent.sent.load(Relaxed),
        &hw,
        None,
    )
    .await?;
    run.await??;
    loop {
        eprint!(
            "\r  [backlog/pile-up] waiting for every first attempt to fail; rss {:.1} MB   ",
            mb(hw.rss().0)
        );
        if !hw.any_pending(&ctx.http).await? {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!();
    let pile_up_s = secs(now_ns() - started);
    let rss_piled = hw.rss().0;
    let rx = Receiver::start(format!("127.0.0.1:{port}").parse()?, n, false).await?;
    let t0 = now_ns();
    let redelivered = hw.redeliver_failed(&ctx.http, &ids[0]).await?;
    if redelivered != n as u64 {
        return Err(format!("backlog: {redelivered} deliveries redelivered, expected {n}").into());
    }
    let stats = rx.stats.clone();
    let rss_max = wait_for(
        "backlog/drain",
        n as u64,
        || stats.unique.load(Relaxed),
        &hw,
        None,
    )
    .await?;
    let drain = n as f64 / secs(rx.stats.last.load(Relaxed) - t0);
    let (_, peak) = hw.rss();
    eprintln!(
        "  [backlog] drained {drain:.0}/s, peak RSS {:.1} MB",
        mb(peak)
    );
    Ok(
        json!({ "deliveries": n, "pile_up_s": pile_up_s, "drain_per_s": drain,
        "drain_vs_steady": steady.map(|s| drain / s), "rss_after_pile_up_bytes": rss_piled,
        "rss_max_during_drain_bytes": rss_max, "peak_rss_bytes": peak,
        "duplicates": rx.stats.total.load(Relaxed) - n as u64, "db_bytes": hw.sqlite_bytes() }),
    )
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
        "backlog": o.backlog, "smoke": o.smoke, "scenario": o.scenario })
}
