//! Which delivery is attempted next: the dispatcher's scheduling state as
//! plain data, without tokio or a clock.
//!
//! Each webhook has its own queue and in-flight count; webhooks with work and
//! a free slot wait their turn in one ready queue, so one slow receiver
//! cannot starve the others (round robin: a webhook that starts an attempt
//! goes to the back). A webhook whose queue overflows is *saturated* until
//! its queue is below half its cap. Time comes in as a parameter, so tests
//! drive it with a plain number.

use crate::store::{DeliveryJob, Millis};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// A webhook's queue may hold this many deliveries per in-flight slot. Past
/// it the webhook is *saturated*: the rest is given back to the database and
/// the poller passes over it, so one slow receiver cannot fill the memory
/// budget that every other webhook shares. Below half, it is claimed again.
/// 256 rather than 64 drained a 400,000 backlog 40 % faster (BENCHMARKS.md):
/// a deeper queue runs dry before its next claim lands less often.
pub const QUEUE_PER_SLOT: usize = 256;

/// What the schedule needs to know of a delivery it holds.
pub trait Queued {
    fn delivery_id(&self) -> i64;
    fn webhook_id(&self) -> &str;
    /// Until when this node owns the delivery.
    fn lease_until(&self) -> Millis;
}

impl Queued for DeliveryJob {
    fn delivery_id(&self) -> i64 {
        self.delivery_id
    }
    fn webhook_id(&self) -> &str {
        &self.webhook_id
    }
    fn lease_until(&self) -> Millis {
        self.lease_until
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Attempts in flight per webhook.
    pub per_webhook: usize,
    /// Attempts in flight in all.
    pub max_in_flight: usize,
    /// How long before its lease runs out an attempt must start at the
    /// latest: the attempt timeout plus a margin for clock skew.
    pub start_margin: Millis,
}

impl Limits {
    /// Deliveries a webhook's queue holds before it is saturated.
    pub fn queue_cap(&self) -> usize {
        self.per_webhook * QUEUE_PER_SLOT
    }
}

/// Whether an attempt starting at `now` could outlive the lease: it must
/// end before another node may claim the delivery.
pub fn too_late_to_start(lease_until: Millis, now: Millis, start_margin: Millis) -> bool {
    lease_until < now + start_margin
}

/// What [`Schedule::next`] picked.
#[derive(Debug, PartialEq, Eq)]
pub enum Pick<J> {
    /// Attempt it now; it holds a slot until [`Schedule::finish`].
    Start(J),
    /// It waited too long to start inside its lease: dropped and forgotten,
    /// to be claimed afresh from the database.
    Expired(J),
}

/// What [`Schedule::finish`] changed beyond the slot it freed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Finished {
    /// Queued deliveries dropped because the attempt disabled the webhook;
    /// their ids wait in [`Schedule::take_released`].
    pub forgotten: usize,
    /// The webhook was saturated and its queue is now below half its cap.
    pub unsaturated: bool,
    /// The webhook has nothing queued or in flight: it is forgotten (and
    /// whatever else is kept per webhook can go too).
    pub idle: bool,
}

struct Target<J> {
    /// The map's key again, so the ready queue gets it without allocating.
    id: Arc<str>,
    in_flight: usize,
    queue: VecDeque<J>,
    /// Whether it has a turn waiting in `ready`.
    in_ready: bool,
}

/// The per-webhook queues, their turns and slots.
pub struct Schedule<J> {
    limits: Limits,
    targets: HashMap<Arc<str>, Target<J>>,
    /// Webhooks with work and a free slot, in the order they get a turn.
    /// An id may be stale (its webhook left since); it is skipped then.
    ready: VecDeque<Arc<str>>,
    /// Deliveries held, queued or in flight: a delivery claimed again after
    /// its lease ran out while it waited here is not held twice.
    known: HashSet<i64>,
    in_flight: usize,
    saturated: HashSet<Arc<str>>,
    /// Queued deliveries of webhooks just disabled, to give back.
    released: Vec<i64>,
}

