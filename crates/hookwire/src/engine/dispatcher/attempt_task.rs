//! One attempt, as a task of its own: it waits for the webhook's rate
//! limit, makes the attempt under this node's ticket, decides what the
//! outcome means (`outcome`), records it, frees the webhook's slot (before
//! the record commits when the attempt delivered), switches off a webhook
//! that keeps failing, and raises alerts on a state change.

use super::*;

impl Core {
    pub(super) fn spawn_attempt(&mut self, job: DeliveryJob, ticket: Ticket) {
        // The webhook's own rate limit: the attempt waits for a token while
        // holding its slot, so a limited webhook only slows itself down.
        let bucket = job.max_per_second.map(|rate| {
            let bucket = self
                .buckets
                .entry(job.webhook_id.clone())
                .or_insert_with(|| Arc::new(TokenBucket::new(rate)));
            bucket.set_rate(rate);
            bucket.clone()
        });
        let start_margin = self.schedule.limits().start_margin;
        let sender = self.sender.clone();
        let store = self.store.clone();
        let retry = if job.v3_secret_key.is_some() {
            self.retry_v3.clone()
        } else {
            self.retry.clone()
        };
        let done = self.done_tx.clone();
        let shared = self.shared.clone();
        let disable_after = self.settings.disable_after.as_millis() as Millis;
        let metrics = self.metrics.clone();
        // One span per attempt. The target is named by its host only: the
        // stored URL may carry credentials, and its path or query a token.
        let span = tracing::info_span!(
            "attempt",
            event_id = %job.event.unique_id,
            webhook_id = %job.webhook_id,
            delivery_id = job.delivery_id,
            attempt = job.attempts_in_round + 1,
            target_host = %target_host(&job.url),
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        self.attempts.spawn(
            async move {
                let attempt = async {
                    if let Some(bucket) = bucket {
                        bucket.acquire().await;
                        if too_late_to_start(job.lease_until, now_millis(), start_margin) {
                            // Waited past the point where the attempt could
                            // end inside its lease; the lease runs out and
                            // the delivery is claimed again.
                            return None;
                        }
                    }
                    Some(sender.attempt(&job).await)
                };
                let report = tokio::select! {
                    biased;
                    // Fenced: the lease may be another node's any moment, so
                    // the attempt ends now, unrecorded, and is made again by
                    // whoever holds the lease next.
                    _ = ticket.lost() => None,
                    report = attempt => report,
                };
                // `holds` also catches a process paused past its deadline
                // whose watchdog has not run yet.
                let Some(report) = report.filter(|_| ticket.holds()) else {
                    if !ticket.holds() {
                        tracing::debug!("attempt abandoned: this node's heartbeat is stale");
                    }
                    let _ = done.send(Done {
                        delivery_id: job.delivery_id,
                        webhook_id: job.webhook_id,
                        disabled: false,
                    });
                    return;
                };
                let now = now_millis();
                let Step {
                    status,
                    error,
                    next,
                    health,
                } = after_attempt(&report.outcome, job.attempts_in_round + 1, now, &retry);
                let latency_ms = report.latency.as_millis() as i64;
                let label = match next {
                    NextState::Delivered => AttemptLabel::Delivered,
                    NextState::RetryAt(_) => AttemptLabel::Retry,
                    NextState::Failed => AttemptLabel::Failed,
                };
                metrics.attempt(label, report.latency);
                let span = tracing::Span::current();
                if let Some(status) = status {
                    span.record("status", status);
                }
                span.record("latency_ms", latency_ms);
                span.record("outcome", label.as_str());
                match &next {
                    // Every success at INFO was half a kilobyte of log per
                    // event; the per-minute summary counts them instead.
                    NextState::Delivered => tracing::debug!(status, latency_ms, "delivered"),
                    NextState::RetryAt(at) => {
                        tracing::info!(
                            status,
                            latency_ms,
                            error,
                            retry_in_ms = at - now,
                            "attempt failed; will retry"
                        );
                        shared.next_hint.fetch_min(*at, Ordering::Relaxed);
                    }
                    NextState::Failed => match &job.order_key {
                        // Ordered: the line of its key goes on without it.
                        Some(order_key) => tracing::warn!(
                            status,
                            latency_ms,
                            error,
                            order_key,
                            "attempt failed; no retries left; the later deliveries of its key go on past it"
                        ),
                        None => tracing::warn!(
                            status,
                            latency_ms,
                            error,
                            "attempt failed; no retries left"
                        ),
                    },
                }
                let failed = next != NextState::Delivered;
                // A delivered attempt frees its slot before its record is
                // committed: the slot would otherwise sit through a group
                // commit (an fsync), which caps a webhook at
                // per_target_concurrency / commit time. The delivery stays
                // leased until the record lands, so a record that fails
                // still means "attempted again when the lease runs out".
                // Records waiting to commit are bounded by `recording`.
                let _recording = if failed {
                    None
                } else {
                    let permit = shared.recording.clone().acquire_owned().await.ok();
                    let _ = done.send(Done {
                        delivery_id: job.delivery_id,
                        webhook_id: job.webhook_id.clone(),
                        disabled: false,
                    });
                    permit
                };
                let mut disabled = None;
                // For an alert: a delivered attempt has no error to copy.
                let alert_error = error.clone().filter(|_| shared.alerter.is_some());
                let record = AttemptRecord {
                    delivery_id: job.delivery_id,
                    webhook_id: job.webhook_id.clone(),
                    at: now,
                    status,
                    latency_ms,
                    error,
                    response_excerpt: report.response_excerpt,
                    next,
                    order_key: job.order_key.clone(),
                };
                // A 410 disables the webhook before the attempt is logged, so
                // whoever sees the failed delivery also sees the webhook off.
                if health == Health::Gone {
                    disabled =
                        check_health(store.as_ref(), &job.webhook_id, now, health, disable_after)
                            .await;
                }
                let recorded = store.record_attempt(record).await;
                if let Err(e) = &recorded {
                    // The lease runs out and the delivery is attempted again:
                    // at least once, never lost.
                    tracing::error!(error = %e, "could not record the attempt");
                } else if health == Health::Failing {
                    // The failing run's start is kept by record_attempt, so
                    // the "failing for too long" check comes after it.
                    disabled =
                        check_health(store.as_ref(), &job.webhook_id, now, health, disable_after)
                            .await;
                }
                if failed {
                    let _ = done.send(Done {
                        delivery_id: job.delivery_id,
                        webhook_id: job.webhook_id.clone(),
                        disabled: disabled.is_some(),
                    });
                }
                // After the slot is free, and only where a state changed: a
                // delivered attempt never gets here.
                if let (Some(alerter), true) = (&shared.alerter, failed) {
                    let recorded = recorded.is_ok();
                    let failure = Failure {
                        license_id: &job.event.license_id,
                        webhook_id: &job.webhook_id,
                        delivery_id: job.delivery_id,
                        at: now,
                        status,
                        error: alert_error.as_deref(),
                        disabled: disabled.as_deref().map(|r| (r, health == Health::Gone)),
                        may_begin_failing: recorded && health == Health::Failing,
                        failed_for_good: recorded && next == NextState::Failed,
                    };
                    alerter.after_failure(failure).await;
                }
            }
            .instrument(span),
        );
    }
}

/// Disables a webhook whose receiver answered `410 Gone`, or whose every
/// attempt has failed for `disable_after` (the store keeps `failing_since`).
/// The reason, if this call disabled it.
async fn check_health(
    store: &dyn Store,
    webhook_id: &str,
    now: Millis,
    health: Health,
    disable_after: Millis,
) -> Option<String> {
    let (reason, condition) = health.disable_reason(now, disable_after)?;
    match store.disable_webhook(webhook_id, &reason, condition).await {
        Ok(true) => {
            tracing::warn!(webhook_id, %reason, "webhook disabled");
            Some(reason)
        }
        Ok(false) => None,
        Err(e) => {
            tracing::warn!(webhook_id, error = %e, "could not disable the webhook");
            None
        }
    }
}
