//! The signals of customer texts from the shared encoder: intents (trained head and few-shot
//! intents), emotions with the abuse and escalation heads riding on the same trunk pass, and the
//! language of each text (which picks the heads' calibration).

use crate::engine::Models;
use crate::error::{AppError, AppResult};
use crate::heads::head::Head;
use crate::heads::predict::IntentPrediction;
use crate::heads::registry::HeadRegistry;
use crate::intents::service::Sets;
use crate::lang::LangId;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Intent answers for `texts` (already checked) from set `name`: its trained head and few-shot
/// intents over one trunk pass, calibrated for each text's language; texts answered unsure are
/// kept for discovery. `top_k` must be within 1..=labels (422 naming `top_k` otherwise).
pub async fn classify(
    sets: Sets<'_>,
    lang: &Arc<LangId>,
    texts: Vec<String>,
    name: &str,
    top_k: Option<usize>,
) -> AppResult<Vec<IntentPrediction>> {
    // The trained head and the set's few-shot intents (404 when neither exists).
    let view = crate::intents::service::set_view(sets, name).await?;
    let n = view.label_count();
    let top_k = top_k.unwrap_or(n.min(3));
    if top_k == 0 || top_k > n {
        return Err(AppError::invalid(
            "top_k",
            format!("must be between 1 and {n} (the labels of `{name}`)"),
        ));
    }
    let kept = sets.intents.discovery.enabled.then(|| texts.clone());
    let langs = detect_all(lang, &texts).await?;
    // One trunk pass: plain embeddings for the few-shot intents, and the head's own when it
    // fine-tuned the encoder's top layers.
    let key = view.head.as_ref().and_then(|h| h.branch_key());
    let branches: &[Option<&str>] = if key.is_some() { &[None, key] } else { &[None] };
    let (_, e, _) = sets
        .models
        .encode_for(Some(&view.encoder), texts, branches, sets.admitted)
        .await?;
    let x: Vec<Vec<f32>> = e.iter().map(|v| v[0].clone()).collect();
    let hx: Vec<Vec<f32>> = e
        .into_iter()
        .map(|mut v| v.pop().unwrap_or_default())
        .collect();
    let answers = view.predict_with(&x, &hx, top_k, &langs)?;
    crate::intents::service::keep_unmatched(sets.intents, &view, kept, &x, &answers).await;
    Ok(answers.into_iter().map(|a| a.prediction).collect())
}

