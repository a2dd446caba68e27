//! The few-shot intents and unmatched texts of a running server (`AppState::intents`): loading
//! and persisting them, the view `/v1/intent` answers a set with (keeping unmatched texts:
//! `kept.rs`). Changes are serialised by one lock and written to disk (or, replicas sharing a
//! PostgreSQL store, to it: `shared.rs`, `kept.rs`) before they become visible.

use super::candidate::Candidate;
use super::classify::SetView;
use super::config::{DiscoveryConfig, FewShotConfig};
pub use super::kept::keep_unmatched;
use super::kept::Kept;
use super::store::{read_intents_file, read_store, write_store, Embedded, Intent, Origin};
use super::unmatched::Unmatched;
use crate::engine::Models;
use crate::error::{AppError, AppResult};
use crate::heads::registry::HeadRegistry;
use anyhow::Result;
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub type IntentMap = BTreeMap<String, Arc<Intent>>;

/// The shared store and the version of the document the map was last read from or written as
/// (replicas on PostgreSQL: `shared.rs`).
pub(super) struct Sharing {
    pub store: Arc<crate::store::Store>,
    pub version: std::sync::atomic::AtomicI64,
}

/// How often a change is redone on the fresh shared intents before giving up; between tries
/// a random pause of up to 2 ms per try so far, so that one busy replica cannot starve another.
const CHANGE_TRIES: u64 = 24;

pub struct Intents {
    pub fewshot: FewShotConfig,
    pub discovery: DiscoveryConfig,
    map: RwLock<IntentMap>,
    /// The store file, once `load` has read it (before that, nothing is written).
    store_path: RwLock<Option<PathBuf>>,
    /// Held while a change is written and published.
    pub(super) write: Mutex<()>,
    /// The shared store, when replicas share one (`shared.rs`).
    pub(super) sharing: std::sync::OnceLock<Sharing>,
    /// Held while pending intents are embedded.
    embedding: tokio::sync::Mutex<()>,
    pub(super) unmatched: Mutex<Kept>,
    /// The last discovery result of each set, by candidate id.
    pub(super) candidates: Mutex<BTreeMap<String, Candidate>>,
}

/// 409 naming `field`.
pub fn conflict(field: &str, message: impl Into<String>) -> AppError {
    AppError::conflict(field, message)
}

impl Intents {
    /// Empty, in memory only, until `load`.
    pub fn new(fewshot: &FewShotConfig, discovery: &DiscoveryConfig) -> Self {
        Intents {
            fewshot: fewshot.clone(),
            discovery: discovery.clone(),
            map: RwLock::new(BTreeMap::new()),
            store_path: RwLock::new(None),
            write: Mutex::new(()),
            sharing: std::sync::OnceLock::new(),
            embedding: tokio::sync::Mutex::new(()),
            unmatched: Mutex::new(Kept::Local(Unmatched::new(discovery.max_items))),
            candidates: Mutex::new(BTreeMap::new()),
        }
    }

    /// Read `<home>/intents/intents.json`, the unmatched texts (discovery on) and the
    /// config's intents file, and persist every change from now on. No model is needed: stored
    /// intents come with their embeddings; those of the intents file are embedded on first use.
    /// Shared (`share`): the store's intents and unmatched texts instead of the files. Blocking.
    pub fn load(&self, home: &Path, heads: &HeadRegistry) -> Result<()> {
        // Held throughout, so a shared change notified meanwhile is re-read after (`shared.rs`).
        let _w = self.write.lock();
        let dir = home.join("intents");
        let store = dir.join("intents.json");
        let mut map: IntentMap = match self.sharing.get() {
            None => read_store(&store)?
                .into_iter()
                .map(|i| (i.name.clone(), Arc::new(i)))
                .collect(),
            Some(sh) => self
                .load_shared(sh, read_store(&store)?)
                .map_err(|e| anyhow::anyhow!("few-shot intents: {e}"))?,
        };
        if let Some(p) = &self.fewshot.file {
            let trained = |set: &str, name: &str| {
                heads
                    .intents
                    .get(set)
                    .is_some_and(|h| h.meta.labels.iter().any(|l| l == name))
            };
            for i in read_intents_file(p, &heads.default_intent, &self.fewshot, &trained)? {
                if map.contains_key(&i.name) {
                    tracing::warn!(intent = %i.name, "fewshot.file defines an intent also made over the API: the file's wins");
                }
                map.insert(i.name.clone(), Arc::new(i));
            }
        }
        if let Some(sh) = self.sharing.get() {
            *self.unmatched.lock() = Kept::Shared {
                store: sh.store.clone(),
                max: self.discovery.max_items,
            };
        } else if self.discovery.enabled {
            if let Kept::Local(u) = &mut *self.unmatched.lock() {
                u.load(&dir.join("unmatched.jsonl"))?;
            }
        }
        tracing::info!(intents = map.len(), "few-shot intents loaded");
        *self.map.write() = map;
        *self.store_path.write() = Some(store);
        Ok(())
    }

