//! The dispatcher: turns claimed deliveries into attempts, fairly.
//!
//! Fresh deliveries arrive straight from ingest (already leased to this
//! node); due retries and leftovers are claimed by the poller in bounded
//! batches, so a backlog of any size streams from the database instead of
//! filling memory. Each webhook has its own queue and an in-flight limit, and
//! webhooks with work take turns, so one slow receiver cannot starve others.
//!
//! This module is the tokio side: the event loop, the poller and what is
//! shared with ingest; `attempt_task` spawns one attempt and records it. Which delivery goes next is decided
//! by [`schedule`], and what an attempt's outcome means by [`outcome`]; both
//! are plain code that takes the time as a parameter.
//!
//! Everything here acts on leases only while this node's heartbeat is fresh
//! ([`Liveness`]): deliveries come tagged with the epoch they were leased
//! in, an attempt runs under a [`Ticket`] of that epoch and is abandoned at
//! a fence, and the queue in memory is forgotten when the epoch ends.

mod attempt_task;
pub mod outcome;
pub mod schedule;

use super::alerts::{Alerter, Failure};
use super::attempt::{target_host, Sender};
use super::liveness::{Liveness, Ticket};
use super::rate::TokenBucket;
use super::retry::RetryPolicy;
use crate::config::{DeliverySettings, LEASE_MARGIN};
use crate::store::{now_millis, AttemptRecord, DeliveryJob, Millis, NextState, Store};
use crate::telemetry::{AttemptLabel, Metrics};
use outcome::{after_attempt, Health, Step};
use schedule::{too_late_to_start, Limits, Pick, Schedule};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Deliveries held in memory (queued or in flight) before the poller stops
/// claiming and ingest stops handing off; the rest wait in the database.
const HIGH_WATERMARK: usize = 20_000;
/// Rows claimed per poll.
const CLAIM_BATCH: usize = 1_000;
/// The poller claims only when at least this much room is free.
const MIN_CLAIM: usize = CLAIM_BATCH / 2;

/// Delivered attempts that may wait for their record's commit at once.
const MAX_RECORDING: usize = 4_096;

/// Deliveries leased to this node in one epoch of its [`Liveness`].
struct Leased {
    epoch: u64,
    jobs: Vec<DeliveryJob>,
}

/// What ingest and the API use to talk to the dispatcher.
#[derive(Clone)]
pub struct DispatcherHandle {
    jobs: mpsc::UnboundedSender<Leased>,
    shared: Arc<Shared>,
}

struct Shared {
    /// Deliveries in memory: queued or in flight.
    held: AtomicUsize,
    /// The earliest retry known to be due, so the poller wakes for it.
    next_hint: AtomicI64,
    wake: Notify,
    shutdown: CancellationToken,
    /// Webhooks whose queues are full; the poller does not claim for them
    /// and ingest does not hand them more. Replaced, not changed in place,
    /// so that each ingest request takes it with a reference count. Only
    /// the event loop changes it, following its [`Schedule`].
    saturated: std::sync::Mutex<Arc<HashSet<String>>>,
    /// Delivered attempts whose slot is free but whose record is not yet
    /// committed; bounds the memory they take.
    recording: Arc<Semaphore>,
    /// Raises operator alerts on a webhook's or a delivery's state change.
    /// Here because every attempt holds `Shared` already: alerts cost a
    /// delivered attempt nothing, not even a reference count.
    alerter: Option<Alerter>,
    /// Whether this node may act on its leases, and in which epoch.
    liveness: Liveness,
}

impl DispatcherHandle {
    /// Whether fresh deliveries should be leased and handed over now: the
    /// epoch to [`submit`](Self::submit) them with, if so. Not while memory
    /// is full, nor while this node's heartbeat is not fresh (then they are
    /// committed unleased, for any node).
    pub fn handoff_epoch(&self) -> Option<u64> {
        if self.shared.held.load(Ordering::Relaxed) >= HIGH_WATERMARK {
            return None;
        }
        self.shared.liveness.fresh_epoch()
    }

