//! LISTEN/NOTIFY wake-ups: one dedicated connection per process, reconnected with backoff.
//! A notification is only a hint; dispatchers also poll, so a lost one costs latency, not work.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Notify, mpsc};
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use super::storage::NOTIFY_CHANNEL;

/// Wakes the dispatcher of each queue this process works.
#[derive(Debug, Clone, Default)]
pub struct Wakers {
    by_queue: Arc<HashMap<String, Arc<Notify>>>,
}

impl Wakers {
    #[must_use]
    pub fn new(queues: impl IntoIterator<Item = String>) -> Self {
        Self { by_queue: Arc::new(queues.into_iter().map(|q| (q, Arc::new(Notify::new()))).collect()) }
    }

    #[must_use]
    pub fn get(&self, queue: &str) -> Option<Arc<Notify>> {
        self.by_queue.get(queue).cloned()
    }

    /// Wakes `queue`'s dispatcher (remembered if it is busy, so the next wait returns at once).
    pub fn wake(&self, queue: &str) {
        if let Some(n) = self.by_queue.get(queue) {
            n.notify_one();
        }
    }

    pub fn wake_all(&self) {
        for n in self.by_queue.values() {
            n.notify_one();
        }
    }
}

/// Listens until `shutdown`; reconnects after any error, waking every queue after a reconnect
/// in case notifications were missed meanwhile.
pub async fn listen(url: SecretString, wakers: Wakers, shutdown: CancellationToken) {
    let mut delay = Duration::from_millis(250);
    loop {
        match listen_once(&url, &wakers, &shutdown).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, retry_in = ?delay, "job notification listener lost its connection");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(10));
        wakers.wake_all();
    }
}

async fn listen_once(
    url: &SecretString,
    wakers: &Wakers,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let (client, mut connection) =
        tokio_postgres::connect(url.expose_secret(), tokio_postgres::NoTls).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    // The connection object must be polled for the client to work; it also yields notifications.
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(Ok(n.payload().to_owned())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    client.batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}")).await?;
    tracing::debug!("listening for job notifications");
    // Anything enqueued before LISTEN took effect was not announced to us.
    wakers.wake_all();
    let result = loop {
        tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            message = rx.recv() => match message {
                Some(Ok(queue)) => wakers.wake(&queue),
                Some(Err(e)) => break Err(e.into()),
                None => break Err(anyhow::anyhow!("connection closed")),
            },
        }
    };
    driver.abort();
    result
}