    /// A snapshot of every few-shot intent.
    pub fn all(&self) -> IntentMap {
        self.map.read().clone()
    }

    pub fn get(&self, name: &str) -> Option<Arc<Intent>> {
        self.map.read().get(name).cloned()
    }

    /// Whether `load` has run (changes are persisted from then on).
    pub(super) fn is_loaded(&self) -> bool {
        self.store_path.read().is_some()
    }

    /// Publish `map` (the write lock held).
    pub(super) fn replace(&self, map: IntentMap) {
        *self.map.write() = map;
    }

    /// Apply `change` to a copy of the intents, write it, then publish it. Shared: when another
    /// replica wrote first, re-read its intents and apply `change` again to them.
    fn change<T>(&self, mut change: impl FnMut(&mut IntentMap) -> AppResult<T>) -> AppResult<T> {
        let _w = self.write.lock();
        for attempt in 0..CHANGE_TRIES {
            let mut next = self.all();
            let out = change(&mut next)?;
            if let Some(p) = self.store_path.read().as_ref() {
                match self.sharing.get() {
                    None => write_store(p, &next).map_err(AppError::Internal)?,
                    Some(sh) => {
                        if !self.persist_shared(sh, &next)? {
                            let pause = rand::random::<u64>() % (2000 * (attempt + 1));
                            std::thread::sleep(std::time::Duration::from_micros(pause));
                            self.refresh(sh)?;
                            continue;
                        }
                    }
                }
            }
            *self.map.write() = next;
            return Ok(out);
        }
        Err(AppError::StoreDown {
            message: "the shared few-shot intents kept changing under this change: try again"
                .into(),
        })
    }

    /// Insert or replace an intent; true when it is new. `must_be_new`: 409 when the name exists.
    pub fn install(&self, intent: Intent, must_be_new: bool) -> AppResult<bool> {
        let max = self.fewshot.max_intents;
        let intent = Arc::new(intent);
        self.change(|m| {
            let name = intent.name.clone();
            match m.get(&name) {
                Some(e) if e.origin == Origin::File => {
                    return Err(conflict(
                        "name",
                        format!("`{name}` is defined in the intents file (fewshot.file): edit it there"),
                    ))
                }
                Some(_) if must_be_new => {
                    return Err(conflict(
                        "name",
                        format!("a few-shot intent `{name}` exists: choose another name, or PUT /v1/intents/{name} to replace it"),
                    ))
                }
                None if m.len() >= max => {
                    return Err(AppError::invalid(
                        "name",
                        format!("the store holds {max} intents (fewshot.max_intents): delete one first"),
                    ))
                }
                _ => {}
            }
            Ok(m.insert(name, intent.clone()).is_none())
        })
    }

    /// Delete an intent made over the API or by discovery.
    pub fn delete(&self, name: &str) -> AppResult<Arc<Intent>> {
        self.change(|m| match m.get(name) {
            None => Err(AppError::not_found(
                "name",
                format!(
                    "no few-shot intent `{}`",
                    name.chars().take(100).collect::<String>()
                ),
            )),
            Some(e) if e.origin == Origin::File => Err(conflict(
                "name",
                format!("`{name}` is defined in the intents file (fewshot.file): edit it there"),
            )),
            Some(_) => m
                .remove(name)
                .ok_or_else(|| AppError::not_found("name", "gone")),
        })
    }

