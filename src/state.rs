//! The state a server shares between requests and background work: configuration, the model
//! service, heads, few-shot intents, the store, screenshots, seq2seq models, live-event and
//! shutdown signals, and the batch jobs. It knows nothing of HTTP; `http` takes it as its state.

use crate::batch::jobs::Jobs;
use crate::batch::{EncoderSummarizer, Summarizer};
use crate::config::Config;
use crate::engine::Slot;
use crate::error::{AppError, AppResult};
use crate::heads::registry::HeadRegistry;
use crate::metrics::Metrics;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Everything handlers share.
pub struct AppState {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub heads: Arc<HeadRegistry>,
    pub lang: Arc<crate::lang::LangId>,
    /// Few-shot intents and unmatched texts (persisted once `intents.load` has run).
    pub intents: Arc<crate::intents::Intents>,
    /// The served embedding models.
    pub models: Arc<crate::engine::Models>,
    /// The conversation store (`serve` always opens one; a state built without is for tests).
    store: Option<Arc<crate::store::Store>>,
    /// The newest live event's sequence number: SSE streams wake when it moves.
    pub events: tokio::sync::watch::Sender<i64>,
    /// Open SSE streams (bounded by `store.max_subscribers`).
    pub subscribers: Arc<std::sync::atomic::AtomicUsize>,
    /// OCR and the fault catalog (`serve` always starts them).
    vision: Option<Arc<crate::vision::Vision>>,
    /// Wakes the webhook worker when a delivery is queued.
    pub webhook_wake: Arc<tokio::sync::Notify>,
    /// Translation and abstractive-summarization models (loaded on first use).
    pub seq2seq: Arc<crate::translate::Seq2SeqModels>,
    /// Turns true when graceful shutdown begins: SSE streams end, background workers stop.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// The routing policy (`[routing]` or `routing_file`).
    pub policy: Arc<crate::routing::Policy>,
    /// The knowledge bases (opened with the store).
    kb: Option<Arc<crate::kb::Kb>>,
    /// Inspection of agent replies (`[qa]`; None when disabled).
    pub qa: Option<Arc<crate::qa::Inspector>>,
    /// The batch jobs of `batch.dir` and their runner, once started (`jobs`).
    jobs: parking_lot::Mutex<Option<Arc<Jobs>>>,
}

/// The services a state opened with its store.
struct Parts {
    store: Option<Arc<crate::store::Store>>,
    vision: Option<Arc<crate::vision::Vision>>,
    kb: Option<Arc<crate::kb::Kb>>,
}

/// What a state opens besides its models: `serve` opens both; HTTP-layer tests may leave one
/// out, and the routes that need it answer 503 saying so.
#[derive(Debug, Clone, Copy, Default)]
pub struct Open {
    /// The conversation store at `store.path` (live events start after its newest one).
    pub store: bool,
    /// The fault catalog and the OCR pool (a missing Tesseract only disables screenshots).
    pub vision: bool,
}

impl Open {
    pub const ALL: Open = Open {
        store: true,
        vision: true,
    };
    pub const STORE: Open = Open {
        store: true,
        vision: false,
    };
}

impl AppState {
    /// A state with neither store nor vision, in which every configured model is still loading.
    pub fn new(config: Config, metrics: Arc<Metrics>, heads: HeadRegistry) -> Arc<Self> {
        let models = models_of(&config);
        let lang = Arc::new(crate::lang::LangId::default());
        let none = Parts {
            store: None,
            vision: None,
            kb: None,
        };
        Self::assemble(config, metrics, heads, models, lang, none)
    }

