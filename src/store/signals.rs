//! The signals stored with each turn, typed: what triage answered (language, intent, emotion, an
//! attached screenshot), written as JSON with a schema version and read back by field, so a
//! renamed field is a compile error instead of a null.
//!
//! Reading is tolerant. A row written before versioning (no `schema` key) is version 1, whose
//! field names are these. Keys this binary does not know (a newer version's) are ignored. A row
//! that does not parse is logged and read as empty signals (`StoredSignals::default()`), so one
//! bad row never fails a request.
//!
//! The API's JSON is what it was when signals were an untyped `serde_json::Value`: fields are
//! declared in alphabetical order (the order a `Value` map serialises in), scores are the `f32`
//! answers widened to `f64` (as a `Value` held them), and `schema` stays out of it.

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;

/// The version `StoredSignals::to_row` writes. Bump it (and keep reading the older shapes) when
/// the stored fields change meaning or a field is renamed or removed.
pub const SCHEMA: u32 = 1;

/// A turn's signals. A triaged customer turn has `language` and `intent`; `emotion` when an
/// emotion head is served and `screenshot` when one was attached. Replies have none.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
pub struct StoredSignals {
    /// The version the row was written with (1 for rows from before versioning).
    #[serde(default = "version_1")]
    #[schema(ignore)]
    pub schema: u32,
    pub emotion: Option<Emotion>,
    pub intent: Option<Intent>,
    pub language: Option<Language>,
    pub screenshot: Option<Screenshot>,
}

/// The detected language, and the customer's own when the request named one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = StoredLanguage)]
pub struct Language {
    pub customer_language: Option<String>,
    pub language: String,
    pub score: f64,
}

/// The intent answer, with the set that answered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = StoredIntent)]
pub struct Intent {
    pub intent_set: String,
    pub label: String,
    pub out_of_scope: bool,
    pub score: f64,
    pub top: Vec<Scored>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = StoredScore)]
pub struct Scored {
    pub label: String,
    pub score: f64,
}

/// The emotion answer, with the abuse and escalation heads' signals when they are served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = StoredEmotion)]
pub struct Emotion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abusive: Option<Abusive>,
    pub emotions: BTreeMap<String, f64>,
    pub escalate: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<f64>,
    pub groups: BTreeMap<String, f64>,
    pub labels: Vec<String>,
    pub reasons: Vec<String>,
    pub top_group: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = StoredAbusive)]
pub struct Abusive {
    pub detected: bool,
    pub score: f64,
}

/// What the turn's screenshot showed: the recognised fault, its route hint, the error codes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = StoredScreenshot)]
pub struct Screenshot {
    pub error_codes: Vec<CodeHit>,
    pub fault: Option<String>,
    pub route_hint: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = StoredCodeHit)]
pub struct CodeHit {
    pub fault: String,
    pub text: String,
}

fn version_1() -> u32 {
    1
}

impl Default for StoredSignals {
    /// No signals (a reply), at the current schema.
    fn default() -> Self {
        StoredSignals {
            schema: SCHEMA,
            emotion: None,
            intent: None,
            language: None,
            screenshot: None,
        }
    }
}

impl StoredSignals {
    fn is_empty(&self) -> bool {
        self.emotion.is_none()
            && self.intent.is_none()
            && self.language.is_none()
            && self.screenshot.is_none()
    }

    /// The stored JSON: the API's form with `"schema": SCHEMA`.
    pub fn to_row(&self) -> String {
        // Plain data: turning it into a `Value` cannot fail.
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Value::Object(m) = &mut v {
            m.insert("schema".into(), SCHEMA.into());
        }
        v.to_string()
    }

    /// Read a stored row; one that does not parse is logged (naming the turn) and read as
    /// empty signals.
    pub fn from_row(raw: &str, conversation: &str, turn: u32) -> StoredSignals {
        serde_json::from_str(raw).unwrap_or_else(|e| {
            tracing::warn!(conversation, turn, error = %e, "stored signals unreadable; read as none");
            StoredSignals::default()
        })
    }
}

impl Serialize for StoredSignals {
    /// A reply's signals are `{}`; a triaged turn's name all four, null when absent.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.is_empty() {
            return s.serialize_map(Some(0))?.end();
        }
        let mut m = s.serialize_struct("StoredSignals", 4)?;
        m.serialize_field("emotion", &self.emotion)?;
        m.serialize_field("intent", &self.intent)?;
        m.serialize_field("language", &self.language)?;
        m.serialize_field("screenshot", &self.screenshot)?;
        m.end()
    }
}
