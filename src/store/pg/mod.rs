//! The PostgreSQL backend, for several replicas on one database: a small pool of synchronous
//! `postgres` clients (`pool.rs`), the schema in `migrations.rs`, retention here, and the turn,
//! event, outbox and batch lease SQL beside it. The synchronous client runs its own tokio runtime per
//! connection: every `Store` call must come from a blocking thread (`spawn_blocking`), never
//! from inside an async task, where it would panic.

mod docs;
mod events;
mod jobs;
mod kb;
pub(crate) mod listen;
pub mod migrations;
mod outbox;
pub(crate) mod pool;
mod qa;
mod turns;

use super::config::redact_url;
use super::StoreConfig;
use anyhow::{Context, Result};

pub(crate) struct Pg {
    pub(crate) pool: pool::Pool,
    pub url: String,
}

impl Pg {
    pub fn open(url: &str, config: &StoreConfig) -> Result<Pg> {
        let parsed: postgres::Config = url
            .parse()
            .with_context(|| format!("store: bad PostgreSQL URL {}", redact_url(url)))?;
        Pg::connect(parsed, url, config)
    }

    /// Open with a parsed configuration; `url` only names the database in logs and errors.
    pub(crate) fn connect(parsed: postgres::Config, url: &str, config: &StoreConfig) -> Result<Pg> {
        let pg = Pg {
            pool: pool::Pool::new(parsed, config.pool_size),
            url: url.to_string(),
        };
        let mut c = pg.pool.get()?;
        migrations::migrate(&mut c, &redact_url(url))?;
        drop(c);
        Ok(pg)
    }

    /// Start this replica's listening thread (`listen.rs`) on a connection of its own.
    pub fn listen(&self, wake: crate::store::events::Wake) -> Result<()> {
        listen::spawn(self.pool.config().clone(), redact_url(&self.url), wake)
    }

    pub fn schema_version(&self) -> Result<u32> {
        let mut c = self.pool.get()?;
        migrations::version(&mut c)
    }

    /// Whether a connection answers a trivial query now.
    pub fn ping(&self) -> bool {
        self.pool
            .get()
            .is_ok_and(|mut c| c.simple_query("SELECT 1").is_ok())
    }

    pub fn enforce_retention(&self, config: &StoreConfig, now_ms: i64) -> Result<usize> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let mut doomed: Vec<String> = Vec::new();
        let cutoff = now_ms - i64::from(config.retention_days) * 86_400_000;
        if config.retention_days > 0 {
            for r in tx.query(
                "SELECT id FROM conversations WHERE updated_ms < $1",
                &[&cutoff],
            )? {
                doomed.push(r.get(0));
            }
        }
        let count: i64 = tx
            .query_one("SELECT COUNT(*) FROM conversations", &[])?
            .get(0);
        let over = (count as u64).saturating_sub(config.max_conversations);
        if over > 0 {
            for r in tx.query(
                "SELECT id FROM conversations ORDER BY updated_ms ASC LIMIT $1",
                &[&(over as i64)],
            )? {
                doomed.push(r.get(0));
            }
        }
        doomed.sort();
        doomed.dedup();
        for table in ["turns", "events", "qa_replies"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE conversation_id = ANY($1)"),
                &[&doomed],
            )?;
        }
        tx.execute("DELETE FROM conversations WHERE id = ANY($1)", &[&doomed])?;
        if config.retention_days > 0 {
            tx.execute(
                "DELETE FROM outbox WHERE (delivered_ms IS NOT NULL OR dead) AND created_ms < $1",
                &[&cutoff],
            )?;
        }
        tx.commit()?;
        Ok(doomed.len())
    }
}
