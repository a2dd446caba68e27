//! `/v1/intents`: few-shot intents (PUT, GET, DELETE by name; GET all by set) and
//! unmatched-question discovery (`POST /v1/intents/discover`, `.../discover/{id}/accept`).

use super::json::{parse, JsonBody};
use super::AppState;
use crate::error::{AppError, AppResult};
use crate::http::admission::Admitted;
use crate::http::error::ErrorBody;
use crate::http::openapi::{BadInput, Guarded};
use crate::intents::service::{conflict, encoder_of, set_names, unknown_set};
use crate::intents::store::{Embedded, Intent, Origin};
use crate::intents::validate::{check_description, check_examples, check_name};
use crate::intents::{discover, files::now_secs};
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutIntent {
    pub examples: Vec<String>,
    #[serde(default)]
    pub intent_set: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

impl PutIntent {
    /// The description and example checks (pure: the fuzz targets call it); the examples trimmed.
    pub fn check(&self, cfg: &crate::intents::config::FewShotConfig) -> AppResult<Vec<String>> {
        check_description(&self.description)?;
        check_examples("examples", &self.examples, cfg)
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IntentView {
    pub name: String,
    pub intent_set: String,
    pub description: Option<String>,
    pub examples: Vec<String>,
    pub origin: Origin,
    pub updated_at: u64,
    /// `ready`, or `pending` until embedded with the set's encoder (on first use).
    pub status: &'static str,
}

/// The sets for a lookup that calls no model (so its queue clock is never read).
fn lookup(state: &AppState) -> crate::intents::service::Sets<'_> {
    state.sets(std::time::Instant::now())
}

fn view_of(state: &AppState, i: &Intent) -> IntentView {
    let (enc, prefix) = encoder_of(lookup(state), &i.set);
    IntentView {
        name: i.name.clone(),
        intent_set: i.set.clone(),
        description: i.description.clone(),
        examples: i.examples.clone(),
        origin: i.origin,
        updated_at: i.updated_at,
        status: if i.ready_for(&enc, &prefix).is_some() {
            "ready"
        } else {
            "pending"
        },
    }
}

/// A path segment, or 400 naming `field`.
fn segment(p: Result<Path<String>, PathRejection>, field: &str) -> AppResult<String> {
    p.map(|Path(s)| s)
        .map_err(|e| AppError::bad_request(field, format!("invalid path segment: {e}")))
}

fn not_found(name: &str) -> AppError {
    AppError::not_found(
        "name",
        format!(
            "no few-shot intent `{}`",
            name.chars().take(100).collect::<String>()
        ),
    )
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> AppResult<T> + Send + 'static,
) -> AppResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("intent store task: {e}")))?
}

/// `PUT /v1/intents/{name}`: create (201) or replace (200), embedded at once.
#[utoipa::path(
    put, path = "/v1/intents/{name}", tag = "intents", security(("bearer" = [])),
    params(("name" = String, Path, description = "Intent name")),
    request_body = PutIntent,
    responses((status = 200, description = "Replaced", body = IntentView), (status = 201, description = "Created", body = IntentView),
        (status = 409, description = "A trained label, or defined in the intents file", body = ErrorBody), BadInput, Guarded)
)]
pub async fn put(
    State(state): State<Arc<AppState>>,
    Admitted(admitted): Admitted,
    name: Result<Path<String>, PathRejection>,
    JsonBody(req): JsonBody<PutIntent>,
) -> AppResult<(StatusCode, Json<IntentView>)> {
    let name = segment(name, "name")?;
    check_name("name", &name)?;
    let set = req
        .intent_set
        .clone()
        .unwrap_or_else(|| state.heads.default_intent.clone());
    check_name("intent_set", &set)?;
    if let Some(h) = state.heads.intents.get(&set) {
        if h.meta.labels.contains(&name) {
            return Err(conflict(
                "name",
                format!("`{name}` is already a trained label of set `{set}`"),
            ));
        }
    }
    let examples = req.check(&state.intents.fewshot)?;
    if state
        .intents
        .get(&name)
        .is_some_and(|i| i.origin == Origin::File)
    {
        return Err(conflict(
            "name",
            format!("`{name}` is defined in the intents file (fewshot.file): edit it there"),
        ));
    }
    let (enc, prefix) = encoder_of(lookup(&state), &set);
    let (_, xs, _) = state
        .models
        .encode(Some(&enc), examples.clone(), admitted)
        .await
        .map_err(|e| match e {
            AppError::Invalid {
                kind,
                field,
                message,
            } => AppError::Invalid {
                kind,
                field: field.replacen("texts", "examples", 1),
                message,
            },
            other => other,
        })?;
    let intent = Intent {
        name: name.clone(),
        set,
        description: req.description,
        examples,
        origin: Origin::Api,
        updated_at: now_secs(),
        embedded: Some(Arc::new(Embedded::new(&enc, &prefix, xs))),
    };
    let st = state.clone();
    let created = blocking(move || st.intents.install(intent, false)).await?;
    let made = state.intents.get(&name).ok_or_else(|| not_found(&name))?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(view_of(&state, &made))))
}

