//! Waiting on a condition instead of sleeping. A test looks at what it can
//! observe (an API answer, a log file, a receiver's ledger) again and again
//! until it holds: it goes on as soon as the system gets there, however
//! loaded the machine, and when a generous deadline passes it fails with
//! what it saw last rather than with a bare timeout.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// The first pause between two looks; each pause doubles up to `MAX_PAUSE`,
/// so a quick condition is seen at once and a slow one is not hammered.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const MAX_PAUSE: Duration = Duration::from_millis(250);

/// What one look found: done, with a value for the test, or not yet, with a
/// description of what was seen for the failure message.
pub trait Outcome {
    type Value;
    fn into_result(self) -> Result<Self::Value, String>;
}

/// `true` is done. Says nothing of what was seen: prefer `Result` when the
/// state would explain a failure.
impl Outcome for bool {
    type Value = ();
    fn into_result(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("the condition was false".into())
        }
    }
}

/// `Some` is done.
impl<T> Outcome for Option<T> {
    type Value = T;
    fn into_result(self) -> Result<T, String> {
        self.ok_or_else(|| "nothing yet".into())
    }
}

/// `Ok` is done; `Err` carries what was seen instead.
impl<T, E: Display> Outcome for Result<T, E> {
    type Value = T;
    fn into_result(self) -> Result<T, String> {
        self.map_err(|seen| seen.to_string())
    }
}

/// Looks with `look` until it answers done, pausing a little longer each
/// time; answers its value, or what the last look saw once `deadline` has
/// passed. There is always a last look at the deadline, so a slow machine
/// is given the whole time.
pub async fn wait_for<O: Outcome>(
    deadline: Duration,
    mut look: impl AsyncFnMut() -> O,
) -> Result<O::Value, String> {
    let until = Instant::now() + deadline;
    let mut pause = FIRST_PAUSE;
    loop {
        let seen = match look().await.into_result() {
            Ok(value) => return Ok(value),
            Err(seen) => seen,
        };
        let now = Instant::now();
        if now >= until {
            return Err(seen);
        }
        tokio::time::sleep(pause.min(until - now)).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// [`wait_for`], failing the test when the deadline passes: the message
/// names `what` was awaited and what the last look saw. Deadlines can be
/// generous (they cost time only when the test fails anyway).
///
/// ```ignore
/// let hook = eventually("the webhook to be disabled", Duration::from_secs(10), async || {
///     let (_, hook) = app.get(&key, &path).await;
///     if hook["enabled"] == false { Ok(hook) } else { Err(hook) }
/// })
/// .await;
/// ```
pub async fn eventually<O: Outcome>(
    what: &str,
    deadline: Duration,
    look: impl AsyncFnMut() -> O,
) -> O::Value {
    match wait_for(deadline, look).await {
        Ok(value) => value,
        Err(seen) => panic!("gave up after {deadline:?} waiting for {what}; last seen: {seen}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_the_value_once_the_condition_holds() {
        let mut looks = 0;
        let value = eventually("the third look", Duration::from_secs(10), async || {
            looks += 1;
            if looks == 3 {
                Ok(looks * 10)
            } else {
                Err(looks)
            }
        })
        .await;
        assert_eq!((value, looks), (30, 3));
    }

    #[tokio::test]
    async fn gives_up_at_the_deadline_with_the_last_state() {
        let mut looks = 0;
        let started = Instant::now();
        let last = wait_for(Duration::from_millis(100), async || {
            looks += 1;
            Err::<(), _>(format!("look {looks}"))
        })
        .await
        .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(last, format!("look {looks}"));
        assert!(looks >= 2, "looked again after the first pause");
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for a miracle; last seen: nothing yet")]
    async fn eventually_names_what_it_waited_for() {
        eventually("a miracle", Duration::from_millis(20), async || None::<()>).await;
    }
}
