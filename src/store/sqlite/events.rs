//! SQLite: live events after a sequence number. One writer at a time, so sequence numbers
//! commit in order and a reader paging by them skips nothing.

use super::Sqlite;
use crate::error::AppResult;
use crate::store::events::{EventFilter, StoredEvent};
use rusqlite::params;

impl Sqlite {
    pub fn events_after(
        &self,
        filter: &EventFilter,
        after: i64,
        limit: u32,
    ) -> AppResult<Vec<StoredEvent>> {
        let c = self.read();
        let (sql, key) = match filter {
            EventFilter::Conversation(id) => (
                "SELECT seq, data FROM events WHERE conversation_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                Some(id.as_str()),
            ),
            EventFilter::Queue(q) => (
                "SELECT seq, data FROM events WHERE queue = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                Some(q.as_str()),
            ),
            EventFilter::All => (
                "SELECT seq, data FROM events WHERE ?1 IS NULL AND seq > ?2 ORDER BY seq LIMIT ?3",
                None,
            ),
        };
        let mut q = c.prepare_cached(sql)?;
        let rows = q.query_map(params![key, after, limit], |r| {
            Ok(StoredEvent {
                seq: r.get(0)?,
                data: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn last_event_seq(&self) -> AppResult<i64> {
        let c = self.read();
        Ok(c.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?)
    }
}