/// `GET /v1/intents/{name}`.
#[utoipa::path(
    get, path = "/v1/intents/{name}", tag = "intents", security(("bearer" = [])),
    params(("name" = String, Path, description = "Intent name")),
    responses((status = 200, description = "The few-shot intent", body = IntentView),
        (status = 404, description = "No such intent", body = ErrorBody), Guarded)
)]
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    name: Result<Path<String>, PathRejection>,
) -> AppResult<Json<IntentView>> {
    let name = segment(name, "name")?;
    let i = state.intents.get(&name).ok_or_else(|| not_found(&name))?;
    Ok(Json(view_of(&state, &i)))
}

/// `DELETE /v1/intents/{name}`.
#[utoipa::path(
    delete, path = "/v1/intents/{name}", tag = "intents", security(("bearer" = [])),
    params(("name" = String, Path, description = "Intent name")),
    responses((status = 200, description = "Deleted", body = Deleted),
        (status = 404, description = "No such intent", body = ErrorBody), (status = 409, description = "Defined in the intents file", body = ErrorBody), Guarded)
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    name: Result<Path<String>, PathRejection>,
) -> AppResult<Json<Deleted>> {
    let name = segment(name, "name")?;
    let st = state.clone();
    let n = name.clone();
    let gone = blocking(move || st.intents.delete(&n)).await?;
    Ok(Json(Deleted {
        deleted: name,
        intent_set: gone.set.clone(),
    }))
}

/// The answer of `DELETE /v1/intents/{name}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Deleted {
    /// The intent's name.
    pub deleted: String,
    pub intent_set: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SetSummary {
    pub name: String,
    pub trained: bool,
    pub encoder: String,
    /// Labels of the trained head (0 for a pure few-shot set).
    pub trained_labels: usize,
    pub intents: Vec<IntentView>,
}

/// `GET /v1/intents`: every set (trained, or named by a few-shot intent) with its few-shot intents.
#[utoipa::path(
    get, path = "/v1/intents", tag = "intents", security(("bearer" = [])),
    responses((status = 200, description = "Every intent set with its few-shot intents", body = IntentSets), Guarded)
)]
pub async fn list(State(state): State<Arc<AppState>>) -> Json<IntentSets> {
    let all = state.intents.all();
    let sets: Vec<SetSummary> = set_names(lookup(&state))
        .into_iter()
        .map(|set| {
            let head = state.heads.intents.get(&set);
            SetSummary {
                trained: head.is_some(),
                encoder: encoder_of(lookup(&state), &set).0,
                trained_labels: head.map_or(0, |h| h.meta.labels.len()),
                intents: all
                    .values()
                    .filter(|i| i.set == set)
                    .map(|i| view_of(&state, i))
                    .collect(),
                name: set,
            }
        })
        .collect();
    Json(IntentSets { intent_sets: sets })
}

/// The answer of `GET /v1/intents`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IntentSets {
    pub intent_sets: Vec<SetSummary>,
}

/// A JSON body that may be empty (then `T::default()`); errors as `JsonBody`'s.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<Arc<AppState>> for OptionalJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let bytes = super::json::read_body(req, state, || {
            "request body is over limits.max_body_bytes".into()
        })
        .await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        parse(&bytes).map(OptionalJson)
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverRequest {
    #[serde(default)]
    pub intent_set: Option<String>,
    #[serde(default)]
    pub min_size: Option<usize>,
    #[serde(default)]
    pub max_candidates: Option<usize>,
}

fn discovery_on(state: &AppState) -> AppResult<()> {
    if state.intents.discovery.enabled {
        Ok(())
    } else {
        Err(AppError::not_found(
            "discovery",
            "discovery is off: set discovery.enabled = true in the config (it keeps customer texts on disk)",
        ))
    }
}

