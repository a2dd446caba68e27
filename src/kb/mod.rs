//! The knowledge base: articles in named knowledge bases, stored durably, searched by BM25 and
//! by the shared encoder's embeddings together, and the bot answers drawn from the best hit.

pub mod answer;
mod article;
pub mod bm25;
pub mod center;
pub mod confidence;
mod config;
pub mod dense;
pub mod flows;
mod hnsw;
pub mod import;
pub mod index;
mod seed;
pub mod service;
pub mod text;

pub use article::{check_id, check_kb_name, split_passages, valid_tag, Article};
pub use config::KbConfig;
pub use index::{Hit, Mode, Query};
pub use service::{Ask, Kb, KbInfo, Written};
