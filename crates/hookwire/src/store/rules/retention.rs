//! Retention: how long finished work is kept, and which rows a prune takes.
//!
//! A delivery is *finished* once it is delivered, failed for good or
//! discarded; retention counts from then (its `updated_at`), so no retry
//! schedule, however long, can lose a pending or held delivery. An event
//! goes once it is older than retention and has no delivery left. Both
//! backends scan a license's rows in id order and ask [`delivery_verdict`]
//! or [`event_verdict`] about each; the scan stops at the first row made
//! after the cutoff, since every row after it was made later still.

use super::super::Millis;
use std::fmt;
use std::time::Duration;

/// How long an idempotency key answers for its first request. After it the
/// key is free again, whether or not a prune has removed it yet.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// Rows one prune batch deletes at most: small, so a batch holds SQLite's
/// writer (or PostgreSQL's row locks) for a few milliseconds only
/// (`hookwire_prune_batch_seconds` shows it), and large enough that the
/// prune keeps up with a steady 2,000 events/s to three webhooks while
/// each batch also waits its turn behind ingest in SQLite's writer.
pub const PRUNE_BATCH: usize = 500;

/// A retention: a duration above zero, written like `30d`, `12h` or `90s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RetentionPeriod(Duration);

impl RetentionPeriod {
    /// Parses `text` (`humantime`'s durations: `7d`, `36h`, `2m 30s`).
    /// Zero and malformed values are refused with a reason.
    pub fn parse(text: &str) -> Result<Self, String> {
        let d = humantime::parse_duration(text.trim())
            .map_err(|e| format!("{text:?} is not a duration like 30d, 12h or 90s: {e}"))?;
        Self::new(d)
    }

    /// A retention of `d`; zero is refused (it would prune what just finished).
    pub fn new(d: Duration) -> Result<Self, String> {
        if d.is_zero() {
            return Err("must be longer than zero".into());
        }
        if Millis::try_from(d.as_millis()).is_err() {
            return Err("is too long".into());
        }
        Ok(RetentionPeriod(d))
    }

    pub fn as_duration(self) -> Duration {
        self.0
    }

    pub fn as_millis(self) -> Millis {
        // `new` refused anything longer.
        self.0.as_millis() as Millis
    }

    /// The retention stored as milliseconds, if it is a valid one.
    pub fn from_millis(ms: Millis) -> Option<Self> {
        u64::try_from(ms)
            .ok()
            .and_then(|ms| Self::new(Duration::from_millis(ms)).ok())
    }

    /// What finished before this time, at `now`, is past retention.
    pub fn cutoff(self, now: Millis) -> Millis {
        now.saturating_sub(self.as_millis())
    }
}

impl fmt::Display for RetentionPeriod {
    /// As `humantime` writes it (`30days`, `2m`), which `parse` reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// What a prune does with one scanned row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Past retention: deleted.
    Prune,
    /// Kept (still pending or held, or finished too recently); the scan goes on.
    Keep,
    /// Made at or after the cutoff: so is every later row; the scan ends.
    Stop,
}

/// A delivery as a prune scan reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedDelivery {
    pub id: i64,
    pub state: String,
    pub created_at: Millis,
    /// For a finished delivery, when it finished.
    pub updated_at: Millis,
}

/// Whether a state is final: nothing more will be attempted unless someone
/// redelivers it by hand.
pub fn is_finished(state: &str) -> bool {
    matches!(state, "delivered" | "failed" | "discarded" | "filtered")
}

/// The stored states that are final, for SQL: `state IN (...)`.
pub const FINISHED_STATES_SQL: &str = "('delivered', 'failed', 'discarded', 'filtered')";

/// A delivery's fate, with `cutoff` = now minus its license's retention.
pub fn delivery_verdict(d: &ScannedDelivery, cutoff: Millis) -> Verdict {
    if d.created_at >= cutoff {
        Verdict::Stop
    } else if is_finished(&d.state) && d.updated_at < cutoff {
        Verdict::Prune
    } else {
        Verdict::Keep
    }
}

/// An event as a prune scan reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScannedEvent {
    pub seq: i64,
    pub received_at: Millis,
    /// Some delivery of it is still kept (of any state).
    pub has_deliveries: bool,
}

/// An event's fate: it goes once older than retention with no delivery left.
pub fn event_verdict(e: &ScannedEvent, cutoff: Millis) -> Verdict {
    if e.received_at >= cutoff {
        Verdict::Stop
    } else if e.has_deliveries {
        Verdict::Keep
    } else {
        Verdict::Prune
    }
}

/// What one scan of up to a batch of rows found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanResult {
    /// The ids to delete.
    pub prune: Vec<i64>,
    /// The last id looked at: the next batch starts after it.
    pub last_scanned: Option<i64>,
    /// The scan reached a row made after the cutoff, or the end of the rows.
    pub done: bool,
}

