//! The knowledge-base endpoints: articles written one at a time (`PUT`/`DELETE
//! /v1/kb/articles/{id}`) or in bulk (`POST /v1/kb/import`: JSON, JSON lines, CSV or one
//! Markdown article), hybrid search (`POST /v1/kb/search`) and bot answers (`POST /v1/answer`).

use super::embed::check_text;
use super::json::{parse, read_body, JsonBody};
use super::AppState;
use crate::error::{AppError, AppResult};
use crate::http::openapi::{BadInput, Guarded};
use crate::kb::answer::{pick, BotAnswer};
use crate::kb::import::{self, Format};
use crate::kb::{check_id, check_kb_name, valid_tag, Article, Ask, Hit, KbInfo, Written};
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// `?kb=...&id=...`: only the names in `allowed`, each once.
fn query_params(raw: Option<String>, allowed: &[&str]) -> AppResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(AppError::bad_request(
                k.to_string(),
                format!("unknown query parameter; known: {}", allowed.join(", ")),
            ));
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(AppError::bad_request(k.to_string(), "given more than once"));
        }
    }
    Ok(out)
}

/// The knowledge base a request names (`?kb=`), else the default.
fn kb_param(state: &AppState, q: &BTreeMap<String, String>) -> AppResult<String> {
    let kb = q
        .get("kb")
        .cloned()
        .unwrap_or_else(|| state.config.kb.default_kb.clone());
    check_kb_name("kb", &kb)?;
    Ok(kb)
}

/// An import's body, up to `kb.max_import_bytes` (errors as `JsonBody`'s).
pub struct ImportBody(pub Bytes);

impl FromRequest<Arc<AppState>> for ImportBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let max = state.config.kb.max_import_bytes;
        let bytes = read_body(req, state, || {
            format!("the import is over {max} bytes (kb.max_import_bytes): split it")
        })
        .await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(AppError::bad_request("body", "the import is empty"));
        }
        Ok(ImportBody(bytes))
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct KbList {
    pub knowledge_bases: Vec<KbInfo>,
}

#[utoipa::path(
    get, path = "/v1/kb", tag = "knowledge base", security(("bearer" = [])),
    responses((status = 200, description = "The knowledge bases and their sizes", body = KbList), Guarded)
)]
pub async fn list(State(state): State<Arc<AppState>>) -> AppResult<Json<KbList>> {
    Ok(Json(KbList {
        knowledge_bases: state.kb()?.list(),
    }))
}

#[utoipa::path(
    get, path = "/v1/kb/articles/{id}", tag = "knowledge base", security(("bearer" = [])),
    params(("id" = String, Path), ("kb" = Option<String>, Query)),
    responses((status = 200, description = "The article", body = Article), BadInput, Guarded)
)]
pub async fn get_article(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> AppResult<Json<Article>> {
    let kb = kb_param(&state, &query_params(raw, &["kb"])?)?;
    check_id("id", &id)?;
    Ok(Json(state.kb()?.article(&kb, &id)?))
}

#[utoipa::path(
    put, path = "/v1/kb/articles/{id}", tag = "knowledge base", security(("bearer" = [])),
    params(("id" = String, Path), ("kb" = Option<String>, Query)),
    request_body = Article,
    responses((status = 200, description = "Stored and searchable", body = Written), BadInput, Guarded)
)]
pub async fn put_article(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    JsonBody(mut article): JsonBody<Article>,
) -> AppResult<Json<Written>> {
    let kb = kb_param(&state, &query_params(raw, &["kb"])?)?;
    check_id("id", &id)?;
    if article.id.is_empty() {
        article.id = id.clone();
    } else if article.id != id {
        return Err(AppError::invalid(
            "id",
            format!(
                "the body's id `{}` differs from the path's `{id}`",
                article.id
            ),
        ));
    }
    let article = article.checked("", &state.config.kb)?;
    let w = state
        .kb()?
        .put(&state.models, &kb, vec![article], "article")
        .await?;
    Ok(Json(w))
}