    /// A state fully built before anything serves it: the store opened and the screenshot
    /// service started as `open` asks; models are loaded into its slots afterwards.
    pub fn open(
        config: Config,
        metrics: Arc<Metrics>,
        heads: HeadRegistry,
        open: Open,
    ) -> anyhow::Result<Arc<Self>> {
        let models = models_of(&config);
        let lang = Arc::new(crate::lang::LangId::default());
        let store = if open.store {
            let store = crate::store::Store::open_configured(config.store.clone(), &config.home())?;
            tracing::info!(store = %store.describe(), "conversation store open");
            Some(Arc::new(store))
        } else {
            None
        };
        let vision = if open.vision {
            let cfg = &config.screenshot;
            let v = crate::vision::Vision::start(
                cfg,
                models.clone(),
                lang.clone(),
                config.limits.retry_after_secs,
            )?;
            let probe = cfg
                .language_sets()
                .iter()
                .try_for_each(|l| crate::vision::ocr::OcrPool::probe(cfg.tessdata.as_deref(), l));
            if let Err(e) = probe {
                tracing::warn!(error = %e, "screenshot OCR unavailable");
                v.ocr.set_unavailable(e);
            }
            Some(Arc::new(v))
        } else {
            None
        };
        let kb = match &store {
            Some(store) => Some(Arc::new(crate::kb::Kb::open(
                config.kb.clone(),
                store.clone(),
                lang.clone(),
                &heads,
                &config.default_model,
            )?)),
            None => None,
        };
        let parts = Parts { store, vision, kb };
        let state = Self::assemble(config, metrics, heads, models, lang, parts);
        if let Some(store) = &state.store {
            let last = store.last_event_seq().map_err(|e| anyhow::anyhow!("{e}"))?;
            state.events.send_replace(last);
            // Replicas on one PostgreSQL store share intents, unmatched texts and the catalog.
            state.intents.share(store.clone());
            if let Some(v) = &state.vision {
                v.share(store.clone());
            }
            // Events committed by any replica wake this one's streams, and documents written by
            // any replica are re-read here (PostgreSQL).
            let (a, b, c) = (
                Arc::downgrade(&state),
                Arc::downgrade(&state),
                Arc::downgrade(&state),
            );
            store.start_listener(crate::store::events::Wake {
                announce: Box::new(move |seq| {
                    if let Some(s) = a.upgrade() {
                        s.events.send_modify(|v| *v = (*v).max(seq));
                        // Its turn may have queued webhooks: any replica may deliver them.
                        s.webhook_wake.notify_one();
                    }
                }),
                reload: Box::new(move |name| {
                    if let Some(s) = c.upgrade() {
                        s.reload_shared(name);
                    }
                }),
                alive: Box::new(move || b.upgrade().is_some_and(|s| !s.shutting_down())),
            })?;
        }
        Ok(state)
    }

    fn assemble(
        config: Config,
        metrics: Arc<Metrics>,
        heads: HeadRegistry,
        models: Arc<crate::engine::Models>,
        lang: Arc<crate::lang::LangId>,
        parts: Parts,
    ) -> Arc<Self> {
        let Parts { store, vision, kb } = parts;
        let device =
            crate::engine::device::open(config.server.device).map_err(|e| format!("{e:#}"));
        let seq2seq = Arc::new(crate::translate::Seq2SeqModels::new(
            config.home(),
            device,
            config.limits.retry_after_secs,
        ));
        // `Config::validate` checked the scorecard; one that fails here is logged.
        let qa = config
            .qa
            .enabled
            .then(|| crate::qa::Inspector::open(&config.qa))
            .and_then(|r| {
                r.map_err(|e| tracing::error!(error = %e, "quality inspection is off"))
                    .ok()
            })
            .map(Arc::new);
        Arc::new(AppState {
            qa,
            seq2seq,
            intents: Arc::new(crate::intents::Intents::new(
                &config.fewshot,
                &config.discovery,
            )),
            policy: Arc::new(config.routing.clone()),
            config: Arc::new(config),
            metrics,
            heads: Arc::new(heads),
            lang,
            models,
            store,
            vision,
            kb,
            events: tokio::sync::watch::channel(0).0,
            subscribers: Arc::default(),
            webhook_wake: Arc::new(tokio::sync::Notify::new()),
            shutdown: tokio::sync::watch::channel(false).0,
            jobs: parking_lot::Mutex::new(None),
        })
    }

    /// Re-read the shared document `name` (`*`: all) another replica wrote, swapping it into
    /// the service it belongs to. Blocking (the store listener's thread calls it).
    pub fn reload_shared(&self, name: &str) {
        let all = name == "*";
        if let Some(kb) = &self.kb {
            let (names, ids) = match crate::store::kb::parse_reload(name) {
                Some((n, ids)) => (vec![n.to_string()], ids),
                None if all => (kb.names_in_store(), Vec::new()),
                None => (Vec::new(), Vec::new()),
            };
            for n in names {
                let done = if ids.is_empty() {
                    kb.reload(&n)
                } else {
                    kb.reload_ids(&n, &ids)
                };
                if let Err(e) = done {
                    tracing::warn!(kb = %n, error = %e, "cannot reload a knowledge base");
                }
            }
        }
        if all || name == crate::intents::shared::DOC {
            if let Err(e) = self.intents.reload_shared() {
                tracing::warn!(error = %e, "cannot reload the shared few-shot intents");
            }
        }
        if let Some(v) = self
            .vision
            .as_ref()
            .filter(|_| all || name == crate::vision::shared::DOC)
        {
            if let Err(e) = v.reload_shared() {
                tracing::warn!(error = %e, "cannot reload the shared fault catalog");
            }
        }
    }

    /// The knowledge bases, or 503 when this server runs without a store.
    pub fn kb(&self) -> AppResult<Arc<crate::kb::Kb>> {
        self.kb.clone().ok_or_else(|| AppError::Unavailable {
            message: "this server was built without a store, so without a knowledge base".into(),
        })
    }

