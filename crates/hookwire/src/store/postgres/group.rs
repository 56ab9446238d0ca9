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
//! A group that fails as a whole (a deadlock with another node, one bad row)
//! is retried one request at a time: a request's failure stays its own.

use super::super::{StoreError, StoreResult};
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
    async fn run(&self, requests: &[Self::Request]) -> StoreResult<Vec<Self::Answer>>;
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
    StoreError::Unavailable("the store is shutting down".into())
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
                Err(e) if batch.len() == 1 => {
                    let _ = answers.into_iter().next().map(|a| a.send(Err(e)));
                }
                Err(e) => {
                    tracing::debug!(error = %e, size = batch.len(), "group failed; retrying its requests one by one");
                    for (request, answer) in batch.iter().zip(answers) {
                        let result = work
                            .run(std::slice::from_ref(request))
                            .await
                            .and_then(|mut done| done.pop().ok_or_else(stopped));
                        let _ = answer.send(result);
                    }
                }
            }
        });
    }
}
