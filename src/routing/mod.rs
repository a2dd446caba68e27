//! Routing: the policy (TOML) and the pure function that turns one turn's signals and the
//! conversation's recent turns into a decision (target tier, queue, priority, reasons).

pub mod decide;
pub mod phrases;
pub mod policy;
#[cfg(test)]
mod tests;

pub use decide::{
    decide, Decision, IntentSignal, KbSignal, PastTurn, Reason, Route, ScreenshotSignal,
    TurnSignals,
};
pub use policy::{Policy, Target};
