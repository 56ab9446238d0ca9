//! Group commit for PostgreSQL: the work of every caller waiting at the
//! moment goes into one transaction.
//!
//! Alone, each ingest request or attempt record is a transaction of its own,
//! with a WAL flush and several round trips, and the database's CPU goes to
//! per-statement overhead. Grouped, a handful of set-based statements carry
//! hundreds of rows. SQLite gets the same from its single writer thread
//! (`sqlite::writer`); here several groups may be in flight at once, so one
//! group's commit overlaps the next group's statements.
//!
//! A group that the database refuses as a whole (a deadlock with another
//! node, one bad row) is retried one request at a time: a request's failure
//! stays its own. A group that could not reach the database fails at once:
//! alone, its requests would only wait longer for the same answer.

use super::super::{StoreError, StoreResult};
use super::db_error;
use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Work that can be done for many requests in one transaction.
#[async_trait]
pub(super) trait GroupWork: Send + Sync + 'static {
    type Request: Send + Sync + 'static;
    type Answer: Send + 'static;

    /// How much of a group's budget a request takes (e.g. its events).
    fn weight(request: &Self::Request) -> usize;

    /// Does every request in one transaction; answers in request order.
    async fn run(&self, requests: &[Self::Request]) -> Result<Vec<Self::Answer>, GroupFailure>;
}

/// Why a group failed, and whether its requests may fare better alone.
pub(super) struct GroupFailure {
    pub error: StoreError,
    pub retry_alone: bool,
}

impl GroupFailure {
    /// No connection from the pool, or the connection broke.
    pub fn unreachable(error: StoreError) -> Self {
        GroupFailure {
            error,
            retry_alone: false,
        }
    }
}

impl From<tokio_postgres::Error> for GroupFailure {
    /// An error the server answered (a deadlock, a constraint) may come from
    /// one request or from the timing; one without a code is the connection.
    fn from(e: tokio_postgres::Error) -> Self {
        GroupFailure {
            retry_alone: e.code().is_some(),
            error: db_error(e),
        }
    }
}

type Queued<W> = (
    <W as GroupWork>::Request,
    oneshot::Sender<StoreResult<<W as GroupWork>::Answer>>,
);

/// The front of a group-commit queue; its worker ends when this is dropped.
pub(super) struct Group<W: GroupWork> {
    queue: mpsc::UnboundedSender<Queued<W>>,
}

impl<W: GroupWork> Group<W> {
    /// Starts the worker: groups of up to `max_weight`, at most `in_flight`
    /// transactions at once.
    pub fn start(work: W, max_weight: usize, in_flight: usize) -> Self {
        let (queue, requests) = mpsc::unbounded_channel();
        tokio::spawn(run_groups(Arc::new(work), requests, max_weight, in_flight));
        Group { queue }
    }

