//! The fault catalog shared by replicas on one PostgreSQL store: a reload on any replica
//! publishes the catalog text it read as the store's document `catalog`; every replica's
//! listener then loads that text (`reload_shared`), checked as a file is, and a text that fails
//! the checks keeps the running catalog. A replica that starts loads the shared text too, once
//! one was published, so every replica serves the catalog last reloaded anywhere.

use super::catalog::Catalog;
use super::Vision;
use crate::error::{AppError, AppResult};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// The name of the shared document.
pub const DOC: &str = "catalog";

/// The shared store and the version of the document last loaded or published here.
pub(super) struct Sharing {
    store: Arc<Store>,
    version: AtomicI64,
}

/// The shared document: a catalog's text and where it was read.
#[derive(Serialize, Deserialize)]
struct Doc {
    origin: String,
    text: String,
}

impl Vision {
    /// Share reloads with the replicas on `store` when it is PostgreSQL (SQLite: one process,
    /// nothing to share).
    pub fn share(&self, store: Arc<Store>) {
        if store.shared() {
            let _ = self.sharing.set(Sharing {
                store,
                version: AtomicI64::new(0),
            });
        }
    }

    /// Shared: make `text` (read from `origin`, already checked) the replicas' catalog.
    pub(super) fn publish(&self, text: &str, origin: &str) -> AppResult<()> {
        let Some(sh) = self.sharing.get() else {
            return Ok(());
        };
        let body = serde_json::to_vec(&Doc {
            origin: origin.to_string(),
            text: text.to_string(),
        })
        .map_err(|e| AppError::Internal(e.into()))?;
        let v = sh.store.put_doc(DOC, &body)?;
        sh.version.fetch_max(v, Ordering::SeqCst);
        Ok(())
    }

    /// Load the shared catalog when a replica published a newer one; true when it was swapped
    /// in. A malformed one is logged and the running catalog stays. Blocking.
    pub fn reload_shared(&self) -> AppResult<bool> {
        let Some(sh) = self.sharing.get() else {
            return Ok(false);
        };
        let Some((version, body)) = sh.store.get_doc(DOC)? else {
            return Ok(false);
        };
        if sh.version.fetch_max(version, Ordering::SeqCst) >= version {
            return Ok(false);
        }
        let parsed = serde_json::from_slice::<Doc>(&body)
            .map_err(anyhow::Error::from)
            .and_then(|d| Catalog::parse(&d.text, &format!("{} (shared)", d.origin)));
        match parsed {
            Ok(catalog) => {
                tracing::info!(
                    version,
                    faults = catalog.faults.len(),
                    "fault catalog reloaded from the shared store"
                );
                self.swap(catalog);
                Ok(true)
            }
            Err(e) => {
                let error = format!("{e:#}");
                tracing::warn!(
                    version,
                    %error,
                    "the shared fault catalog is malformed: the running one stays"
                );
                Ok(false)
            }
        }
    }
}
