//! Reading live events back: by conversation, by queue or all, after a sequence number (the
//! cursor of SSE streams). Sequence numbers only grow and are never reused, but need not be
//! contiguous (PostgreSQL's are transaction ids: `pg/events.rs`).

use super::{Backend, Store};
use crate::error::AppResult;
use tokio::sync::watch;

/// What a replica's listening thread (PostgreSQL: `pg/listen.rs`) tells the process.
pub struct Wake {
    /// Called with the newest readable event's sequence number (never a higher one).
    pub announce: Box<dyn Fn(i64) + Send>,
    /// Called with the name of a shared document another replica (or this one) wrote, or `*`
    /// after a (re)connect: re-read them all.
    pub reload: Box<dyn Fn(&str) + Send>,
    /// Whether anyone still listens; the thread ends when this turns false.
    pub alive: Box<dyn Fn() -> bool + Send>,
}

/// Which events a subscriber wants.
#[derive(Debug, Clone)]
pub enum EventFilter {
    Conversation(String),
    Queue(String),
    All,
}

/// A stored event.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub seq: i64,
    pub data: String,
}

impl Store {
    /// Up to `limit` events after `after`, oldest first. An event is returned only once no
    /// event with a lower sequence number can still commit.
    pub fn events_after(
        &self,
        filter: &EventFilter,
        after: i64,
        limit: u32,
    ) -> AppResult<Vec<StoredEvent>> {
        match &self.backend {
            Backend::Sqlite(s) => s.events_after(filter, after, limit),
            Backend::Postgres(p) => p.events_after(filter, after, limit),
        }
    }

    /// Tell this process's streams that the event `seq` committed. SQLite: now (one process,
    /// commits in order). PostgreSQL: nothing here: the listener announces it once it is
    /// readable, on every replica (`pg/listen.rs`).
    pub fn announce(&self, seq: i64, events: &watch::Sender<i64>) {
        if let Backend::Sqlite(_) = &self.backend {
            events.send_replace(seq);
        }
    }

    /// Wake this process's streams on events committed by any replica. PostgreSQL: a thread
    /// `LISTEN`ing on a connection of its own; SQLite: nothing to do (`announce` does it).
    pub fn start_listener(&self, wake: Wake) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(p) => p.listen(wake),
        }
    }

    /// The newest readable event's sequence number (0 when none).
    pub fn last_event_seq(&self) -> AppResult<i64> {
        match &self.backend {
            Backend::Sqlite(s) => s.last_event_seq(),
            Backend::Postgres(p) => p.last_event_seq(),
        }
    }
}
