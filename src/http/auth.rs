//! API-key authentication: `Authorization: Bearer <key>` checked against the stored SHA-256
//! hashes in constant time, and a token bucket per key. The scope a route needs is not listed
//! here: `http::router` puts each route in the inference or the admin sub-router, and each
//! sub-router carries its scope's layer ([`require`]); the fallbacks ask for any valid key.

use crate::config::LimitsConfig;
use crate::error::AppError;
use crate::keys::{self, AuthConfig, Scope};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
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

    /// Admit a request that needs `need` (None: any valid key): Ok(None) with auth off,
    /// Ok(Some(id)) for an authenticated key; 401, 403 or 429 otherwise.
    pub fn check(
        &self,
        need: Option<Scope>,
        headers: &HeaderMap,
    ) -> Result<Option<KeyId>, AppError> {
        if !self.enabled() {
            return Ok(None);
        }
        let token = bearer(headers)?;
        let key = self.find(token).ok_or_else(|| AppError::Unauthorized {
            message: "invalid API key".into(),
        })?;
        if let Some(need) = need {
            if !(key.scopes.contains(&Scope::Admin) || key.scopes.contains(&need)) {
                return Err(AppError::Forbidden {
                    scope: need.as_str(),
                });
            }
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

/// The layer state of a sub-router: the guard and the scope its routes need.
pub type Scoped = (Arc<Guard>, Scope);

/// The middleware of a sub-router: answer 401 / 403 / 429, or run the request with its
/// [`KeyId`] attached.
pub async fn require(
    State((guard, need)): State<Scoped>,
    mut req: Request,
    next: Next,
) -> Response {
    match guard.check(Some(need), req.headers()) {
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
}
