//! The triage pipeline of one customer message: signals (language, intent, emotion, abuse,
//! escalation, an attached screenshot) -> routing decision -> the stored turn with its live event
//! and webhook outbox rows (one transaction) -> wake the SSE streams and the webhook worker.
//! Callable without a server: it takes the services it uses (`Pipeline`).

use super::signals::{embed_for_heads, EmotionResult, SideHeads};
use super::Pipeline;
use crate::error::{AppError, AppResult};
use crate::heads::predict::IntentPrediction;
use crate::intents::service::Sets;
use crate::kb::answer::BotAnswer;
use crate::lang::LangId;
use crate::routing::{self, IntentSignal, Route, Target, TurnSignals};
use crate::store::signals::{self as stored, StoredSignals};
use crate::store::turns::{NewTurn, TurnRecord};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

/// One customer message to triage (checked by the caller).
#[derive(Debug, Clone)]
pub struct Message {
    pub conversation_id: String,
    pub text: String,
    pub channel: Option<String>,
    pub customer: Option<Customer>,
    /// Intent set (None: the default set).
    pub intent_set: Option<String>,
    /// An attached screenshot's bytes.
    pub screenshot: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The customer's own language (ISO 639-1); wins over detection for queue choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TriageResponse {
    pub language: Option<stored::Language>,
    pub intent: Option<stored::Intent>,
    pub emotion: Option<EmotionResult>,
    pub route: Route,
    pub conversation: ConversationRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screenshot: Option<crate::vision::Analysis>,
    /// The bot's reply from the knowledge base, with its citation: only when the route stays
    /// with the bot and an article is confident enough.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<BotAnswer>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConversationRef {
    pub id: String,
    pub turn: u32,
    pub previous_target: Option<Target>,
    /// The live event's id (SSE `id:`).
    pub event_id: i64,
    pub webhooks_queued: usize,
}

