//! A dedicated connection that `LISTEN`s for due work and wakes the poller.
//! It reconnects on its own, so a database restart costs a second of
//! promptness, never correctness (the poller polls regardless).

use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

pub async fn run(config: tokio_postgres::Config, channel: &'static str, due: Arc<Notify>) {
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<()>();
                let wake = due.clone();
                tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(_)) => wake.notify_one(),
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                    let _ = ended_tx.send(());
                });
                if client
                    .batch_execute(&format!("LISTEN {channel}"))
                    .await
                    .is_ok()
                {
                    // Anything that became due while we were not listening.
                    due.notify_one();
                    let _ = ended_rx.await;
                }
                tracing::warn!("lost the PostgreSQL LISTEN connection; reconnecting");
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot open the PostgreSQL LISTEN connection; retrying")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
