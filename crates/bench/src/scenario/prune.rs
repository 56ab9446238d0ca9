//! A large prune under load (scenario 9): `--prune-fill` finished
//! deliveries are piled up (batched ingest, all delivered), then
//! `--prune-rate` events per second are offered one per request for
//! `--prune-seconds` with nothing to prune, and again right after the
//! license's retention is lowered to one second, so the whole pile is
//! pruned while the second phase runs. What it reports is the ingest p99
//! (request sent to 202) and the end-to-end p99 (sent to arrival) of each
//! phase, how many rows the prune took during the second phase, and the
//! database's size before and after. **Target:** the p99 with the prune
//! within 2 x the p99 without it.

use super::{pct, secs, wait_for, Ctx, ANY};
use crate::events::Events;
use crate::load::Ingest;
use crate::process::{self, BoxError, Hookwire, LICENSE, PLATFORM_KEY};
use crate::receiver::{now_ns, Answer, Receiver};
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

const PRUNED: &str = "hookwire_pruned_total";
/// The p99 with the prune running, at most this multiple of the one without.
const MAX_P99_FACTOR: f64 = 2.0;

/// Latencies (ms, sorted) of events `seqs`: ingest (sent to 202) and end
/// to end (sent to first arrival).
fn phase_latencies(ingest: &Ingest, rx: &Receiver, seqs: std::ops::Range<usize>) -> Value {
    let mut ingest_ms = Vec::with_capacity(seqs.len());
    let mut end_to_end_ms = Vec::with_capacity(seqs.len());
    for seq in seqs {
        let sent = ingest.sent_at[seq].load(Relaxed);
        ingest_ms.push(ingest.accepted[seq].load(Relaxed).saturating_sub(sent) as f64 / 1e6);
        end_to_end_ms.push(rx.stats.arrivals[seq].load(Relaxed).saturating_sub(sent) as f64 / 1e6);
    }
    ingest_ms.sort_by(f64::total_cmp);
    end_to_end_ms.sort_by(f64::total_cmp);
    json!({
        "ingest_p50_ms": pct(&ingest_ms, 50.0), "ingest_p99_ms": pct(&ingest_ms, 99.0),
        "ingest_max_ms": ingest_ms.last(),
        "end_to_end_p50_ms": pct(&end_to_end_ms, 50.0), "end_to_end_p99_ms": pct(&end_to_end_ms, 99.0),
    })
}

async fn pruned(ctx: &Ctx<'_>, hw: &Hookwire, what: &str) -> Result<f64, BoxError> {
    let metrics = hw.metrics(&ctx.http).await?;
    Ok(process::metric_with(&metrics, PRUNED, &format!("what=\"{what}\"")).unwrap_or(0.0))
}

