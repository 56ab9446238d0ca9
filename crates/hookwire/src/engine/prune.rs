//! The prune: every `prune_interval`, removes what is past retention.
//!
//! A pass goes license by license (each with its own retention or the
//! default), then through what expires across licenses (idempotency keys,
//! operator alerts), then gives space back if a large prune left much free.
//! Every step is one short batch in the store, so a pass of any size never
//! holds ingest up for more than a batch, and the pass rests between
//! batches; on PostgreSQL one node prunes at a time (`begin_prune_pass`).

use crate::config::RetentionSettings;
use crate::store::rules::idempotency;
use crate::store::{
    now_millis, ExpiredRows, LicenseRows, PruneBatch, PruneScope, Store, StoreResult,
};
use crate::telemetry::Metrics;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// After a batch that deleted rows, the prune rests this many times the
/// time its delete held the database (`PruneBatch::held`): it takes at most
/// a third of the database's time, however large the pile (a retention just
/// lowered on a million rows), so ingest keeps its latency while the pile
/// goes. The held time, not the batch's wall time: on SQLite a delete also
/// waits in the writer's queue behind ingest, and resting in proportion to
/// that wait left the prune behind a steady 2,000 events/s (the soak at
/// bfc6dc8, 2026-12-03: the database grew ~100 MB a minute past retention).
const REST_PER_BATCH_TIME: u32 = 2;
/// Space-reclaim steps (SQLite: 2 MiB each) one pass takes at most, so a
/// large give-back spreads over passes and never holds up the pruning of
/// newer rows: unbounded, a pass that followed a prune of a million rows
/// spent some 17 minutes giving back 1.2 GiB while rows past retention
/// waited for the next pass (measured on 2026-12-03).
const RECLAIM_STEPS_PER_PASS: usize = 32;
/// The longest rest, should one batch have been slow for other reasons.
const MAX_REST: Duration = Duration::from_millis(200);

/// Lets other work at the database between two batches, after one that
/// held it for `held`.
async fn rest_after(held: Duration) {
    if held.is_zero() {
        // A scan that found nothing to delete did not touch the writer.
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep((held * REST_PER_BATCH_TIME).min(MAX_REST)).await;
    }
}

/// Runs a pass every `settings.prune_interval` until `stop`.
pub async fn run(
    store: Arc<dyn Store>,
    settings: RetentionSettings,
    metrics: Metrics,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(settings.prune_interval) => {}
        }
        match pass(store.as_ref(), settings, &metrics, &stop).await {
            Ok(total) if total > 0 => tracing::debug!(rows = total, "pruned past retention"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning failed; it is tried again next interval"),
        }
    }
}

/// One prune pass: answers the rows removed (0 if another node is pruning).
pub async fn pass(
    store: &dyn Store,
    settings: RetentionSettings,
    metrics: &Metrics,
    stop: &CancellationToken,
) -> StoreResult<u64> {
    if !store.begin_prune_pass().await? {
        return Ok(0);
    }
    let result = licenses_then_expired(store, settings, metrics, stop).await;
    wake_stranded(store).await;
    store.end_prune_pass().await;
    result
}

/// The safety net under ordered delivery's wake-ups (see
/// `DeliveryQueue::wake_stranded`): any it finds is a missed wake-up, so it
/// is logged as a warning.
async fn wake_stranded(store: &dyn Store) {
    match store.wake_stranded(now_millis()).await {
        Ok(0) => {}
        Ok(woken) => tracing::warn!(
            woken,
            "parked ordered deliveries were first in their lines with nothing to wake them; made due"
        ),
        Err(e) => tracing::warn!(error = %e, "looking for stranded ordered deliveries failed"),
    }
}

async fn licenses_then_expired(
    store: &dyn Store,
    settings: RetentionSettings,
    metrics: &Metrics,
    stop: &CancellationToken,
) -> StoreResult<u64> {
    let now = now_millis();
    let mut total = 0;
    for license in store.license_retentions().await? {
        let cutoff = license.retention.unwrap_or(settings.default).cutoff(now);
        for what in LicenseRows::ALL {
            let mut after = 0;
            loop {
                if stop.is_cancelled() {
                    return Ok(total);
                }
                let scope = PruneScope {
                    license_id: &license.license_id,
                    cutoff,
                    after,
                };
                let batch = store.prune_license_batch(what, scope).await?;
                total += counted(metrics, what.as_str(), batch);
                match batch.resume_after {
                    Some(next) => after = next,
                    None => break,
                }
                rest_after(batch.held).await;
            }
        }
    }
    for what in ExpiredRows::ALL {
        let cutoff = match what {
            ExpiredRows::IdempotencyKeys => idempotency::expired_before(now),
            ExpiredRows::Alerts => settings.default.cutoff(now),
        };
        loop {
            if stop.is_cancelled() {
                return Ok(total);
            }
            let batch = store.prune_expired_batch(what, cutoff).await?;
            total += counted(metrics, what.as_str(), batch);
            if batch.resume_after.is_none() {
                break;
            }
            rest_after(batch.held).await;
        }
    }
    for _ in 0..RECLAIM_STEPS_PER_PASS {
        let began = Instant::now();
        if stop.is_cancelled() || store.reclaim_space().await? == 0 {
            break;
        }
        rest_after(began.elapsed()).await;
    }
    Ok(total)
}

fn counted(metrics: &Metrics, what: &'static str, batch: PruneBatch) -> u64 {
    metrics.pruned(what, batch.deleted, batch.held);
    batch.deleted
}
