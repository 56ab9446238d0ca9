//! Steady (scenario 1: one webhook, closed-loop ingest one per request and
//! in batches, in rounds paired with the baseline, on SQLite or PostgreSQL)
//! and fixed load (scenario 2: open loop at fixed rates, on SQLite).

use super::{cpu_line, latencies, latencies_from, measure_baseline, pct, secs, wait_for, Ctx, ANY};
use crate::cpu;
use crate::events::Events;
use crate::load::Ingest;
use crate::pg::Postgres;
use crate::process::BoxError;
use crate::receiver::Answer;
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// Scenario 1, `steady_rounds` times (one per request, then batched, each
/// on a fresh hookwire and database), each run between two measurements
/// of the baseline. A run lasts seconds and the machine's speed drifts over
/// minutes, so each run's ratio is taken against the baseline measured
/// next to it (the higher of the two around it), and each mode reports the
/// run with the median of those ratios; every run's rate and ratio are in
/// `rounds_delivered_per_s` and `rounds_paired_ratio`.
pub(super) async fn rounds(
    ctx: &Ctx<'_>,
    pg: Option<&Postgres>,
) -> Result<(Value, Value), BoxError> {
    let (mut singles, mut batches) = (Vec::new(), Vec::new());
    let mut before = measure_baseline(ctx, "before a steady run").await?;
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
            let postmaster = pg.and_then(Postgres::postmaster_pid);
            let mut run = steady(ctx, db.as_deref(), postmaster, per_request, idle).await?;
            let after = measure_baseline(ctx, "after a steady run").await?;
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
/// ratio (in the order they ran) and the duplicates of all of them. CPU
/// per delivery is the median of the rounds process by process (each
/// round's is kept in `rounds_cpu_us_per_delivery`).
fn median_round(runs: Vec<Value>) -> Value {
    let field = |r: &Value, name: &str| r[name].as_f64().unwrap_or(0.0);
    let rates: Vec<f64> = runs.iter().map(|r| field(r, "delivered_per_s")).collect();
    let ratios: Vec<f64> = runs.iter().map(|r| field(r, "paired_ratio")).collect();
    let duplicates: u64 = runs.iter().filter_map(|r| r["duplicates"].as_u64()).sum();
    let cpus: Vec<Value> = runs
        .iter()
        .map(|r| r["cpu_us_per_delivery"].clone())
        .collect();
    let mut sorted = runs;
    sorted.sort_by(|a, b| field(a, "paired_ratio").total_cmp(&field(b, "paired_ratio")));
    let mut median = sorted.swap_remove(sorted.len() / 2);
    median["rounds_delivered_per_s"] = json!(rates);
    median["rounds_paired_ratio"] = json!(ratios);
    median["duplicates"] = json!(duplicates);
    median["cpu_us_per_delivery"] = cpu::median(&cpus);
    median["rounds_cpu_us_per_delivery"] = json!(cpus);
    median
}

/// Scenario 1: `events` events to one webhook, `per_request` per request.
async fn steady(
    ctx: &Ctx<'_>,
    db: Option<&str>,
    postmaster: Option<u32>,
    per_request: usize,
    idle: bool,
) -> Result<Value, BoxError> {
    let n = ctx.opts.events;
    let backend = if db.is_some() { "postgres" } else { "sqlite" };
    let mode = if per_request == 1 { "single" } else { "batch" };
    let label = format!("steady/{backend}/{mode}");
    let rx = ctx.receiver(ANY, n, Answer::Ok)?;
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
    let meter = ctx.meter(Some(&hw), postmaster);
    let cpu_before = meter.read();
    let run = ctx.closed_loop(&hw, Events::single(), n, per_request, concurrency, &ingest)?;
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
    let cpu = cpu_line(&label, &cpu_before.until(&meter.read()), n as u64);
    let start = ingest.started.load(Relaxed);
    let ingest_per_s = n as f64 / secs(ingest.ended.load(Relaxed) - start);
    let delivered_per_s = n as f64 / secs(rx.stats.last.load(Relaxed) - start);
    let lat = latencies(&ingest, &rx);
    let from_send = latencies_from(&ingest.sent_at, &rx);
    let mut v = json!({
        "p50_from_send_ms": pct(&from_send, 50.0), "p99_from_send_ms": pct(&from_send, 99.0),
        "backend": backend, "mode": mode, "events": n, "per_request": per_request, "concurrency": concurrency,
        "ingest_per_s": ingest_per_s, "delivered_per_s": delivered_per_s,
        "ratio_to_baseline": delivered_per_s / ctx.baseline(),
        "p50_ms": pct(&lat, 50.0), "p95_ms": pct(&lat, 95.0), "p99_ms": pct(&lat, 99.0),
        "duplicates": rx.stats.total.load(Relaxed) - n as u64,
        "rss_max_bytes": rss_max, "peak_rss_bytes": hw.rss().1,
        "receiver_body_bytes": rx.stats.body_len.load(Relaxed),
        "cpu_us_per_delivery": cpu,
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
        delivered_per_s / ctx.baseline(), pct(&lat, 50.0), pct(&lat, 95.0), pct(&lat, 99.0)
    );
    Ok(v)
}

/// Scenario 2: one event per request at a fixed rate, on SQLite.
pub(super) async fn fixed(ctx: &Ctx<'_>, rate: u64) -> Result<Value, BoxError> {
    let n = (rate * ctx.opts.seconds) as usize;
    let label = format!("fixed/{rate}/s");
    let rx = ctx.receiver(ANY, n, Answer::Ok)?;
    let mut hw = ctx.hookwire(None, "")?;
    hw.setup(&ctx.http, &[rx.url(0)]).await?;
    let ingest = Ingest::new(n);
    let meter = ctx.meter(Some(&hw), None);
    let cpu_before = meter.read();
    let run = ctx.fixed_rate(&hw, n, rate, &ingest)?;
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
    let cpu = cpu_line(&label, &cpu_before.until(&meter.read()), n as u64);
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
        "p50_from_send_ms": pct(&from_send, 50.0), "p99_from_send_ms": pct(&from_send, 99.0),
        "cpu_us_per_delivery": cpu }),
    )
}
