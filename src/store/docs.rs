//! What replicas share besides turns and events: named documents (few-shot intents, the fault
//! catalog), versioned and announced to every replica when written, and the unmatched texts
//! kept for discovery. PostgreSQL only: with SQLite there is one process, which keeps these in
//! files under its home as before (`shared()` says which).

use super::{Backend, Store};
use crate::error::{AppError, AppResult};

fn single() -> AppError {
    AppError::Internal(anyhow::anyhow!(
        "shared documents need the PostgreSQL store (store.backend = \"postgres\")"
    ))
}

impl Store {
    /// Whether several replicas may share this store (PostgreSQL), so that intents, unmatched
    /// texts and the catalog live in it rather than in files.
    pub fn shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// The document `name`: its version (from 1, bumped by every write) and body.
    pub fn get_doc(&self, name: &str) -> AppResult<Option<(i64, Vec<u8>)>> {
        match &self.backend {
            Backend::Sqlite(_) => Err(single()),
            Backend::Postgres(p) => p.get_doc(name),
        }
    }

    /// Write `name` if its version is still `expected` (0: never written): the new version, or
    /// None when another replica wrote it first. Every replica's listener is told.
    pub fn put_doc_if(&self, name: &str, body: &[u8], expected: i64) -> AppResult<Option<i64>> {
        match &self.backend {
            Backend::Sqlite(_) => Err(single()),
            Backend::Postgres(p) => p.put_doc_if(name, body, expected),
        }
    }

    /// Write `name` whatever its version: the new version. Every replica's listener is told.
    pub fn put_doc(&self, name: &str, body: &[u8]) -> AppResult<i64> {
        match &self.backend {
            Backend::Sqlite(_) => Err(single()),
            Backend::Postgres(p) => p.put_doc(name, body),
        }
    }

    /// Append unmatched texts (`(set, body)`), keeping the newest `max`: their ids, in order.
    pub fn unmatched_push(&self, items: &[(String, String)], max: usize) -> AppResult<Vec<i64>> {
        match &self.backend {
            Backend::Sqlite(_) => Err(single()),
            Backend::Postgres(p) => p.unmatched_push(items, max),
        }
    }

    /// The unmatched texts of `set`, oldest first: `(id, body)`.
    pub fn unmatched_of_set(&self, set: &str) -> AppResult<Vec<(i64, String)>> {
        match &self.backend {
            Backend::Sqlite(_) => Err(single()),
            Backend::Postgres(p) => p.unmatched_of_set(set),
        }
    }

    /// The unmatched texts with these ids, oldest first: `(id, body)`.
    pub fn unmatched_by_ids(&self, ids: &[i64]) -> AppResult<Vec<(i64, String)>> {
        match &self.backend {
            Backend::Sqlite(_) => Err(single()),
            Backend::Postgres(p) => p.unmatched_by_ids(ids),
        }
    }

    /// Take out the unmatched texts with these ids: how many there were.
    pub fn unmatched_remove(&self, ids: &[i64]) -> AppResult<usize> {
        match &self.backend {
            Backend::Sqlite(_) => Err(single()),
            Backend::Postgres(p) => p.unmatched_remove(ids),
        }
    }

    /// Forget the unmatched texts of `set` (all when None): how many there were.
    pub fn unmatched_purge(&self, set: Option<&str>) -> AppResult<usize> {
        match &self.backend {
            Backend::Sqlite(_) => Err(single()),
            Backend::Postgres(p) => p.unmatched_purge(set),
        }
    }

    /// How many unmatched texts of `set` are kept.
    pub fn unmatched_count(&self, set: &str) -> AppResult<usize> {
        match &self.backend {
            Backend::Sqlite(_) => Err(single()),
            Backend::Postgres(p) => p.unmatched_count(set),
        }
    }
}
