//! Webhooks to the handoff core: configuration, signing, and the delivery worker over the
//! store's durable outbox.

pub mod config;
pub mod sign;
pub mod worker;

pub use config::WebhookConfig;
