//! Few-shot intents shared by replicas on one PostgreSQL store: the intents made over the API
//! or by discovery are the store's document `intents` (the same JSON as the file of a single
//! server, embeddings included), written compare-and-set on its version, so a change made from
//! a stale copy is redone on the fresh one rather than overwriting another replica's. Every
//! write notifies the replicas, which re-read the document (`reload`) and swap their map; the
//! intents of their own `fewshot.file` stay theirs and win over a shared one of the same name.

use super::service::{IntentMap, Intents, Sharing};
use super::store::{parse_store, store_bytes, Intent, Origin};
use crate::error::{AppError, AppResult};
use crate::store::Store;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// The name of the shared document.
pub const DOC: &str = "intents";

fn internal(e: anyhow::Error) -> AppError {
    AppError::Internal(e)
}

impl Intents {
    /// Keep the intents and unmatched texts in `store` when it is shared by replicas
    /// (PostgreSQL); call before `load`. A SQLite store changes nothing: files, as before.
    pub fn share(&self, store: Arc<Store>) {
        if store.shared() {
            let _ = self.sharing.set(Sharing {
                store,
                version: AtomicI64::new(0),
            });
        }
    }

    /// The shared store, when `share` gave one.
    pub fn shared_store(&self) -> Option<Arc<Store>> {
        self.sharing.get().map(|s| s.store.clone())
    }

    /// At `load`: the shared intents. A document never written is first seeded with `local`
    /// (the intents of this server's former file), so moving to PostgreSQL loses none.
    pub(super) fn load_shared(&self, sh: &Sharing, local: Vec<Intent>) -> AppResult<IntentMap> {
        if sh.store.get_doc(DOC)?.is_none() && !local.is_empty() {
            let map: IntentMap = local
                .into_iter()
                .map(|i| (i.name.clone(), Arc::new(i)))
                .collect();
            let bytes = store_bytes(&map).map_err(internal)?;
            if sh.store.put_doc_if(DOC, &bytes, 0)?.is_some() {
                tracing::info!(
                    intents = map.len(),
                    "few-shot intents copied from intents.json to the shared store"
                );
            }
        }
        let (version, map) = self.read_doc(sh)?;
        sh.version.store(version, Ordering::SeqCst);
        Ok(map)
    }

    fn read_doc(&self, sh: &Sharing) -> AppResult<(i64, IntentMap)> {
        let Some((version, bytes)) = sh.store.get_doc(DOC)? else {
            return Ok((0, IntentMap::new()));
        };
        let list = parse_store(&bytes, "the shared document `intents`").map_err(internal)?;
        Ok((
            version,
            list.into_iter()
                .map(|i| (i.name.clone(), Arc::new(i)))
                .collect(),
        ))
    }

    /// Re-read the shared document when another replica changed it and swap it in, keeping
    /// this server's intents file; true when the map changed. Blocking (the listener calls it).
    pub fn reload_shared(&self) -> AppResult<bool> {
        let Some(sh) = self.sharing.get() else {
            return Ok(false);
        };
        let _w = self.write.lock();
        if !self.is_loaded() {
            return Ok(false);
        }
        self.refresh(sh)
    }

    /// `reload_shared` with the write lock held.
    pub(super) fn refresh(&self, sh: &Sharing) -> AppResult<bool> {
        let (version, mut map) = self.read_doc(sh)?;
        if version <= sh.version.load(Ordering::SeqCst) {
            return Ok(false);
        }
        for (name, i) in self.all() {
            if i.origin == Origin::File {
                map.insert(name, i);
            }
        }
        tracing::info!(
            intents = map.len(),
            version,
            "few-shot intents reloaded from the shared store"
        );
        self.replace(map);
        sh.version.store(version, Ordering::SeqCst);
        Ok(true)
    }

    /// Write `next` as the shared document if no replica wrote it since this map was read:
    /// false when one did (refresh and redo the change). A change that leaves the document as
    /// it is (intents of the file embedded) writes nothing.
    pub(super) fn persist_shared(&self, sh: &Sharing, next: &IntentMap) -> AppResult<bool> {
        let bytes = store_bytes(next).map_err(internal)?;
        if store_bytes(&self.all()).map_err(internal)? == bytes {
            return Ok(true);
        }
        let expected = sh.version.load(Ordering::SeqCst);
        match sh.store.put_doc_if(DOC, &bytes, expected)? {
            Some(v) => {
                sh.version.store(v, Ordering::SeqCst);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
