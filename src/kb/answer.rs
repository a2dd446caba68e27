//! Bot answers: the best hit's reply with its citation when its confidence clears the threshold,
//! and nothing otherwise (a wrong answer costs more than a handoff).

use super::Hit;
use serde::Serialize;

/// A reply the bot may send, and where it comes from.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BotAnswer {
    /// The article's `answer`, else the passage that matched (without its title line).
    pub text: String,
    /// The citation: knowledge base, article id and title.
    pub kb: String,
    pub article_id: String,
    pub title: String,
    pub confidence: f32,
    /// The passage that matched.
    pub passage: String,
}

/// The answer from `hits` (best first) when the best clears `threshold`.
pub fn pick(kb: &str, hits: &[Hit], threshold: f32) -> Option<BotAnswer> {
    let h = hits.first().filter(|h| h.confidence >= threshold)?;
    Some(BotAnswer {
        text: h.reply(),
        kb: kb.to_string(),
        article_id: h.id.clone(),
        title: h.title.clone(),
        confidence: h.confidence,
        passage: h.passage.clone(),
    })
}

/// The language an answer is drawn in: the customer's (Traditional and Simplified Chinese are
/// both `zh`), when some article is written in it.
pub fn answer_language(detected: &str) -> Option<&str> {
    (detected != "und").then_some(detected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(conf: f32, answer: Option<&str>) -> Hit {
        Hit {
            id: "a".into(),
            title: "T".into(),
            language: Some("en".into()),
            confidence: conf,
            score: 0.03,
            passage: "T\nthe passage".into(),
            chunk: 0,
            answer: answer.map(str::to_string),
            tags: vec![],
            steps: vec![],
            bm25_rank: Some(1),
            dense_rank: Some(1),
            bm25_share: Some(1.0),
            cosine: 0.9,
            features: Default::default(),
        }
    }

    #[test]
    fn answers_only_over_the_threshold() {
        assert!(pick("d", &[hit(0.5, Some("x"))], 0.6).is_none());
        assert!(pick("d", &[], 0.1).is_none());
        assert_eq!(pick("d", &[hit(0.7, Some("x"))], 0.6).unwrap().text, "x");
        assert_eq!(
            pick("d", &[hit(0.7, None)], 0.6).unwrap().text,
            "the passage"
        );
    }
}