#[utoipa::path(
    delete, path = "/v1/kb/articles/{id}", tag = "knowledge base", security(("bearer" = [])),
    params(("id" = String, Path), ("kb" = Option<String>, Query)),
    responses((status = 204, description = "Deleted"), BadInput, Guarded)
)]
pub async fn delete_article(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> AppResult<StatusCode> {
    let kb = kb_param(&state, &query_params(raw, &["kb"])?)?;
    check_id("id", &id)?;
    state.kb()?.delete(&kb, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A JSON import: the articles, and the knowledge base (or `?kb=`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    #[serde(default)]
    pub kb: Option<String>,
    pub articles: Vec<Article>,
}

#[utoipa::path(
    post, path = "/v1/kb/import", tag = "knowledge base", security(("bearer" = [])),
    params(("kb" = Option<String>, Query), ("id" = Option<String>, Query, description = "A Markdown article's id")),
    request_body(content = ImportRequest, description = "application/json; or JSON lines (application/x-ndjson), CSV (text/csv) or one Markdown article (text/markdown)"),
    responses((status = 200, description = "All stored and searchable (or none)", body = Written), BadInput, Guarded)
)]
pub async fn import(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    ImportBody(body): ImportBody,
) -> AppResult<Json<Written>> {
    let q = query_params(raw, &["kb", "id"])?;
    let cfg = &state.config.kb;
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let format = match ctype.as_str() {
        "application/json" | "" => None,
        "application/x-ndjson" | "application/jsonl" | "application/x-jsonlines" => {
            Some(Format::Jsonl)
        }
        "text/csv" => Some(Format::Csv),
        "text/markdown" => Some(Format::Markdown),
        other => {
            return Err(AppError::unsupported_media(
                "content-type",
                format!(
                "`{other}`: send application/json, application/x-ndjson, text/csv or text/markdown"
            ),
            ))
        }
    };
    let (kb, articles, field) = match format {
        None => {
            let req: ImportRequest = parse(&body)?;
            if req.kb.is_some() && q.contains_key("kb") {
                return Err(AppError::invalid(
                    "kb",
                    "given both in the body and as ?kb=",
                ));
            }
            let kb = match req.kb {
                Some(k) => {
                    check_kb_name("kb", &k)?;
                    k
                }
                None => kb_param(&state, &q)?,
            };
            let n = req.articles.len();
            if n > cfg.max_import_articles {
                return Err(AppError::too_large(
                    "articles",
                    format!(
                        "{n} articles; at most {} (kb.max_import_articles)",
                        cfg.max_import_articles
                    ),
                ));
            }
            let checked = req
                .articles
                .into_iter()
                .enumerate()
                .map(|(i, a)| a.checked(&format!("articles[{i}]."), cfg))
                .collect::<AppResult<Vec<_>>>()?;
            (kb, checked, "articles")
        }
        Some(f) => {
            let text = std::str::from_utf8(&body).map_err(|e| {
                AppError::bad_request(
                    "body",
                    format!("not valid UTF-8 (at byte {})", e.valid_up_to()),
                )
            })?;
            let name = q.get("id").cloned().unwrap_or_default();
            let kb = kb_param(&state, &q)?;
            (kb, import::parse(text, f, &name, cfg)?, "body")
        }
    };
    let w = state.kb()?.put(&state.models, &kb, articles, field).await?;
    Ok(Json(w))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub query: String,
    #[serde(default)]
    pub kb: Option<String>,
    #[serde(default)]
    pub top_k: Option<usize>,
    /// Only articles in this language (ISO 639-1).
    #[serde(default)]
    pub language: Option<String>,
    /// The question's intent (e.g. from `/v1/intents` or `/v1/triage`): articles tagged with it
    /// rank higher (`kb.intent_weight`).
    #[serde(default)]
    pub intent: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SearchResponse {
    pub kb: String,
    /// The intent the search preferred: the request's, else the default intent set's answer
    /// when in scope (null: none).
    pub intent: Option<String>,
    pub hits: Vec<Hit>,
}

/// An intent label without control characters. The intent prefers the articles tagged with it,
/// so it must be a possible tag.
fn check_intent(intent: &Option<String>) -> AppResult<()> {
    match intent {
        Some(i) if !valid_tag(i) || i.chars().any(char::is_control) => Err(AppError::invalid(
            "intent",
            "an intent label of 1-64 bytes, as article tags are",
        )),
        _ => Ok(()),
    }
}

fn check_query(state: &AppState, field: &str, q: &str) -> AppResult<()> {
    check_text(q, state, field)?;
    let max = state.config.kb.max_query_chars;
    if q.chars().count() > max {
        return Err(AppError::too_large(
            field,
            format!("over {max} characters (kb.max_query_chars)"),
        ));
    }
    Ok(())
}

fn check_language(l: &Option<String>) -> AppResult<()> {
    match l {
        Some(l) if !(l.len() == 2 && l.chars().all(|c| c.is_ascii_lowercase())) => Err(
            AppError::invalid("language", "an ISO 639-1 code (two lowercase letters)"),
        ),
        _ => Ok(()),
    }
}

#[utoipa::path(
    post, path = "/v1/kb/search", tag = "knowledge base", security(("bearer" = [])),
    request_body = SearchRequest,
    responses((status = 200, description = "The best articles, best first", body = SearchResponse), BadInput, Guarded)
)]
pub async fn search(
    State(state): State<Arc<AppState>>,
    JsonBody(req): JsonBody<SearchRequest>,
) -> AppResult<Json<SearchResponse>> {
    let admitted = Instant::now();
    check_query(&state, "query", &req.query)?;
    check_language(&req.language)?;
    check_intent(&req.intent)?;
    let max = state.config.kb.max_top_k;
    let top_k = req.top_k.unwrap_or(5);
    if top_k == 0 || top_k > max {
        return Err(AppError::invalid(
            "top_k",
            format!("between 1 and {max} (kb.max_top_k)"),
        ));
    }
    let ask = Ask {
        query: &req.query,
        kb: req.kb.as_deref(),
        top_k,
        language: req.language.as_deref(),
        intent: req.intent.as_deref(),
        detected: None,
    };
    let (kb, hits, intent) = state.kb()?.search(&state.models, ask, admitted).await?;
    Ok(Json(SearchResponse { kb, intent, hits }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    /// The customer's question.
    pub text: String,
    #[serde(default)]
    pub kb: Option<String>,
    /// Answer from articles in this language (default: the question's detected language).
    #[serde(default)]
    pub language: Option<String>,
    /// The question's intent, when known: articles tagged with it rank higher.
    #[serde(default)]
    pub intent: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AnswerResponse {
    /// The reply and its citation, or null when no article is confident enough.
    pub answer: Option<BotAnswer>,
    /// The confidence a reply in this language needs (`kb.answer_thresholds`).
    pub threshold: f32,
    /// The intent the search preferred (as in `/v1/kb/search`).
    pub intent: Option<String>,
    /// The best hits considered (at most 3).
    pub hits: Vec<Hit>,
}

#[utoipa::path(
    post, path = "/v1/answer", tag = "knowledge base", security(("bearer" = [])),
    request_body = AnswerRequest,
    responses((status = 200, description = "The bot's answer, or none", body = AnswerResponse), BadInput, Guarded)
)]
pub async fn answer(
    State(state): State<Arc<AppState>>,
    JsonBody(req): JsonBody<AnswerRequest>,
) -> AppResult<Json<AnswerResponse>> {
    let admitted = Instant::now();
    check_query(&state, "text", &req.text)?;
    check_language(&req.language)?;
    check_intent(&req.intent)?;
    // Detected once: the answer language's filter and threshold, and the search's weights.
    let detected = req
        .language
        .is_none()
        .then(|| state.lang.detect(&req.text).language);
    let language = req
        .language
        .clone()
        .or_else(|| detected.clone().filter(|l| l != "und"));
    let kb = state.kb()?;
    let ask = Ask {
        query: &req.text,
        kb: req.kb.as_deref(),
        top_k: 3,
        language: language.as_deref(),
        intent: req.intent.as_deref(),
        detected: detected.as_deref(),
    };
    let (name, hits, intent) = kb.search(&state.models, ask, admitted).await?;
    let threshold = state.config.kb.threshold(language.as_deref());
    Ok(Json(AnswerResponse {
        answer: pick(&name, &hits, threshold),
        threshold,
        intent,
        hits,
    }))
}
