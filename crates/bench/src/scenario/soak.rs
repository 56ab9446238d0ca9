//! Soak (scenario 8): a fixed offered rate (`--soak-rate`, one event per
//! request, open loop) for `--soak-minutes`, to three webhooks: two healthy
//! receivers and one that answers 500 to every tenth attempt, so retries
//! and final failures go on all the time. hookwire keeps finished work for
//! a short retention and prunes it often, so what the run looks at is
//! whether it stays flat: database bytes, RSS, latency, queue depth, sampled
//! every `--soak-sample-seconds`. Completeness (every event delivered to
//! both healthy receivers; every delivery to the flaky one delivered or
//! failed, none pending) is required; the other targets are reported as
//! met or missed over the second half of the run.

use super::{cpu_line, mb, pct, secs, Ctx, ANY, STALL};
use crate::load::Ingest;
use crate::pg::Postgres;
use crate::process::{self, BoxError, Hookwire};
use crate::receiver::{now_ns, Answer, Receiver};
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// The flaky receiver answers 500 to one attempt in this many.
const FAIL_EVERY: u64 = 10;
/// Growth allowed over the second half (database bytes, RSS).
const MAX_GROWTH: f64 = 0.05;
/// Second-half p99 allowed, as a multiple of the p99 before pruning.
const MAX_P99_FACTOR: f64 = 2.0;
/// Share of the offered rate the generator must achieve.
const MIN_RATE_SHARE: f64 = 0.99;
const PRUNED: &str = "hookwire_pruned_total";

/// Sizes and hookwire settings of one soak.
struct Plan {
    rate: u64,
    seconds: f64,
    sample: f64,
    retention: Duration,
    retention_env: &'static str,
    prune_interval_env: &'static str,
    retry_schedule: &'static str,
}

impl Plan {
    fn new(ctx: &Ctx<'_>) -> Plan {
        let smoke = ctx.opts.smoke;
        Plan {
            rate: ctx.opts.soak_rate.max(1),
            seconds: ctx.opts.soak_minutes * 60.0,
            sample: ctx.opts.soak_sample_seconds.max(0.1),
            retention: Duration::from_secs(if smoke { 2 } else { 120 }),
            retention_env: if smoke { "2s" } else { "2m" },
            prune_interval_env: if smoke { "1s" } else { "10s" },
            // Short enough that a delivery failing every attempt reaches its
            // final state within the run (and within the drain after it).
            retry_schedule: if smoke {
                r#"["200ms", "500ms", "1s"]"#
            } else {
                r#"["1s", "5s", "15s"]"#
            },
        }
    }

    fn events(&self) -> usize {
        (self.rate as f64 * self.seconds).round().max(1.0) as usize
    }
}

/// Latencies in ms (ingest request sent -> first arrival at one healthy
/// receiver) of the events that arrived in (from, to], `now_ns` times.
/// From the send, not the 202: every arrival has a send time, while a 202
/// can still be on its way when the event arrives.
fn window_latencies(ingest: &Ingest, healthy: &[Receiver; 2], from: u64, to: u64) -> Vec<f64> {
    let mut v = Vec::new();
    for rx in healthy {
        for (arrived, sent) in rx.stats.arrivals.iter().zip(&ingest.sent_at) {
            let at = arrived.load(Relaxed);
            if at > from && at <= to {
                v.push(at.saturating_sub(sent.load(Relaxed)) as f64 / 1e6);
            }
        }
    }
    v.sort_by(f64::total_cmp);
    v
}

/// A gauge or counter for the progress lines; `-` when not exposed.
fn count(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |v| format!("{v:.0}"))
}

/// Deliveries answered 200 by the three receivers.
fn delivered(healthy: &[Receiver; 2], flaky: &Receiver) -> u64 {
    healthy
        .iter()
        .chain([flaky])
        .map(|rx| rx.stats.total.load(Relaxed))
        .sum()
}

/// What the soak tracks between samples.
struct Sampler<'a> {
    ctx: &'a Ctx<'a>,
    hw: &'a Hookwire,
    ingest: &'a Ingest,
    healthy: &'a [Receiver; 2],
    flaky: &'a Receiver,
    t0: u64,
    last: (u64, crate::cpu::Reading, u64),
    /// On PostgreSQL the database's size comes from `/metrics`
    /// (`pg_database_size`), on SQLite from the files.
    postgres: bool,
}

