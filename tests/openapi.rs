//! The OpenAPI document against the real router: every route of `triage::http::router` (read from
//! the router's `Debug` output, axum 0.8) is documented with its methods, every documented
//! operation reaches a handler, and real answers match their documented schemas.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use triage::config::{Config, ModelConfig, Overlong};
use triage::engine::{EmbedModel, ModelInfo, Tokenize};
use triage::heads::registry::HeadRegistry;
use triage::http::Slot;
use triage::metrics::Metrics;
use triage::models::encoder::{Backend, Prepared};

/// Bytes as token ids.
struct ByteTok;

impl Tokenize for ByteTok {
    fn prepare(&self, text: &str, _: Overlong) -> anyhow::Result<Result<Prepared, usize>> {
        let mut ids = vec![0u32];
        ids.extend(text.bytes().take(14).map(u32::from));
        ids.push(2);
        let full_len = ids.len();
        Ok(Ok(Prepared { ids, full_len }))
    }
}

/// Embeds a sequence as [len, first id].
struct MockBackend;

impl Backend for MockBackend {
    fn embed(&mut self, batch: &[&[u32]]) -> anyhow::Result<Vec<Vec<f32>>> {
        Ok(batch
            .iter()
            .map(|s| vec![s.len() as f32, s.get(1).copied().unwrap_or(0) as f32])
            .collect())
    }
}

/// The state of a server with one mock model loaded, no store, no vision.
fn state() -> Arc<triage::AppState> {
    let mut cfg = Config {
        models: vec![ModelConfig {
            name: "mock".into(),
            source: "pack:mock".into(),
            prefix: String::new(),
            max_length: Some(16),
        }],
        default_model: "mock".into(),
        ..Config::default()
    };
    cfg.limits.max_texts = 8;
    cfg.validate().unwrap();
    let metrics = Arc::new(Metrics::default());
    let state = triage::AppState::new(cfg.clone(), metrics.clone(), HeadRegistry::default());
    let info = ModelInfo {
        name: "mock".into(),
        task: "embed".into(),
        source: "pack:mock".into(),
        dim: 2,
        device: "cpu".into(),
        dtype: "f32".into(),
        max_length: 16,
        prefix: String::new(),
    };
    let m = EmbedModel::start(
        info,
        Arc::new(ByteTok),
        Box::new(MockBackend),
        &cfg.engine(),
        metrics,
    )
    .unwrap();
    state.set_slot("mock", Slot::Ready(m));
    state
}

