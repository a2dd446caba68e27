//! JSON body extractor whose every rejection is an `AppError` naming the field at fault.

use super::AppState;
use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Like `axum::Json`, but: size, UTF-8, syntax and type errors all become 4xx JSON errors that
/// name the field (`texts[3]`, `model`, `body`). Content-Type is not required.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let max = state.config.limits.max_body_bytes;
        let bytes = read_body(req, state, || {
            format!("request body is over {max} bytes (limits.max_body_bytes)")
        })
        .await?;
        parse(&bytes).map(JsonBody)
    }
}

/// The whole request body; over the route's body limit it is 413 naming `body` with
/// `too_large`'s message, any other failure 400 naming `body`.
pub async fn read_body(
    req: Request,
    state: &Arc<AppState>,
    too_large: impl FnOnce() -> String,
) -> Result<Bytes, AppError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            AppError::too_large("body", too_large())
        } else {
            AppError::bad_request("body", format!("cannot read the request body: {e}"))
        }
    })
}

/// Parse a JSON document, naming the field of the first error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::bad_request(
            "body",
            "request body is empty: expected a JSON object",
        ));
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(AppError::bad_request(
            "body",
            format!(
                "request body is not valid UTF-8 (at byte {})",
                e.valid_up_to()
            ),
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        use serde_json::error::Category;
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                AppError::bad_request("body", format!("invalid JSON: {msg}"))
            }
            Category::Data => {
                let field = match named_field(&msg) {
                    Some(f) if path == "." => f,
                    // An unknown field is already the last step of the path.
                    Some(f) if !path.ends_with(&f) => format!("{path}.{f}"),
                    _ if path == "." => "body".into(),
                    _ => path,
                };
                AppError::bad_request(field, msg)
            }
        }
    })
}

/// `missing field `x``, `unknown field `x``: the field is in the message, not the path.
fn named_field(msg: &str) -> Option<String> {
    for p in ["missing field `", "unknown field `"] {
        if let Some(rest) = msg.strip_prefix(p) {
            return rest.split('`').next().map(String::from);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[allow(dead_code)]
    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct R {
        texts: Vec<String>,
        model: Option<String>,
    }

    fn field(b: &[u8]) -> String {
        match parse::<R>(b) {
            Err(AppError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_fields() {
        assert_eq!(field(br#"{"texts": ["a", 3]}"#), "texts[1]");
        assert_eq!(field(br#"{"model": "x"}"#), "texts");
        assert_eq!(field(br#"{"texts": [], "modle": 1}"#), "modle");
        assert_eq!(field(br#"{"texts": ["a"], "model": 5}"#), "model");
        assert_eq!(field(b"{\"texts\": [\"\xff\"]}"), "body");
        assert_eq!(field(br#"{"texts": ["#), "body");
        assert_eq!(field(b""), "body");
        assert_eq!(field(b"[]"), "body");
    }
}
