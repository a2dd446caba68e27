//! PostgreSQL: live events after a sequence number, safe against out-of-order commits.
//!
//! Two writers can commit in the other order than they started, so a reader paging by a plain
//! sequence could pass a row that commits later with a lower number. Here an event's `seq` is
//! its writing transaction's id (`pg_current_xact_id()`, 64 bits, never reused; one event per
//! transaction), and readers return only rows below `pg_snapshot_xmin(pg_current_snapshot())`:
//! every transaction with a lower id has ended by then, so no lower `seq` can still appear.
//! An event becomes readable once every transaction older than its writer has ended; a long
//! transaction elsewhere in the cluster delays events (never loses them).

use super::Pg;
use crate::error::AppResult;
use crate::store::events::{EventFilter, StoredEvent};

/// The horizon below which every event has committed (or never will).
pub(super) const HORIZON: &str = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

impl Pg {
    pub fn events_after(
        &self,
        filter: &EventFilter,
        after: i64,
        limit: u32,
    ) -> AppResult<Vec<StoredEvent>> {
        let mut c = self.pool.get()?;
        let limit = i64::from(limit);
        let rows = match filter {
            EventFilter::Conversation(id) => c.query(
                &format!(
                    "SELECT seq, data FROM events WHERE conversation_id = $1 AND seq > $2 \
                     AND seq < {HORIZON} ORDER BY seq LIMIT $3"
                ),
                &[id, &after, &limit],
            )?,
            EventFilter::Queue(q) => c.query(
                &format!(
                    "SELECT seq, data FROM events WHERE queue = $1 AND seq > $2 \
                     AND seq < {HORIZON} ORDER BY seq LIMIT $3"
                ),
                &[q, &after, &limit],
            )?,
            EventFilter::All => c.query(
                &format!(
                    "SELECT seq, data FROM events WHERE seq > $1 AND seq < {HORIZON} \
                     ORDER BY seq LIMIT $2"
                ),
                &[&after, &limit],
            )?,
        };
        Ok(rows
            .iter()
            .map(|r| StoredEvent {
                seq: r.get(0),
                data: r.get(1),
            })
            .collect())
    }

    pub fn last_event_seq(&self) -> AppResult<i64> {
        let mut c = self.pool.get()?;
        let row = c.query_one(
            &format!("SELECT COALESCE(MAX(seq), 0)::bigint FROM events WHERE seq < {HORIZON}"),
            &[],
        )?;
        Ok(row.get(0))
    }
}