/// Applies `verdict` to rows read in id order (at most `asked` of them were
/// asked for): what to delete, where to go on, and whether it is done.
pub fn scan<T>(
    rows: &[T],
    asked: usize,
    id: impl Fn(&T) -> i64,
    verdict: impl Fn(&T) -> Verdict,
) -> ScanResult {
    let mut result = ScanResult::default();
    for row in rows {
        match verdict(row) {
            Verdict::Stop => {
                result.done = true;
                return result;
            }
            Verdict::Prune => result.prune.push(id(row)),
            Verdict::Keep => {}
        }
        result.last_scanned = Some(id(row));
    }
    result.done = rows.len() < asked;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: i64, state: &str, created_at: Millis, updated_at: Millis) -> ScannedDelivery {
        ScannedDelivery {
            id,
            state: state.into(),
            created_at,
            updated_at,
        }
    }

    #[test]
    fn retention_parses_durations_and_refuses_zero_and_garbage() {
        assert_eq!(
            RetentionPeriod::parse("30d").unwrap().as_duration(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(RetentionPeriod::parse(" 2s ").unwrap().as_millis(), 2_000);
        assert!(RetentionPeriod::parse("0s")
            .unwrap_err()
            .contains("longer than zero"));
        assert!(RetentionPeriod::parse("soon").unwrap_err().contains("soon"));
        assert!(RetentionPeriod::parse("").is_err());
        let shown = RetentionPeriod::parse("7d").unwrap().to_string();
        assert_eq!(RetentionPeriod::parse(&shown), RetentionPeriod::parse("7d"));
        assert_eq!(RetentionPeriod::from_millis(0), None);
        assert_eq!(
            RetentionPeriod::from_millis(1_000),
            RetentionPeriod::parse("1s").ok()
        );
        assert_eq!(RetentionPeriod::parse("1s").unwrap().cutoff(5_000), 4_000);
    }

    #[test]
    fn only_deliveries_finished_before_the_cutoff_go() {
        let cutoff = 1_000;
        assert_eq!(
            delivery_verdict(&delivery(1, "delivered", 10, 999), cutoff),
            Verdict::Prune
        );
        assert_eq!(
            delivery_verdict(&delivery(1, "failed", 10, 20), cutoff),
            Verdict::Prune
        );
        assert_eq!(
            delivery_verdict(&delivery(1, "discarded", 10, 20), cutoff),
            Verdict::Prune
        );
        // Finished after the cutoff: retention counts from the finish.
        assert_eq!(
            delivery_verdict(&delivery(1, "failed", 10, 1_000), cutoff),
            Verdict::Keep
        );
        // Pending or held, however old: never.
        assert_eq!(
            delivery_verdict(&delivery(1, "pending", 10, 20), cutoff),
            Verdict::Keep
        );
        assert_eq!(
            delivery_verdict(&delivery(1, "held", 10, 20), cutoff),
            Verdict::Keep
        );
        // Made at the cutoff or later: the scan is over.
        assert_eq!(
            delivery_verdict(&delivery(1, "delivered", 1_000, 1_000), cutoff),
            Verdict::Stop
        );
    }

    #[test]
    fn events_go_when_old_and_without_deliveries() {
        let e = |received_at, has_deliveries| ScannedEvent {
            seq: 1,
            received_at,
            has_deliveries,
        };
        assert_eq!(event_verdict(&e(5, false), 10), Verdict::Prune);
        assert_eq!(event_verdict(&e(5, true), 10), Verdict::Keep);
        assert_eq!(event_verdict(&e(10, false), 10), Verdict::Stop);
    }

    #[test]
    fn a_scan_prunes_keeps_and_stops_in_order() {
        let rows = [
            delivery(1, "delivered", 1, 2),
            delivery(2, "pending", 1, 2),
            delivery(3, "failed", 2, 3),
            delivery(4, "delivered", 50, 51),
            delivery(5, "delivered", 1, 2),
        ];
        let r = scan(&rows, 10, |d| d.id, |d| delivery_verdict(d, 10));
        assert_eq!(r.prune, vec![1, 3]);
        assert_eq!(r.last_scanned, Some(3));
        assert!(r.done, "row 4 was made after the cutoff");

        let r = scan(&rows[..2], 2, |d| d.id, |d| delivery_verdict(d, 10));
        assert_eq!(r.prune, vec![1]);
        assert_eq!(r.last_scanned, Some(2));
        assert!(!r.done, "a full batch: more rows may follow");

        let r = scan(&rows[..0], 2, |d| d.id, |d| delivery_verdict(d, 10));
        assert!(r.done && r.prune.is_empty() && r.last_scanned.is_none());
    }
}