    /// This node's standing among the nodes sharing its database.
    pub fn liveness(&self) -> &Liveness {
        &self.shared.liveness
    }

    /// The webhooks whose queues are full: not handed fresh deliveries.
    pub fn saturated(&self) -> Arc<HashSet<String>> {
        self.shared
            .saturated
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Hands over deliveries leased to this node in `epoch` (as
    /// [`handoff_epoch`](Self::handoff_epoch) or the poller read it before
    /// leasing them).
    pub fn submit(&self, jobs: Vec<DeliveryJob>, epoch: u64) {
        if jobs.is_empty() {
            return;
        }
        self.shared.held.fetch_add(jobs.len(), Ordering::Relaxed);
        if let Err(returned) = self.jobs.send(Leased { epoch, jobs }) {
            // The dispatcher has stopped; the leases expire and the work is resumed later.
            self.shared
                .held
                .fetch_sub(returned.0.jobs.len(), Ordering::Relaxed);
        }
    }

    /// Something became due now (a redelivery): look at once.
    pub fn wake(&self) {
        self.shared.next_hint.store(0, Ordering::Relaxed);
        self.shared.wake.notify_one();
    }

    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::Relaxed)
    }
}

/// The running dispatcher: its handle and the tasks to wait for at shutdown.
pub struct Dispatcher {
    pub handle: DispatcherHandle,
    tasks: Vec<JoinHandle<()>>,
}

struct Done {
    delivery_id: i64,
    webhook_id: String,
    /// The attempt disabled its webhook: what waits behind it goes back.
    disabled: bool,
}

struct Core {
    store: Arc<dyn Store>,
    sender: Arc<Sender>,
    retry: RetryPolicy,
    /// For LiveChat v3 deliveries (`v3_retry_schedule`).
    retry_v3: RetryPolicy,
    settings: DeliverySettings,
    shared: Arc<Shared>,
    done_tx: mpsc::UnboundedSender<Done>,
    schedule: Schedule<DeliveryJob>,
    attempts: tokio::task::JoinSet<()>,
    /// Rate limiters of the webhooks that have one and work in memory.
    buckets: HashMap<String, Arc<TokenBucket>>,
    metrics: Metrics,
    /// The epoch the queued deliveries were leased in.
    epoch: u64,
    /// Deliveries claimed again while the schedule still held them: a
    /// retry claimed between its last attempt's record and that attempt's
    /// `Done`, or one whose lease ran out while it waited here. Each is
    /// queued once the schedule lets go of the old one. Dropping them
    /// instead left each leased, unattempted, until its lease ran out: a
    /// minute's stall, and for an ordered webhook its chat's with it.
    reclaimed: HashMap<i64, DeliveryJob>,
}