impl Sampler<'_> {
    async fn sample(&mut self) -> Result<Value, BoxError> {
        let meter = self.ctx.meter(Some(self.hw), None);
        let (now, cpu, done) = (now_ns(), meter.read(), delivered(self.healthy, self.flaky));
        let used = self.last.1.until(&cpu);
        let window_s = secs(now - self.last.0).max(1e-9);
        let in_window = done - self.last.2;
        let hw_us = used.hookwire.unwrap_or(0.0);
        let lat = window_latencies(self.ingest, self.healthy, self.last.0, now);
        let metrics = self.hw.metrics(&self.ctx.http).await?;
        let db_bytes = if self.postgres {
            process::metric(&metrics, "hookwire_database_bytes").unwrap_or(0.0) as u64
        } else {
            self.hw.sqlite_bytes()
        };
        let s = json!({
            "minutes": secs(now - self.t0) / 60.0,
            "db_bytes": db_bytes, "rss_bytes": self.hw.rss().0,
            "hookwire_cpu_cores": hw_us / 1e6 / window_s,
            "hookwire_cpu_us_per_delivery": (in_window > 0).then(|| hw_us / in_window as f64),
            "p50_ms": pct(&lat, 50.0), "p99_ms": pct(&lat, 99.0), "arrivals_in_window": lat.len(),
            "queue_depth": process::metric(&metrics, "hookwire_queue_depth"),
            "pruned_total": process::metric(&metrics, PRUNED),
            "ingested": self.ingest.sent.load(Relaxed), "delivered": done,
        });
        eprintln!(
            "  [soak] {:>6.2} min  db {:>7.1} MB  rss {:>6.1} MB  cpu {:>4.0} %  p50/p99 {:>6.1}/{:>6.1} ms  queue {:>6}  pruned {}",
            s["minutes"].as_f64().unwrap_or(0.0),
            mb(s["db_bytes"].as_u64().unwrap_or(0)),
            mb(s["rss_bytes"].as_u64().unwrap_or(0)),
            100.0 * s["hookwire_cpu_cores"].as_f64().unwrap_or(0.0),
            s["p50_ms"].as_f64().unwrap_or(f64::NAN),
            s["p99_ms"].as_f64().unwrap_or(f64::NAN),
            count(&s["queue_depth"]),
            count(&s["pruned_total"])
        );
        self.last = (now, cpu, done);
        Ok(s)
    }
}

