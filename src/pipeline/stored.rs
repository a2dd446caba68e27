//! The pipeline's answers as the store keeps them (`store::signals`): the stored types widen the
//! `f32` scores to `f64` and add what the turn alone knows (the intent set, the customer's
//! language, the screenshot's summary).

use super::signals::EmotionResult;
use crate::heads::predict::IntentPrediction;
use crate::lang::Detection;
use crate::store::signals::{
    Abusive, CodeHit, Emotion, Intent, Language, Scored, Screenshot, StoredSignals, SCHEMA,
};
use crate::vision::Analysis;

/// The stored signals of one triaged message.
pub fn stored(
    language: &Detection,
    customer_language: Option<String>,
    intent: &IntentPrediction,
    intent_set: &str,
    emotion: Option<&EmotionResult>,
    screenshot: Option<&Analysis>,
) -> StoredSignals {
    StoredSignals {
        schema: SCHEMA,
        emotion: emotion.map(stored_emotion),
        intent: Some(Intent {
            intent_set: intent_set.to_string(),
            label: intent.label.clone(),
            out_of_scope: intent.out_of_scope,
            score: f64::from(intent.score),
            top: intent
                .top
                .iter()
                .map(|s| Scored {
                    label: s.label.clone(),
                    score: f64::from(s.score),
                })
                .collect(),
        }),
        language: Some(Language {
            customer_language,
            language: language.language.clone(),
            score: f64::from(language.score),
        }),
        screenshot: screenshot.map(|a| Screenshot {
            error_codes: a
                .evidence
                .error_codes
                .iter()
                .map(|c| CodeHit {
                    fault: c.fault.clone(),
                    text: c.text.clone(),
                })
                .collect(),
            fault: a.fault.as_ref().map(|f| f.id.clone()),
            route_hint: a.route_hint.to_string(),
        }),
    }
}

fn stored_emotion(e: &EmotionResult) -> Emotion {
    let widen = |m: &std::collections::BTreeMap<String, f32>| {
        m.iter().map(|(k, v)| (k.clone(), f64::from(*v))).collect()
    };
    Emotion {
        abusive: e.abusive.map(|a| Abusive {
            detected: a.detected,
            score: f64::from(a.score),
        }),
        emotions: widen(&e.emotions),
        escalate: e.escalate,
        escalation: e.escalation.map(f64::from),
        groups: widen(&e.groups),
        labels: e.labels.clone(),
        reasons: e.reasons.clone(),
        top_group: e.top_group.clone(),
    }
}