    /// Give freshly made embeddings to intents still as they were when embedding started.
    fn set_embedded(&self, done: Vec<(Arc<Intent>, Embedded)>) -> AppResult<()> {
        let done: Vec<(Arc<Intent>, Arc<Intent>)> = done
            .into_iter()
            .map(|(old, e)| {
                let new = Arc::new(old.with_embedded(e));
                (old, new)
            })
            .collect();
        self.change(|m| {
            for (old, new) in &done {
                if m.get(&old.name).is_some_and(|cur| Arc::ptr_eq(cur, old)) {
                    m.insert(old.name.clone(), new.clone());
                }
            }
            Ok(())
        })
    }
}

/// The intent sets: few-shot intents, trained heads, and the models that embed them, as one
/// request sees them: its model calls' queue wait counts from `admitted`.
#[derive(Clone, Copy)]
pub struct Sets<'a> {
    pub intents: &'a Arc<Intents>,
    pub heads: &'a HeadRegistry,
    pub models: &'a Models,
    pub admitted: std::time::Instant,
}

/// The encoder (model name) and prefix of a set: its trained head's, else the default model's.
pub fn encoder_of(state: Sets<'_>, set: &str) -> (String, String) {
    let enc = state
        .heads
        .intents
        .get(set)
        .map(|h| h.meta.encoder.clone())
        .unwrap_or_else(|| state.models.default_name().to_string());
    let prefix = state.models.prefix(&enc).unwrap_or_default().to_string();
    (enc, prefix)
}

/// Every set name: trained, and those few-shot intents name.
pub fn set_names(state: Sets<'_>) -> Vec<String> {
    let mut v: Vec<String> = state.heads.intents.keys().cloned().collect();
    v.extend(state.intents.all().values().map(|i| i.set.clone()));
    v.sort();
    v.dedup();
    v
}

/// 404 for a set that is neither trained nor named by a few-shot intent.
pub fn unknown_set(state: Sets<'_>, set: &str) -> AppError {
    AppError::not_found(
        "intent_set",
        format!(
            "unknown intent set `{}`; available: {}",
            set.chars().take(100).collect::<String>(),
            set_names(state).join(", ")
        ),
    )
}

/// Embed the intents of `set` that are not yet embedded with its encoder (intents file, or
/// made with another encoder or prefix), in one encoder pass.
async fn embed_pending(state: Sets<'_>, set: &str, enc: &str, prefix: &str) -> AppResult<()> {
    let pending = |s: Sets<'_>| -> Vec<Arc<Intent>> {
        s.intents
            .all()
            .into_values()
            .filter(|i| i.set == set && i.ready_for(enc, prefix).is_none())
            .collect()
    };
    if pending(state).is_empty() {
        return Ok(());
    }
    let _g = state.intents.embedding.lock().await;
    let todo = pending(state);
    if todo.is_empty() {
        return Ok(());
    }
    let texts: Vec<String> = todo.iter().flat_map(|i| i.examples.clone()).collect();
    let (_, mut xs, _) = state
        .models
        .encode(Some(enc), texts, state.admitted)
        .await?;
    let mut done = Vec::new();
    for i in todo.into_iter().rev() {
        let v = xs.split_off(xs.len() - i.examples.len());
        done.push((i, Embedded::new(enc, prefix, v)));
    }
    let intents = state.intents.clone();
    tokio::task::spawn_blocking(move || intents.set_embedded(done))
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("store task: {e}")))?
}

/// How `/v1/intent` answers `set`: its trained head and its few-shot intents (embedded first
/// when needed). 404 when no such set exists.
pub async fn set_view(state: Sets<'_>, set: &str) -> AppResult<SetView> {
    let head = state.heads.intents.get(set).cloned();
    let (encoder, prefix) = encoder_of(state, set);
    let has_fewshot = state.intents.all().values().any(|i| i.set == set);
    if head.is_none() && !has_fewshot {
        return Err(unknown_set(state, set));
    }
    if has_fewshot {
        embed_pending(state, set, &encoder, &prefix).await?;
    }
    let intents = state
        .intents
        .all()
        .into_values()
        .filter(|i| i.set == set)
        .filter_map(|i| Some((i.name.clone(), i.ready_for(&encoder, &prefix)?.clone())))
        .collect();
    Ok(SetView {
        name: set.to_string(),
        head,
        encoder,
        prefix,
        intents,
        threshold: state.intents.fewshot.threshold,
        low_confidence: state.intents.fewshot.low_confidence,
        strong: state.intents.fewshot.strong_match,
    })
}
