//! Multi-tenant (scenario 7): `--tenants` licenses (2,000) with
//! `--tenant-webhooks` webhooks each (5), all at the counting receiver under
//! distinct URLs; event i belongs to license i % tenants, so consecutive
//! events (and the events of one batch) belong to different licenses.
//! Ingested one per request and in batches, each on a fresh hookwire. What
//! it asks is whether hookwire's CPU per delivery stays near the
//! single-webhook figure when the work is spread over many licenses and
//! webhooks (target: at most 1.5 x the steady run's, same mode, same run).

use super::{cpu_line, secs, wait_for, Ctx, ANY};
use crate::events::Events;
use crate::load::Ingest;
use crate::process::BoxError;
use crate::receiver::Answer;
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;

/// API calls in flight while licenses and webhooks are created.
const SETUP_CONCURRENCY: usize = 64;
/// The most hookwire's CPU per delivery may be, as a multiple of the
/// steady single-webhook figure.
pub const TARGET_CPU_RATIO: f64 = 1.5;

/// Both modes; `steady` is the run's steady section (for the CPU ratio).
pub(super) async fn run(ctx: &Ctx<'_>, steady: &Value) -> Result<Value, BoxError> {
    let mut runs = Vec::new();
    for per_request in [1, ctx.opts.batch] {
        runs.push(one(ctx, per_request, steady).await?);
    }
    Ok(json!({
        "tenants": ctx.opts.tenants, "webhooks_per_tenant": ctx.opts.tenant_webhooks,
        "events": ctx.opts.multitenant_events, "target_cpu_ratio": TARGET_CPU_RATIO, "runs": runs,
    }))
}

/// hookwire's CPU per delivery in the steady SQLite run of `mode`, if it ran.
fn steady_hookwire_cpu(steady: &Value, mode: &str) -> Option<f64> {
    steady
        .as_array()?
        .iter()
        .find(|s| s["backend"] == "sqlite" && s["mode"] == mode)?["cpu_us_per_delivery"]["hookwire"]
        .as_f64()
}

async fn one(ctx: &Ctx<'_>, per_request: usize, steady: &Value) -> Result<Value, BoxError> {
    let (tenants, hooks, n) = (
        ctx.opts.tenants,
        ctx.opts.tenant_webhooks,
        ctx.opts.multitenant_events,
    );
    let mode = if per_request == 1 { "single" } else { "batch" };
    let label = format!("multitenant/{mode}");
    let rx = ctx.receiver(ANY, n, Answer::Ok)?;
    let hw = ctx.hookwire(None, "")?;
    let setup_started = std::time::Instant::now();
    // Distinct URLs (the query names the license) that the receiver still
    // counts by path, one counter per webhook index.
    let urls = |tenant: usize| -> Vec<String> {
        (0..hooks)
            .map(|k| format!("{}?license={tenant}", rx.url(k)))
            .collect()
    };
    hw.setup_tenants(&ctx.http, tenants, urls, SETUP_CONCURRENCY)
        .await?;
    let setup_s = setup_started.elapsed().as_secs_f64();
    eprintln!(
        "  [{label}] {tenants} licenses and {} webhooks created in {setup_s:.1} s",
        tenants * hooks
    );
    let ingest = Ingest::new(n);
    let concurrency = if per_request == 1 {
        ctx.opts.concurrency
    } else {
        ctx.opts.batch_concurrency
    };
    let meter = ctx.meter(Some(&hw), None);
    let cpu_before = meter.read();
    let run = ctx.closed_loop(
        &hw,
        Events::tenants(tenants),
        n,
        per_request,
        concurrency,
        &ingest,
    )?;
    let stats = rx.stats.clone();
    let target = (hooks * n) as u64;
    let rss_max = wait_for(
        &label,
        target,
        || stats.total.load(Relaxed),
        &hw,
        Some(&ingest),
    )
    .await?;
    run.await??;
    let cpu = cpu_line(&label, &cpu_before.until(&meter.read()), target);
    let per_hook_ok = (0..hooks).all(|k| rx.stats.per_hook[k].load(Relaxed) == n as u64);
    let wrong = rx.stats.not_exactly(n, hooks as u32);
    if !per_hook_ok || wrong > 0 {
        return Err(format!(
            "[{label}] {wrong} events did not reach each of their {hooks} webhooks exactly once"
        )
        .into());
    }
    let start = ingest.started.load(Relaxed);
    let per_s = target as f64 / secs(rx.stats.last.load(Relaxed) - start);
    let ingest_per_s = n as f64 / secs(ingest.ended.load(Relaxed) - start);
    let steady_cpu = steady_hookwire_cpu(steady, mode);
    let ratio = cpu["hookwire"]
        .as_f64()
        .zip(steady_cpu)
        .map(|(mt, st)| mt / st);
    eprintln!(
        "  [{label}] {per_s:.0} deliveries/s ({:.2} x baseline); hookwire CPU per delivery {} x steady (target <= {TARGET_CPU_RATIO})",
        per_s / ctx.baseline(),
        ratio.map_or("-".into(), |r| format!("{r:.2}"))
    );
    Ok(json!({
        "mode": mode, "per_request": per_request, "concurrency": concurrency,
        "tenants": tenants, "webhooks": tenants * hooks, "events": n, "deliveries": target,
        "setup_s": setup_s, "ingest_per_s": ingest_per_s, "deliveries_per_s": per_s,
        "ratio_to_baseline": per_s / ctx.baseline(), "cpu_us_per_delivery": cpu,
        "steady_hookwire_cpu_us_per_delivery": steady_cpu,
        "hookwire_cpu_vs_steady": ratio,
        "target_met": ratio.map(|r| r <= TARGET_CPU_RATIO),
        "rss_max_bytes": rss_max, "db_bytes": hw.sqlite_bytes(),
    }))
}
