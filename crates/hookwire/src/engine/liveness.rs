//! Whether this node may act as the holder of its leases right now.
//!
//! On a shared database (PostgreSQL) a node whose heartbeat is older than
//! [`DEAD_AFTER`] is declared dead by the others, who take its leases over
//! at once. So a node must stop acting on its leases *before* that can
//! happen: it may claim, start attempts and keep attempts running only until
//! [`DEAD_AFTER`] − [`FENCE_MARGIN`] after it sent its last heartbeat that
//! the database accepted. Past that it is *fenced*: attempts in flight are
//! abandoned (their [`Ticket`]s are cancelled), nothing new starts, and
//! deliveries queued in memory are forgotten. It becomes fresh again only by
//! joining as a new node, so that every lease of its old id is taken over
//! (by any live node, itself included) and none is acted on twice.
//!
//! Each fence starts a new *epoch*. Deliveries are handed to the dispatcher
//! with the epoch in which they were leased, and one from an older epoch is
//! never started: its lease may be another node's by now.
//!
//! A node alone on its database (SQLite) is never fenced.
//!
//! Times here are this process's monotonic clock, measured from when a
//! heartbeat was *sent*: the database stamped it with its own `now()` no
//! earlier than that, so a node's deadline never falls after the moment the
//! others may declare it dead.

use crate::telemetry::NodeGauges;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

/// How often a node writes its heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// A node whose heartbeat is older than this (five intervals) is dead, by
/// the database's clock.
pub const DEAD_AFTER: Duration = Duration::from_secs(5);
/// A node stops acting on its leases this long before the others may
/// declare it dead: room for a late timer, and for the clocks' rates.
pub const FENCE_MARGIN: Duration = Duration::from_secs(1);
/// The row of a node declared dead is deleted this long after.
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);

// A node stops short of being declared dead; a few missed beats are not
// death; a kill is noticed and taken over within DEAD_AFTER and two beats,
// inside the 10 s the README promises.
const _: () = assert!(FENCE_MARGIN.as_millis() < DEAD_AFTER.as_millis());
const _: () = assert!(DEAD_AFTER.as_millis() >= 4 * HEARTBEAT_INTERVAL.as_millis());
const _: () = assert!(DEAD_AFTER.as_millis() + 2 * HEARTBEAT_INTERVAL.as_millis() < 10_000);

/// Nanoseconds after `base` for "always fresh" (a node alone).
const ALWAYS: u64 = u64::MAX;

/// This node's standing; cheap to clone, shared by the heartbeat, the
/// dispatcher, ingest and the alert sender.
#[derive(Clone)]
pub struct Liveness(Arc<Inner>);

struct Inner {
    base: Instant,
    /// Nanoseconds after `base` until which this node may act on its
    /// leases; 0 while it may not (fenced, or not joined yet).
    fresh_until: AtomicU64,
    /// The current epoch, as `State` has it, for lock-free reads.
    epoch: AtomicU64,
    state: Mutex<State>,
    /// The new epoch, sent at each fence.
    fences: watch::Sender<u64>,
    /// Wakes the watchdog when a node that was fenced is fresh again.
    joined: Notify,
    /// Nodes alive at the last heartbeat, this one included.
    alive: AtomicU64,
    /// Nanoseconds after `base` when the last accepted heartbeat was sent.
    last_beat: AtomicU64,
}

struct State {
    epoch: u64,
    /// Cancelled at the fence that ends `epoch`.
    token: CancellationToken,
    /// Not fresh until it joins (again) as a new node.
    must_join: bool,
}

/// Leave to act on leases taken in one epoch: held by an attempt while it
/// runs. [`Ticket::lost`] completes at the fence that ends the epoch.
#[derive(Clone)]
pub struct Ticket {
    epoch: u64,
    token: CancellationToken,
    liveness: Liveness,
}

impl Ticket {
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Completes when this node is fenced: the attempt must end now.
    pub async fn lost(&self) {
        self.token.cancelled().await
    }

    /// Whether this node still holds the leases of the ticket's epoch: not
    /// fenced since, and its heartbeat still fresh by the clock now (which
    /// also catches a process that was paused past its deadline and has
    /// not run its watchdog yet).
    pub fn holds(&self) -> bool {
        !self.token.is_cancelled() && self.liveness.is_fresh()
    }
}

