//! API-key authentication middleware: `Authorization: Bearer <key>` checked against the stored
//! SHA-256 hashes in constant time, the scope each route needs, and a token bucket per key.

use crate::config::LimitsConfig;
use crate::error::AppError;
use crate::keys::{self, AuthConfig, Scope};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Instant;

/// The id of the key that authenticated a request (never the key), in its extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyId(pub Arc<str>);

/// A token bucket: `rate` tokens a second up to `burst`; a request takes one.
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Take a token, or the whole seconds until one is there.
    fn take(&mut self, now: Instant) -> Result<(), u64> {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - self.tokens) / self.rate).ceil() as u64).max(1))
        }
    }
}

struct Key {
    id: Arc<str>,
    hash: [u8; 32],
    scopes: Vec<Scope>,
    /// None: no rate limit for this key.
    bucket: Option<Mutex<Bucket>>,
}

/// The configured keys and their buckets (one per configured id: the map never grows).
pub struct Guard {
    keys: Vec<Key>,
    /// Any key configured (even one skipped as undecodable: auth then fails closed).
    enabled: bool,
    metrics_public: bool,
}

impl Guard {
    /// Keys from a validated config (a key whose hash does not decode is skipped).
    pub fn new(auth: &AuthConfig, limits: &LimitsConfig) -> Guard {
        let now = Instant::now();
        let keys = auth
            .keys
            .iter()
            .filter_map(|k| {
                let rate = k.rate_per_sec.unwrap_or(limits.rate_per_key_per_sec);
                let burst = f64::from(k.burst.unwrap_or(limits.rate_burst).max(1));
                let bucket = (rate > 0.0).then(|| {
                    Mutex::new(Bucket {
                        rate,
                        burst,
                        tokens: burst,
                        last: now,
                    })
                });
                Some(Key {
                    id: Arc::from(k.id.as_str()),
                    hash: k.hash()?,
                    scopes: k.scopes.clone(),
                    bucket,
                })
            })
            .collect();
        Guard {
            keys,
            enabled: auth.enabled(),
            metrics_public: auth.metrics_public,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The key whose hash matches `presented`: every stored hash is compared, in constant time.
    fn find(&self, presented: &str) -> Option<&Key> {
        let digest = keys::hash_key(presented);
        let mut found = None;
        for k in &self.keys {
            if keys::ct_eq(&digest, &k.hash) {
                found = Some(k);
            }
        }
        found
    }

    /// Admit a request to `route` (its template; None when no route matched): Ok(None) for an
    /// open route or with auth off, Ok(Some(id)) for an authenticated key.
    pub fn check(
        &self,
        method: &Method,
        route: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Option<KeyId>, AppError> {
        if !self.enabled() {
            return Ok(None);
        }
        let Some(need) = required_scope(method, route, self.metrics_public) else {
            return Ok(None);
        };
        let token = bearer(headers)?;
        let key = self.find(token).ok_or_else(|| AppError::Unauthorized {
            message: "invalid API key".into(),
        })?;
        if !(key.scopes.contains(&Scope::Admin) || key.scopes.contains(&need)) {
            return Err(AppError::Forbidden {
                scope: need.as_str(),
            });
        }
        if let Some(b) = &key.bucket {
            let mut b = b.lock();
            if let Err(retry_after) = b.take(Instant::now()) {
                tracing::debug!(key = %key.id, retry_after, "rate limited");
                return Err(AppError::RateLimited { retry_after });
            }
        }
        Ok(Some(KeyId(key.id.clone())))
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive), or 401.
fn bearer(headers: &HeaderMap) -> Result<&str, AppError> {
    let missing = || AppError::Unauthorized {
        message: "missing API key: send `Authorization: Bearer <key>`".into(),
    };
    let v = headers.get(header::AUTHORIZATION).ok_or_else(missing)?;
    let v = v.to_str().map_err(|_| AppError::Unauthorized {
        message: "invalid API key".into(),
    })?;
    match v.trim().split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(AppError::Unauthorized {
            message: "the authorization header must be `Bearer <key>`".into(),
        }),
    }
}

/// The scope a request needs; None for open routes. Unmatched paths need a key (any scope);
/// a route not listed here needs `admin` until it is classified.
pub fn required_scope(method: &Method, route: Option<&str>, metrics_public: bool) -> Option<Scope> {
    use Scope::{Admin, Inference};
    let Some(route) = route else {
        return Some(Inference);
    };
    Some(match route {
        "/health" | "/ready" | "/openapi.json" | "/docs" => return None,
        "/metrics" if metrics_public => return None,
        "/metrics" => Inference,
        r if r.starts_with("/v1/batch/") => Admin,
        "/v1/faults/reload" | "/v1/intents/discover" | "/v1/intents/discover/{id}/accept" => Admin,
        "/v1/intents/{name}" if method == Method::PUT || method == Method::DELETE => Admin,
        "/v1/intents" | "/v1/intents/{name}" => Inference,
        r if INFERENCE_ROUTES.contains(&r) => Inference,
        _ => Admin,
    })
}

/// Routes an `inference` key may use (every method the router gives them).
pub const INFERENCE_ROUTES: &[&str] = &[
    "/v1/models",
    "/v1/embed",
    "/v1/intent",
    "/v1/emotion",
    "/v1/language",
    "/v1/triage",
    "/v1/translate",
    "/v1/summarize",
    "/v1/screenshot",
    "/v1/faults",
    "/v1/queues",
    "/v1/conversations",
    "/v1/conversations/{id}",
    "/v1/conversations/{id}/resolve",
    "/v1/conversations/{id}/messages",
    "/v1/conversations/{id}/handoff",
    "/v1/conversations/{id}/events",
    "/v1/events",
    "/console",
];

/// The middleware: answer 401 / 403 / 429, or run the request with its [`KeyId`] attached.
pub async fn require(State(guard): State<Arc<Guard>>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    match guard.check(req.method(), route.as_deref(), req.headers()) {
        Ok(Some(id)) => {
            req.extensions_mut().insert(id);
            next.run(req).await
        }
        Ok(None) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket {
            rate: 2.0,
            burst: 2.0,
            tokens: 2.0,
            last: t0,
        };
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        assert_eq!(b.take(t0), Err(1));
        assert!(b.take(t0 + Duration::from_millis(500)).is_ok());
        // Never more than the burst after a long idle time.
        let later = t0 + Duration::from_secs(60);
        assert!(b.take(later).is_ok() && b.take(later).is_ok());
        assert!(b.take(later).is_err());
    }

    #[test]
    fn scopes_by_route() {
        let get = Method::GET;
        assert_eq!(required_scope(&get, Some("/health"), false), None);
        assert_eq!(required_scope(&get, Some("/metrics"), true), None);
        assert_eq!(
            required_scope(&get, Some("/metrics"), false),
            Some(Scope::Inference)
        );
        assert_eq!(required_scope(&get, None, true), Some(Scope::Inference));
        assert_eq!(
            required_scope(&get, Some("/v1/intents/{name}"), true),
            Some(Scope::Inference)
        );
        assert_eq!(
            required_scope(&Method::PUT, Some("/v1/intents/{name}"), true),
            Some(Scope::Admin)
        );
        assert_eq!(
            required_scope(&get, Some("/v1/batch/{job_id}"), true),
            Some(Scope::Admin)
        );
        assert_eq!(
            required_scope(&Method::POST, Some("/v1/new-thing"), true),
            Some(Scope::Admin)
        );
    }
}
