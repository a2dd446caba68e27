//! Durable store settings (`[store]`). A plain serde type with its defaults and checks; it imports
//! nothing of the project, so `config` can aggregate it without depending on the feature.

use anyhow::{bail, ensure, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `store.synchronous`: SQLite's `synchronous` pragma, parsed once when the config is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// fsync every commit: survives power loss.
    Full,
    /// Survives a killed process.
    Normal,
}

impl Synchronous {
    /// The pragma's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Full => "full",
            Synchronous::Normal => "normal",
        }
    }
}

/// `store.backend`: where the rows live, parsed once when the config is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// An embedded SQLite file (`store.path`): one machine, zero setup.
    #[default]
    Sqlite,
    /// A shared PostgreSQL database (`store.url` or `TRIAGE_DATABASE_URL`) for several replicas.
    Postgres,
}

/// The environment variable that overrides `store.url`.
pub const DATABASE_URL_ENV: &str = "TRIAGE_DATABASE_URL";

/// A PostgreSQL connection URL; its `Debug` and `redacted` form hide the password.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

/// `url` with the password of its `user:password@` part (and any `password=` parameter)
/// replaced by `***`, for logs.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme) = out.find("://") {
        let rest = scheme + 3;
        let end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..end].rfind('@').map(|i| rest + i) {
            if let Some(colon) = out[rest..at].find(':').map(|i| rest + i) {
                out.replace_range(colon + 1..at, "***");
            }
        }
    }
    let lower = out.to_ascii_lowercase();
    if let Some(p) = lower.find("password=") {
        let start = p + "password=".len();
        let end = out[start..]
            .find(['&', ' '])
            .map_or(out.len(), |i| start + i);
        out.replace_range(start..end, "***");
    }
    out
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite` (default) or `postgres`.
    pub backend: Backend,
    /// The SQLite database file; default `$TRIAGE_HOME/store/triage.sqlite`.
    pub path: Option<PathBuf>,
    /// The PostgreSQL connection URL (`postgres://user:password@host/db`, or a socket folder as
    /// `host=/path`); `TRIAGE_DATABASE_URL` overrides it.
    pub url: Option<DatabaseUrl>,
    /// Most PostgreSQL connections this process opens.
    pub pool_size: usize,
    /// Conversations untouched for this many days are deleted (0 = keep forever).
    pub retention_days: u32,
    /// Most conversations kept; the least recently updated go first.
    pub max_conversations: u64,
    /// Most turns per conversation; more get 409 (start a new conversation).
    pub max_turns: u32,
    /// `full` (fsync every commit: survives power loss) or `normal` (survives a killed process).
    pub synchronous: Synchronous,
    /// Seconds between SSE keep-alive comments.
    pub keepalive_secs: u64,
    /// Most open SSE streams; more get 503.
    pub max_subscribers: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: Backend::Sqlite,
            path: None,
            url: None,
            pool_size: 8,
            retention_days: 30,
            max_conversations: 1_000_000,
            max_turns: 1000,
            synchronous: Synchronous::Full,
            keepalive_secs: 15,
            max_subscribers: 256,
        }
    }
}

impl StoreConfig {
    pub fn check(&self) -> Result<()> {
        ensure!(
            self.max_conversations > 0,
            "config: store.max_conversations must be > 0"
        );
        ensure!(self.max_turns > 0, "config: store.max_turns must be > 0");
        ensure!(
            (1..=3600).contains(&self.keepalive_secs),
            "config: store.keepalive_secs must be 1..=3600"
        );
        ensure!(
            self.max_subscribers > 0,
            "config: store.max_subscribers must be > 0"
        );
        ensure!(
            (1..=256).contains(&self.pool_size),
            "config: store.pool_size must be 1..=256"
        );
        if self.backend == Backend::Postgres {
            self.resolved_url()?;
        }
        Ok(())
    }

    /// The PostgreSQL URL: `TRIAGE_DATABASE_URL` when set, else `store.url`.
    pub fn resolved_url(&self) -> Result<String> {
        let env = std::env::var(DATABASE_URL_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty());
        match env.or_else(|| self.url.as_ref().map(|u| u.0.clone())) {
            Some(u) if !u.trim().is_empty() => Ok(u),
            _ => bail!(
                "config: store.backend = \"postgres\" needs store.url (or {DATABASE_URL_ENV})"
            ),
        }
    }

    pub fn resolved_path(&self, home: &Path) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| home.join("store").join("triage.sqlite"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_needs_a_url_and_never_shows_its_password() {
        assert_eq!(
            redact_url("postgres://triage:s3cret@db:5432/triage?sslmode=disable"),
            "postgres://triage:***@db:5432/triage?sslmode=disable"
        );
        assert_eq!(
            redact_url("host=/run/pg user=triage password=s3cret dbname=t"),
            "host=/run/pg user=triage password=*** dbname=t"
        );
        assert_eq!(redact_url("postgres://db/triage"), "postgres://db/triage");
        let cfg = StoreConfig {
            backend: Backend::Postgres,
            url: Some(DatabaseUrl("postgres://u:s3cret@db/t".into())),
            ..StoreConfig::default()
        };
        assert!(!format!("{cfg:?}").contains("s3cret"));
        let parsed: StoreConfig = toml::from_str("backend = \"postgres\"").unwrap();
        assert_eq!(parsed.backend, Backend::Postgres);
        if std::env::var(DATABASE_URL_ENV).is_err() {
            let err = parsed.check().unwrap_err().to_string();
            assert!(err.contains("store.url"), "{err}");
        }
        assert!(toml::from_str::<StoreConfig>("backend = \"mysql\"").is_err());
    }
}
