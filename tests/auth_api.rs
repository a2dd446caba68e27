//! API-key authentication through `app()`: open routes, 401 / 403 / 429, the /metrics flag,
//! the `TRIAGE_API_KEYS` format, `[auth]` validation and redacted Debug output.

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;
use triage::config::Config;
use triage::heads::registry::HeadRegistry;
use triage::http::auth::{Guard, KeyId};
use triage::keys::{self, ApiKeyConfig, AuthConfig, Scope};
use triage::metrics::Metrics;

const INFER: &str = "trg_inference-key-for-tests";
const ADMIN: &str = "trg_admin-key-for-tests";
const SLOW: &str = "trg_slow-key-for-tests";

fn key(id: &str, raw: &str, scopes: &[Scope]) -> ApiKeyConfig {
    ApiKeyConfig {
        id: id.into(),
        sha256: keys::hash_hex(raw),
        scopes: scopes.to_vec(),
        rate_per_sec: None,
        burst: None,
    }
}

fn config(metrics_public: bool) -> Config {
    let mut cfg = Config::default();
    cfg.auth.metrics_public = metrics_public;
    cfg.auth.keys = vec![
        key("web", INFER, &[Scope::Inference]),
        key("ops", ADMIN, &[Scope::Admin]),
        ApiKeyConfig {
            rate_per_sec: Some(0.5),
            burst: Some(2),
            ..key("slow", SLOW, &[Scope::Inference])
        },
    ];
    cfg.validate().unwrap();
    cfg
}

fn app_for(cfg: Config) -> axum::Router {
    let state = triage::AppState::new(cfg, Arc::new(Metrics::default()), HeadRegistry::default());
    triage::app(state)
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
) -> (StatusCode, serde_json::Value, HeaderMap) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from("{}")).unwrap())
        .await
        .unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json, headers)
}

fn is_auth_error(s: StatusCode) -> bool {
    s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN
}

#[tokio::test]
async fn health_and_ready_are_open() {
    let app = app_for(config(false));
    let (s, _, _) = call(&app, "GET", "/health", None).await;
    assert_eq!(s, StatusCode::OK);
    // Models are still loading: 503, but never 401.
    let (s, _, _) = call(&app, "GET", "/ready", None).await;
    assert!(!is_auth_error(s), "{s}");
}

