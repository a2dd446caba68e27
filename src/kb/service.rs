//! The knowledge-base service: named knowledge bases kept in the store (the durable copy) and in
//! memory (BM25 and dense indexes, rebuilt from the store at start); writes embed each passage
//! once, commit to the store in one transaction, then update the index, so what a write
//! acknowledged is searchable at once and after any restart.

use super::center::Centering;
use super::flows::Flows;
use super::index::{Fusion, Hit, KbIndex, Mode, Query};
use super::{check_kb_name, Article, KbConfig};
use crate::engine::Models;
use crate::error::{AppError, AppResult};
use crate::lang::LangId;
use crate::store::kb::KbRow;
use crate::store::Store;
use parking_lot::RwLock;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

/// Passages embedded per encoder call during imports: small, so that live requests queued
/// behind an import wait for one slice at most (`limits.queue_wait_ms`).
const EMBED_SLICE: usize = 32;

pub struct Kb {
    pub cfg: KbConfig,
    store: Arc<Store>,
    lang: Arc<LangId>,
    indexes: RwLock<BTreeMap<String, Arc<KbIndex>>>,
    /// The key of the fine-tuned layers that embed (`kb.branch`), or None: the plain encoder.
    branch: Option<String>,
    /// Agent procedures per intent (`kb.flows`, else the shipped ones).
    pub flows: Flows,
    /// Language centring of the dense ranking (the plain default encoder only).
    centering: Option<Arc<Centering>>,
    /// The default intent set's head, when it reads the embeddings the knowledge base searches
    /// with (a frozen-encoder head on the default encoder, no `kb.branch`): the intent prior of
    /// questions that come without one.
    intent_head: Option<Arc<crate::heads::head::Head>>,
    /// One write at a time, so the index applies writes in the store's order.
    write: tokio::sync::Mutex<()>,
    /// The shipped articles are being loaded (`/ready` waits for them).
    pub(super) seeding: std::sync::atomic::AtomicBool,
}

/// What a write did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Written {
    pub kb: String,
    pub created: usize,
    pub replaced: usize,
    /// Passages indexed for the written articles.
    pub chunks: usize,
}

/// A knowledge base and its size.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KbInfo {
    pub name: String,
    pub articles: usize,
    pub chunks: usize,
}

impl Kb {
    /// Every knowledge base in `store`, indexed (blocking: call before serving or from
    /// `spawn_blocking`).
    pub fn open(
        cfg: KbConfig,
        store: Arc<Store>,
        lang: Arc<LangId>,
        heads: &crate::heads::registry::HeadRegistry,
        model: &str,
    ) -> anyhow::Result<Kb> {
        let branch = match cfg.branch.as_deref().filter(|b| !b.is_empty()) {
            None => None,
            Some(name) => {
                let head = heads.intents.get(name).ok_or_else(|| {
                    anyhow::anyhow!("kb.branch: no intent head `{name}` is configured")
                })?;
                Some(head.branch_key().map(str::to_string).ok_or_else(|| {
                    anyhow::anyhow!("kb.branch: head `{name}` has no fine-tuned encoder layers")
                })?)
            }
        };
        // The shipped means are for the plain encoder's embeddings.
        let centering = if branch.is_none() && cfg.centring {
            Centering::shipped(model).map(Arc::new)
        } else {
            None
        };
        let flows = match &cfg.flows {
            Some(path) => Flows::load(path)?,
            None => Flows::shipped()?,
        };
        let intent_head = heads
            .intents
            .get(&heads.default_intent)
            .filter(|h| h.meta.tuned_layers.is_none() && h.meta.encoder == model)
            .filter(|_| branch.is_none())
            .cloned();
        let kb = Kb {
            intent_head,
            flows,
            cfg,
            store,
            lang,
            branch,
            centering,
            indexes: RwLock::new(BTreeMap::new()),
            write: tokio::sync::Mutex::new(()),
            seeding: Default::default(),
        };
        for (name, _) in kb.store.kb_names()? {
            kb.reload(&name)?;
        }
        Ok(kb)
    }