/// Triage `req`: its signals and routing decision, stored (with its live event and webhooks)
/// before this returns.
pub async fn triage(state: &Pipeline<'_>, req: Message) -> AppResult<TriageResponse> {
    let store = state.store.clone();
    let id = req.conversation_id.clone();
    let shot = match &req.screenshot {
        None => None,
        Some(bytes) => Some(attached(state, bytes.clone(), &req).await?),
    };

    let sets = match &shot {
        None => state.sets,
        // OCR and matching had their own bounds: the model's queue wait starts after them.
        Some(_) => crate::intents::service::Sets {
            admitted: std::time::Instant::now(),
            ..state.sets
        },
    };
    let sig = signals(sets, state.lang, &req.text, req.intent_set.as_deref()).await?;
    let answer = match &state.kb {
        Some(kb) => {
            let e = super::answer::Embedded {
                vector: &sig.embedding,
                encoder: &sig.encoder,
                tuned: sig.tuned.as_ref().map(|(k, v)| (k.as_str(), v.as_slice())),
                language: &sig.language.language,
                intent: (!sig.intent.out_of_scope).then_some(sig.intent.label.as_str()),
            };
            super::answer::from_kb(kb, state.sets.models, &req.text, e).await?
        }
        None => None,
    };
    let kb_best = answer.as_ref().map(|a| (a.answer.clone(), a.best));
    let suggestions: Vec<Value> = answer
        .as_ref()
        .map(|a| a.suggestions.clone())
        .unwrap_or_default();
    let queue_lang = req
        .customer
        .as_ref()
        .and_then(|c| c.language.clone())
        .unwrap_or_else(|| sig.language.language.clone());
    let tier = req.customer.as_ref().and_then(|c| c.tier.clone());
    let customer_language = req.customer.as_ref().and_then(|c| c.language.clone());
    let stored = super::stored::stored(
        &sig.language,
        customer_language,
        &sig.intent,
        &sig.intent_set,
        sig.emotion.as_ref(),
        shot.as_ref(),
    );
    let shot_fault = shot
        .as_ref()
        .and_then(|a| a.fault.as_ref().map(|f| f.id.clone()));
    let shot_hint = shot.as_ref().map(|a| a.route_hint);

    let signal = IntentSignal {
        label: sig.intent.label.clone(),
        score: sig.intent.score,
        out_of_scope: sig.intent.out_of_scope,
    };
    let groups = sig.emotion.as_ref().map(|e| e.groups.clone());
    let abuse = sig
        .emotion
        .as_ref()
        .and_then(|e| e.abusive.map(|a| a.score));
    let escalation = sig.emotion.as_ref().and_then(|e| e.escalation);
    let (policy, thresholds) = (state.policy.clone(), state.sets.heads.escalation.clone());
    let (text, channel) = (req.text.clone(), req.channel.clone());
    let customer = req
        .customer
        .as_ref()
        .and_then(|c| serde_json::to_value(c).ok());
    let urls = state.webhook_urls.to_vec();
    let conv = id.clone();
    let appended = tokio::task::spawn_blocking(move || {
        let decide = |history: &[routing::PastTurn], n: u32| {
            let s = TurnSignals {
                text: &text,
                language: &queue_lang,
                intent: Some(&signal),
                emotion: groups.as_ref(),
                tier: tier.as_deref(),
                abuse,
                escalation,
                screenshot: shot_hint.map(|h| routing::ScreenshotSignal {
                    fault: shot_fault.as_deref(),
                    route_hint: h,
                }),
                kb: kb_best.as_ref().map(|(a, best)| routing::KbSignal {
                    answered: a.as_ref().map(|a| a.article_id.as_str()),
                    confidence: *best,
                }),
            };
            routing::decide(&policy, &thresholds, &s, history, n)
        };
        let turn = NewTurn {
            conversation_id: conv,
            text: text.clone(),
            channel,
            customer,
            signals: stored,
        };
        let event = |c: &str, t: &TurnRecord, p: Option<&Route>, seq: i64| {
            event_data(c, t, p, seq, &suggestions)
        };
        store.append(turn, decide, &event, &urls)
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("store task: {e}")))??;

    state.store.announce(appended.event_seq, state.events);
    if let Some(r) = &appended.turn.route {
        state.metrics.inc(
            "triage_routes_total",
            "Triaged messages by routing target.",
            &[("target", r.target.as_str())],
            1,
        );
    }
    if appended.webhooks > 0 {
        state.webhook_wake.notify_one();
    }
    let StoredSignals {
        language, intent, ..
    } = appended.turn.signals;
    let route = appended.turn.route.unwrap_or_else(|| Route {
        target: Target::Bot,
        queue: String::new(),
        priority: 0,
        reasons: Vec::new(),
    });
    Ok(TriageResponse {
        language,
        intent,
        emotion: sig.emotion,
        route: route.clone(),
        conversation: ConversationRef {
            id,
            turn: appended.turn.turn,
            previous_target: appended.previous.map(|p| p.target),
            event_id: appended.event_seq,
            webhooks_queued: appended.webhooks,
        },
        screenshot: shot,
        answer: answer
            .and_then(|a| a.answer)
            .filter(|_| route.target == Target::Bot),
    })
}

/// Read an attached screenshot; errors name the `screenshot` field.
async fn attached(
    state: &Pipeline<'_>,
    bytes: Vec<u8>,
    req: &Message,
) -> AppResult<crate::vision::Analysis> {
    let vision = state.vision.clone().ok_or_else(|| AppError::Unavailable {
        message: "this server was built without screenshot recognition".into(),
    })?;
    let lang = req.customer.as_ref().and_then(|c| c.language.clone());
    crate::vision::analyze(&vision, bytes, Some(req.text.clone()), lang)
        .await
        .map_err(|e| match e {
            AppError::Invalid { kind, message, .. } => AppError::Invalid {
                kind,
                field: "screenshot".into(),
                message,
            },
            other => other,
        })
}

