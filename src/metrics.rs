//! Prometheus metrics: counters, gauges and histograms, rendered as the text exposition format
//! by `metrics-exporter-prometheus` (as text-embeddings-inference does).
//!
//! Each [`Metrics`] owns its own `PrometheusRecorder`, built with `build_recorder()` and never
//! installed as the process-wide recorder: every server state (and every test, several per
//! process) has its own registry, so the `metrics::counter!`-style macros and their global
//! recorder are not used; [`Metrics`] records through the `metrics::Recorder` trait directly.
//! The exporter's HTTP listener is off (`default-features = false`): `/metrics` is our route.
//!
//! The exporter fixes a histogram's buckets per metric name when the recorder is built, so
//! [`HISTOGRAMS`] lists every histogram with its bounds; [`Metrics::observe`] keeps its `bounds`
//! argument and checks it against that table in debug builds. Histogram samples queue up until
//! they are drained (a render, or every [`DRAIN_EVERY`] observations), so no upkeep task runs.

use metrics::{Key, KeyName, Label, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use parking_lot::RwLock;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bucket bounds for latencies in seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Bucket bounds for batch sizes (sequences).
pub const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
/// Bucket bounds for padded tokens per batch.
pub const TOKEN_BUCKETS: &[f64] = &[
    16.0, 64.0, 256.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0,
];

/// Every histogram the server records, with its bucket bounds (the exporter needs them when the
/// recorder is built). A histogram missing here still gets [`LATENCY_BUCKETS`].
pub const HISTOGRAMS: &[(&str, &[f64])] = &[
    ("triage_http_request_seconds", LATENCY_BUCKETS),
    ("triage_queue_wait_seconds", LATENCY_BUCKETS),
    ("triage_inference_seconds", LATENCY_BUCKETS),
    ("triage_batch_size", SIZE_BUCKETS),
    ("triage_batch_tokens", TOKEN_BUCKETS),
];

/// Histogram samples are drained into their buckets at least this often (in observations), so
/// that memory stays bounded when nothing scrapes `/metrics`.
pub const DRAIN_EVERY: u64 = 4096;

/// All metrics of one server state; cheap to share behind an `Arc`.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Names whose help text the recorder has (it keeps the first one given).
    described: RwLock<HashSet<&'static str>>,
    observed: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut b = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .expect("bucket bounds are not empty");
        for (name, bounds) in HISTOGRAMS {
            b = b
                .set_buckets_for_metric(Matcher::Full((*name).into()), bounds)
                .expect("bucket bounds are not empty");
        }
        let recorder = b.build_recorder();
        Self {
            handle: recorder.handle(),
            recorder,
            described: RwLock::default(),
            observed: AtomicU64::new(0),
        }
    }
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

fn key(name: &'static str, l: &[(&'static str, &str)]) -> Key {
    let labels: Vec<Label> = l
        .iter()
        .map(|&(k, v)| Label::new(k, v.to_owned()))
        .collect();
    Key::from_parts(name, labels)
}

enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Metrics {
    fn describe(&self, name: &'static str, help: &'static str, kind: Kind) {
        if self.described.read().contains(name) {
            return;
        }
        if !self.described.write().insert(name) {
            return;
        }
        let (n, h) = (KeyName::from_const_str(name), SharedString::const_str(help));
        match kind {
            Kind::Counter => self.recorder.describe_counter(n, None, h),
            Kind::Gauge => self.recorder.describe_gauge(n, None, h),
            Kind::Histogram => self.recorder.describe_histogram(n, None, h),
        }
    }

    /// Adds `v` to a counter.
    pub fn inc(&self, name: &'static str, help: &'static str, l: &[(&'static str, &str)], v: u64) {
        self.describe(name, help, Kind::Counter);
        self.recorder
            .register_counter(&key(name, l), &METADATA)
            .increment(v);
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, help: &'static str, l: &[(&'static str, &str)], v: f64) {
        self.describe(name, help, Kind::Gauge);
        self.recorder
            .register_gauge(&key(name, l), &METADATA)
            .set(v);
    }

    /// Records `v` in a histogram; `bounds` must be the ones [`HISTOGRAMS`] gives `name`.
    pub fn observe(
        &self,
        name: &'static str,
        help: &'static str,
        bounds: &'static [f64],
        l: &[(&'static str, &str)],
        v: f64,
    ) {
        debug_assert!(
            HISTOGRAMS.iter().any(|&(n, b)| n == name && b == bounds),
            "histogram {name}: list it in metrics::HISTOGRAMS with these bounds"
        );
        self.describe(name, help, Kind::Histogram);
        self.recorder
            .register_histogram(&key(name, l), &METADATA)
            .record(v);
        if self.observed.fetch_add(1, Ordering::Relaxed) % DRAIN_EVERY == DRAIN_EVERY - 1 {
            self.handle.run_upkeep();
        }
    }

    /// The Prometheus text format (families and series in no fixed order).
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_all_kinds() {
        let m = Metrics::default();
        m.inc("t_requests_total", "Requests.", &[("status", "200")], 1);
        m.inc("t_requests_total", "Requests.", &[("status", "200")], 1);
        m.set("t_depth", "Depth.", &[], 3.0);
        m.observe(
            "triage_inference_seconds",
            "Latency.",
            LATENCY_BUCKETS,
            &[("e", "x")],
            0.003,
        );
        m.observe("triage_batch_size", "Sizes.", SIZE_BUCKETS, &[], 3.0);
        let s = m.render();
        assert!(s.contains("# HELP t_requests_total Requests.\n"), "{s}");
        assert!(s.contains("# TYPE t_requests_total counter\n"), "{s}");
        assert!(s.contains("t_requests_total{status=\"200\"} 2\n"), "{s}");
        assert!(s.contains("# TYPE t_depth gauge\n"), "{s}");
        assert!(s.contains("t_depth 3\n"), "{s}");
        let lat = "triage_inference_seconds";
        assert!(s.contains(&format!("# TYPE {lat} histogram\n")), "{s}");
        assert!(
            s.contains(&format!("{lat}_bucket{{e=\"x\",le=\"0.001\"}} 0\n")),
            "{s}"
        );
        assert!(
            s.contains(&format!("{lat}_bucket{{e=\"x\",le=\"0.0025\"}} 0\n")),
            "{s}"
        );
        assert!(
            s.contains(&format!("{lat}_bucket{{e=\"x\",le=\"0.005\"}} 1\n")),
            "{s}"
        );
        assert!(
            s.contains(&format!("{lat}_bucket{{e=\"x\",le=\"30\"}} 1\n")),
            "{s}"
        );
        assert!(
            s.contains(&format!("{lat}_bucket{{e=\"x\",le=\"+Inf\"}} 1\n")),
            "{s}"
        );
        assert!(s.contains(&format!("{lat}_sum{{e=\"x\"}} 0.003\n")), "{s}");
        assert!(s.contains(&format!("{lat}_count{{e=\"x\"}} 1\n")), "{s}");
        // Per-name buckets: the batch sizes' own bounds, no latency bounds.
        assert!(s.contains("triage_batch_size_bucket{le=\"2\"} 0\n"), "{s}");
        assert!(s.contains("triage_batch_size_bucket{le=\"4\"} 1\n"), "{s}");
        assert!(
            s.contains("triage_batch_size_bucket{le=\"256\"} 1\n"),
            "{s}"
        );
        assert!(!s.contains("triage_batch_size_bucket{le=\"0.001\"}"), "{s}");
        assert_eq!(
            s.matches("le=\"").count(),
            LATENCY_BUCKETS.len() + SIZE_BUCKETS.len() + 2
        );
    }

    #[test]
    fn registries_are_per_value_and_labels_escaped() {
        let (a, b) = (Metrics::default(), Metrics::default());
        a.inc("t_total", "T.", &[("route", "/a\"b\nc")], 5);
        assert!(
            a.render().contains("t_total{route=\"/a\\\"b\\nc\"} 5\n"),
            "{}",
            a.render()
        );
        assert!(!b.render().contains("t_total"), "{}", b.render());
        // A gauge keeps the last value set.
        b.set("t_g", "G.", &[("m", "x")], 7.0);
        b.set("t_g", "G.", &[("m", "x")], 2.5);
        assert!(b.render().contains("t_g{m=\"x\"} 2.5\n"), "{}", b.render());
    }

    #[test]
    fn samples_drain_without_a_scrape() {
        let m = Metrics::default();
        for _ in 0..DRAIN_EVERY + 1 {
            m.observe("triage_batch_size", "Sizes.", SIZE_BUCKETS, &[], 1.0);
        }
        let s = m.render();
        let n = DRAIN_EVERY + 1;
        assert!(s.contains(&format!("triage_batch_size_count {n}\n")), "{s}");
        assert!(
            s.contains(&format!("triage_batch_size_bucket{{le=\"1\"}} {n}\n")),
            "{s}"
        );
    }

    #[test]
    fn histograms_table_names_are_unique() {
        let names: HashSet<_> = HISTOGRAMS.iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), HISTOGRAMS.len());
    }

    /// Cost of what the `track` middleware records per request (a 3-label counter and a
    /// 1-label histogram), and of one render. Reports, asserts nothing:
    /// `cargo test --lib metrics::tests::record_cost -- --ignored --nocapture` (this crate is
    /// built at opt-level 1 there, the exporter at 3; add `--release` for the shipped build).
    #[test]
    #[ignore]
    fn record_cost() {
        let m = Metrics::default();
        let n = 200_000u32;
        let routes = ["/v1/embed", "/v1/triage", "/health", "/v1/models"];
        let t = std::time::Instant::now();
        for i in 0..n {
            let route = routes[i as usize % routes.len()].to_string();
            let l = [
                ("route", route.as_str()),
                ("method", "POST"),
                ("status", "200"),
            ];
            m.inc("triage_http_requests_total", "Requests.", &l, 1);
            m.observe(
                "triage_http_request_seconds",
                "Latency.",
                LATENCY_BUCKETS,
                &[("route", &route)],
                0.004,
            );
        }
        let per = t.elapsed().as_nanos() as f64 / f64::from(n);
        let t = std::time::Instant::now();
        let text = m.render();
        let render = t.elapsed();
        eprintln!(
            "{per:.0} ns per request (counter + histogram); render {render:?}, {} bytes",
            text.len()
        );
    }
}