    /// Queues a request and waits for its group to commit.
    pub async fn submit(&self, request: W::Request) -> StoreResult<W::Answer> {
        let (answer, answered) = oneshot::channel();
        self.queue.send((request, answer)).map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Closed
}

async fn run_groups<W: GroupWork>(
    work: Arc<W>,
    mut requests: mpsc::UnboundedReceiver<Queued<W>>,
    max_weight: usize,
    in_flight: usize,
) {
    let slots = Arc::new(Semaphore::new(in_flight.max(1)));
    loop {
        // A slot first: while every slot is busy, requests pile up in the
        // channel and all go into the next group.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = requests.recv().await else {
            return;
        };
        let mut weight = W::weight(&first.0);
        let mut group = vec![first];
        while weight < max_weight {
            match requests.try_recv() {
                Ok(next) => {
                    weight += W::weight(&next.0);
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let work = work.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let (batch, answers): (Vec<_>, Vec<_>) = group.into_iter().unzip();
            match work.run(&batch).await {
                Ok(done) => {
                    for (answer, result) in answers.into_iter().zip(done) {
                        let _ = answer.send(Ok(result));
                    }
                }
                Err(failed) if batch.len() == 1 || !failed.retry_alone => {
                    for answer in answers {
                        let _ = answer.send(Err(failed.error.clone()));
                    }
                }
                Err(failed) => {
                    tracing::debug!(error = %failed.error, size = batch.len(), "group refused; retrying its requests one by one");
                    for (request, answer) in batch.iter().zip(answers) {
                        let result = match work.run(std::slice::from_ref(request)).await {
                            Ok(mut done) => done.pop().ok_or_else(stopped),
                            Err(failed) => Err(failed.error),
                        };
                        let _ = answer.send(result);
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    //! The grouping itself, with work that needs no database: which requests
    //! share a run, and who gets which answer when a group fails.

    use super::*;
    use std::sync::Mutex;

    /// Doubles each number; a group holding a negative number fails, and
    /// `retry_alone` says whether its requests are to be tried alone.
    struct Doubling {
        runs: Mutex<Vec<Vec<i64>>>,
        retry_alone: bool,
    }

    async fn submit_together(
        group: &Arc<Group<WorkRef>>,
        numbers: &[i64],
    ) -> Vec<StoreResult<i64>> {
        let tasks: Vec<_> = numbers
            .iter()
            .map(|n| {
                let (group, n) = (group.clone(), *n);
                tokio::spawn(async move { group.submit(n).await })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        answers
    }

    fn doubling(retry_alone: bool) -> Doubling {
        Doubling {
            runs: Mutex::new(Vec::new()),
            retry_alone,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn waiting_requests_share_a_group_and_a_refused_group_is_retried_alone() {
        let work = Arc::new(doubling(true));
        let group = Arc::new(Group::start(WorkRef(work.clone()), 100, 1));
        let answers = submit_together(&group, &[1, -2, 3]).await;
        assert_eq!(answers[0].as_ref().ok(), Some(&2));
        assert!(answers[1].is_err());
        assert_eq!(answers[2].as_ref().ok(), Some(&6));
        let runs = work.runs.lock().unwrap().clone();
        assert_eq!(runs, [vec![1, -2, 3], vec![1], vec![-2], vec![3]]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_group_that_cannot_reach_the_database_fails_at_once() {
        let work = Arc::new(doubling(false));
        let group = Arc::new(Group::start(WorkRef(work.clone()), 100, 1));
        let answers = submit_together(&group, &[1, -2, 3]).await;
        assert!(answers.iter().all(|a| a.is_err()));
        assert_eq!(work.runs.lock().unwrap().len(), 1, "no retries alone");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn groups_stop_at_their_weight() {
        let work = Arc::new(doubling(true));
        let group = Arc::new(Group::start(WorkRef(work.clone()), 2, 1));
        let answers = submit_together(&group, &[1, 2, 3, 4, 5]).await;
        assert_eq!(
            answers.into_iter().map(|a| a.unwrap()).collect::<Vec<_>>(),
            [2, 4, 6, 8, 10]
        );
        let runs = work.runs.lock().unwrap().clone();
        assert_eq!(runs, [vec![1, 2], vec![3, 4], vec![5]]);
    }

    /// Lets a test keep its own handle on the work the group runs.
    struct WorkRef(Arc<Doubling>);

    #[async_trait]
    impl GroupWork for WorkRef {
        type Request = i64;
        type Answer = i64;

        fn weight(_: &i64) -> usize {
            1
        }

        async fn run(&self, requests: &[i64]) -> Result<Vec<i64>, GroupFailure> {
            self.0.runs.lock().unwrap().push(requests.to_vec());
            if requests.iter().any(|n| *n < 0) {
                return Err(GroupFailure {
                    error: StoreError::unavailable("negative"),
                    retry_alone: self.0.retry_alone,
                });
            }
            Ok(requests.iter().map(|n| n * 2).collect())
        }
    }
}
