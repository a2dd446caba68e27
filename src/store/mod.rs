//! The conversation store: turns, their signals and decisions, live events and the webhook
//! outbox in one SQLite database (WAL). A turn is acknowledged only after its transaction
//! commits, so nothing acknowledged is lost when the process is killed.

pub mod config;
pub mod events;
pub mod migrations;
pub mod outbox;
#[cfg(test)]
mod schema_tests;
pub mod signals;
#[cfg(test)]
mod tests;
pub mod turns;

pub use config::StoreConfig;

use anyhow::{ensure, Context, Result};
use parking_lot::{Mutex, MutexGuard};
use rusqlite::Connection;
use std::path::Path;

/// One writer connection and one reader (WAL lets reads run beside the writer).
pub struct Store {
    pub(crate) writer: Mutex<Connection>,
    pub(crate) reader: Mutex<Connection>,
    pub config: StoreConfig,
}

impl Store {
    /// Open (creating) the database at `path`, applying the schema migrations it lacks; a
    /// database newer than this binary knows is refused (`migrations`).
    pub fn open(path: &Path, config: StoreConfig) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("store: cannot create {}", dir.display()))?;
        }
        let open = || -> Result<Connection> {
            let c = Connection::open(path)
                .with_context(|| format!("store: cannot open {}", path.display()))?;
            c.busy_timeout(std::time::Duration::from_secs(10))?;
            c.pragma_update(None, "journal_mode", "WAL")?;
            c.pragma_update(None, "synchronous", config.synchronous.as_str())?;
            Ok(c)
        };
        let mut writer = open()?;
        migrations::migrate(&mut writer, path)?;
        let reader = open()?;
        Ok(Store {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            config,
        })
    }

    pub(crate) fn write(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock()
    }

    pub(crate) fn read(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock()
    }

    /// Graceful shutdown: copy the WAL into the database file and truncate it, so the file
    /// alone holds every committed turn, event and outbox row. Returns the WAL's size before.
    pub fn checkpoint(&self) -> Result<u64> {
        let c = self.write();
        let wal = c
            .path()
            .and_then(|p| std::fs::metadata(format!("{p}-wal")).ok())
            .map_or(0, |m| m.len());
        let busy: i64 = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        ensure!(busy == 0, "store: checkpoint blocked by a reader");
        Ok(wal)
    }

    /// Delete conversations past the retention limits, with their turns and events, and
    /// delivered or dead webhooks older than the retention. Returns conversations deleted.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize> {
        let mut c = self.write();
        let tx = c.transaction()?;
        let mut doomed: Vec<String> = Vec::new();
        if self.config.retention_days > 0 {
            let cutoff = now_ms - i64::from(self.config.retention_days) * 86_400_000;
            let mut q = tx.prepare("SELECT id FROM conversations WHERE updated_ms < ?1")?;
            let ids = q.query_map([cutoff], |r| r.get::<_, String>(0))?;
            for id in ids {
                doomed.push(id?);
            }
        }
        let count: i64 = tx.query_row("SELECT COUNT(*) FROM conversations", [], |r| r.get(0))?;
        let over = (count as u64).saturating_sub(self.config.max_conversations);
        if over > 0 {
            let mut q =
                tx.prepare("SELECT id FROM conversations ORDER BY updated_ms ASC LIMIT ?1")?;
            let ids = q.query_map([over as i64], |r| r.get::<_, String>(0))?;
            for id in ids {
                doomed.push(id?);
            }
        }
        doomed.sort();
        doomed.dedup();
        for id in &doomed {
            for table in ["turns", "events"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE conversation_id = ?1"),
                    [id],
                )?;
            }
            tx.execute("DELETE FROM conversations WHERE id = ?1", [id])?;
        }
        if self.config.retention_days > 0 {
            let cutoff = now_ms - i64::from(self.config.retention_days) * 86_400_000;
            tx.execute(
                "DELETE FROM outbox WHERE (delivered_ms IS NOT NULL OR dead = 1) AND created_ms < ?1",
                [cutoff],
            )?;
        }
        tx.commit()?;
        Ok(doomed.len())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
