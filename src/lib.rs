//! triage: an on-premise inference server for customer-service triage (library root).

pub mod config;
pub mod engine;
pub mod error;
pub mod heads;
pub mod http;
pub mod intents;
pub mod lang;
pub mod metrics;
pub mod models;
pub mod server;

pub use http::{router as app, AppState};
