//! Server-side breakdown for the load bench: `/metrics` is scraped before and after a phase, and
//! p50/p99 of request time, queue wait (admission to the first forward pass) and forward-pass
//! time are read from the difference of the histogram buckets (upper bucket bounds, so each
//! figure is "at most").

use std::collections::BTreeMap;

/// Per histogram: cumulative count per bucket bound (`le`), summed over its label sets.
#[derive(Default, Clone)]
pub struct Snapshot(BTreeMap<String, BTreeMap<u64, f64>>);

/// The histograms read, with the label filter a line must contain (empty: all).
pub const READ: &[(&str, &str)] = &[
    ("triage_http_request_seconds", "route=\"/v1/triage\""),
    ("triage_queue_wait_seconds", ""),
    ("triage_inference_seconds", ""),
];

pub fn parse(text: &str) -> Snapshot {
    let mut s = Snapshot::default();
    for line in text.lines() {
        for (name, filter) in READ {
            let Some(rest) = line.strip_prefix(&format!("{name}_bucket{{")) else {
                continue;
            };
            if !rest.contains(filter) {
                continue;
            }
            let le = rest
                .split("le=\"")
                .nth(1)
                .and_then(|v| v.split('"').next())
                .map(|v| {
                    if v == "+Inf" {
                        f64::INFINITY
                    } else {
                        v.parse().unwrap_or(f64::NAN)
                    }
                });
            let count = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
            if let (Some(le), Some(c)) = (le, count) {
                if !le.is_nan() {
                    *s.0.entry(name.to_string())
                        .or_default()
                        .entry(le.to_bits())
                        .or_default() += c;
                }
            }
        }
    }
    s
}

/// The `q` quantile (0..1) in ms of what `name` observed between `a` and `b`.
pub fn quantile(a: &Snapshot, b: &Snapshot, name: &str, q: f64) -> Option<f64> {
    let after = b.0.get(name)?;
    let before = a.0.get(name);
    let mut rows: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, c)| {
            let was = before.and_then(|m| m.get(le)).copied().unwrap_or(0.0);
            (f64::from_bits(*le), c - was)
        })
        .collect();
    rows.sort_by(|x, y| x.0.total_cmp(&y.0));
    let total = rows.last()?.1;
    if total <= 0.0 {
        return None;
    }
    rows.iter()
        .find(|(_, c)| *c >= q * total)
        .map(|(le, _)| le * 1000.0)
}

/// "request p50/p99 a/b ms, queue wait ..., forward pass ..." for a phase.
pub fn line(a: &Snapshot, b: &Snapshot) -> String {
    let f = |n: &str, q: f64| match quantile(a, b, n, q) {
        Some(v) if v.is_finite() => format!("{v:.0}"),
        Some(_) => "over the last bucket".into(),
        None => "-".into(),
    };
    format!(
        "server side (bucket bounds, ms) p50/p99: request {}/{}, queue wait {}/{}, forward pass {}/{}",
        f(READ[0].0, 0.5),
        f(READ[0].0, 0.99),
        f(READ[1].0, 0.5),
        f(READ[1].0, 0.99),
        f(READ[2].0, 0.5),
        f(READ[2].0, 0.99)
    )
}
