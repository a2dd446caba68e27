//! The handoff package: everything a person taking over needs so the customer never repeats
//! themselves (summary, intents, emotion trajectory, entities, languages, routing, transcript).

pub mod entities;
pub mod package;

pub use package::{build, Package};