    /// Rebuild knowledge base `name` from the store (another replica wrote it).
    pub fn reload(&self, name: &str) -> anyhow::Result<()> {
        let rows = self.store.kb_articles(name)?;
        let index = Arc::new(KbIndex::new(
            self.cfg.ann_min_passages,
            self.centering.clone(),
        )?);
        let mut puts = Vec::with_capacity(rows.len());
        for r in rows {
            let a: Article = serde_json::from_str(&r.article).map_err(|e| {
                anyhow::anyhow!("kb: stored article {}/{} is unreadable: {e}", r.kb, r.id)
            })?;
            puts.push((a, r.chunks, r.vectors));
        }
        let n = puts.len();
        index.apply(puts, &[])?;
        index.shrink();
        let mut g = self.indexes.write();
        if n == 0 {
            g.remove(name);
        } else {
            g.insert(name.to_string(), index);
        }
        Ok(())
    }

    /// Re-read articles `ids` of knowledge base `name` from the store (another replica wrote
    /// or deleted them): present ones replace the held ones, absent ones are dropped.
    pub fn reload_ids(&self, name: &str, ids: &[&str]) -> anyhow::Result<()> {
        let mut puts = Vec::new();
        let mut gone = Vec::new();
        for id in ids {
            match self.store.kb_article(name, id)? {
                Some(r) => {
                    let a: Article = serde_json::from_str(&r.article).map_err(|e| {
                        anyhow::anyhow!("kb: stored article {name}/{id} is unreadable: {e}")
                    })?;
                    puts.push((a, r.chunks, r.vectors));
                }
                None => gone.push(id.to_string()),
            }
        }
        let index = self
            .index_or_new(name)
            .map_err(|e| anyhow::anyhow!("kb: {e}"))?;
        index.apply(puts, &gone)?;
        if index.size().0 == 0 {
            self.indexes.write().remove(name);
        }
        Ok(())
    }