/// Emotion answers (with the abuse and escalation signals) for `texts` (already checked), each
/// calibrated for its language; 503 when no emotion head is configured.
pub async fn emotions(
    models: &Models,
    heads: &HeadRegistry,
    lang: &Arc<LangId>,
    texts: Vec<String>,
    admitted: Instant,
) -> AppResult<Vec<EmotionResult>> {
    let head = heads.emotion.clone().ok_or_else(|| AppError::Unavailable {
        message: "no emotion head is configured (emotion.head)".into(),
    })?;
    let langs = detect_all(lang, &texts).await?;
    let side = SideHeads::of(heads);
    let (_, per_head) = embed_for_heads(
        models,
        &head.meta.encoder,
        texts,
        &[],
        &side.list(),
        admitted,
    )
    .await?;
    Ok(langs
        .iter()
        .enumerate()
        .filter_map(|(i, l)| side.answer(&per_head, i, Some(l), &heads.escalation))
        .collect())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EmotionResult {
    /// Every emotion label's probability.
    pub emotions: BTreeMap<String, f32>,
    /// Labels at or over their tuned thresholds.
    pub labels: Vec<String>,
    /// Support-oriented groups (max of their labels).
    pub groups: BTreeMap<String, f32>,
    pub top_group: String,
    pub escalate: bool,
    pub reasons: Vec<String>,
    /// The escalation head's calibrated score (0.5: its tuned threshold for the language), when
    /// one is served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<f32>,
    /// Abusive language (insults, slurs, threats), when an abuse head is served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abusive: Option<Abusive>,
}

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Abusive {
    /// Calibrated score: 0.5 means detected (the head's tuned threshold for the language).
    pub score: f32,
    pub detected: bool,
}

/// The emotion head and the heads whose signals ride on its answer (abuse, escalation).
pub struct SideHeads {
    pub emotion: Option<Arc<Head>>,
    pub abuse: Option<Arc<Head>>,
    pub escalation: Option<Arc<Head>>,
}

impl SideHeads {
    pub fn of(heads: &HeadRegistry) -> SideHeads {
        SideHeads {
            emotion: heads.emotion.clone(),
            abuse: heads.abuse.clone(),
            escalation: heads.escalation_head.clone(),
        }
    }

    /// The served ones, in order: emotion, abuse, escalation.
    pub fn list(&self) -> Vec<Arc<Head>> {
        [&self.emotion, &self.abuse, &self.escalation]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// The emotion answer of text `i` from `per_head[head][text]` (as `embed_for_heads` gives,
    /// in `list` order); None without an emotion head.
    pub fn answer(
        &self,
        per_head: &[Vec<Vec<f32>>],
        i: usize,
        lang: Option<&str>,
        cfg: &crate::heads::emotion::EscalationConfig,
    ) -> Option<EmotionResult> {
        let h = self.emotion.as_ref()?;
        let mut at = 1;
        let mut next = |present: bool| -> Option<&Vec<f32>> {
            if !present {
                return None;
            }
            at += 1;
            per_head.get(at - 1).and_then(|v| v.get(i))
        };
        let ax = next(self.abuse.is_some());
        let ex = next(self.escalation.is_some());
        let escalation = match (&self.escalation, ex) {
            (Some(e), Some(x)) => Some(e.label_score(x, lang, crate::heads::calibrate::ESCALATE)),
            _ => None,
        };
        let x = per_head.first().and_then(|v| v.get(i))?;
        let mut r = emotion_result(h, x, lang, escalation, cfg);
        if let (Some(a), Some(x)) = (&self.abuse, ax) {
            r.abusive = Some(abusive(a, x, lang));
        }
        Some(r)
    }
}

/// Embeddings of `texts` for each of `heads`, each through its own tuned layers: one trunk pass
/// for the heads on `encoder` (after the `extra` branches, e.g. the plain embedding), another
/// for each head on a different encoder. Returns (per text, the `extra` embeddings) and (per
/// head, per text, its embedding). The queue wait counts from `admitted`.
pub async fn embed_for_heads(
    models: &Models,
    encoder: &str,
    texts: Vec<String>,
    extra: &[Option<&str>],
    heads: &[Arc<Head>],
    admitted: Instant,
) -> AppResult<(Vec<Vec<Vec<f32>>>, Vec<Vec<Vec<f32>>>)> {
    let mut branches: Vec<Option<&str>> = extra.to_vec();
    let shared: Vec<bool> = heads.iter().map(|h| h.meta.encoder == encoder).collect();
    for (h, s) in heads.iter().zip(&shared) {
        if *s {
            branches.push(h.branch_key());
        }
    }
    let (_, e, _) = models
        .encode_for(Some(encoder), texts.clone(), &branches, admitted)
        .await?;
    let n = extra.len();
    let mut per_head = Vec::with_capacity(heads.len());
    let mut at = n;
    for (h, s) in heads.iter().zip(&shared) {
        if *s {
            per_head.push(
                e.iter()
                    .map(|v| v.get(at).cloned().unwrap_or_default())
                    .collect(),
            );
            at += 1;
        } else {
            let (_, o, _) = models
                .encode_for(
                    Some(&h.meta.encoder),
                    texts.clone(),
                    &[h.branch_key()],
                    admitted,
                )
                .await?;
            per_head.push(o.into_iter().map(|mut v| v.swap_remove(0)).collect());
        }
    }
    let base = e
        .into_iter()
        .map(|mut v| {
            v.truncate(n);
            v
        })
        .collect();
    Ok((base, per_head))
}

/// The abuse head's signal for one embedding of a text in `lang`.
pub fn abusive(head: &Head, x: &[f32], lang: Option<&str>) -> Abusive {
    let score = head.label_score(x, lang, crate::heads::registry::ABUSIVE);
    Abusive {
        score,
        detected: score >= 0.5,
    }
}

/// Each text's language (ISO 639-1 or `und`), detected on the blocking pool.
pub async fn detect_all(lang: &Arc<LangId>, texts: &[String]) -> AppResult<Vec<String>> {
    let lang = lang.clone();
    let texts = texts.to_vec();
    tokio::task::spawn_blocking(move || texts.iter().map(|t| lang.detect(t).language).collect())
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("language task: {e}")))
}

/// The emotion answer of one embedding of a text in `lang`, with the escalation head's score.
pub fn emotion_result(
    head: &Head,
    x: &[f32],
    lang: Option<&str>,
    escalation: Option<f32>,
    cfg: &crate::heads::emotion::EscalationConfig,
) -> EmotionResult {
    let (probs, labels) = head.predict_labels(x, lang);
    let groups = head.groups(x, lang);
    let (escalate, reasons) = crate::heads::emotion::escalation(&groups, escalation, cfg);
    EmotionResult {
        emotions: head.meta.labels.iter().cloned().zip(probs).collect(),
        labels,
        top_group: crate::heads::emotion::top_group(&groups),
        groups,
        escalate,
        reasons,
        escalation,
        abusive: None,
    }
}