impl Dispatcher {
    pub fn start(
        store: Arc<dyn Store>,
        sender: Arc<Sender>,
        settings: DeliverySettings,
        metrics: Metrics,
        alerter: Option<Alerter>,
        liveness: Liveness,
    ) -> Dispatcher {
        let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            held: AtomicUsize::new(0),
            next_hint: AtomicI64::new(i64::MAX),
            wake: Notify::new(),
            shutdown: CancellationToken::new(),
            saturated: std::sync::Mutex::new(Arc::default()),
            recording: Arc::new(Semaphore::new(MAX_RECORDING)),
            alerter,
            liveness: liveness.clone(),
        });
        let handle = DispatcherHandle {
            jobs: jobs_tx,
            shared: shared.clone(),
        };
        let core = Core {
            store: store.clone(),
            sender,
            retry: RetryPolicy {
                schedule: settings.retry_schedule.clone(),
                jitter: settings.retry_jitter,
                max_retry_after: settings.max_retry_after,
            },
            retry_v3: RetryPolicy {
                schedule: if settings.v3_retry_schedule.is_empty() {
                    settings.retry_schedule.clone()
                } else {
                    settings.v3_retry_schedule.clone()
                },
                jitter: settings.retry_jitter,
                max_retry_after: settings.max_retry_after,
            },
            settings: settings.clone(),
            reclaimed: HashMap::new(),
            shared: shared.clone(),
            done_tx,
            schedule: Schedule::new(Limits {
                per_webhook: settings.per_target_concurrency,
                max_in_flight: settings.max_in_flight,
                start_margin: (settings.attempt_timeout + LEASE_MARGIN).as_millis() as Millis,
            }),
            attempts: tokio::task::JoinSet::new(),
            buckets: HashMap::new(),
            metrics,
            epoch: liveness.fresh_epoch().unwrap_or_default(),
        };
        let tasks = vec![
            tokio::spawn(core.run(jobs_rx, done_rx)),
            tokio::spawn(poll(store, handle.clone(), settings)),
        ];
        Dispatcher { handle, tasks }
    }

    /// Stops claiming and starting attempts, gives queued work back to the
    /// database, and waits up to `grace` for attempts in flight.
    pub async fn shutdown(self, grace: Duration) {
        self.handle.shared.shutdown.cancel();
        let wait_all = async {
            for task in self.tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(grace, wait_all).await.is_err() {
            tracing::warn!("shutdown grace period over with attempts still in flight; they resume at next start");
        }
    }
}