    /// True once graceful shutdown has begun.
    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Resolves when graceful shutdown begins (at once if it has).
    pub async fn stopping(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// The screenshot service, or 503.
    pub fn vision(&self) -> AppResult<Arc<crate::vision::Vision>> {
        self.vision.clone().ok_or_else(|| AppError::Unavailable {
            message: "this server was built without screenshot recognition".into(),
        })
    }

    /// The conversation store, or 503 when this server runs without one.
    pub fn store(&self) -> AppResult<Arc<crate::store::Store>> {
        self.store.clone().ok_or_else(|| AppError::Unavailable {
            message: "this server was built without a conversation store".into(),
        })
    }

    pub fn set_slot(&self, name: &str, slot: Slot) {
        self.models.set_slot(name, slot)
    }

    pub fn slots(&self) -> BTreeMap<String, Slot> {
        self.models.slots()
    }

    /// The intent sets (few-shot intents, trained heads, their encoders) for a request admitted
    /// at `admitted` (its model calls' queue wait counts from then).
    pub fn sets(&self, admitted: Instant) -> crate::intents::service::Sets<'_> {
        crate::intents::service::Sets {
            intents: &self.intents,
            heads: &self.heads,
            models: &self.models,
            admitted,
        }
    }
}

impl AppState {
    /// The triage pipeline over this state's services for a request admitted at `admitted`;
    /// 503 without a store.
    pub fn pipeline(&self, admitted: Instant) -> AppResult<crate::pipeline::Pipeline<'_>> {
        Ok(crate::pipeline::Pipeline {
            sets: self.sets(admitted),
            lang: &self.lang,
            store: self.store()?,
            vision: self.vision.clone(),
            policy: self.policy.clone(),
            webhook_urls: &self.config.webhooks.urls,
            events: &self.events,
            webhook_wake: &self.webhook_wake,
            metrics: &self.metrics,
            kb: self.kb.clone().filter(|_| self.config.kb.answer_in_triage),
        })
    }

    /// The batch jobs folder the config names.
    pub fn jobs_dir(&self) -> PathBuf {
        let c = &self.config;
        c.batch.resolved_dir(&c.store.resolved_path(&c.home()))
    }

    /// The batch job leases, when the store is shared by replicas (PostgreSQL).
    fn shared(&self) -> Option<crate::batch::lease::Shared> {
        self.store
            .clone()
            .and_then(crate::batch::lease::Shared::new)
    }

    fn jobs_slot(&self) -> parking_lot::MutexGuard<'_, Option<Arc<Jobs>>> {
        self.jobs.lock()
    }

    /// The batch jobs, started with the `EncoderSummarizer` on first use; call at server start
    /// so that unfinished jobs resume. While shutting down, a stopped runner is kept (jobs
    /// uploaded then are queued on disk and run at the next start). Needs a tokio runtime.
    pub fn jobs(&self) -> anyhow::Result<Arc<Jobs>> {
        let mut slot = self.jobs_slot();
        if let Some(j) = slot
            .as_ref()
            .filter(|j| !j.stopped() || self.shutting_down())
        {
            return Ok(j.clone());
        }
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| anyhow::anyhow!("batch jobs need a tokio runtime"))?;
        let s = EncoderSummarizer::new(self.models.clone(), self.config.summarize.max_words, rt)
            .stopping_on(self.shutdown.subscribe())
            .yielding(self.config.batching.max_batch_size);
        let jobs = Jobs::open(
            self.jobs_dir(),
            self.config.batch.clone(),
            Arc::new(s),
            self.shared(),
        )?;
        *slot = Some(jobs.clone());
        Ok(jobs)
    }

    /// Start the batch jobs with `summarizer`, replacing (and waiting for) any runner started
    /// before.
    pub fn start_jobs_with(&self, summarizer: Arc<dyn Summarizer>) -> anyhow::Result<Arc<Jobs>> {
        let mut slot = self.jobs_slot();
        if let Some(old) = slot.take() {
            old.shutdown_and_wait();
        }
        let jobs = Jobs::open(
            self.jobs_dir(),
            self.config.batch.clone(),
            summarizer,
            self.shared(),
        )?;
        *slot = Some(jobs.clone());
        Ok(jobs)
    }

    /// Graceful shutdown: stop the runner after its current batch (the output so far is
    /// durable) and wait for it; the running job stays `running` on disk and resumes at the
    /// next start. Blocking; a no-op when no runner was started.
    pub fn stop_jobs(&self) {
        let jobs = self.jobs_slot().clone();
        if let Some(j) = jobs {
            j.shutdown_and_wait();
            tracing::info!("batch: runner stopped at a resumable point");
        }
    }
}

fn models_of(config: &Config) -> Arc<crate::engine::Models> {
    Arc::new(crate::engine::Models::new(
        &config.models,
        &config.default_model,
        config.limits.overlong,
    ))
}