impl Liveness {
    fn with(fresh_until: u64, must_join: bool) -> Self {
        Liveness(Arc::new(Inner {
            base: Instant::now(),
            fresh_until: AtomicU64::new(fresh_until),
            epoch: AtomicU64::new(0),
            state: Mutex::new(State {
                epoch: 0,
                token: CancellationToken::new(),
                must_join,
            }),
            fences: watch::channel(0).0,
            joined: Notify::new(),
            alive: AtomicU64::new(1),
            last_beat: AtomicU64::new(0),
        }))
    }

    /// A node alone on its database: always fresh, never fenced.
    pub fn alone() -> Self {
        Self::with(ALWAYS, false)
    }

    /// A node on a shared database, not fresh until it joins.
    pub fn shared() -> Self {
        Self::with(0, true)
    }

    fn nanos(&self, at: Instant) -> u64 {
        // Never 0, which means "not fresh".
        (at.saturating_duration_since(self.0.base).as_nanos() as u64).max(1)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding it left nothing half-changed:
        // every change is a few plain assignments.
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this node may act on its leases now.
    pub fn is_fresh(&self) -> bool {
        let until = self.0.fresh_until.load(Ordering::Acquire);
        until == ALWAYS || self.nanos(Instant::now()) < until
    }

    /// The current epoch if this node is fresh: what leases taken now are
    /// stamped with.
    pub fn fresh_epoch(&self) -> Option<u64> {
        let epoch = self.0.epoch.load(Ordering::Acquire);
        self.is_fresh().then_some(epoch)
    }

    /// Whether `epoch` is still the current one.
    pub fn is_current(&self, epoch: u64) -> bool {
        self.0.epoch.load(Ordering::Acquire) == epoch
    }

    /// A ticket for the current epoch, if this node is fresh.
    pub fn ticket(&self) -> Option<Ticket> {
        let state = self.state();
        self.is_fresh().then(|| Ticket {
            epoch: state.epoch,
            token: state.token.clone(),
            liveness: self.clone(),
        })
    }

    /// Fires (with the new epoch) at every fence.
    pub fn fences(&self) -> watch::Receiver<u64> {
        self.0.fences.subscribe()
    }

    /// Whether the next heartbeat must join as a new node.
    pub fn must_join(&self) -> bool {
        self.state().must_join
    }

    /// The heartbeat sent at `sent` was written: fresh until
    /// `sent + DEAD_AFTER − FENCE_MARGIN`, unless fenced since (then only
    /// joining makes it fresh).
    pub fn renew(&self, sent: Instant, alive: u64) {
        let state = self.state();
        if state.must_join {
            return;
        }
        self.extend(sent, alive);
    }

    /// This node joined as a new node with a heartbeat sent at `sent`.
    pub fn joined(&self, sent: Instant, alive: u64) {
        let mut state = self.state();
        state.must_join = false;
        self.extend(sent, alive);
        drop(state);
        self.0.joined.notify_one();
    }

    fn extend(&self, sent: Instant, alive: u64) {
        let until = self.nanos(sent + DEAD_AFTER - FENCE_MARGIN);
        self.0.fresh_until.fetch_max(until, Ordering::AcqRel);
        self.0
            .last_beat
            .fetch_max(self.nanos(sent), Ordering::AcqRel);
        self.0.alive.store(alive, Ordering::Relaxed);
    }

    /// When this node stops being fresh unless renewed; `None` if it is not
    /// fresh now or never stops (alone).
    pub fn deadline(&self) -> Option<Instant> {
        match self.0.fresh_until.load(Ordering::Acquire) {
            0 | ALWAYS => None,
            until => Some(self.0.base + Duration::from_nanos(until)),
        }
    }

    /// Fences this node if its deadline has passed; true if it did.
    pub fn fence_if_stale(&self) -> bool {
        let mut state = self.state();
        // Under the lock: a heartbeat renewed meanwhile has moved it.
        if self.nanos(Instant::now()) < self.0.fresh_until.load(Ordering::Acquire) {
            return false;
        }
        self.fence_locked(&mut state)
    }

    /// Stops acting on leases at once: a new epoch, the old one's tickets
    /// cancelled, not fresh until it joins again. True if it was fresh
    /// (or not yet fenced) before; a node alone is never fenced.
    pub fn fence(&self) -> bool {
        let mut state = self.state();
        self.fence_locked(&mut state)
    }

    fn fence_locked(&self, state: &mut State) -> bool {
        if state.must_join || self.0.fresh_until.load(Ordering::Acquire) == ALWAYS {
            return false;
        }
        self.0.fresh_until.store(0, Ordering::Release);
        state.must_join = true;
        state.epoch += 1;
        self.0.epoch.store(state.epoch, Ordering::Release);
        let old = std::mem::replace(&mut state.token, CancellationToken::new());
        old.cancel();
        self.0.fences.send_replace(state.epoch);
        true
    }

    /// Waits until this node joins again after a fence (at once if it has
    /// since the last wait).
    pub async fn rejoined(&self) {
        self.0.joined.notified().await
    }

    /// What `/metrics` shows of this node.
    pub fn gauges(&self) -> NodeGauges {
        let last = self.0.last_beat.load(Ordering::Relaxed);
        let age = match self.0.fresh_until.load(Ordering::Relaxed) {
            ALWAYS => Duration::ZERO,
            _ => Instant::now().saturating_duration_since(self.0.base + Duration::from_nanos(last)),
        };
        NodeGauges {
            alive: self.0.alive.load(Ordering::Relaxed),
            heartbeat_age: age,
            fresh: self.is_fresh(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_alone_is_always_fresh() {
        let l = Liveness::alone();
        assert!(l.is_fresh());
        assert!(!l.must_join());
        assert!(!l.fence());
        assert!(!l.fence_if_stale());
        let ticket = l.ticket().unwrap();
        assert!(ticket.holds());
        assert_eq!(l.deadline(), None);
        assert_eq!(l.gauges().heartbeat_age, Duration::ZERO);
    }

    #[test]
    fn a_shared_node_is_fresh_from_its_join_until_the_margin_before_death() {
        let l = Liveness::shared();
        assert!(!l.is_fresh() && l.must_join() && l.ticket().is_none());
        // Renewing before joining changes nothing.
        l.renew(Instant::now(), 3);
        assert!(!l.is_fresh());
        let sent = Instant::now();
        l.joined(sent, 3);
        assert!(l.is_fresh() && !l.must_join());
        assert_eq!(l.deadline(), Some(sent + DEAD_AFTER - FENCE_MARGIN));
        assert_eq!(l.gauges().alive, 3);
        // A heartbeat sent long ago is already past: fenced at once.
        let l = Liveness::shared();
        l.joined(Instant::now() - DEAD_AFTER, 1);
        assert!(!l.is_fresh());
        assert!(l.fence_if_stale());
        assert!(l.must_join());
    }

    #[test]
    fn a_fence_cancels_the_epochs_tickets_and_needs_a_new_join() {
        let l = Liveness::shared();
        l.joined(Instant::now(), 1);
        let ticket = l.ticket().unwrap();
        let mut fences = l.fences();
        assert_eq!(l.fresh_epoch(), Some(0));
        assert!(l.fence());
        assert!(!l.fence(), "fenced once");
        assert!(!ticket.holds());
        assert!(fences.has_changed().unwrap());
        assert_eq!(*fences.borrow_and_update(), 1);
        assert!(!l.is_current(ticket.epoch()));
        assert_eq!(l.fresh_epoch(), None);
        // A heartbeat that was in flight at the fence does not revive it.
        l.renew(Instant::now(), 1);
        assert!(!l.is_fresh());
        l.joined(Instant::now(), 1);
        let fresh = l.ticket().unwrap();
        assert_eq!(fresh.epoch(), 1);
        assert!(fresh.holds() && !ticket.holds());
    }

    #[tokio::test]
    async fn lost_completes_at_the_fence() {
        let l = Liveness::shared();
        l.joined(Instant::now(), 1);
        let ticket = l.ticket().unwrap();
        let waiting = tokio::spawn(async move { ticket.lost().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        l.fence();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("lost() completes")
            .unwrap();
    }
}
