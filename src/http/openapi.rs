//! The OpenAPI 3.1 document of the HTTP API, generated (utoipa) from the request and response
//! types and each handler's `#[utoipa::path]`; served at `GET /openapi.json`, browsable at `GET /docs`.

use super::error::ErrorBody;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{IntoResponses, Modify, OpenApi};

/// The whole document: every route of `http::router` is listed in `paths` (a test holds it so).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "triage",
        description = "On-premise inference server for customer-service triage: signals, \
                       routing, conversations, live events, screenshots, intents and batch \
                       summaries. Routes other than /health, /ready, /openapi.json and /docs \
                       need `Authorization: Bearer <key>` once API keys are configured."
    ),
    paths(
        super::meta::health,
        super::meta::ready,
        super::meta::metrics,
        super::meta::models,
        json,
        docs,
        super::console,
        super::embed::embed,
        super::signals::intent,
        super::signals::emotion,
        super::signals::language,
        super::triage::triage,
        super::translate::translate,
        super::summarize::summarize,
        super::conversations::queues,
        super::conversations::list,
        super::conversations::get_one,
        super::conversations::resolve,
        super::conversations::reply,
        super::conversations::handoff,
        super::events::conversation,
        super::events::all,
        super::screenshot::screenshot,
        super::screenshot::faults,
        super::screenshot::reload,
        super::intents::list,
        super::intents::put,
        super::intents::get_one,
        super::intents::delete,
        super::intents::discover,
        super::intents::purge,
        super::intents::accept,
        super::batch::submit,
        super::batch::status,
        super::batch::result,
        super::batch::rejects,
        super::kb::list,
        super::kb::get_article,
        super::kb::put_article,
        super::kb::delete_article,
        super::kb::import,
        super::kb::search,
        super::kb::answer,
        super::assist::assist,
        super::assist::feedback,
        super::qa::conversation,
        super::qa::report,
        super::qa::agent,
        super::qa::page,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Bearer),
    tags(
        (name = "meta", description = "Health, readiness, metrics, the models, this document and the pages."),
        (name = "signals", description = "Embeddings, intents, emotions and languages of texts (scope `inference`)."),
        (name = "triage", description = "One customer message through the triage pipeline, stored (scope `inference`)."),
        (name = "generation", description = "Translation and summaries with seq2seq models (scope `inference`)."),
        (name = "conversations", description = "Stored conversations, replies, handoff packages and queues (scope `inference`)."),
        (name = "events", description = "Live triage events as Server-Sent Events (scope `inference`)."),
        (name = "screenshots", description = "Screenshot analysis and the fault catalog."),
        (name = "intents", description = "Few-shot intents and the discovery of new ones (writes need scope `admin`)."),
        (name = "batch", description = "Resumable batch summary jobs over JSON lines (scope `admin`)."),
        (name = "knowledge base", description = "Articles, hybrid search and bot answers (writes need scope `admin`)."),
        (name = "qa", description = "Quality inspection of agent replies: conversation scorecards, reports by agent and period (JSON or CSV), the report page (scope `inference`)."),
    )
)]
pub struct ApiDoc;

/// Adds the `bearer` security scheme (API keys, `auth.keys` in the config).
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// `GET /openapi.json`.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
pub async fn json() -> impl IntoResponse {
    static TEXT: OnceLock<String> = OnceLock::new();
    let text = TEXT.get_or_init(|| document().to_json().unwrap_or_else(|_| "{}".into()));
    ([(header::CONTENT_TYPE, "application/json")], text.as_str())
}

/// `GET /docs`: the document as a page (self-contained: no CDN, the server may be air-gapped).
#[utoipa::path(get, path = "/docs", tag = "meta",
    responses((status = 200, description = "The API documentation page", content_type = "text/html", body = String)))]
pub async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}

/// Error answers as documented responses, each with the [`ErrorBody`] schema.
fn errors(list: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(code, what)| {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            let r = ResponseBuilder::new()
                .description(*what)
                .content("application/json", content)
                .build();
            (code.to_string(), RefOr::T(r))
        })
        .collect()
}

/// The errors any route behind the API key guard and the admission gate may answer.
pub struct Guarded;

impl IntoResponses for Guarded {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[
            ("401", "No API key, or an unknown one"),
            ("403", "The key lacks the route's scope"),
            (
                "429",
                "Rate limited, or too many requests in flight (see Retry-After)",
            ),
            (
                "503",
                "Not ready, queue wait exceeded, or shutting down (see Retry-After)",
            ),
            ("500", "Internal error (details in the server log)"),
        ])
    }
}

/// The errors of a route that reads a request body or query.
pub struct BadInput;

impl IntoResponses for BadInput {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[
            (
                "400",
                "Malformed request: not JSON, wrong types, unknown fields",
            ),
            (
                "408",
                "The body did not arrive in time (limits.body_timeout_secs)",
            ),
            ("413", "Over a size limit (limits.*)"),
            ("422", "A value is out of range or not acceptable"),
        ])
    }
}
