//! The triage service: the signals of customer texts (`signals`) and the pipeline of one
//! message from signals to a stored routing decision (`triage`). It takes the services it uses
//! (`Pipeline`), never the server state, so tests and offline tools can run it without HTTP.

mod answer;
pub mod signals;
mod stored;
pub mod triage;

use crate::intents::service::Sets;
use crate::kb::Kb;
use crate::lang::LangId;
use crate::metrics::Metrics;
use crate::routing::Policy;
use crate::store::Store;
use crate::vision::Vision;
use std::sync::Arc;
use tokio::sync::{watch, Notify};

/// What triaging a message uses.
pub struct Pipeline<'a> {
    /// Few-shot intents, trained heads and the models that embed them.
    pub sets: Sets<'a>,
    pub lang: &'a Arc<LangId>,
    /// Where the turn, its live event and webhook rows are written.
    pub store: Arc<Store>,
    /// Screenshot recognition (None: an attached screenshot gets 503).
    pub vision: Option<Arc<Vision>>,
    pub policy: Arc<Policy>,
    /// Webhook receivers: one outbox row each when the route changes.
    pub webhook_urls: &'a [String],
    /// Set to the newest live event's sequence number (SSE streams wake on it).
    pub events: &'a watch::Sender<i64>,
    /// Notified when webhook deliveries are queued.
    pub webhook_wake: &'a Notify,
    pub metrics: &'a Metrics,
    /// The knowledge base the bot answers from (None: no answers).
    pub kb: Option<Arc<Kb>>,
}