/// The live event of a turn (the SSE `data:`), with the flags agents watch.
/// When the route leaves the bot it carries `assist`: the knowledge base's best hits for the
/// message (`suggestions`) and where the full assist is; SSE sends it as an `assist` event too.
fn event_data(
    conversation: &str,
    t: &TurnRecord,
    previous: Option<&Route>,
    seq: i64,
    suggestions: &[Value],
) -> Value {
    let mut flags: Vec<String> = Vec::new();
    let (e, intent) = (t.signals.emotion.as_ref(), t.signals.intent.as_ref());
    if let Some(e) = e.filter(|e| e.escalate) {
        flags.push("escalate".into());
        if e.top_group != "neutral" && e.top_group != "gratitude_joy" {
            flags.push(e.top_group.clone());
        }
    }
    if e.and_then(|e| e.abusive).is_some_and(|a| a.detected) {
        flags.push("abusive".into());
    }
    if intent.is_some_and(|i| i.out_of_scope) {
        flags.push("out_of_scope".into());
    }
    if let Some(r) = &t.route {
        let before = previous.map_or(Target::Bot, |p| p.target);
        if before != r.target || previous.is_some_and(|p| p.queue != r.queue) {
            flags.push("route_changed".into());
        }
        if before == Target::Bot && r.target != Target::Bot {
            flags.push("left_bot".into());
        }
        if r.reasons.iter().any(|x| x.code == "request.human") {
            flags.push("human_requested".into());
        }
    }
    let assist = flags.iter().any(|f| f == "left_bot").then(|| {
        json!({
            "url": format!("/v1/conversations/{conversation}/assist"),
            "suggestions": suggestions,
        })
    });
    let mut v = json!({
        "seq": seq,
        "conversation_id": conversation,
        "turn": t.turn,
        "at_ms": t.at_ms,
        "text": t.text,
        "language": t.signals.language.as_ref().map(|l| &l.language),
        "intent": {
            "label": intent.map(|i| &i.label),
            "score": intent.map(|i| i.score),
            "out_of_scope": intent.map(|i| i.out_of_scope),
        },
        "emotion": {
            "top_group": e.map(|e| &e.top_group),
            "escalate": e.map(|e| e.escalate),
            "groups": e.map(|e| &e.groups),
        },
        "route": t.route,
        "previous_target": previous.map(|p| p.target),
        "flags": flags,
    });
    if let Some(a) = assist {
        v["assist"] = a;
    }
    v
}

/// One message's signals.
pub struct Signals {
    pub language: crate::lang::Detection,
    pub intent_set: String,
    pub intent: IntentPrediction,
    pub emotion: Option<EmotionResult>,
    /// The plain encoder embedding of the text (the knowledge base searches with it), and the
    /// encoder that made it.
    pub embedding: Vec<f32>,
    pub encoder: String,
    /// The intent head's fine-tuned embedding of the text, and its layers' key.
    pub tuned: Option<(String, Vec<f32>)>,
}

/// Language, intent and emotion of `text`, sharing one encoder pass when the heads share an
/// encoder (each tuned head through its own top layers).
pub async fn signals(
    sets: Sets<'_>,
    lang: &Arc<LangId>,
    text: &str,
    set: Option<&str>,
) -> AppResult<Signals> {
    let heads = sets.heads;
    let set = set.unwrap_or(&heads.default_intent).to_string();
    let view = crate::intents::service::set_view(sets, &set).await?;
    let lang = lang.clone();
    let t = text.to_string();
    let language = tokio::task::spawn_blocking(move || lang.detect(&t))
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("language task: {e}")))?;
    let side = SideHeads::of(heads);
    let intent_key = view.head.as_ref().and_then(|h| h.branch_key());
    // One trunk pass: the plain embedding, the intent head's layers, then the emotion, abuse and
    // escalation heads' layers.
    let (v, per_head) = embed_for_heads(
        sets.models,
        &view.encoder,
        vec![text.to_string()],
        &[None, intent_key],
        &side.list(),
        sets.admitted,
    )
    .await?;
    let v = v.into_iter().next().unwrap_or_default();
    let pick = |v: &[Vec<f32>], i: usize| v.get(i).cloned().unwrap_or_default();
    let top_k = view.label_count().min(3);
    let lang_code = [language.language.clone()];
    let answers = view.predict_with(&[pick(&v, 0)], &[pick(&v, 1)], top_k, &lang_code)?;
    let intent = answers
        .into_iter()
        .next()
        .map(|a| a.prediction)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no intent answer")))?;
    let emotion = side.answer(&per_head, 0, Some(&language.language), &heads.escalation);
    Ok(Signals {
        language,
        intent_set: set,
        intent,
        emotion,
        embedding: pick(&v, 0),
        encoder: view.encoder.clone(),
        tuned: intent_key.map(|k| (k.to_string(), pick(&v, 1))),
    })
}
