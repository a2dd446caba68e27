//! Prometheus metrics: counters, gauges and histograms, rendered as the text exposition format.
//! Not (yet) `metrics` + `metrics-exporter-prometheus` (issue 19): that exporter is built around
//! one process-wide recorder with histogram buckets fixed per metric name when it is built,
//! while each server state (and each test) here owns its registry and callers give the buckets;
//! moving would change the call sites and add about ten crates for ~150 lines.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;

type Key = (&'static str, String);

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

struct Hist {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Inner {
    help: BTreeMap<&'static str, (&'static str, &'static str)>,
    counters: BTreeMap<Key, f64>,
    gauges: BTreeMap<Key, f64>,
    hists: BTreeMap<Key, Hist>,
}

/// All metrics of the process; cheap to share behind an `Arc`.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn labels(l: &[(&str, &str)]) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    parts.join(",")
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut g = self.inner.lock();
        f(&mut g)
    }

    pub fn inc(&self, name: &'static str, help: &'static str, l: &[(&str, &str)], v: f64) {
        self.with(|i| {
            i.help.insert(name, ("counter", help));
            *i.counters.entry((name, labels(l))).or_default() += v;
        })
    }

    pub fn set(&self, name: &'static str, help: &'static str, l: &[(&str, &str)], v: f64) {
        self.with(|i| {
            i.help.insert(name, ("gauge", help));
            i.gauges.insert((name, labels(l)), v);
        })
    }

    pub fn observe(
        &self,
        name: &'static str,
        help: &'static str,
        bounds: &'static [f64],
        l: &[(&str, &str)],
        v: f64,
    ) {
        self.with(|i| {
            i.help.insert(name, ("histogram", help));
            let h = i.hists.entry((name, labels(l))).or_insert_with(|| Hist {
                bounds,
                counts: vec![0; bounds.len()],
                sum: 0.0,
                count: 0,
            });
            for (b, c) in h.bounds.iter().zip(h.counts.iter_mut()) {
                if v <= *b {
                    *c += 1;
                }
            }
            h.sum += v;
            h.count += 1;
        })
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        self.with(|i| {
            let mut out = String::new();
            for (name, (kind, help)) in &i.help {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                let series = |m: &BTreeMap<Key, f64>, out: &mut String| {
                    for ((n, l), v) in m.range((*name, String::new())..) {
                        if n != name {
                            break;
                        }
                        let _ = writeln!(out, "{name}{} {v}", wrap(l));
                    }
                };
                match *kind {
                    "counter" => series(&i.counters, &mut out),
                    "gauge" => series(&i.gauges, &mut out),
                    _ => {
                        for ((n, l), h) in i.hists.range((*name, String::new())..) {
                            if n != name {
                                break;
                            }
                            let sep = if l.is_empty() { "" } else { "," };
                            for (b, c) in h.bounds.iter().zip(&h.counts) {
                                let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"{b}\"}} {c}");
                            }
                            let _ =
                                writeln!(out, "{name}_bucket{{{l}{sep}le=\"+Inf\"}} {}", h.count);
                            let _ = writeln!(out, "{name}_sum{} {}", wrap(l), h.sum);
                            let _ = writeln!(out, "{name}_count{} {}", wrap(l), h.count);
                        }
                    }
                }
            }
            out
        })
    }
}

fn wrap(l: &str) -> String {
    if l.is_empty() {
        String::new()
    } else {
        format!("{{{l}}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_all_kinds() {
        let m = Metrics::default();
        m.inc("t_requests_total", "Requests.", &[("status", "200")], 1.0);
        m.inc("t_requests_total", "Requests.", &[("status", "200")], 1.0);
        m.set("t_depth", "Depth.", &[], 3.0);
        m.observe("t_lat", "Latency.", LATENCY_BUCKETS, &[("e", "x")], 0.003);
        let s = m.render();
        assert!(s.contains("t_requests_total{status=\"200\"} 2"), "{s}");
        assert!(s.contains("t_depth 3"), "{s}");
        assert!(s.contains("t_lat_bucket{e=\"x\",le=\"0.0025\"} 0"), "{s}");
        assert!(s.contains("t_lat_bucket{e=\"x\",le=\"0.005\"} 1"), "{s}");
        assert!(s.contains("t_lat_count{e=\"x\"} 1"), "{s}");
        assert!(s.contains("# TYPE t_lat histogram"), "{s}");
    }
}