impl Core {
    async fn run(
        mut self,
        mut jobs_rx: mpsc::UnboundedReceiver<Leased>,
        mut done_rx: mpsc::UnboundedReceiver<Done>,
    ) {
        let shutdown = self.shared.shutdown.clone();
        let mut fences = self.shared.liveness.fences();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Ok(()) = fences.changed() => {
                    let epoch = *fences.borrow_and_update();
                    self.new_epoch(epoch);
                }
                Some(done) = done_rx.recv() => self.finish(done),
                Some(leased) = jobs_rx.recv() => self.take(leased),
            }
            self.give_back_overflow();
            self.release_disabled();
            self.pump();
        }
        // Draining: queued work goes back to the database now, attempts in
        // flight are awaited (the caller bounds this by the grace period).
        jobs_rx.close();
        while let Ok(leased) = jobs_rx.try_recv() {
            self.take(leased);
        }
        let mut queued = self.schedule.forget_queued();
        queued.extend(self.forget_reclaimed());
        if !queued.is_empty() {
            if let Err(e) = self.store.release(queued, now_millis()).await {
                tracing::warn!(error = %e, "could not give queued deliveries back; their leases will expire");
            }
        }
        while self.attempts.join_next().await.is_some() {}
    }

    /// Queues deliveries leased in the current epoch. Older ones are
    /// dropped: a fence came between their lease and now, so the lease may
    /// be another node's (given back, in case it is still this node's).
    fn take(&mut self, leased: Leased) {
        if !self.shared.liveness.is_current(leased.epoch) {
            self.shared
                .held
                .fetch_sub(leased.jobs.len(), Ordering::Relaxed);
            let ids = leased.jobs.iter().map(|j| j.delivery_id).collect();
            release_in_background(self.store.clone(), ids);
            return;
        }
        if leased.epoch != self.epoch {
            self.new_epoch(leased.epoch);
        }
        for job in leased.jobs {
            self.enqueue(job);
        }
    }

    /// A fence ended the epoch of what is queued: forget it all (its leases
    /// are taken over with this node's old id) and give it back in case the
    /// database still counts it this node's. Attempts in flight end on their
    /// own: their tickets were cancelled.
    fn new_epoch(&mut self, epoch: u64) {
        if epoch == self.epoch {
            return;
        }
        self.epoch = epoch;
        let ids = self.schedule.forget_queued();
        let reclaimed = self.forget_reclaimed();
        if !reclaimed.is_empty() {
            // Already taken off `held`.
            release_in_background(self.store.clone(), reclaimed);
        }
        if let Ok(mut saturated) = self.shared.saturated.lock() {
            *saturated = Arc::default();
        }
        let schedule = &self.schedule;
        self.buckets.retain(|id, _| schedule.webhook(id).is_some());
        if ids.is_empty() {
            return;
        }
        self.shared.held.fetch_sub(ids.len(), Ordering::Relaxed);
        tracing::info!(
            deliveries = ids.len(),
            "forgot the deliveries queued in memory: this node's heartbeat went stale"
        );
        release_in_background(self.store.clone(), ids);
    }

    fn enqueue(&mut self, job: DeliveryJob) {
        if self.schedule.knows(job.delivery_id) {
            // Claimed again while the schedule holds the old one: queued
            // when it lets go (`let_go`). A newer claim replaces an older.
            if self.reclaimed.insert(job.delivery_id, job).is_some() {
                self.shared.held.fetch_sub(1, Ordering::Relaxed);
            }
            return;
        }
        self.schedule.enqueue(job);
    }

    /// The schedule let go of `delivery_id` (its attempt ended, or it
    /// expired in the queue): a claim of it that came meanwhile is queued now.
    fn let_go(&mut self, delivery_id: i64) {
        if let Some(job) = self.reclaimed.remove(&delivery_id) {
            self.enqueue(job);
        }
    }

    /// Everything stashed in `reclaimed`, given up (a fence, a shutdown).
    fn forget_reclaimed(&mut self) -> Vec<i64> {
        let ids: Vec<i64> = self.reclaimed.drain().map(|(id, _)| id).collect();
        self.shared.held.fetch_sub(ids.len(), Ordering::Relaxed);
        ids
    }

    fn finish(&mut self, done: Done) {
        let before = self.shared.held.fetch_sub(1, Ordering::Relaxed);
        if before == HIGH_WATERMARK - MIN_CLAIM + 1 {
            // Room for a claim again (see `poll`).
            self.shared.wake.notify_one();
        }
        let finished = self
            .schedule
            .finish(done.delivery_id, &done.webhook_id, done.disabled);
        self.let_go(done.delivery_id);
        if finished.forgotten > 0 {
            // Not attempted while the webhook is disabled: they wait, pending
            // (`release_disabled` gives them back).
            self.shared
                .held
                .fetch_sub(finished.forgotten, Ordering::Relaxed);
        }
        if finished.unsaturated {
            let removed = self
                .shared
                .saturated
                .lock()
                .map(|mut s| Arc::make_mut(&mut s).remove(&done.webhook_id));
            if removed.unwrap_or(false) {
                self.shared.wake.notify_one();
            }
        }
        if finished.idle {
            self.buckets.remove(&done.webhook_id);
        }
        // Reap finished attempt tasks so the set does not grow.
        while self.attempts.try_join_next().is_some() {}
    }

    /// Starts attempts, one per ready webhook in turn, while there is room
    /// and this node's heartbeat is fresh.
    fn pump(&mut self) {
        let Some(ticket) = self.shared.liveness.ticket() else {
            return;
        };
        if ticket.epoch() != self.epoch {
            // Fenced and joined again before the loop heard of the fence.
            self.new_epoch(ticket.epoch());
        }
        while let Some(pick) = self.schedule.next(now_millis()) {
            match pick {
                Pick::Start(job) => self.spawn_attempt(job, ticket.clone()),
                // Waited too long to start inside its lease: claimed afresh
                // from the database.
                Pick::Expired(job) => {
                    self.shared.held.fetch_sub(1, Ordering::Relaxed);
                    self.let_go(job.delivery_id);
                }
            }
        }
    }

    /// Gives back the queued deliveries of webhooks that were just disabled.
    fn release_disabled(&mut self) {
        let ids = self.schedule.take_released();
        if ids.is_empty() {
            return;
        }
        release_in_background(self.store.clone(), ids);
    }

    /// Gives back to the database what waits behind a webhook that cannot
    /// keep up, and marks it saturated so the poller passes over it.
    fn give_back_overflow(&mut self) {
        let mut ids = Vec::new();
        let saturated = &self.shared.saturated;
        self.schedule.trim_overflow(&mut ids, |webhook_id| {
            if let Ok(mut saturated) = saturated.lock() {
                Arc::make_mut(&mut saturated).insert(webhook_id.to_string());
            }
        });
        if ids.is_empty() {
            return;
        }
        self.shared.held.fetch_sub(ids.len(), Ordering::Relaxed);
        // Not awaited here: the loop would stall every attempt behind a
        // group commit each time a busy webhook overflows. Until it lands
        // the rows stay leased (and the webhook is skipped as saturated).
        release_in_background(self.store.clone(), ids);
    }
}