pub(super) async fn run(ctx: &Ctx<'_>) -> Result<Value, BoxError> {
    let plan = Plan::new(ctx);
    let n = plan.events();
    let healthy = [
        ctx.receiver(ANY, n, Answer::Ok)?,
        ctx.receiver(ANY, n, Answer::Ok)?,
    ];
    let flaky = ctx.receiver(ANY, n, Answer::FailEvery(FAIL_EVERY))?;
    let postgres = ctx.opts.soak_database == "postgres";
    let pg = if postgres {
        Some(Postgres::start()?)
    } else {
        None
    };
    let db = match &pg {
        Some(pg) => Some(pg.fresh_database("bench_soak")?),
        None => None,
    };
    let mut hw = ctx.hookwire_env(
        db.as_deref(),
        &format!("retry_schedule = {}", plan.retry_schedule),
        &[
            ("HOOKWIRE_RETENTION", plan.retention_env),
            ("HOOKWIRE_PRUNE_INTERVAL", plan.prune_interval_env),
        ],
    )?;
    hw.setup(
        &ctx.http,
        &[healthy[0].url(0), healthy[1].url(0), flaky.url(0)],
    )
    .await?;
    eprintln!(
        "  [soak] {n} events at {}/s for {:.1} min; retention {}, pruning every {}",
        plan.rate,
        plan.seconds / 60.0,
        plan.retention_env,
        plan.prune_interval_env
    );
    let ingest = Ingest::new(n);
    let meter = ctx.meter(Some(&hw), None);
    let cpu_start = meter.read();
    let t0 = now_ns();
    let load = ctx.fixed_rate(&hw, n, plan.rate, &ingest)?;
    let mut sampler = Sampler {
        ctx,
        hw: &hw,
        ingest: &ingest,
        healthy: &healthy,
        flaky: &flaky,
        t0,
        last: (t0, meter.read(), 0),
        postgres,
    };
    let mut samples = Vec::new();
    let mut next = 1;
    while !load.is_finished() {
        let due = t0 + (next as f64 * plan.sample * 1e9) as u64;
        if now_ns() >= due {
            samples.push(sampler.sample().await?);
            next += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    load.await??;
    let load_ended = now_ns();
    let final_failed = drain(ctx, &hw, &healthy, &flaky, n).await?;
    // One more sample once drained, outside the targets (they are about
    // the run under load).
    let mut drained = sampler.sample().await?;
    drained["after_drain"] = json!(true);
    samples.push(drained);
    let done = delivered(&healthy, &flaky);
    let cpu = cpu_line("soak", &cpu_start.until(&meter.read()), done);
    let pruned = pruning(ctx, &hw, &plan).await?;

    let achieved = n as f64 / secs(ingest.ended.load(Relaxed) - ingest.started.load(Relaxed));
    let targets = evaluate(&plan, &samples, &ingest, &healthy, t0, load_ended, achieved);
    Ok(json!({
        "rate": plan.rate, "minutes": plan.seconds / 60.0, "events": n,
        "database": if postgres { "postgres" } else { "sqlite" },
        "sample_seconds": plan.sample, "retention": plan.retention_env,
        "prune_interval": plan.prune_interval_env, "retry_schedule": plan.retry_schedule,
        "flaky_fails_one_in": FAIL_EVERY, "achieved_per_s": achieved,
        "rejected": ingest.rejected.load(Relaxed),
        "delivered": { "healthy": [healthy[0].stats.unique.load(Relaxed), healthy[1].stats.unique.load(Relaxed)],
            "flaky": flaky.stats.unique.load(Relaxed), "flaky_failed_final": final_failed,
            "flaky_500_answers": flaky.stats.failed.load(Relaxed) },
        "complete": true, "pruned_total": pruned,
        "cpu_us_per_delivery": cpu, "samples": samples, "targets": targets,
    }))
}

/// Waits until both healthy receivers have every event, every delivery to
/// the flaky one was delivered or failed for good, and hookwire lists no
/// pending delivery. Answers the final failures.
async fn drain(
    ctx: &Ctx<'_>,
    hw: &Hookwire,
    healthy: &[Receiver; 2],
    flaky: &Receiver,
    n: usize,
) -> Result<u64, BoxError> {
    let n = n as u64;
    let mut last = (u64::MAX, std::time::Instant::now());
    loop {
        let failed = process::metric_with(
            &hw.metrics(&ctx.http).await?,
            "hookwire_deliveries_total",
            "outcome=\"failed\"",
        )
        .unwrap_or(0.0) as u64;
        let got = [
            healthy[0].stats.unique.load(Relaxed),
            healthy[1].stats.unique.load(Relaxed),
            flaky.stats.unique.load(Relaxed) + failed,
        ];
        eprint!(
            "\r  [soak/drain] healthy {}/{n}, {}/{n}; flaky delivered or failed {}/{n}   ",
            got[0], got[1], got[2]
        );
        if got.iter().all(|g| *g >= n) && !hw.any_pending(&ctx.http).await? {
            eprintln!();
            return Ok(failed);
        }
        let progress = got.iter().sum::<u64>();
        if progress != last.0 {
            last = (progress, std::time::Instant::now());
        } else if last.1.elapsed() > STALL {
            eprintln!();
            return Err(format!(
                "[soak] stalled: healthy {}/{n} and {}/{n}, flaky delivered or failed {}/{n}",
                got[0], got[1], got[2]
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `hookwire_pruned_total` at the end, when hookwire exposes it (it must
/// then be above 0: finished work older than the retention was there to
/// prune); None when it does not.
async fn pruning(ctx: &Ctx<'_>, hw: &Hookwire, plan: &Plan) -> Result<Option<f64>, BoxError> {
    // Work finished at the end of the run becomes prunable one retention
    // later; a short run may end before the first prune.
    let deadline = std::time::Instant::now() + plan.retention + Duration::from_secs(15);
    loop {
        let pruned = process::metric(&hw.metrics(&ctx.http).await?, PRUNED);
        match pruned {
            None => {
                eprintln!("  [soak] hookwire does not expose {PRUNED}: pruning not checked");
                return Ok(None);
            }
            Some(p) if p > 0.0 => {
                eprintln!("  [soak] pruning checked: {PRUNED} = {p}");
                return Ok(Some(p));
            }
            Some(_) if std::time::Instant::now() > deadline => {
                return Err(format!("[soak] {PRUNED} is still 0: nothing was pruned").into());
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// The targets over the second half of the load, each against the first
/// sample of that half (p99: against the p99 before pruning could start,
/// the first retention of the run).
fn evaluate(
    plan: &Plan,
    samples: &[Value],
    ingest: &Ingest,
    healthy: &[Receiver; 2],
    t0: u64,
    load_ended: u64,
    achieved: f64,
) -> Value {
    let half_min = secs(load_ended - t0) / 120.0;
    let half: Vec<&Value> = samples
        .iter()
        .filter(|s| s["minutes"].as_f64().unwrap_or(0.0) >= half_min && s["after_drain"].is_null())
        .collect();
    let growth = |key: &str| -> Option<f64> {
        let first = half.first()?[key].as_f64()?;
        let max = half
            .iter()
            .filter_map(|s| s[key].as_f64())
            .fold(first, f64::max);
        Some(max / first - 1.0)
    };
    let retention_end = t0 + plan.retention.as_nanos() as u64;
    let before_pruning = pct(&window_latencies(ingest, healthy, t0, retention_end), 99.0);
    let half_start = t0 + ((load_ended - t0) / 2);
    let second_half = pct(
        &window_latencies(ingest, healthy, half_start, load_ended),
        99.0,
    );
    let (db, rss) = (growth("db_bytes"), growth("rss_bytes"));
    let met =
        |ok: Option<bool>| ok.map_or(json!(null), |ok| json!(if ok { "met" } else { "missed" }));
    json!({
        "db_growth": db, "db": met(db.map(|g| g < MAX_GROWTH)),
        "rss_growth": rss, "rss": met(rss.map(|g| g < MAX_GROWTH)),
        "p99_before_pruning_ms": before_pruning, "p99_second_half_ms": second_half,
        "p99": met((before_pruning.is_finite() && second_half.is_finite())
            .then_some(second_half <= MAX_P99_FACTOR * before_pruning)),
        "achieved_share": achieved / plan.rate as f64,
        "rate": met(Some(achieved >= MIN_RATE_SHARE * plan.rate as f64)),
        // The run fails before this point unless everything arrived.
        "nothing_lost": "met",
    })
}
