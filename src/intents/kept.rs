//! Where unmatched texts are kept: this process's bounded JSONL file (`unmatched.rs`; one
//! server, SQLite store), or the shared store's `unmatched` table when replicas share a
//! PostgreSQL database, so that texts kept by any replica are seen by discovery on any replica
//! and concurrent appends never overwrite each other. Also the `Intents` calls on them.

use super::classify::{Answer, SetView};
use super::unmatched::{from_body, to_body, Item, Unmatched};
use super::Intents;
use crate::error::{AppError, AppResult};
use crate::store::Store;
use anyhow::Result;
use std::collections::HashSet;
use std::sync::Arc;

pub enum Kept {
    /// In memory and a file of this process.
    Local(Unmatched),
    /// Rows of the shared store, the newest `max` kept.
    Shared { store: Arc<Store>, max: usize },
}

fn store_err(e: crate::error::AppError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Rows back as items; an unreadable row is skipped (logged by id, never by text).
fn items(rows: Vec<(i64, String)>) -> Vec<Item> {
    rows.into_iter()
        .filter_map(|(id, body)| match from_body(id as u64, &body) {
            Ok(i) => Some(i),
            Err(e) => {
                let error = match e.downcast_ref::<serde_json::Error>() {
                    Some(j) => format!("{:?} error at column {}", j.classify(), j.column()),
                    None => format!("{e}"),
                };
                tracing::warn!(id, %error, "skipping an unreadable unmatched text");
                None
            }
        })
        .collect()
}

impl Kept {
    /// Keep new texts (ids are assigned here); the oldest go when the bound is reached.
    pub fn push(&mut self, new: Vec<Item>) -> Result<()> {
        match self {
            Kept::Local(u) => u.push(new),
            Kept::Shared { store, max } => {
                let rows = new
                    .iter()
                    .map(|i| Ok((i.set.clone(), to_body(i)?)))
                    .collect::<Result<Vec<_>>>()?;
                store.unmatched_push(&rows, *max).map_err(store_err)?;
                Ok(())
            }
        }
    }

    /// Take out the texts with these ids; how many there were.
    pub fn remove(&mut self, ids: &HashSet<u64>) -> Result<usize> {
        match self {
            Kept::Local(u) => u.remove(ids),
            Kept::Shared { store, .. } => {
                let ids: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
                store.unmatched_remove(&ids).map_err(store_err)
            }
        }
    }

    /// Forget the texts of `set` (every set when None); how many there were.
    pub fn purge(&mut self, set: Option<&str>) -> Result<usize> {
        match self {
            Kept::Local(u) => u.purge(set),
            Kept::Shared { store, .. } => store.unmatched_purge(set).map_err(store_err),
        }
    }

    /// The kept texts of one set made with this encoder and prefix, oldest first.
    pub fn of_set(&self, set: &str, encoder: &str, prefix: &str) -> Result<Vec<Item>> {
        match self {
            Kept::Local(u) => Ok(u
                .of_set(set, encoder, prefix)
                .into_iter()
                .cloned()
                .collect()),
            Kept::Shared { store, .. } => {
                let rows = store.unmatched_of_set(set).map_err(store_err)?;
                Ok(items(rows)
                    .into_iter()
                    .filter(|i| i.set == set && i.encoder == encoder && i.prefix == prefix)
                    .collect())
            }
        }
    }

    /// The kept texts with these ids, in the order of `ids` (those gone are left out).
    pub fn by_ids(&self, ids: &[u64]) -> Result<Vec<Item>> {
        match self {
            Kept::Local(u) => Ok(u.by_ids(ids)),
            Kept::Shared { store, .. } => {
                let wanted: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
                let found = items(store.unmatched_by_ids(&wanted).map_err(store_err)?);
                let at: std::collections::HashMap<u64, &Item> =
                    found.iter().map(|i| (i.id, i)).collect();
                Ok(ids
                    .iter()
                    .filter_map(|id| at.get(id).map(|i| (*i).clone()))
                    .collect())
            }
        }
    }

    /// How many texts of `set` are kept (any encoder).
    pub fn count_set(&self, set: &str) -> Result<usize> {
        match self {
            Kept::Local(u) => Ok(u.count_set(set)),
            Kept::Shared { store, .. } => store.unmatched_count(set).map_err(store_err),
        }
    }
}

impl Intents {
    /// How many unmatched texts of `set` are kept.
    pub fn unmatched_count(&self, set: &str) -> AppResult<usize> {
        self.unmatched
            .lock()
            .count_set(set)
            .map_err(AppError::Internal)
    }

    /// Forget the unmatched texts of `set` (all when None) and their candidates.
    pub fn purge_unmatched(&self, set: Option<&str>) -> AppResult<usize> {
        self.candidates
            .lock()
            .retain(|_, c| set.is_some_and(|s| s != c.set));
        self.unmatched.lock().purge(set).map_err(AppError::Internal)
    }

    /// Keep unmatched texts (discovery on); a disk error is logged, never the caller's problem.
    pub fn keep(&self, items: Vec<Item>) {
        if let Err(e) = self.unmatched.lock().push(items) {
            tracing::error!(error = %format!("{e:#}"), "cannot persist unmatched texts");
        }
    }
}

/// With discovery on: keep the texts answered out of scope or unsure.
pub async fn keep_unmatched(
    intents: &Arc<Intents>,
    view: &SetView,
    texts: Option<Vec<String>>,
    xs: &[Vec<f32>],
    answers: &[Answer],
) {
    let Some(texts) = texts.filter(|_| intents.discovery.enabled) else {
        return;
    };
    let at = super::files::now_secs();
    let items: Vec<Item> = texts
        .into_iter()
        .zip(xs)
        .zip(answers)
        .filter(|(_, a)| a.unsure)
        .map(|((text, x), _)| Item {
            id: 0,
            text,
            set: view.name.clone(),
            encoder: view.encoder.clone(),
            prefix: view.prefix.clone(),
            at,
            vector: super::sim::normalize(x.clone()),
        })
        .collect();
    if items.is_empty() {
        return;
    }
    let intents = intents.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || intents.keep(items)).await {
        tracing::error!(error = %e, "unmatched store task failed");
    }
}