/// Gives deliveries back to the database without holding up the caller;
/// if that fails, their leases run out and they are claimed again anyway.
fn release_in_background(store: Arc<dyn Store>, ids: Vec<i64>) {
    tokio::spawn(async move {
        if let Err(e) = store.release(ids, now_millis()).await {
            tracing::warn!(error = %e, "could not give deliveries back; their leases will expire");
        }
    });
}

/// Claims due deliveries whenever there is room, then sleeps until the poll
/// interval passes, a known retry falls due, or something wakes it.
async fn poll(store: Arc<dyn Store>, handle: DispatcherHandle, settings: DeliverySettings) {
    let shared = handle.shared.clone();
    let lease_ms = settings.lease.as_millis() as Millis;
    let interval_ms = settings.poll_interval.as_millis() as Millis;
    let due_signal = store.due_signal();
    // When a claim that passes over saturated webhooks comes back short,
    // everything else due is claimed; the next one would read past the same
    // rows of theirs (all of a deep backlog) to find nothing new. Until the
    // skip list empties (a webhook caught up), such claims wait a poll interval.
    let mut skipping_came_back_short: Option<std::time::Instant> = None;
    loop {
        if shared.shutdown.is_cancelled() {
            return;
        }
        let now = now_millis();
        // Leases taken now belong to this epoch; none while not fresh.
        let epoch = shared.liveness.fresh_epoch();
        if shared.next_hint.load(Ordering::Relaxed) <= now {
            shared.next_hint.store(i64::MAX, Ordering::Relaxed);
        }
        let room = HIGH_WATERMARK.saturating_sub(handle.held());
        let mut full = false;
        // A claim scans past every leased row that is due (the ones in
        // memory), so claiming a handful at a time while memory is nearly
        // full would keep the writer busy scanning; wait for room for a
        // real batch (`finish` wakes the poller when there is).
        if let (Some(epoch), true) = (epoch, room >= MIN_CLAIM.min(HIGH_WATERMARK)) {
            let limit = room.min(CLAIM_BATCH);
            let skip: Vec<String> = shared
                .saturated
                .lock()
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            let skipping = !skip.is_empty();
            let wait = skipping
                && skipping_came_back_short.is_some_and(|at| at.elapsed() < settings.poll_interval);
            if !wait {
                match store.claim_due(now, limit, now + lease_ms, skip).await {
                    Ok(jobs) => {
                        full = jobs.len() == limit;
                        skipping_came_back_short =
                            (skipping && !full).then(std::time::Instant::now);
                        handle.submit(jobs, epoch);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming due deliveries failed; retrying")
                    }
                }
            }
        }
        if full {
            tokio::task::yield_now().await;
            continue;
        }
        let until_hint = shared
            .next_hint
            .load(Ordering::Relaxed)
            .saturating_sub(now_millis());
        let sleep_ms = until_hint.clamp(1, interval_ms.max(1));
        let other_nodes = async {
            match &due_signal {
                Some(signal) => signal.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = shared.wake.notified() => {}
            _ = other_nodes => {}
            _ = tokio::time::sleep(Duration::from_millis(sleep_ms as u64)) => {}
        }
    }
}