/// `(METHOD, path template)` of every route the router has, from its `Debug` output: in axum
/// 0.8 the path router prints `routes: {RouteId(n): MethodRouter(MethodRouter { get: Route,
/// head: None, .. allow_header: .. })}` and `node: Node { paths: {RouteId(n): "/path"} }`.
fn router_routes(app: &axum::Router) -> BTreeSet<(String, String)> {
    let debug = format!("{app:?}");
    // Only the path router: the fallback router after it holds no routes of ours.
    let paths_part = debug
        .split(", fallback_router:")
        .next()
        .expect("Router debug output");
    let path_re = regex::Regex::new(r#"RouteId\((\d+)\): "([^"]*)""#).unwrap();
    let paths: std::collections::HashMap<&str, &str> = path_re
        .captures_iter(paths_part)
        .map(|c| (c.get(1).unwrap().as_str(), c.get(2).unwrap().as_str()))
        .collect();
    let route_re =
        regex::Regex::new(r"RouteId\((\d+)\): (MethodRouter|Route)\((.*?)allow_header").unwrap();
    let method_re = regex::Regex::new(r"(\w+): (Route|BoxedHandler)\b").unwrap();
    let mut out = BTreeSet::new();
    for c in route_re.captures_iter(paths_part) {
        let (id, kind, fields) = (&c[1], &c[2], &c[3]);
        assert_eq!(
            kind, "MethodRouter",
            "route {id} is a bare service: {fields}"
        );
        let path = paths
            .get(id)
            .unwrap_or_else(|| panic!("no path for RouteId({id}) in {paths_part}"));
        for m in method_re.captures_iter(fields) {
            let method = &m[1];
            if method != "fallback" {
                out.insert((method.to_ascii_uppercase(), path.to_string()));
            }
        }
    }
    out
}

/// `(METHOD, path)` of every operation in the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in [
            "get", "put", "post", "delete", "patch", "head", "options", "trace",
        ] {
            if item.get(m).is_some() {
                out.insert((m.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    out
}

fn doc() -> Value {
    serde_json::to_value(triage::http::openapi::document()).unwrap()
}

#[tokio::test]
async fn every_route_of_the_router_is_documented() {
    let app = triage::http::router(state());
    let routes = router_routes(&app);
    assert!(
        routes.len() > 30,
        "only {} routes read from the router's Debug output (did axum change its format?): {routes:?}",
        routes.len()
    );
    eprintln!("{} routes in the router: {routes:?}", routes.len());
    assert!(routes.contains(&("POST".into(), "/v1/triage".into())));
    assert!(routes.contains(&("GET".into(), "/v1/batch/{job_id}".into())));
    let doc = doc();
    let documented = documented(&doc);
    let missing: Vec<_> = routes.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes without a #[utoipa::path] in http::openapi::ApiDoc: {missing:?}"
    );
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(
        extra.is_empty(),
        "documented operations the router lacks: {extra:?}"
    );
}

#[tokio::test]
async fn every_documented_operation_reaches_a_handler() {
    let app = triage::http::router(state());
    let doc = doc();
    for (method, path) in documented(&doc) {
        let uri = path
            .replace("{job_id}", "zz")
            .replace("{id}", "x")
            .replace("{name}", "x");
        let req = Request::builder()
            .method(method.as_str())
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(10), app.clone().oneshot(req))
            .await
            .unwrap_or_else(|_| panic!("{method} {uri}: no answer in 10 s"))
            .unwrap();
        let status = resp.status();
        if status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED {
            continue; // a handler answered (SSE streams are not read)
        }
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let j: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        // The router's own 404 / 405 name `path` / `method`; a handler's name its field.
        assert!(
            j["field"] != "path" && j["field"] != "method",
            "{method} {uri} (documented as {path}): the router answered {status} {j}"
        );
    }
}

#[test]
fn the_document_is_openapi_3_1_with_bearer_auth() {
    let doc = doc();
    let v = doc["openapi"].as_str().unwrap_or_default();
    assert!(v.starts_with("3.1."), "openapi: {v}");
    assert_eq!(doc["info"]["title"], "triage");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let err = &doc["components"]["schemas"]["ErrorBody"]["properties"];
    for f in ["error", "kind", "field"] {
        assert!(err.get(f).is_some(), "ErrorBody lacks {f}: {err}");
    }
    // Every operation has a tag, and every guarded one the bearer requirement.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (m, op) in item.as_object().unwrap() {
            assert!(op["tags"][0].is_string(), "{m} {path} has no tag");
            let open = ["/health", "/ready", "/openapi.json", "/docs"].contains(&path.as_str());
            let secured = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            assert_eq!(!open, secured, "{m} {path}: security {}", op["security"]);
        }
    }
    // Every $ref resolves.
    let text = doc.to_string();
    let re = regex::Regex::new(r##""\$ref":"#/components/schemas/([^"]+)""##).unwrap();
    for c in re.captures_iter(&text) {
        assert!(
            doc["components"]["schemas"].get(&c[1]).is_some(),
            "dangling $ref {}",
            &c[1]
        );
    }
}

/// Whether `v` matches `schema` (properties, required, types, $ref, allOf/oneOf/anyOf); the
/// first mismatch, with its JSON path.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap_or_default();
        return check(doc, &doc["components"]["schemas"][name], v, at);
    }
    if let Some(all) = schema["allOf"].as_array() {
        // Flattened parts: each part's own keys checked, unknown keys checked against the union.
        let mut props = serde_json::Map::new();
        for part in all {
            let part = resolve(doc, part);
            if let Some(p) = part["properties"].as_object() {
                props.extend(p.clone());
            }
            for req in part["required"].as_array().into_iter().flatten() {
                let k = req.as_str().unwrap_or_default();
                if v.get(k).is_none() {
                    return Err(format!("{at}: missing required `{k}`"));
                }
            }
        }
        return check_object(doc, &props, v, at);
    }
    if let Some(any) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        return match any.iter().any(|s| check(doc, s, v, at).is_ok()) {
            true => Ok(()),
            false => Err(format!("{at}: {v} matches none of {any:?}")),
        };
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Ok(()), // any value
    };
    let ok = types.iter().any(|t| match *t {
        "null" => v.is_null(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    });
    if !ok {
        return Err(format!("{at}: {v} is not {types:?}"));
    }
    if let Some(items) = v.as_array() {
        for (i, x) in items.iter().enumerate() {
            check(doc, &schema["items"], x, &format!("{at}[{i}]"))?;
        }
    }
    if v.is_object() {
        for req in schema["required"].as_array().into_iter().flatten() {
            let k = req.as_str().unwrap_or_default();
            if v.get(k).is_none() {
                return Err(format!("{at}: missing required `{k}`"));
            }
        }
        if let Some(props) = schema["properties"].as_object() {
            return check_object(doc, props, v, at);
        }
    }
    Ok(())
}

fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
    match s["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.rsplit('/').next().unwrap_or_default()],
        None => s,
    }
}

/// Every key of `v` is a documented property, and its value matches it.
fn check_object(
    doc: &Value,
    props: &serde_json::Map<String, Value>,
    v: &Value,
    at: &str,
) -> Result<(), String> {
    for (k, x) in v.as_object().into_iter().flatten() {
        let s = props
            .get(k)
            .ok_or_else(|| format!("{at}: undocumented key `{k}`"))?;
        check(doc, s, x, &format!("{at}.{k}"))?;
    }
    Ok(())
}

/// The documented schema of `method path`'s answer with `status`.
fn response_schema(doc: &Value, method: &str, path: &str, status: u16) -> Value {
    let r = &doc["paths"][path][method]["responses"][status.to_string()];
    let s = r["content"]["application/json"]["schema"].clone();
    assert!(
        !s.is_null(),
        "{method} {path} {status}: no JSON schema: {r}"
    );
    s
}

#[tokio::test]
async fn real_answers_match_their_documented_schemas() {
    let app = triage::http::router(state());
    let doc = doc();
    let cases: &[(&str, &str, &str, Value, u16)] = &[
        ("get", "/health", "/health", Value::Null, 200),
        ("get", "/ready", "/ready", Value::Null, 200),
        ("get", "/v1/models", "/v1/models", Value::Null, 200),
        ("get", "/v1/queues", "/v1/queues", Value::Null, 200),
        ("get", "/v1/intents", "/v1/intents", Value::Null, 200),
        (
            "post",
            "/v1/embed",
            "/v1/embed",
            json!({"texts": ["hello", "a longer text"]}),
            200,
        ),
        ("post", "/v1/embed", "/v1/embed", json!({"texts": []}), 422),
        (
            "post",
            "/v1/language",
            "/v1/language",
            json!({"texts": ["Where is my parcel?"]}),
            200,
        ),
        (
            "get",
            "/v1/batch/{job_id}",
            "/v1/batch/zz",
            Value::Null,
            404,
        ),
    ];
    for (method, path, uri, body, want) in cases {
        let req = Request::builder()
            .method(method.to_ascii_uppercase().as_str())
            .uri(*uri)
            .header("content-type", "application/json")
            .body(match body {
                Value::Null => Body::empty(),
                b => Body::from(b.to_string()),
            })
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let j: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!(status, *want, "{method} {uri}: {j}");
        let schema = response_schema(&doc, method, path, status);
        if let Err(e) = check(&doc, &schema, &j, "$") {
            panic!("{method} {uri} {status}: the answer does not match the document: {e}\nanswer: {j}\nschema: {schema}");
        }
    }
}

#[tokio::test]
async fn openapi_json_and_docs_are_served_without_a_key() {
    let mut cfg = Config::default();
    cfg.auth.keys = vec![triage::keys::ApiKeyConfig {
        id: "ops".into(),
        sha256: triage::keys::hash_hex("trg_admin-key-for-tests"),
        scopes: vec![triage::keys::Scope::Admin],
        rate_per_sec: None,
        burst: None,
    }];
    cfg.validate().unwrap();
    let app = triage::http::router(triage::AppState::new(
        cfg,
        Arc::new(Metrics::default()),
        HeadRegistry::default(),
    ));
    for (uri, ctype) in [
        ("/openapi.json", "application/json"),
        ("/docs", "text/html"),
    ] {
        let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{uri}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(ctype), "{uri}: {ct}");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        if uri == "/openapi.json" {
            let j: Value = serde_json::from_slice(&bytes).expect("/openapi.json is JSON");
            assert_eq!(j, doc());
        }
    }
    // Guarded routes still need the key.
    let req = Request::builder()
        .uri("/v1/queues")
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}
