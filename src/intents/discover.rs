//! Discovery: cluster a set's unmatched texts into candidate intents (`POST
//! /v1/intents/discover`), and turn one candidate into a few-shot intent (`.../accept`).
//! Candidate ids hash the set and the member texts' ids, so the same texts give the same id;
//! the last result of each set is kept until the next discovery of that set.

pub use super::candidate::Candidate;
use super::cluster::{by_centrality, cluster};
use super::keyterms::{suggest_name, Pool};
use super::service::{conflict, Intents};
use super::store::{Embedded, Intent, Origin};
use super::unmatched::Item;
use super::validate::{check_name, dedup_key};
use crate::error::{AppError, AppResult};
use anyhow::Result;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::Arc;

/// Most representatives shown per candidate.
const REPRESENTATIVES: usize = 5;
/// Most key terms per candidate.
const KEY_TERMS: usize = 5;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Discovered {
    pub intent_set: String,
    /// Unmatched texts of the set that were clustered (made with its encoder).
    pub unmatched: usize,
    /// How many of them are in a cluster of at least `min_size`.
    pub clustered: usize,
    pub candidates: Vec<Candidate>,
}

/// What a discovery runs on.
pub struct Params {
    pub set: String,
    pub encoder: String,
    pub prefix: String,
    pub min_size: usize,
    pub max_candidates: usize,
    /// Names a suggestion must avoid (few-shot intents, the set's trained labels).
    pub taken: HashSet<String>,
}

fn candidate_id(set: &str, ids: &[u64]) -> String {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    let mut h = Sha256::new();
    h.update(set.as_bytes());
    for i in ids {
        h.update(i.to_le_bytes());
    }
    format!("{:x}", h.finalize())[..16].to_string()
}

impl Intents {
    /// Cluster the unmatched texts of `p.set` and remember the candidates for `accept`.
    pub fn discover(&self, mut p: Params) -> Result<Discovered> {
        let items: Vec<Item> = self
            .unmatched
            .lock()
            .of_set(&p.set, &p.encoder, &p.prefix)?;
        let vectors: Vec<Vec<f32>> = items.iter().map(|i| i.vector.clone()).collect();
        let clusters = cluster(&vectors, self.discovery.cluster_threshold, p.min_size)?;
        let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
        let pool = Pool::new(&texts);
        let mut candidates = Vec::new();
        for c in clusters.iter().take(p.max_candidates) {
            let ranked = by_centrality(&vectors, c);
            let members: Vec<u64> = ranked.iter().map(|(i, _)| items[*i].id).collect();
            let id = candidate_id(&p.set, &members);
            let mut seen = HashSet::new();
            let representatives: Vec<String> = ranked
                .iter()
                .map(|(i, _)| texts[*i])
                .filter(|t| seen.insert(dedup_key(t)))
                .take(REPRESENTATIVES)
                .map(String::from)
                .collect();
            let member_texts: Vec<&str> = c.iter().map(|&i| texts[i]).collect();
            let key_terms = pool.key_terms(&member_texts, KEY_TERMS);
            let fallback = format!("topic_{}", &id[..6]);
            let first = representatives.first().map(String::as_str).unwrap_or("");
            let mut name = suggest_name(&key_terms, first, &fallback);
            if check_name("name", &name).is_err() {
                name = fallback;
            }
            let base = name.clone();
            let mut n = 2;
            while p.taken.contains(&name) {
                name = format!("{base}_{n}");
                n += 1;
            }
            p.taken.insert(name.clone());
            candidates.push(Candidate {
                id,
                size: c.len(),
                representatives,
                suggested_name: name,
                key_terms,
                cohesion: ranked.iter().map(|r| r.1).sum::<f32>() / c.len().max(1) as f32,
                set: p.set.clone(),
                members,
            });
        }
        {
            let mut last = self.candidates.lock();
            last.retain(|_, c| c.set != p.set);
            for c in &candidates {
                last.insert(c.id.clone(), c.clone());
            }
        }
        Ok(Discovered {
            intent_set: p.set,
            unmatched: items.len(),
            clustered: clusters.iter().map(Vec::len).sum(),
            candidates,
        })
    }

    /// Make candidate `id` a few-shot intent of its set (named `name`, else its suggestion) from
    /// its texts, and take them out of the unmatched store. The intent and how many texts left.
    pub fn accept(
        &self,
        id: &str,
        name: Option<String>,
        trained_labels: &dyn Fn(&str) -> Vec<String>,
    ) -> AppResult<(Arc<Intent>, usize)> {
        let cand = self.candidates.lock().get(id).cloned().ok_or_else(|| {
            AppError::not_found(
                "id",
                format!(
                    "no candidate `{}` in the last discovery result: run POST /v1/intents/discover again",
                    id.chars().take(40).collect::<String>()
                ),
            )
        })?;
        let name = name.unwrap_or_else(|| cand.suggested_name.clone());
        check_name("name", &name)?;
        if trained_labels(&cand.set).contains(&name) {
            return Err(conflict(
                "name",
                format!("`{name}` is a trained label of set `{}`", cand.set),
            ));
        }
        let items = self
            .unmatched
            .lock()
            .by_ids(&cand.members)
            .map_err(AppError::Internal)?;
        if items.is_empty() {
            return Err(AppError::not_found(
                "id",
                "the texts of this candidate are no longer kept: run POST /v1/intents/discover again",
            ));
        }
        let mut seen = HashSet::new();
        let chosen: Vec<&Item> = items
            .iter()
            .filter(|i| i.text.chars().count() <= self.fewshot.max_example_chars)
            .filter(|i| seen.insert(dedup_key(&i.text)))
            .take(self.fewshot.max_examples)
            .collect();
        let Some(first) = chosen.first() else {
            return Err(AppError::invalid(
                "id",
                "every text of this candidate is over fewshot.max_example_chars",
            ));
        };
        let embedded = Embedded::new(
            &first.encoder,
            &first.prefix,
            chosen.iter().map(|i| i.vector.clone()).collect(),
        );
        let intent = Intent {
            name: name.clone(),
            set: cand.set.clone(),
            description: Some(format!(
                "discovered from {} unmatched texts; key terms: {}",
                items.len(),
                cand.key_terms.join(", ")
            )),
            examples: chosen.iter().map(|i| i.text.trim().to_string()).collect(),
            origin: Origin::Discovery,
            updated_at: super::files::now_secs(),
            embedded: Some(Arc::new(embedded)),
        };
        self.install(intent, true)?;
        let ids: HashSet<u64> = items.iter().map(|i| i.id).collect();
        let removed = self
            .unmatched
            .lock()
            .remove(&ids)
            .map_err(AppError::Internal)?;
        self.candidates.lock().remove(id);
        let made = self
            .get(&name)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("accepted intent vanished")))?;
        Ok((made, removed))
    }
}
