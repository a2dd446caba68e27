//! Few-shot intents (intents defined by example utterances, matched by cosine similarity on the
//! shared encoder's embeddings, alone or extending a trained set) and unmatched-question
//! discovery (keep what no intent answered, cluster it, turn a cluster into an intent).

pub mod candidate;
pub mod classify;
pub mod cluster;
pub mod config;
pub mod discover;
pub mod files;
pub mod kept;
pub mod keyterms;
pub mod service;
pub mod shared;
#[cfg(test)]
mod shared_tests;
pub mod sim;
pub mod store;
pub mod unmatched;
pub mod validate;

pub use service::Intents;