impl<J: Queued> Schedule<J> {
    pub fn new(limits: Limits) -> Self {
        Schedule {
            limits,
            targets: HashMap::new(),
            ready: VecDeque::new(),
            known: HashSet::new(),
            in_flight: 0,
            saturated: HashSet::new(),
            released: Vec::new(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Attempts in flight in all.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// A webhook's attempts in flight and deliveries queued.
    pub fn webhook(&self, webhook_id: &str) -> Option<(usize, usize)> {
        self.targets
            .get(webhook_id)
            .map(|t| (t.in_flight, t.queue.len()))
    }

    pub fn is_saturated(&self, webhook_id: &str) -> bool {
        self.saturated.contains(webhook_id)
    }

    /// Queues a delivery behind its webhook's others. False if it is held
    /// already (claimed again after its lease ran out while it waited):
    /// then it is dropped.
    /// Whether `delivery_id` is queued or in flight here.
    pub fn knows(&self, delivery_id: i64) -> bool {
        self.known.contains(&delivery_id)
    }

    pub fn enqueue(&mut self, job: J) -> bool {
        if !self.known.insert(job.delivery_id()) {
            return false;
        }
        let limit = self.limits.per_webhook;
        if !self.targets.contains_key(job.webhook_id()) {
            let id: Arc<str> = Arc::from(job.webhook_id());
            let target = Target {
                id: id.clone(),
                in_flight: 0,
                queue: VecDeque::new(),
                in_ready: false,
            };
            self.targets.insert(id, target);
        }
        let Some(target) = self.targets.get_mut(job.webhook_id()) else {
            return true;
        };
        target.queue.push_back(job);
        if !target.in_ready && target.in_flight < limit {
            target.in_ready = true;
            self.ready.push_back(target.id.clone());
        }
        true
    }

    /// The next delivery to attempt at `now`, from the webhook whose turn it
    /// is; `None` when every slot is taken or no webhook with work has one.
    pub fn next(&mut self, now: Millis) -> Option<Pick<J>> {
        let limit = self.limits.per_webhook;
        while self.in_flight < self.limits.max_in_flight {
            let id = self.ready.pop_front()?;
            let Some(target) = self.targets.get_mut(&id) else {
                continue;
            };
            target.in_ready = false;
            let Some(job) = target.queue.pop_front() else {
                continue;
            };
            if too_late_to_start(job.lease_until(), now, self.limits.start_margin) {
                self.known.remove(&job.delivery_id());
                if !target.queue.is_empty() {
                    target.in_ready = true;
                    self.ready.push_back(id);
                } else if target.in_flight == 0 {
                    self.targets.remove(&id);
                }
                return Some(Pick::Expired(job));
            }
            target.in_flight += 1;
            if !target.queue.is_empty() && target.in_flight < limit {
                target.in_ready = true;
                self.ready.push_back(id);
            }
            self.in_flight += 1;
            return Some(Pick::Start(job));
        }
        None
    }

    /// Frees the slot of a finished attempt (or one given up before it
    /// began). `disabled`: the attempt disabled its webhook, so what waits
    /// behind it is dropped, to be given back still pending.
    pub fn finish(&mut self, delivery_id: i64, webhook_id: &str, disabled: bool) -> Finished {
        self.known.remove(&delivery_id);
        self.in_flight -= 1;
        let mut finished = Finished::default();
        let limit = self.limits.per_webhook;
        let cap = self.limits.queue_cap();
        let Some(target) = self.targets.get_mut(webhook_id) else {
            return finished;
        };
        target.in_flight -= 1;
        if disabled {
            for job in target.queue.drain(..) {
                self.known.remove(&job.delivery_id());
                self.released.push(job.delivery_id());
                finished.forgotten += 1;
            }
        }
        if target.queue.len() < cap / 2 {
            finished.unsaturated = self.saturated.remove(webhook_id);
        }
        if target.queue.is_empty() && target.in_flight == 0 {
            self.targets.remove(webhook_id);
            finished.idle = true;
        } else if !target.queue.is_empty() && !target.in_ready && target.in_flight < limit {
            target.in_ready = true;
            self.ready.push_back(target.id.clone());
        }
        finished
    }

    /// Cuts every queue longer than its cap back to it, newest first, into
    /// `given_back`, and marks those webhooks saturated; `saturated` is told
    /// of each that was not already.
    pub fn trim_overflow(&mut self, given_back: &mut Vec<i64>, mut saturated: impl FnMut(&str)) {
        let cap = self.limits.queue_cap();
        let start = given_back.len();
        for (webhook_id, target) in self.targets.iter_mut() {
            if target.queue.len() <= cap {
                continue;
            }
            while target.queue.len() > cap {
                if let Some(job) = target.queue.pop_back() {
                    given_back.push(job.delivery_id());
                }
            }
            if !self.saturated.contains(webhook_id) {
                self.saturated.insert(webhook_id.clone());
                saturated(webhook_id);
            }
        }
        for id in &given_back[start..] {
            self.known.remove(id);
        }
    }

    /// The queued deliveries of webhooks that were disabled, to give back.
    pub fn take_released(&mut self) -> Vec<i64> {
        std::mem::take(&mut self.released)
    }

    /// Empties every queue and forgets what was in them (at shutdown, or
    /// when this node stops holding its leases), returning their ids.
    /// Attempts in flight keep their slots until they finish; webhooks with
    /// none are forgotten, and none is saturated any more.
    pub fn forget_queued(&mut self) -> Vec<i64> {
        let ids: Vec<i64> = self
            .targets
            .values_mut()
            .flat_map(|t| t.queue.drain(..))
            .map(|j| j.delivery_id())
            .collect();
        for id in &ids {
            self.known.remove(id);
        }
        self.targets.retain(|_, t| {
            t.in_ready = false;
            t.in_flight > 0
        });
        self.ready.clear();
        self.saturated.clear();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    struct Job {
        id: i64,
        webhook: &'static str,
        lease_until: Millis,
    }

    impl Queued for Job {
        fn delivery_id(&self) -> i64 {
            self.id
        }
        fn webhook_id(&self) -> &str {
            self.webhook
        }
        fn lease_until(&self) -> Millis {
            self.lease_until
        }
    }

    const MARGIN: Millis = 1_000;
    const LEASE: Millis = 60_000;

    fn schedule(per_webhook: usize, max_in_flight: usize) -> Schedule<Job> {
        Schedule::new(Limits {
            per_webhook,
            max_in_flight,
            start_margin: MARGIN,
        })
    }

    fn job(id: i64, webhook: &'static str) -> Job {
        leased(id, webhook, LEASE)
    }

    fn leased(id: i64, webhook: &'static str, lease_until: Millis) -> Job {
        Job {
            id,
            webhook,
            lease_until,
        }
    }

    /// Starts what the schedule gives at `now`, as (webhook, id), until it gives nothing.
    fn start_all(s: &mut Schedule<Job>, now: Millis) -> Vec<(&'static str, i64)> {
        let mut started = Vec::new();
        while let Some(pick) = s.next(now) {
            match pick {
                Pick::Start(j) => started.push((j.webhook, j.id)),
                Pick::Expired(j) => panic!("{j:?} expired"),
            }
        }
        started
    }

    #[test]
    fn webhooks_with_work_take_turns() {
        let mut s = schedule(10, 100);
        for (id, webhook) in [(1, "a"), (2, "a"), (3, "a"), (4, "a"), (5, "b"), (6, "b")] {
            assert!(s.enqueue(job(id, webhook)));
        }
        assert!(s.enqueue(job(7, "c")));
        assert_eq!(
            start_all(&mut s, 0),
            [
                ("a", 1),
                ("b", 5),
                ("c", 7),
                ("a", 2),
                ("b", 6),
                ("a", 3),
                ("a", 4)
            ]
        );
        assert_eq!(s.in_flight(), 7);
    }

    #[test]
    fn a_webhook_has_at_most_its_slots_in_flight() {
        let mut s = schedule(2, 100);
        for id in 1..=4 {
            s.enqueue(job(id, "a"));
        }
        s.enqueue(job(10, "b"));
        assert_eq!(start_all(&mut s, 0), [("a", 1), ("b", 10), ("a", 2)]);
        assert_eq!(s.webhook("a"), Some((2, 2)));
        // A finished attempt frees the slot, and the webhook gets a turn again.
        assert_eq!(s.finish(1, "a", false), Finished::default());
        assert_eq!(start_all(&mut s, 0), [("a", 3)]);
        assert!(s.finish(10, "b", false).idle);
        assert_eq!(s.webhook("b"), None);
    }

    #[test]
    fn all_webhooks_share_the_overall_limit() {
        let mut s = schedule(10, 3);
        for id in 1..=4 {
            s.enqueue(job(id, "a"));
        }
        s.enqueue(job(5, "b"));
        assert_eq!(start_all(&mut s, 0), [("a", 1), ("b", 5), ("a", 2)]);
        assert_eq!(s.in_flight(), 3);
        // b's attempt ends, yet a's turn was next.
        s.finish(5, "b", false);
        assert_eq!(start_all(&mut s, 0), [("a", 3)]);
        s.finish(1, "a", false);
        s.finish(2, "a", false);
        assert_eq!(start_all(&mut s, 0), [("a", 4)]);
        assert_eq!(s.in_flight(), 2);
    }

    #[test]
    fn an_attempt_starts_only_if_it_ends_inside_the_lease() {
        assert!(!too_late_to_start(LEASE, LEASE - MARGIN, MARGIN));
        assert!(too_late_to_start(LEASE, LEASE - MARGIN + 1, MARGIN));

        let mut s = schedule(1, 100);
        let mut now: Millis = 0;
        s.enqueue(job(1, "a"));
        s.enqueue(leased(2, "a", LEASE + 5_000));
        s.enqueue(job(3, "a"));
        assert_eq!(start_all(&mut s, now), [("a", 1)]);
        // The receiver is slow: by the time the slot frees, job 3's lease is
        // too short for an attempt, job 2's is not.
        now += LEASE - MARGIN + 1;
        s.finish(1, "a", false);
        assert_eq!(
            s.next(now),
            Some(Pick::Start(leased(2, "a", LEASE + 5_000)))
        );
        s.finish(2, "a", false);
        assert_eq!(s.next(now), Some(Pick::Expired(job(3, "a"))));
        assert_eq!(s.next(now), None);
        // Forgotten: nothing is held for it, so a fresh claim is taken.
        assert_eq!(s.webhook("a"), None);
        assert!(s.enqueue(job(3, "a")));
    }

    #[test]
    fn an_expired_job_lets_the_next_one_go() {
        let mut s = schedule(1, 100);
        s.enqueue(leased(1, "a", 0));
        s.enqueue(job(2, "a"));
        assert_eq!(s.next(0), Some(Pick::Expired(leased(1, "a", 0))));
        assert_eq!(s.next(0), Some(Pick::Start(job(2, "a"))));
    }

    #[test]
    fn a_delivery_is_held_once() {
        let mut s = schedule(1, 100);
        assert!(s.enqueue(job(1, "a")));
        assert!(!s.enqueue(job(1, "a")));
        assert_eq!(start_all(&mut s, 0), [("a", 1)]);
        assert!(!s.enqueue(job(1, "a")));
        s.finish(1, "a", false);
        assert!(s.enqueue(job(1, "a")));
    }

    #[test]
    fn saturated_from_overflow_until_half_empty() {
        let mut s = schedule(1, 100);
        let cap = s.limits().queue_cap() as i64;
        assert_eq!(cap, QUEUE_PER_SLOT as i64);
        for id in 1..=cap + 44 {
            s.enqueue(job(id, "a"));
        }
        s.enqueue(job(1_000, "b"));
        let mut given_back = Vec::new();
        let mut told = Vec::new();
        s.trim_overflow(&mut given_back, |w| told.push(w.to_string()));
        // The newest go back to the database; the queue keeps its cap.
        assert_eq!(given_back, (cap + 1..=cap + 44).rev().collect::<Vec<_>>());
        assert_eq!(told, ["a"]);
        assert!(s.is_saturated("a") && !s.is_saturated("b"));
        assert_eq!(s.webhook("a"), Some((0, cap as usize)));
        // Given back means forgotten: the poller may hand them in again.
        assert!(s.enqueue(job(cap + 1, "a")));
        given_back.clear();
        s.trim_overflow(&mut given_back, |w| told.push(w.to_string()));
        assert_eq!(given_back, [cap + 1]);
        assert_eq!(told, ["a"], "told once");

        // Still saturated until, as attempts finish, fewer than half remain.
        let mut finished = 0;
        loop {
            let Some(Pick::Start(j)) = s.next(0) else {
                panic!("a has work")
            };
            if j.webhook == "b" {
                s.finish(j.id, "b", false);
                continue;
            }
            let left = s.webhook("a").unwrap().1;
            let f = s.finish(j.id, "a", false);
            finished += 1;
            assert_eq!(f.unsaturated, left < (cap / 2) as usize, "{left} left");
            assert_eq!(s.is_saturated("a"), left >= (cap / 2) as usize);
            if f.unsaturated {
                break;
            }
        }
        assert_eq!(finished, cap / 2 + 1);
        // Once is enough.
        let Some(Pick::Start(j)) = s.next(0) else {
            panic!()
        };
        assert!(!s.finish(j.id, "a", false).unsaturated);
    }

    #[test]
    fn disabling_drops_what_waits_behind() {
        let mut s = schedule(2, 100);
        for id in 1..=5 {
            s.enqueue(job(id, "a"));
        }
        assert_eq!(start_all(&mut s, 0), [("a", 1), ("a", 2)]);
        let f = s.finish(1, "a", true);
        assert_eq!(
            f,
            Finished {
                forgotten: 3,
                unsaturated: false,
                idle: false
            }
        );
        assert_eq!(s.take_released(), [3, 4, 5]);
        assert!(s.take_released().is_empty());
        assert_eq!(s.next(0), None);
        assert!(s.finish(2, "a", false).idle);
        assert!(s.enqueue(job(3, "a")));
    }

    #[test]
    fn forgetting_the_queue_keeps_only_what_is_in_flight() {
        let mut s = schedule(1, 100);
        for (id, webhook) in [(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c")] {
            s.enqueue(job(id, webhook));
        }
        assert_eq!(start_all(&mut s, 0).len(), 3);
        assert!(s.finish(5, "c", false).idle);
        let mut left = s.forget_queued();
        left.sort();
        assert_eq!(left, [2, 4]);
        assert_eq!(s.next(0), None);
        assert_eq!(s.webhook("a"), Some((1, 0)));
        // What was forgotten can be held again; what is in flight cannot.
        assert!(s.enqueue(job(2, "a")));
        assert!(!s.enqueue(job(1, "a")));
        // Finishing the attempt in flight starts the one queued behind it.
        assert!(!s.finish(1, "a", false).idle);
        assert!(matches!(s.next(0), Some(Pick::Start(Job { id: 2, .. }))));
        assert!(s.finish(3, "b", false).idle);
        assert_eq!(s.webhook("b"), None);
    }
}
