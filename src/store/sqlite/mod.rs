//! The SQLite backend: one writer connection and one reader (WAL lets reads run beside the
//! writer), the schema in `migrations` (counted in `PRAGMA user_version`), retention and the
//! WAL checkpoint at shutdown. Its turn, event and outbox SQL is in the files beside this one.

mod events;
mod kb;
pub mod migrations;
mod outbox;
mod qa;
mod turns;

pub(crate) use outbox::enqueue;

use super::StoreConfig;
use anyhow::{ensure, Context, Result};
use parking_lot::{Mutex, MutexGuard};
use rusqlite::Connection;
use std::path::{Path, PathBuf};

pub(crate) struct Sqlite {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    pub path: PathBuf,
}

impl Sqlite {
    pub fn open(path: &Path, config: &StoreConfig) -> Result<Sqlite> {
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
        Ok(Sqlite {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn write(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock()
    }

    pub(crate) fn read(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock()
    }

    pub fn schema_version(&self) -> Result<u32> {
        Ok(self
            .reader
            .lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

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

    pub fn enforce_retention(&self, config: &StoreConfig, now_ms: i64) -> Result<usize> {
        let mut c = self.write();
        let tx = c.transaction()?;
        let mut doomed: Vec<String> = Vec::new();
        if config.retention_days > 0 {
            let cutoff = now_ms - i64::from(config.retention_days) * 86_400_000;
            let mut q = tx.prepare("SELECT id FROM conversations WHERE updated_ms < ?1")?;
            let ids = q.query_map([cutoff], |r| r.get::<_, String>(0))?;
            for id in ids {
                doomed.push(id?);
            }
        }
        let count: i64 = tx.query_row("SELECT COUNT(*) FROM conversations", [], |r| r.get(0))?;
        let over = (count as u64).saturating_sub(config.max_conversations);
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
            for table in ["turns", "events", "qa_replies"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE conversation_id = ?1"),
                    [id],
                )?;
            }
            tx.execute("DELETE FROM conversations WHERE id = ?1", [id])?;
        }
        if config.retention_days > 0 {
            let cutoff = now_ms - i64::from(config.retention_days) * 86_400_000;
            tx.execute(
                "DELETE FROM outbox WHERE (delivered_ms IS NOT NULL OR dead = 1) AND created_ms < ?1",
                [cutoff],
            )?;
        }
        tx.commit()?;
        Ok(doomed.len())
    }
}
