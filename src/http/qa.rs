//! Quality inspection over HTTP: a stored conversation against the scorecard
//! (`GET /v1/qa/conversations/{id}`), the reports by period (`GET /v1/qa/report`, one agent's
//! with `GET /v1/qa/agents/{agent_id}`) as JSON or CSV, and the report page (`/qa`).

use super::triage::check_conversation_id;
use super::AppState;
use crate::error::{AppError, AppResult};
use crate::http::admission::Admitted;
use crate::http::error::ErrorBody;
use crate::http::openapi::{BadInput, Guarded};
use crate::qa::conversation::{ConversationQa, Known};
use crate::qa::report::{self, AgentReport, Report};
use crate::qa::{period, Inspector, ReplyScores};
use crate::store::qa::QaQuery;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// The most inspected replies one report reads (`truncated` says when a period has more).
const REPORT_LIMIT: u32 = 200_000;
const DAY_MS: i64 = 86_400_000;

/// An agent id: 1-128 characters, no control characters.
pub fn check_agent_id(a: &str) -> AppResult<()> {
    let n = a.chars().count();
    if n == 0 || n > 128 || a.chars().any(char::is_control) || a.trim() != a {
        return Err(AppError::invalid(
            "agent_id",
            "must be 1-128 characters without control characters or surrounding spaces",
        ));
    }
    Ok(())
}

fn inspector(state: &AppState) -> AppResult<Arc<Inspector>> {
    state.qa.clone().ok_or_else(|| AppError::Unavailable {
        message: "quality inspection is off (`[qa] enabled = false`)".into(),
    })
}

fn task<T>(r: Result<AppResult<T>, tokio::task::JoinError>) -> AppResult<T> {
    r.map_err(|e| AppError::Internal(anyhow::anyhow!("qa task: {e}")))?
}

