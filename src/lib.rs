//! triage: an on-premise inference server for customer-service triage (library root).

pub mod assist;
pub mod batch;
pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod fsutil;
/// Fuzz target bodies (`http::fuzzing`, at the top layer: they drive the request parsers): behind
/// the `fuzzing` feature (scripts/fuzz and `cargo test` turn it on).
#[cfg(feature = "fuzzing")]
pub use http::fuzzing;
pub mod handoff;
pub mod heads;
pub mod http;
pub mod intents;
pub mod jsonl;
pub mod kb;
pub mod keys;
pub mod lang;
pub mod metrics;
pub mod models;
pub mod pipeline;
pub mod qa;
pub mod routing;
pub mod seq2seq;
pub mod server;
pub mod state;
pub mod store;
pub mod summarize;
pub mod translate;
pub mod vision;
pub mod webhook;

pub use http::router as app;
pub use state::AppState;