/// Offers events `seqs` at the plan's rate and waits for all of them to
/// arrive; samples the deliveries pruned every half second meanwhile.
async fn phase(
    ctx: &Ctx<'_>,
    hw: &Hookwire,
    rx: &Receiver,
    ingest: &std::sync::Arc<Ingest>,
    seqs: std::ops::Range<usize>,
    label: &str,
) -> Result<Vec<(f64, f64)>, BoxError> {
    let t0 = now_ns();
    let load = ctx.fixed_rate_seqs(hw, seqs.clone(), ctx.opts.prune_rate, ingest)?;
    let mut prune_series = Vec::new();
    while !load.is_finished() {
        prune_series.push((secs(now_ns() - t0), pruned(ctx, hw, "deliveries").await?));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    load.await??;
    let end = seqs.end as u64;
    wait_for(label, end, || rx.stats.unique.load(Relaxed), hw, None).await?;
    prune_series.push((secs(now_ns() - t0), pruned(ctx, hw, "deliveries").await?));
    Ok(prune_series)
}

pub(super) async fn run(ctx: &Ctx<'_>) -> Result<Value, BoxError> {
    let fill = ctx.opts.prune_fill.max(1);
    let per_phase = (ctx.opts.prune_rate * ctx.opts.prune_seconds).max(1) as usize;
    let total = fill + 2 * per_phase;
    let rx = ctx.receiver(ANY, total, Answer::Ok)?;
    let interval = if ctx.opts.smoke { "200ms" } else { "2s" };
    let mut hw = ctx.hookwire_env(None, "", &[("HOOKWIRE_PRUNE_INTERVAL", interval)])?;
    hw.setup(&ctx.http, &[rx.url(0)]).await?;
    let ingest = Ingest::new(total);

    eprintln!("  [prune] piling up {fill} finished deliveries");
    let load = ctx.closed_loop(
        &hw,
        Events::single(),
        fill,
        ctx.opts.batch,
        ctx.opts.batch_concurrency,
        &ingest,
    )?;
    load.await??;
    wait_for(
        "prune/fill",
        fill as u64,
        || rx.stats.unique.load(Relaxed),
        &hw,
        None,
    )
    .await?;
    let db_filled = hw.sqlite_bytes();

    let quiet = fill..fill + per_phase;
    eprintln!(
        "  [prune] {}/s for {} s, nothing to prune",
        ctx.opts.prune_rate, ctx.opts.prune_seconds
    );
    phase(ctx, &hw, &rx, &ingest, quiet.clone(), "prune/without").await?;
    let without = phase_latencies(&ingest, &rx, quiet);

    let r = ctx
        .http
        .patch(format!("{}/api/v1/licenses/{LICENSE}", hw.url))
        .bearer_auth(PLATFORM_KEY)
        .json(&json!({"retention": "1s"}))
        .send()
        .await?;
    if !r.status().is_success() {
        return Err(format!("lowering the retention: {}", r.text().await?).into());
    }
    let pruning = fill + per_phase..total;
    eprintln!(
        "  [prune] {}/s for {} s, retention lowered to 1s: the pile is pruned meanwhile",
        ctx.opts.prune_rate, ctx.opts.prune_seconds
    );
    let before = pruned(ctx, &hw, "deliveries").await?;
    let series = phase(ctx, &hw, &rx, &ingest, pruning.clone(), "prune/with").await?;
    let during = series.last().map_or(0.0, |s| s.1) - before;
    let with = phase_latencies(&ingest, &rx, pruning);

    // Then the prune finishes, and the file is measured again.
    let started = std::time::Instant::now();
    while pruned(ctx, &hw, "deliveries").await? < (fill + per_phase) as f64 {
        if started.elapsed() > Duration::from_secs(600) {
            return Err("[prune] the prune did not finish within 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let prune_seconds = series.last().map_or(0.0, |s| s.0) + started.elapsed().as_secs_f64();
    let factor = with["ingest_p99_ms"].as_f64().unwrap_or(f64::NAN)
        / without["ingest_p99_ms"].as_f64().unwrap_or(f64::NAN);
    let met = if factor <= MAX_P99_FACTOR {
        "met"
    } else {
        "missed"
    };
    eprintln!(
        "  [prune] ingest p99 {:.1} ms without, {:.1} ms with the prune ({factor:.2} x: {met}); \
         {during:.0} deliveries pruned during the phase",
        without["ingest_p99_ms"].as_f64().unwrap_or(f64::NAN),
        with["ingest_p99_ms"].as_f64().unwrap_or(f64::NAN),
    );
    Ok(json!({
        "fill": fill, "rate": ctx.opts.prune_rate, "seconds": ctx.opts.prune_seconds,
        "without": without, "with": with,
        "deliveries_pruned_during": during, "prune_series": series,
        "prune_seconds_about": prune_seconds,
        "db_bytes_filled": db_filled, "db_bytes_after": hw.sqlite_bytes(),
        "p99_factor": factor, "target_p99_factor": MAX_P99_FACTOR, "target": met,
    }))
}
