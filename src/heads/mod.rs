//! Classification heads over the shared encoder's sentence embeddings: intents (softmax,
//! calibrated, out of scope) and emotions (multi-label sigmoid, support groups, escalation);
//! training and evaluation in Rust.

pub mod align;
pub mod calibrate;
pub mod config;
pub mod data;
pub mod embed_cache;
pub mod emotion;
pub mod finetune;
pub mod fit;
pub mod head;
pub mod metrics;
pub mod predict;
pub mod registry;
pub mod rng;
pub mod train;
