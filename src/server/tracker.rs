//! Counts small background tasks (TLS handshakes, answers to connections refused at shutdown)
//! so that shutdown can wait until they are done, without keeping their results around.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Default)]
pub struct Tracker {
    running: AtomicUsize,
    idle: Notify,
}

/// Held by a running task; dropping it marks the task done.
pub struct Guard(Arc<Tracker>);

impl Tracker {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    pub fn enter(self: &Arc<Self>) -> Guard {
        self.running.fetch_add(1, Ordering::SeqCst);
        Guard(self.clone())
    }

    /// Resolves once no task is running.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn idle_waits_for_every_guard() {
        let t = Tracker::new();
        t.idle().await;
        let (a, b) = (t.enter(), t.enter());
        let t2 = t.clone();
        let waiter = tokio::spawn(async move { t2.idle().await });
        drop(a);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(b);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
