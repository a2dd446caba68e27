//! The conversation store: turns, their signals and decisions, live events, the webhook outbox,
//! and what replicas share besides (`docs.rs`). One interface (`Store`'s methods, called from
//! blocking contexts), two backends: an embedded SQLite database (WAL; the default: one machine,
//! zero setup, `sqlite/`) or a shared PostgreSQL database for several replicas (`pg/`). A turn is
//! acknowledged only after its transaction commits, so nothing acknowledged is lost when the
//! process is killed.

pub mod config;
pub mod docs;
pub mod events;
#[cfg(test)]
mod job_lease_tests;
pub mod jobs;
pub mod kb;
#[cfg(test)]
mod kb_tests;
pub mod outbox;
mod pg;
#[cfg(test)]
mod pg_docs_tests;
#[cfg(test)]
mod pg_tests;
pub mod qa;
#[cfg(test)]
mod schema_tests;
pub mod signals;
mod sqlite;
#[cfg(test)]
pub(crate) mod test_db;
#[cfg(test)]
mod tests;
pub mod turns;

pub use config::{Backend as BackendKind, StoreConfig};
pub use sqlite::migrations;

use anyhow::Result;
use std::path::Path;

/// The durable store; every method blocks (call it from `spawn_blocking` or a plain thread:
/// the PostgreSQL client runs its own runtime and must never run inside an async task).
pub struct Store {
    pub(crate) backend: Backend,
    pub config: StoreConfig,
}

/// Where the rows live.
pub(crate) enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(pg::Pg),
}

impl Store {
    /// Open (creating) the SQLite database at `path`, applying the schema migrations it lacks;
    /// a database newer than this binary knows is refused (`migrations`).
    pub fn open(path: &Path, config: StoreConfig) -> Result<Store> {
        let db = sqlite::Sqlite::open(path, &config)?;
        Ok(Store {
            backend: Backend::Sqlite(db),
            config,
        })
    }

    /// Connect to the PostgreSQL database at `url` and apply the migrations it lacks.
    pub fn open_postgres(url: &str, config: StoreConfig) -> Result<Store> {
        let db = pg::Pg::open(url, &config)?;
        Ok(Store {
            backend: Backend::Postgres(db),
            config,
        })
    }

    /// Open the backend `config` names: `store.path` (under `home` by default) for SQLite,
    /// `store.url` (or `TRIAGE_DATABASE_URL`) for PostgreSQL.
    pub fn open_configured(config: StoreConfig, home: &Path) -> Result<Store> {
        match config.backend {
            BackendKind::Sqlite => Store::open(&config.resolved_path(home), config),
            BackendKind::Postgres => {
                let url = config.resolved_url()?;
                Store::open_postgres(&url, config)
            }
        }
    }

    /// Where the store is, for logs and `/ready` (a PostgreSQL URL without its password).
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Sqlite(s) => format!("sqlite {}", s.path.display()),
            Backend::Postgres(p) => format!("postgres {}", config::redact_url(&p.url)),
        }
    }

    /// The schema version the database is at, and the newest this binary knows.
    pub fn schema_version(&self) -> Result<(u32, u32)> {
        match &self.backend {
            Backend::Sqlite(s) => Ok((s.schema_version()?, sqlite::migrations::latest())),
            Backend::Postgres(p) => Ok((p.schema_version()?, pg::migrations::latest())),
        }
    }

    /// Which backend this store uses.
    pub fn kind(&self) -> BackendKind {
        match &self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Whether the database answers now (always true for SQLite: it is a local file).
    pub fn ping(&self) -> bool {
        match &self.backend {
            Backend::Sqlite(_) => true,
            Backend::Postgres(p) => p.ping(),
        }
    }

    /// Graceful shutdown. SQLite: copy the WAL into the database file and truncate it, so the
    /// file alone holds every committed turn, event and outbox row; returns the WAL's size
    /// before. PostgreSQL: nothing to do (0).
    pub fn checkpoint(&self) -> Result<u64> {
        match &self.backend {
            Backend::Sqlite(s) => s.checkpoint(),
            Backend::Postgres(_) => Ok(0),
        }
    }

    /// Delete conversations past the retention limits, with their turns and events, and
    /// delivered or dead webhooks older than the retention. Returns conversations deleted.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize> {
        match &self.backend {
            Backend::Sqlite(s) => s.enforce_retention(&self.config, now_ms),
            Backend::Postgres(p) => p.enforce_retention(&self.config, now_ms),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