/// `POST /v1/intents/discover`: cluster the set's unmatched texts into candidate intents.
#[utoipa::path(
    post, path = "/v1/intents/discover", tag = "intents", security(("bearer" = [])),
    request_body(content = Option<DiscoverRequest>, description = "Optional: an empty body uses the defaults"),
    responses((status = 200, description = "Candidate intents from the set's unmatched texts", body = crate::intents::discover::Discovered),
        (status = 404, description = "Discovery is off, or an unknown set", body = ErrorBody), BadInput, Guarded)
)]
pub async fn discover(
    State(state): State<Arc<AppState>>,
    OptionalJson(req): OptionalJson<DiscoverRequest>,
) -> AppResult<Json<discover::Discovered>> {
    discovery_on(&state)?;
    let cfg = &state.intents.discovery;
    let set = req
        .intent_set
        .unwrap_or_else(|| state.heads.default_intent.clone());
    let (st, s) = (state.clone(), set.clone());
    let kept = blocking(move || st.intents.unmatched_count(&s)).await?;
    if kept == 0 && !set_names(lookup(&state)).contains(&set) {
        return Err(unknown_set(lookup(&state), &set));
    }
    let min_size = req.min_size.unwrap_or(cfg.min_size);
    if min_size < 2 || min_size > cfg.max_items {
        return Err(AppError::invalid(
            "min_size",
            format!(
                "must be between 2 and {} (discovery.max_items)",
                cfg.max_items
            ),
        ));
    }
    let max_candidates = req.max_candidates.unwrap_or(cfg.max_candidates);
    if max_candidates == 0 || max_candidates > 1000 {
        return Err(AppError::invalid(
            "max_candidates",
            "must be between 1 and 1000",
        ));
    }
    let (encoder, prefix) = encoder_of(lookup(&state), &set);
    let mut taken: HashSet<String> = state.intents.all().into_keys().collect();
    if let Some(h) = state.heads.intents.get(&set) {
        taken.extend(h.meta.labels.iter().cloned());
    }
    let params = discover::Params {
        set,
        encoder,
        prefix,
        min_size,
        max_candidates,
        taken,
    };
    let st = state.clone();
    let out = blocking(move || st.intents.discover(params).map_err(AppError::Internal)).await?;
    Ok(Json(out))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    #[serde(default)]
    pub intent_set: Option<String>,
}

/// `DELETE /v1/intents/discover`: forget the kept unmatched texts of a set (all when none named).
#[utoipa::path(
    delete, path = "/v1/intents/discover", tag = "intents", security(("bearer" = [])),
    request_body(content = Option<PurgeRequest>, description = "Optional: an empty body purges every set"),
    responses((status = 200, description = "The unmatched texts are forgotten", body = Purged),
        (status = 404, description = "Discovery is off", body = ErrorBody), BadInput, Guarded)
)]
pub async fn purge(
    State(state): State<Arc<AppState>>,
    OptionalJson(req): OptionalJson<PurgeRequest>,
) -> AppResult<Json<Purged>> {
    discovery_on(&state)?;
    let st = state.clone();
    let set = req.intent_set.clone();
    let removed = blocking(move || st.intents.purge_unmatched(set.as_deref())).await?;
    Ok(Json(Purged {
        removed,
        intent_set: req.intent_set,
    }))
}

/// The answer of `DELETE /v1/intents/discover`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Purged {
    /// Unmatched texts forgotten.
    pub removed: usize,
    /// The set purged; null: every set.
    pub intent_set: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    #[serde(default)]
    pub name: Option<String>,
}

/// `POST /v1/intents/discover/{id}/accept`: the candidate becomes a few-shot intent (201).
#[utoipa::path(
    post, path = "/v1/intents/discover/{id}/accept", tag = "intents", security(("bearer" = [])),
    params(("id" = String, Path, description = "Candidate id from the last discovery")),
    request_body(content = Option<AcceptRequest>, description = "Optional: the intent's name (else the suggested one)"),
    responses((status = 201, description = "The candidate is a few-shot intent now", body = Accepted),
        (status = 404, description = "Discovery is off, or no such candidate", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody), BadInput, Guarded)
)]
pub async fn accept(
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    OptionalJson(req): OptionalJson<AcceptRequest>,
) -> AppResult<(StatusCode, Json<Accepted>)> {
    discovery_on(&state)?;
    let id = segment(id, "id")?;
    let st = state.clone();
    let (made, removed) = blocking(move || {
        let labels = |set: &str| {
            st.heads
                .intents
                .get(set)
                .map(|h| h.meta.labels.clone())
                .unwrap_or_default()
        };
        st.intents.accept(&id, req.name, &labels)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Accepted {
            intent: view_of(&state, &made),
            removed,
        }),
    ))
}

/// The answer of `POST /v1/intents/discover/{id}/accept`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub intent: IntentView,
    /// Unmatched texts taken out of the store (now the intent's examples).
    pub removed: usize,
}