#[tokio::test]
async fn missing_or_wrong_key_is_401_naming_authorization() {
    let app = app_for(config(true));
    for (key, uri) in [
        (None, "/v1/models"),
        (Some("trg_wrong"), "/v1/models"),
        (Some(""), "/v1/models"),
        (None, "/v1/batch/job1"),
        (None, "/no/such/path"),
    ] {
        let (s, j, h) = call(&app, "GET", uri, key).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{uri} {key:?}: {j}");
        assert_eq!(j["field"], "authorization", "{j}");
        assert_eq!(j["kind"], "unauthorized", "{j}");
        let www = h.get(header::WWW_AUTHENTICATE).unwrap().to_str().unwrap();
        assert!(www.starts_with("Bearer"), "{www}");
    }
    // Another scheme is refused too; the scheme name is case-insensitive.
    let req = |auth: String| {
        Request::get("/v1/models")
            .header("authorization", auth)
            .body(Body::empty())
            .unwrap()
    };
    let r = app
        .clone()
        .oneshot(req(format!("Basic {INFER}")))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .clone()
        .oneshot(req(format!("bearer {INFER}")))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn inference_key_on_admin_route_is_403_naming_the_scope() {
    let app = app_for(config(true));
    for (method, uri) in [
        ("PUT", "/v1/intents/gift_card"),
        ("DELETE", "/v1/intents/gift_card"),
        ("POST", "/v1/intents/discover"),
        ("DELETE", "/v1/intents/discover"),
        ("POST", "/v1/intents/discover/abc/accept"),
        ("POST", "/v1/faults/reload"),
        ("POST", "/v1/batch/summarize"),
        ("GET", "/v1/batch/job1"),
        ("GET", "/v1/batch/job1/result"),
    ] {
        let (s, j, _) = call(&app, method, uri, Some(INFER)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {uri}: {j}");
        assert_eq!(j["kind"], "forbidden");
        assert!(j["error"].as_str().unwrap().contains("`admin`"), "{j}");
        // The admin key passes authentication (the handler may still refuse the request).
        let (s, j, _) = call(&app, method, uri, Some(ADMIN)).await;
        assert!(!is_auth_error(s), "{method} {uri}: {s} {j}");
    }
}

#[tokio::test]
async fn right_key_is_let_through() {
    let app = app_for(config(true));
    let (s, j, _) = call(&app, "GET", "/v1/models", Some(INFER)).await;
    assert_eq!(s, StatusCode::OK, "{j}");
    assert!(j["models"].is_array());
    // Admin implies inference.
    let (s, _, _) = call(&app, "GET", "/v1/models", Some(ADMIN)).await;
    assert_eq!(s, StatusCode::OK);
    // Inference routes pass auth for an inference key (models are loading: 503 or 4xx).
    for (method, uri) in [
        ("POST", "/v1/embed"),
        ("POST", "/v1/triage"),
        ("GET", "/v1/intents"),
        ("GET", "/v1/intents/gift_card"),
        ("GET", "/v1/faults"),
        ("GET", "/v1/conversations"),
    ] {
        let (s, j, _) = call(&app, method, uri, Some(INFER)).await;
        assert!(!is_auth_error(s), "{method} {uri}: {s} {j}");
    }
    // A known key on an unknown path gets the usual 404.
    let (s, _, _) = call(&app, "GET", "/no/such/path", Some(INFER)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn wrong_method_needs_a_key_before_405() {
    let app = app_for(config(true));
    // Without a key, a wrong method on a real route looks like any other path: 401.
    for (method, uri) in [
        ("GET", "/v1/triage"),
        ("POST", "/v1/models"),
        ("PATCH", "/v1/intents/x"),
    ] {
        let (s, j, _) = call(&app, method, uri, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {uri}: {j}");
        let (s, j, _) = call(&app, method, uri, Some(INFER)).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}: {j}");
        assert_eq!(j["field"], "method", "{j}");
    }
    // One path, two scopes: reading an intent is inference, changing it is admin.
    let (s, j, _) = call(&app, "GET", "/v1/intents/gift_card", Some(INFER)).await;
    assert!(!is_auth_error(s), "{s} {j}");
    let (s, _, _) = call(&app, "DELETE", "/v1/intents/gift_card", Some(INFER)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn metrics_flag_both_ways() {
    let open = app_for(config(true));
    let (s, _, _) = call(&open, "GET", "/metrics", None).await;
    assert_eq!(s, StatusCode::OK);

    let closed = app_for(config(false));
    let (s, _, _) = call(&closed, "GET", "/metrics", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = call(&closed, "GET", "/metrics", Some(INFER)).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn rate_limit_gives_429_with_retry_after_after_the_burst() {
    let app = app_for(config(true));
    for _ in 0..2 {
        let (s, _, _) = call(&app, "GET", "/v1/models", Some(SLOW)).await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, j, h) = call(&app, "GET", "/v1/models", Some(SLOW)).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{j}");
    assert_eq!(j["field"], "rate", "{j}");
    assert_eq!(j["kind"], "rate_limited", "{j}");
    let retry: u64 = h[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    // Buckets are per key, and open routes are never limited.
    let (s, _, _) = call(&app, "GET", "/v1/models", Some(INFER)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = call(&app, "GET", "/health", Some(SLOW)).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn no_keys_means_auth_off() {
    let app = app_for(Config::default());
    let (s, _, _) = call(&app, "GET", "/v1/models", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = call(&app, "GET", "/v1/batch/job1", None).await;
    assert!(!is_auth_error(s), "{s}");
}

#[test]
fn guard_reports_the_key_id_never_the_key() {
    let cfg = config(true);
    let guard = Guard::new(&cfg.auth, &cfg.limits);
    let mut h = HeaderMap::new();
    h.insert(
        header::AUTHORIZATION,
        format!("Bearer {ADMIN}").parse().unwrap(),
    );
    let id = guard.check(Some(Scope::Admin), &h).unwrap();
    assert_eq!(id, Some(KeyId(Arc::from("ops"))));
    assert!(guard.check(None, &HeaderMap::new()).is_err());
}

#[test]
fn env_keys_parse() {
    let (a, b) = (keys::hash_hex("a"), keys::hash_hex("b"));
    let v = format!(
        " web:{a}:inference ;\nops:{}:inference,ADMIN:5:10;\n lim:{b}:admin::3;",
        b.to_uppercase()
    );
    let k = keys::parse_env(&v).unwrap();
    assert_eq!(k.len(), 3);
    assert_eq!(
        (k[0].id.as_str(), k[0].sha256.as_str()),
        ("web", a.as_str())
    );
    assert_eq!(k[0].scopes, vec![Scope::Inference]);
    assert_eq!((k[0].rate_per_sec, k[0].burst), (None, None));
    assert_eq!(k[1].sha256, b, "hex is lowercased");
    assert_eq!(k[1].scopes, vec![Scope::Inference, Scope::Admin]);
    assert_eq!((k[1].rate_per_sec, k[1].burst), (Some(5.0), Some(10)));
    assert_eq!((k[2].rate_per_sec, k[2].burst), (None, Some(3)));
    assert!(keys::parse_env("").unwrap().is_empty());

    let mut auth = AuthConfig::default();
    auth.merge_env(&format!("web:{a}:inference")).unwrap();
    auth.check().unwrap();
    assert!(auth.enabled());
}

#[test]
fn env_key_errors_are_clear_and_never_echo_the_secret() {
    let a = keys::hash_hex("a");
    let raw = "trg_0123456789abcdef-raw-key-pasted-by-mistake";
    for (value, expect) in [
        (format!("web:{raw}:inference"), "64 hex digits"),
        (format!("web:{a}"), "ID:SHA256:SCOPES"),
        (format!("web:{a}:root"), "unknown scope `root`"),
        (format!("w b:{a}:inference"), "key id"),
        (format!("web:{a}:inference:fast"), "RATE"),
        (format!("web:{a}:inference:1:0"), "burst"),
        (format!("web:{a}:inference:-1"), "rate_per_sec"),
    ] {
        let err = format!("{:#}", keys::parse_env(&value).unwrap_err());
        assert!(err.contains(expect), "{value}: {err}");
        assert!(!err.contains(raw) && !err.contains(&a), "{err}");
    }
    let mut auth = AuthConfig::default();
    let err = format!("{:#}", auth.merge_env("x:y").unwrap_err());
    assert!(err.contains(keys::ENV_VAR), "{err}");
}

#[test]
fn auth_config_validation_errors() {
    let a = keys::hash_hex("a");
    let err = |toml: String| {
        let r = Config::from_toml(&toml).and_then(|c| c.validate());
        format!("{:#}", r.unwrap_err())
    };
    let entry = |id: &str, hash: &str, scopes: &str| {
        format!("[[auth.keys]]\nid = \"{id}\"\nsha256 = \"{hash}\"\nscopes = {scopes}\n")
    };
    let e = err(entry("web", &a[..40], r#"["inference"]"#));
    assert!(
        e.contains("auth.keys[0]") && e.contains("64 hex digits"),
        "{e}"
    );
    let e = err(entry("web", &a, r#"["root"]"#));
    assert!(e.contains("root") && e.contains("inference"), "{e}");
    let e = err(entry("web", &a, "[]"));
    assert!(e.contains("scopes is empty"), "{e}");
    let e = err(entry("web", &a, r#"["admin"]"#) + &entry("web", &a, r#"["admin"]"#));
    assert!(e.contains("auth.keys[1]") && e.contains("twice"), "{e}");
    let e = err(entry("", &a, r#"["admin"]"#));
    assert!(e.contains("auth.keys[0].id"), "{e}");
    let e = err(format!(
        "{}rate_per_sec = -2.0\n",
        entry("web", &a, r#"["admin"]"#)
    ));
    assert!(e.contains("rate_per_sec"), "{e}");
    let e = err("[auth]\nrequired = true\n".into());
    assert!(e.contains("auth.required"), "{e}");
    let e = err("[limits]\nrate_burst = 0\n".into());
    assert!(e.contains("limits.rate_burst"), "{e}");
    let e = err("[auth]\nkeys = []\nmetrics_publik = true\n".into());
    assert!(e.contains("metrics_publik"), "{e}");

    let ok = Config::from_toml(&format!(
        "[auth]\nrequired = true\nmetrics_public = false\n{}rate_per_sec = 2.5\nburst = 4\n",
        entry("ops", &a, r#"["admin", "inference"]"#)
    ))
    .unwrap();
    ok.validate().unwrap();
    assert!(!ok.auth.metrics_public);
    assert_eq!(ok.auth.keys[0].burst, Some(4));
    assert!(ok.auth.keys[0].allows(Scope::Inference));
}

#[test]
fn debug_output_has_no_hash_or_key() {
    let cfg = config(true);
    let hash = keys::hash_hex(ADMIN);
    for text in [
        format!("{:?}", cfg.auth.keys[1]),
        format!("{cfg:?}"),
        format!("{cfg:#?}"),
    ] {
        assert!(!text.contains(&hash), "{text}");
        assert!(!text.contains(ADMIN), "{text}");
        assert!(!text.contains(&hash[..16]), "{text}");
    }
    let one = format!("{:?}", cfg.auth.keys[1]);
    assert!(one.contains("ops") && one.contains("Admin"), "{one}");
}
