//! Webhook receivers and delivery (`[webhooks]`). A plain serde type with its defaults and checks;
//! it imports nothing of the project, so `config` can aggregate it without depending on the
//! feature.

use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Where decisions that leave the bot (or change) are POSTed. Empty: no webhooks.
    pub urls: Vec<String>,
    /// HMAC-SHA256 key for the `X-Triage-Signature` header; `TRIAGE_WEBHOOK_SECRET` wins.
    #[serde(skip_serializing)]
    pub secret: Option<String>,
    /// Attempts before a delivery is given up (kept in the outbox as dead).
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt up to `max_backoff_secs`.
    pub initial_backoff_ms: u64,
    pub max_backoff_secs: u64,
    /// Per-attempt timeout.
    pub timeout_secs: u64,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("urls", &self.urls)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff_ms", &self.initial_backoff_ms)
            .field("max_backoff_secs", &self.max_backoff_secs)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            urls: Vec::new(),
            secret: None,
            max_attempts: 20,
            initial_backoff_ms: 500,
            max_backoff_secs: 300,
            timeout_secs: 10,
        }
    }
}

impl WebhookConfig {
    /// The signing key: the environment's, else the config's.
    pub fn key(&self) -> Option<String> {
        std::env::var("TRIAGE_WEBHOOK_SECRET")
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| self.secret.clone().filter(|s| !s.is_empty()))
    }

    pub fn check(&self) -> Result<()> {
        for (i, u) in self.urls.iter().enumerate() {
            ensure!(
                (u.starts_with("http://") || u.starts_with("https://")) && u.len() <= 2048,
                "config: webhooks.urls[{i}] must be an http:// or https:// URL"
            );
        }
        ensure!(
            self.urls.is_empty() || self.key().is_some(),
            "config: webhooks.secret (or TRIAGE_WEBHOOK_SECRET) is required when webhooks.urls is set"
        );
        ensure!(
            self.max_attempts >= 1,
            "config: webhooks.max_attempts must be >= 1"
        );
        ensure!(
            (1..=300).contains(&self.timeout_secs),
            "config: webhooks.timeout_secs must be 1..=300"
        );
        ensure!(
            self.initial_backoff_ms >= 1 && self.max_backoff_secs >= 1,
            "config: webhooks backoff values must be > 0"
        );
        Ok(())
    }

    /// Delay before attempt `attempts + 1` (after `attempts` failures), without jitter.
    pub fn backoff_ms(&self, attempts: u32) -> u64 {
        let exp = self
            .initial_backoff_ms
            .saturating_mul(1u64 << attempts.saturating_sub(1).min(30));
        exp.min(self.max_backoff_secs * 1000)
    }
}
