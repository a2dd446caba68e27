//! The handoff package: everything a person taking over needs so the customer never repeats
//! themselves (summary, intents, emotion trajectory, entities, languages, routing, transcript).

pub mod package;

/// Entity extraction lives with the summaries, which name entities too.
pub use crate::summarize::entities;

pub use package::{build, Package};