#[utoipa::path(
    get, path = "/v1/qa/conversations/{id}", tag = "qa", security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, description = "The conversation against the scorecard", body = ConversationQa),
        (status = 404, description = "No such conversation", body = ErrorBody), BadInput, Guarded)
)]
pub async fn conversation(
    State(state): State<Arc<AppState>>,
    Admitted(admitted): Admitted,
    Path(id): Path<String>,
) -> AppResult<Json<ConversationQa>> {
    check_conversation_id(&id)?;
    let qa = inspector(&state)?;
    let store = state.store()?;
    let cid = id.clone();
    let (info, turns, stored) = task(
        tokio::task::spawn_blocking(move || {
            let info = store.conversation(&cid)?;
            Ok((info, store.turns(&cid, None)?, store.qa_conversation(&cid)?))
        })
        .await,
    )?;
    // The models' scores as they were when each reply was posted.
    let scores: HashMap<u32, ReplyScores> = stored
        .iter()
        .map(|r| (r.turn, ReplyScores { abusive: r.abusive }))
        .collect();
    // Required items phrased in words no list holds: the encoder's similarity to the examples
    // (left out, with a note in the log, while the encoder cannot answer).
    let similar = match crate::qa::similar::required(&state.models, &qa, &turns, admitted).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "qa: no similarity for the required items");
            HashMap::new()
        }
    };
    let known = Known {
        scores,
        similar,
        resolved_turn: Some(info.resolved_turn),
    };
    Ok(Json(qa.conversation_scored(&id, &turns, &known)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// Start (inclusive): epoch milliseconds, a date (`2026-12-01`, midnight UTC) or an RFC
    /// 3339 date-time. Default: 30 days before `to`.
    #[serde(default)]
    pub from: Option<String>,
    /// End (exclusive; a bare date includes that whole day). Default: now.
    #[serde(default)]
    pub to: Option<String>,
    /// `json` (default) or `csv` (also chosen by `Accept: text/csv`).
    #[serde(default)]
    pub format: Option<String>,
}

struct Period {
    from_ms: i64,
    to_ms: i64,
    csv: bool,
}

fn period_of(
    q: Result<Query<PeriodQuery>, QueryRejection>,
    headers: &HeaderMap,
) -> AppResult<Period> {
    let Query(q) = q.map_err(|e| AppError::bad_request("query", e.body_text()))?;
    let to_ms = match &q.to {
        None => crate::store::now_ms() + 1,
        Some(s) => {
            let t = period::parse(s).map_err(|e| AppError::invalid("to", e))?;
            // A bare date means through the end of that day.
            match s.trim().len() == 10 && s.contains('-') {
                true => t + DAY_MS,
                false => t,
            }
        }
    };
    let from_ms = match &q.from {
        None => to_ms - 30 * DAY_MS,
        Some(s) => period::parse(s).map_err(|e| AppError::invalid("from", e))?,
    };
    if from_ms >= to_ms {
        return Err(AppError::invalid(
            "from",
            format!(
                "must be before `to` ({} is not before {})",
                period::rfc3339(from_ms),
                period::rfc3339(to_ms)
            ),
        ));
    }
    let accept_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    let csv = match q.format.as_deref() {
        None => accept_csv,
        Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(AppError::invalid("format", "one of json, csv")),
    };
    Ok(Period {
        from_ms,
        to_ms,
        csv,
    })
}

fn csv_response(body: String, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /v1/qa/report`: every agent's figures over a period.
#[utoipa::path(
    get, path = "/v1/qa/report", tag = "qa", security(("bearer" = [])),
    params(PeriodQuery),
    responses((status = 200, description = "Per agent: score distribution, top violations, response times, daily trend (CSV: one row per agent)", body = Report),
        BadInput, Guarded)
)]
pub async fn report(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<PeriodQuery>, QueryRejection>,
) -> AppResult<Response> {
    let p = period_of(q, &headers)?;
    inspector(&state)?;
    let store = state.store()?;
    let (from_ms, to_ms) = (p.from_ms, p.to_ms);
    let rows = task(
        tokio::task::spawn_blocking(move || {
            store.qa_records(&QaQuery {
                agent_id: None,
                from_ms,
                to_ms,
                limit: REPORT_LIMIT,
            })
        })
        .await,
    )?;
    let truncated = rows.len() as u32 >= REPORT_LIMIT;
    let r = report::report(&rows, from_ms, to_ms, truncated);
    Ok(match p.csv {
        true => csv_response(report::report_csv(&r), "qa-report"),
        false => Json(r).into_response(),
    })
}

/// `GET /v1/qa/agents/{agent_id}`: one agent's figures over a period.
#[utoipa::path(
    get, path = "/v1/qa/agents/{agent_id}", tag = "qa", security(("bearer" = [])),
    params(("agent_id" = String, Path, description = "The agent id replies were posted with"), PeriodQuery),
    responses((status = 200, description = "The agent's score distribution, top violations, response times and daily trend (CSV: one row per day)", body = AgentReport),
        (status = 404, description = "No inspected reply was ever posted by this agent", body = ErrorBody), BadInput, Guarded)
)]
pub async fn agent(
    State(state): State<Arc<AppState>>,
    Path(agent_id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<PeriodQuery>, QueryRejection>,
) -> AppResult<Response> {
    check_agent_id(&agent_id)?;
    let p = period_of(q, &headers)?;
    inspector(&state)?;
    let store = state.store()?;
    let (from_ms, to_ms, a) = (p.from_ms, p.to_ms, agent_id.clone());
    let rows = task(
        tokio::task::spawn_blocking(move || {
            if !store.qa_agent_known(&a)? {
                return Err(AppError::not_found(
                    "agent_id",
                    "no inspected reply was ever posted with this agent_id",
                ));
            }
            store.qa_records(&QaQuery {
                agent_id: Some(&a),
                from_ms,
                to_ms,
                limit: REPORT_LIMIT,
            })
        })
        .await,
    )?;
    let refs: Vec<_> = rows.iter().collect();
    let r = report::agent(Some(agent_id.clone()), &refs);
    Ok(match p.csv {
        true => csv_response(report::agent_csv(&r), "qa-agent"),
        false => Json(r).into_response(),
    })
}

/// The quality report page (plain HTML/JS: charts drawn as SVG from `/v1/qa/report`).
#[utoipa::path(get, path = "/qa", tag = "qa", security(("bearer" = [])),
    responses((status = 200, description = "The quality report page", content_type = "text/html", body = String),
        Guarded))]
pub async fn page() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("qa.html"))
}
