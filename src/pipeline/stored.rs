//! The pipeline's answers as the store keeps them (`store::signals`): the stored types widen the
//! `f32` scores to `f64` and add what the turn alone knows (the intent set, the customer's
//! language, the screenshot's summary).

use super::signals::EmotionResult;
use crate::heads::predict::IntentPrediction;
use crate::lang::Detection;
use crate::store::signals::{
    Abusive, CodeHit, Emotion, Intent, Language, Scored, Screenshot, StoredSignals, SCHEMA,
};
use crate::vision::matcher::{self, Evidence};
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
        screenshot: screenshot
            .map(|a| stored_screenshot(a.fault.as_ref(), &a.evidence, a.route_hint)),
    }
}

fn stored_screenshot(
    fault: Option<&matcher::Scored>,
    evidence: &Evidence,
    hint: &str,
) -> Screenshot {
    Screenshot {
        error_codes: evidence
            .error_codes
            .iter()
            .map(|c| CodeHit {
                fault: c.fault.clone(),
                text: c.text.clone(),
            })
            .collect(),
        fault: fault.map(|f| f.id.clone()),
        route_hint: hint.to_string(),
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

#[cfg(test)]
mod tests {
    use super::super::signals::Abusive as AbusiveAnswer;
    use super::*;
    use crate::heads::predict::Scored as ScoredAnswer;
    use serde_json::json;

    /// The stored JSON (and so the API's) is byte-for-byte what the untyped code built.
    #[test]
    fn stored_signals_serialise_as_the_untyped_json_did() {
        let language = Detection {
            language: "en".into(),
            score: 0.93,
        };
        let intent = IntentPrediction {
            label: "lost_card".into(),
            score: 0.81,
            out_of_scope: false,
            top: vec![ScoredAnswer {
                label: "lost_card".into(),
                score: 0.81,
            }],
        };
        let emotion = EmotionResult {
            emotions: [("anger".to_string(), 0.7f32), ("joy".to_string(), 0.1)].into(),
            labels: vec!["anger".into()],
            groups: [("anger_frustration".to_string(), 0.7f32)].into(),
            top_group: "anger_frustration".into(),
            escalate: true,
            reasons: vec!["anger".into()],
            escalation: Some(0.66),
            abusive: Some(AbusiveAnswer {
                score: 0.3,
                detected: false,
            }),
        };
        let fault = matcher::Scored {
            id: "account_locked".into(),
            title: "Locked".into(),
            score: 0.9,
        };
        let evidence = Evidence {
            error_codes: vec![matcher::CodeHit {
                fault: "account_locked".into(),
                text: "ERR-403".into(),
            }],
            matched: Vec::new(),
            failure: Vec::new(),
            success: Vec::new(),
        };
        for (emotion, customer) in [(Some(&emotion), Some("de")), (None, None)] {
            let customer = customer.map(String::from);
            let mut typed = stored(
                &language,
                customer.clone(),
                &intent,
                "default",
                emotion,
                None,
            );
            typed.screenshot = Some(stored_screenshot(Some(&fault), &evidence, "agent"));
            // The untyped construction, as `pipeline::triage` had it.
            let mut i = serde_json::to_value(&intent).unwrap();
            i["intent_set"] = json!("default");
            let shot = json!({
                "fault": Some(&fault).map(|f| &f.id),
                "route_hint": "agent",
                "error_codes": evidence.error_codes,
            });
            let untyped = json!({
                "language": {"language": language.language, "score": language.score, "customer_language": customer},
                "intent": i, "emotion": emotion, "screenshot": shot,
            });
            assert_eq!(serde_json::to_string(&typed).unwrap(), untyped.to_string());
        }
    }
}
