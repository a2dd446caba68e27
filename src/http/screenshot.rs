//! `POST /v1/screenshot` (multipart `image` + optional `text`, `language`; or a raw image body
//! with `?text=&language=`), and the fault catalog: `GET /v1/faults`, `POST /v1/faults/reload`.

use super::AppState;
use crate::error::{AppError, AppResult};
use crate::http::error::ErrorBody;
use crate::http::openapi::{BadInput, Guarded};
use crate::vision::{self, Analysis};
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RawQuery {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
}

fn body_error(e: impl std::fmt::Display, status: StatusCode, state: &AppState) -> AppError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        let max = state.config.screenshot.max_bytes;
        AppError::too_large(
            "image",
            format!("the upload is over the limit of {max} bytes (screenshot.max_bytes)"),
        )
    } else {
        AppError::bad_request("body", format!("cannot read the upload: {e}"))
    }
}

#[utoipa::path(
    post, path = "/v1/screenshot", tag = "screenshots", security(("bearer" = [])),
    params(RawQuery),
    request_body(description = "multipart/form-data with `image` (and optional `text`, `language`), or the image itself as the body with `?text=&language=`",
        content((ScreenshotForm = "multipart/form-data"), ("image/png"), ("image/jpeg"), ("image/webp"), ("image/gif"), ("image/bmp"), ("application/octet-stream"))),
    responses((status = 200, description = "OCR, the matched fault and its solution", body = Analysis),
        (status = 415, description = "Neither multipart nor an image", body = ErrorBody), BadInput, Guarded)
)]
pub async fn screenshot(
    State(state): State<Arc<AppState>>,
    req: Request,
) -> AppResult<Json<Analysis>> {
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (image, text, language) = if ctype.starts_with("multipart/form-data") {
        let mp = Multipart::from_request(req, &state)
            .await
            .map_err(|e| body_error(&e, e.status(), &state))?;
        read_multipart(mp, &state).await?
    } else if ctype.starts_with("image/") || ctype == "application/octet-stream" {
        let q: Query<RawQuery> = Query::try_from_uri(req.uri())
            .map_err(|e| AppError::bad_request("query", e.body_text()))?;
        let b = Bytes::from_request(req, &state)
            .await
            .map_err(|e| body_error(&e, e.status(), &state))?;
        (b.to_vec(), q.0.text, q.0.language)
    } else {
        return Err(AppError::Invalid {
            kind: crate::error::InvalidKind::UnsupportedMedia,
            field: "content-type".into(),
            message: "send multipart/form-data with an `image` field, or the image itself as image/png, image/jpeg, image/webp, image/gif or image/bmp".into(),
        });
    };
    if let Some(t) = &text {
        super::embed::check_text(t, &state, "text")?;
    }
    if let Some(l) = &language {
        if l.is_empty()
            || l.len() > 16
            || !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(AppError::invalid(
                "language",
                "must be a language code like `en` or `zh-CN`",
            ));
        }
    }
    let v = state.vision()?;
    Ok(Json(vision::analyze(&v, image, text, language).await?))
}

/// The multipart form of `POST /v1/screenshot` (documentation only: `read_multipart` reads it).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ScreenshotForm {
    /// The image: PNG, JPEG, WebP, GIF or BMP.
    #[schema(value_type = String, format = Binary)]
    pub image: Vec<u8>,
    /// The customer's message with it, if any.
    pub text: Option<String>,
    /// The message's language code (`en`, `zh-CN`), if known.
    pub language: Option<String>,
}

async fn read_multipart(
    mut mp: Multipart,
    state: &AppState,
) -> AppResult<(Vec<u8>, Option<String>, Option<String>)> {
    let (mut image, mut text, mut language) = (None, None, None);
    loop {
        let field = mp
            .next_field()
            .await
            .map_err(|e| body_error(&e, e.status(), state))?;
        let Some(field) = field else { break };
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "image" | "text" | "language" => {}
            other => {
                return Err(AppError::bad_request(
                    other.chars().take(64).collect::<String>(),
                    "unknown field: send `image`, and optionally `text` and `language`",
                ))
            }
        }
        let data = field
            .bytes()
            .await
            .map_err(|e| body_error(&e, e.status(), state))?;
        let as_text = |d: &Bytes, f: &str| {
            String::from_utf8(d.to_vec()).map_err(|_| AppError::bad_request(f, "not valid UTF-8"))
        };
        match name.as_str() {
            "image" => image = Some(data.to_vec()),
            "text" => text = Some(as_text(&data, "text")?),
            _ => language = Some(as_text(&data, "language")?),
        }
    }
    let image = image.ok_or_else(|| AppError::invalid("image", "the `image` field is missing"))?;
    Ok((image, text, language))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FaultInfo {
    pub id: String,
    pub title_en: String,
    pub title_zh: String,
    pub route_hint: &'static str,
    pub codes: usize,
    pub examples: usize,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Faults {
    pub origin: String,
    pub faults: Vec<FaultInfo>,
}

fn faults_of(l: &vision::Loaded) -> Faults {
    Faults {
        origin: l.catalog.origin.clone(),
        faults: l
            .catalog
            .faults
            .iter()
            .map(|f| FaultInfo {
                id: f.spec.id.clone(),
                title_en: f.spec.title_en.clone(),
                title_zh: f.spec.title_zh.clone(),
                route_hint: f.spec.route_hint.as_str(),
                codes: f.codes.len(),
                examples: f.spec.examples.len(),
            })
            .collect(),
    }
}

#[utoipa::path(
    get, path = "/v1/faults", tag = "screenshots", security(("bearer" = [])),
    responses((status = 200, description = "The fault catalog", body = Faults), Guarded)
)]
pub async fn faults(State(state): State<Arc<AppState>>) -> AppResult<Json<Faults>> {
    Ok(Json(faults_of(&state.vision()?.current())))
}

/// Re-read the catalog file without a restart; a malformed file is a 422 naming the line and
/// the running catalog stays.
#[utoipa::path(
    post, path = "/v1/faults/reload", tag = "screenshots", security(("bearer" = [])),
    responses((status = 200, description = "The catalog, re-read", body = Faults),
        (status = 422, description = "The catalog file is malformed (the running one stays)", body = ErrorBody), Guarded)
)]
pub async fn reload(State(state): State<Arc<AppState>>) -> AppResult<Json<Faults>> {
    let v = state.vision()?;
    let l = tokio::task::spawn_blocking(move || v.reload())
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("reload task: {e}")))?
        .map_err(|e| AppError::invalid("catalog", format!("{e:#}")))?;
    Ok(Json(faults_of(&l)))
}