    /// The names of the knowledge bases in the store (empty when it cannot be read).
    pub fn names_in_store(&self) -> Vec<String> {
        let mut names: Vec<String> = match self.store.kb_names() {
            Ok(n) => n.into_iter().map(|(n, _)| n).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the knowledge bases");
                Vec::new()
            }
        };
        // Those gone from the store are dropped by their reload.
        names.extend(self.indexes.read().keys().cloned());
        names.sort();
        names.dedup();
        names
    }

    /// The knowledge bases held, by name.
    pub fn list(&self) -> Vec<KbInfo> {
        self.indexes
            .read()
            .iter()
            .map(|(name, i)| {
                let (articles, chunks) = i.size();
                KbInfo {
                    name: name.clone(),
                    articles,
                    chunks,
                }
            })
            .collect()
    }

    /// Knowledge base `name` (None: the default), 404 naming `field` when it has no articles.
    pub fn index(&self, name: Option<&str>, field: &str) -> AppResult<(String, Arc<KbIndex>)> {
        let name = name.unwrap_or(&self.cfg.default_kb);
        check_kb_name(field, name)?;
        let g = self.indexes.read();
        g.get(name)
            .map(|i| (name.to_string(), i.clone()))
            .ok_or_else(|| {
                AppError::not_found(
                    field,
                    format!(
                        "no knowledge base `{name}`; there are: {}",
                        g.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            })
    }

    /// One article.
    pub fn article(&self, kb: &str, id: &str) -> AppResult<Article> {
        let (_, index) = self.index(Some(kb), "kb")?;
        index.get(id).map(|e| e.article.clone()).ok_or_else(|| {
            AppError::not_found("id", format!("no article `{id}` in knowledge base `{kb}`"))
        })
    }

    /// Write `articles` (each already checked) into `kb` in one transaction: all or none.
    /// Ids must be unique within the call (422 naming `{field}[i].id` otherwise).
    pub async fn put(
        &self,
        models: &Models,
        kb: &str,
        mut articles: Vec<Article>,
        field: &str,
    ) -> AppResult<Written> {
        check_kb_name("kb", kb)?;
        if articles.is_empty() {
            return Err(AppError::invalid(field, "no articles"));
        }
        if articles.len() > self.cfg.max_import_articles {
            return Err(AppError::too_large(
                field,
                format!(
                    "{} articles; at most {} per import (kb.max_import_articles)",
                    articles.len(),
                    self.cfg.max_import_articles
                ),
            ));
        }
        let mut seen = HashSet::new();
        for (i, a) in articles.iter().enumerate() {
            if !seen.insert(a.id.as_str()) {
                return Err(AppError::invalid(
                    format!("{field}[{i}].id"),
                    format!("duplicate id `{}` in this import", a.id),
                ));
            }
        }
        for a in &mut articles {
            if a.language.is_none() {
                let d = self.lang.detect(&format!("{} {}", a.title, a.body));
                a.language = (d.language != "und").then_some(d.language);
            }
        }
        let chunks: Vec<Vec<String>> = articles
            .iter()
            .map(|a| a.chunks(self.cfg.chunk_chars))
            .collect();
        let flat: Vec<String> = chunks.iter().flatten().cloned().collect();
        let model = match &self.branch {
            Some(k) => format!("{}+{k}", models.default_name()),
            None => models.default_name().to_string(),
        };
        let mut vectors = Vec::with_capacity(flat.len());
        for slice in flat.chunks(EMBED_SLICE) {
            vectors.extend(self.embed(models, slice.to_vec()).await?);
        }
        let mut vectors = vectors.into_iter();
        let mut rows = Vec::with_capacity(articles.len());
        let mut puts = Vec::with_capacity(articles.len());
        let mut n_chunks = 0;
        for (a, c) in articles.into_iter().zip(chunks) {
            let v: Vec<Vec<f32>> = vectors.by_ref().take(c.len()).collect();
            n_chunks += c.len();
            let json = serde_json::to_string(&a)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("kb: article json: {e}")))?;
            rows.push(KbRow {
                kb: kb.to_string(),
                id: a.id.clone(),
                article: json,
                model: model.clone(),
                chunks: c.clone(),
                vectors: v.clone(),
                updated_ms: 0,
            });
            puts.push((a, c, v));
        }
        let _one = self.write.lock().await;
        let store = self.store.clone();
        let name = kb.to_string();
        let (created, replaced) = tokio::task::spawn_blocking(move || store.kb_put(&name, &rows))
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("kb store task: {e}")))??;
        let index = self.index_or_new(kb)?;
        index.apply(puts, &[]).map_err(AppError::Internal)?;
        Ok(Written {
            kb: kb.to_string(),
            created,
            replaced,
            chunks: n_chunks,
        })
    }

    /// Delete article `id` of `kb` (404 when there is none).
    pub async fn delete(&self, kb: &str, id: &str) -> AppResult<()> {
        let (_, index) = self.index(Some(kb), "kb")?;
        let _one = self.write.lock().await;
        let store = self.store.clone();
        let (k, i) = (kb.to_string(), id.to_string());
        let existed = tokio::task::spawn_blocking(move || store.kb_delete(&k, &i))
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("kb store task: {e}")))??;
        if !existed {
            return Err(AppError::not_found(
                "id",
                format!("no article `{id}` in knowledge base `{kb}`"),
            ));
        }
        index
            .apply(Vec::new(), &[id.to_string()])
            .map_err(AppError::Internal)?;
        if index.size().0 == 0 {
            self.indexes.write().remove(kb);
        }
        Ok(())
    }

    fn index_or_new(&self, kb: &str) -> AppResult<Arc<KbIndex>> {
        let mut g = self.indexes.write();
        if let Some(i) = g.get(kb) {
            return Ok(i.clone());
        }
        let i = KbIndex::new(self.cfg.ann_min_passages, self.centering.clone())
            .map_err(AppError::Internal)?;
        let i = Arc::new(i);
        g.insert(kb.to_string(), i.clone());
        Ok(i)
    }

    /// The intent of a question from its embedding (the default intent set's head, when it reads
    /// these embeddings): its label when in scope.
    pub fn intent_of(&self, vec: &[f32], language: &str) -> Option<String> {
        let head = self.intent_head.as_ref()?;
        let p = head.predict_intent(vec, 1, Some(language));
        (!p.out_of_scope).then_some(p.label)
    }

    /// Hybrid search of `ask.query` (checked), embedding it; the question's intent is
    /// `ask.intent` when the caller knows it, else the default intent set's answer (articles
    /// tagged with it are preferred). Returns the knowledge base's name and the intent used.
    pub async fn search(
        &self,
        models: &Models,
        ask: Ask<'_>,
        admitted: Instant,
    ) -> AppResult<(String, Vec<Hit>, Option<String>)> {
        let (name, index) = self.index(ask.kb, "kb")?;
        let qvec = self
            .embed_at(models, vec![ask.query.to_string()], admitted)
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        let detected = match ask.detected {
            Some(d) => d.to_string(),
            None => self.lang.detect(ask.query).language,
        };
        let intent = match ask.intent {
            Some(i) => Some(i.to_string()),
            None if self.cfg.intent_weight > 0.0 => self.intent_of(&qvec, &detected),
            None => None,
        };
        let q = Query {
            text: ask.query,
            vec: &qvec,
            top_k: ask.top_k,
            language: ask.language,
            mode: Mode::Hybrid,
            intent: intent.as_deref(),
        };
        let hits = self.search_in(&index, &q, Some(&detected))?;
        Ok((name, hits, intent))
    }

    /// The fine-tuned layers' key that embeds this knowledge base's texts (None: plain).
    pub fn branch(&self) -> Option<&str> {
        self.branch.as_deref()
    }

    /// Unit embeddings of `texts` (checked) as this knowledge base makes them.
    pub async fn embed(&self, models: &Models, texts: Vec<String>) -> AppResult<Vec<Vec<f32>>> {
        self.embed_at(models, texts, Instant::now()).await
    }

    async fn embed_at(
        &self,
        models: &Models,
        texts: Vec<String>,
        admitted: Instant,
    ) -> AppResult<Vec<Vec<f32>>> {
        let (_, e, _) = models
            .encode_for(None, texts, &[self.branch.as_deref()], admitted)
            .await?;
        Ok(e.into_iter()
            .map(|mut v| unit(v.pop().unwrap_or_default()))
            .collect())
    }

    /// Search with the query's embedding already made; the query's detected language picks the
    /// BM25 weight and the centring of the dense ranking.
    pub fn search_embedded(&self, index: &KbIndex, q: &Query<'_>) -> AppResult<Vec<Hit>> {
        let detected = self.lang.detect(q.text).language;
        self.search_in(index, q, Some(&detected))
    }

    /// `search_embedded` for a query whose language is known already (the triage pass detected
    /// it; `und` or None: unknown).
    pub fn search_in(
        &self,
        index: &KbIndex,
        q: &Query<'_>,
        language: Option<&str>,
    ) -> AppResult<Vec<Hit>> {
        let language = language.filter(|l| *l != "und");
        index
            .search(
                q,
                Fusion {
                    candidates: self.cfg.candidates,
                    rrf_k: self.cfg.rrf_k,
                    bm25_weight: self.cfg.bm25_weight_for(language),
                    intent_weight: self.cfg.intent_weight,
                },
                language,
            )
            .map_err(AppError::Internal)
    }
}

/// One question for [`Kb::search`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Ask<'a> {
    pub query: &'a str,
    /// The knowledge base (None: the default).
    pub kb: Option<&'a str>,
    pub top_k: usize,
    /// Only articles in this language (ISO 639-1).
    pub language: Option<&'a str>,
    /// The question's intent, when the caller knows it.
    pub intent: Option<&'a str>,
    /// The query's detected language, when the caller detected it already (`und`: unknown).
    pub detected: Option<&'a str>,
}

/// `v` scaled to unit length (a zero vector stays zero).
fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}
