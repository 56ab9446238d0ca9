//! Transactions whose `BEGIN` and `COMMIT` travel with their statements.
//!
//! A group's transaction on a busy machine costs more in round trips than
//! in execution: each one wakes the backend, then this process, through
//! cores that are busy with other work. tokio-postgres writes a request
//! to the connection as soon as its future is first polled and answers
//! requests in order, so statements started together with
//! `tokio::try_join!(biased; ...)` share one round trip. This transaction
//! puts `BEGIN` in front of the first such batch and `COMMIT` behind the
//! last one, instead of giving each a round trip of its own.
//!
//! Rules that keep this correct:
//! - Every statement of a batch is prepared before the batch (a statement
//!   not prepared yet would take a round trip of its own first, and the
//!   ones after it, `COMMIT` included, would overtake it).
//! - `COMMIT` goes last in its batch, in `biased` order. If a statement in
//!   front of it fails on the server, the transaction is aborted and
//!   PostgreSQL answers that `COMMIT` by rolling back; if one fails before
//!   it is sent (an encoding error), `try_join!` returns before polling
//!   `COMMIT`, so it is never sent.
//! - A transaction that is dropped while it may be open (an error, a
//!   cancelled task) takes its connection out of the pool: closing it makes
//!   the server roll back, and no later user finds a transaction half done.

use deadpool_postgres::Object;
use std::sync::atomic::{AtomicBool, Ordering};

pub(super) struct PipelinedTx {
    conn: Option<Object>,
    /// `BEGIN`, and any `SET LOCAL` the transaction needs.
    opening: String,
    begun: AtomicBool,
    ended: AtomicBool,
}

impl PipelinedTx {
    /// A transaction that opens with `BEGIN; {settings}`.
    pub fn new(conn: Object, settings: &str) -> Self {
        PipelinedTx {
            conn: Some(conn),
            opening: format!("BEGIN; {settings}"),
            begun: AtomicBool::new(false),
            ended: AtomicBool::new(false),
        }
    }

    /// The connection, for statements inside the transaction (and its
    /// statement cache).
    pub fn client(&self) -> &Object {
        self.conn
            .as_ref()
            .expect("the connection is held until drop")
    }

    /// `BEGIN`, to be joined in front of the first statements; answers at
    /// once if the transaction has begun already.
    pub async fn begin(&self) -> Result<(), tokio_postgres::Error> {
        if self.begun.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        self.client().batch_execute(&self.opening).await
    }

    /// `COMMIT`, to be joined behind the last statements when `now`
    /// (otherwise answers at once); answers at once if the transaction never
    /// began or has committed already.
    pub async fn commit_if(&self, now: bool) -> Result<(), tokio_postgres::Error> {
        if !now || !self.begun.load(Ordering::Relaxed) || self.ended.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.client().batch_execute("COMMIT").await?;
        self.ended.store(true, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for PipelinedTx {
    fn drop(&mut self) {
        let open = self.begun.load(Ordering::Relaxed) && !self.ended.load(Ordering::Relaxed);
        if let Some(conn) = self.conn.take().filter(|_| open) {
            // Detached, the client is dropped here and its connection closes.
            drop(Object::take(conn));
        }
    }
}

#[cfg(test)]
mod tests {
    //! Against a real PostgreSQL: what commits, what rolls back, and which
    //! connections go back to the pool.

    use super::*;
    use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
    use tokio_postgres::NoTls;

    /// A pool of one connection to a fresh database holding table `t`.
    async fn pool() -> Pool {
        let url = crate::testing::postgres::fresh_database().await;
        let manager = Manager::from_config(
            url.parse().unwrap(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(1)
            .runtime(Runtime::Tokio1)
            .build()
            .unwrap();
        let c = pool.get().await.unwrap();
        c.batch_execute("CREATE TABLE t (x INT PRIMARY KEY)")
            .await
            .unwrap();
        pool
    }

    async fn rows(pool: &Pool) -> i64 {
        let c = pool.get().await.unwrap();
        c.query_one("SELECT COUNT(*) FROM t", &[])
            .await
            .unwrap()
            .get(0)
    }

    #[tokio::test]
    async fn begin_statements_and_commit_in_one_batch_take_effect_together() {
        let pool = pool().await;
        let tx = PipelinedTx::new(pool.get().await.unwrap(), "SET LOCAL lock_timeout = '1s'");
        let c = tx.client();
        let insert = c.prepare_cached("INSERT INTO t VALUES ($1)").await.unwrap();
        tokio::try_join!(
            biased;
            tx.begin(),
            c.execute(&insert, &[&1]),
            c.execute(&insert, &[&2]),
            tx.commit_if(true),
        )
        .unwrap();
        drop(tx);
        assert_eq!(rows(&pool).await, 2);
        assert_eq!(
            pool.status().size,
            1,
            "the connection went back to the pool"
        );
    }

    #[tokio::test]
    async fn a_failing_statement_takes_the_whole_batch_with_it() {
        let pool = pool().await;
        let tx = PipelinedTx::new(pool.get().await.unwrap(), "");
        let c = tx.client();
        let insert = c.prepare_cached("INSERT INTO t VALUES ($1)").await.unwrap();
        let divide = c.prepare_cached("SELECT 1 / $1").await.unwrap();
        let failed = tokio::try_join!(
            biased;
            tx.begin(),
            c.execute(&insert, &[&1]),
            c.query(&divide, &[&0]),
            tx.commit_if(true),
        );
        let e = failed.expect_err("division by zero");
        assert_eq!(
            e.code(),
            Some(&tokio_postgres::error::SqlState::DIVISION_BY_ZERO)
        );
        drop(tx);
        assert_eq!(
            rows(&pool).await,
            0,
            "the COMMIT behind the error rolled back"
        );
    }

    #[tokio::test]
    async fn a_transaction_dropped_while_open_closes_its_connection() {
        let pool = pool().await;
        let tx = PipelinedTx::new(pool.get().await.unwrap(), "");
        let c = tx.client();
        let insert = c.prepare_cached("INSERT INTO t VALUES ($1)").await.unwrap();
        tokio::try_join!(biased; tx.begin(), c.execute(&insert, &[&1])).unwrap();
        drop(tx);
        assert_eq!(pool.status().size, 0, "taken out of the pool");
        assert_eq!(rows(&pool).await, 0, "rolled back");
        // The next connection starts outside any transaction.
        let c = pool.get().await.unwrap();
        c.batch_execute("INSERT INTO t VALUES (2)").await.unwrap();
        drop(c);
        assert_eq!(rows(&pool).await, 1);
    }
}
