//! Quality reports over the inspected agent replies of a period: per agent, the score
//! distribution, the top violations, response times and a daily trend, as JSON or CSV (one
//! row per agent for the report, one per day for an agent).

use super::period;
use crate::store::qa::QaRecord;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// The score buckets of the distribution (inclusive lower bounds, highest first).
const BUCKETS: [(&str, u32); 5] = [
    ("100", 100),
    ("90-99", 90),
    ("80-89", 80),
    ("60-79", 60),
    ("0-59", 0),
];

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Bucket {
    pub scores: String,
    pub replies: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Violation {
    pub item: String,
    pub title: String,
    /// Replies that failed it.
    pub replies: usize,
}

/// Response times of the agent replies that answered a waiting customer.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ResponseTimes {
    pub measured: usize,
    pub mean_ms: Option<i64>,
    pub p50_ms: Option<i64>,
    pub p90_ms: Option<i64>,
    pub max_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Day {
    /// UTC day, `2026-12-07`.
    pub day: String,
    pub replies: usize,
    pub mean_score: f32,
    /// Replies with at least one finding.
    pub with_findings: usize,
    pub fatal: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentReport {
    /// Null for replies posted without an `agent_id`.
    pub agent_id: Option<String>,
    pub replies: usize,
    pub conversations: usize,
    pub mean_score: f32,
    pub with_findings: usize,
    pub fatal: usize,
    pub score_distribution: Vec<Bucket>,
    /// Most failed first.
    pub top_violations: Vec<Violation>,
    pub response: ResponseTimes,
    pub trend: Vec<Day>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub replies: usize,
    /// The period held more inspected replies than a report reads (`limit`); the oldest are
    /// counted.
    pub truncated: bool,
    /// Lowest mean score first.
    pub agents: Vec<AgentReport>,
}

fn mean(v: impl Iterator<Item = u32>) -> f32 {
    let (n, s) = v.fold((0usize, 0u64), |(n, s), x| (n + 1, s + u64::from(x)));
    if n == 0 {
        0.0
    } else {
        (s as f64 / n as f64 * 10.0).round() as f32 / 10.0
    }
}

fn items(r: &QaRecord) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = r
        .findings
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
                    (s("item"), s("title"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.dedup_by(|a, b| a.0 == b.0);
    v
}

fn quantile(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i])
}

/// One agent's figures over `rows` (all theirs).
pub fn agent(agent_id: Option<String>, rows: &[&QaRecord]) -> AgentReport {
    let score_distribution = BUCKETS
        .iter()
        .enumerate()
        .map(|(i, (name, lo))| Bucket {
            scores: name.to_string(),
            replies: rows
                .iter()
                .filter(|r| r.score >= *lo && (i == 0 || r.score < BUCKETS[i - 1].1))
                .count(),
        })
        .collect();
    let mut counts: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for r in rows {
        for (item, title) in items(r) {
            counts.entry(item).or_insert((title, 0)).1 += 1;
        }
    }
    let mut top_violations: Vec<Violation> = counts
        .into_iter()
        .map(|(item, (title, replies))| Violation {
            item,
            title,
            replies,
        })
        .collect();
    top_violations.sort_by(|a, b| b.replies.cmp(&a.replies).then(a.item.cmp(&b.item)));
    let mut waits: Vec<i64> = rows.iter().filter_map(|r| r.response_ms).collect();
    waits.sort_unstable();
    let response = ResponseTimes {
        measured: waits.len(),
        mean_ms: (!waits.is_empty()).then(|| waits.iter().sum::<i64>() / waits.len() as i64),
        p50_ms: quantile(&waits, 0.5),
        p90_ms: quantile(&waits, 0.9),
        max_ms: waits.last().copied(),
    };
    let mut days: BTreeMap<String, Vec<&QaRecord>> = BTreeMap::new();
    for r in rows {
        days.entry(period::day(r.at_ms)).or_default().push(r);
    }
    let trend = days
        .into_iter()
        .map(|(day, rs)| Day {
            day,
            replies: rs.len(),
            mean_score: mean(rs.iter().map(|r| r.score)),
            with_findings: rs.iter().filter(|r| !items(r).is_empty()).count(),
            fatal: rs.iter().filter(|r| r.fatal).count(),
        })
        .collect();
    let conversations: HashSet<&str> = rows.iter().map(|r| r.conversation_id.as_str()).collect();
    AgentReport {
        agent_id,
        replies: rows.len(),
        conversations: conversations.len(),
        mean_score: mean(rows.iter().map(|r| r.score)),
        with_findings: rows.iter().filter(|r| !items(r).is_empty()).count(),
        fatal: rows.iter().filter(|r| r.fatal).count(),
        score_distribution,
        top_violations,
        response,
        trend,
    }
}

/// Every agent's figures over `rows`, lowest mean score first.
pub fn report(rows: &[QaRecord], from_ms: i64, to_ms: i64, truncated: bool) -> Report {
    let mut by: BTreeMap<Option<&str>, Vec<&QaRecord>> = BTreeMap::new();
    for r in rows {
        by.entry(r.agent_id.as_deref()).or_default().push(r);
    }
    let mut agents: Vec<AgentReport> = by
        .into_iter()
        .map(|(a, rs)| agent(a.map(str::to_string), &rs))
        .collect();
    agents.sort_by(|a, b| a.mean_score.total_cmp(&b.mean_score));
    Report {
        from: period::rfc3339(from_ms),
        to: period::rfc3339(to_ms),
        replies: rows.len(),
        truncated,
        agents,
    }
}

/// A CSV field, quoted when it must be.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt(v: Option<i64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The report as CSV: one row per agent.
pub fn report_csv(r: &Report) -> String {
    let mut out = String::from(
        "agent_id,replies,conversations,mean_score,with_findings,fatal,top_violation,\
         top_violation_replies,mean_response_ms,p90_response_ms\n",
    );
    for a in &r.agents {
        let top = a.top_violations.first();
        out.push_str(&format!(
            "{},{},{},{:.1},{},{},{},{},{},{}\n",
            field(a.agent_id.as_deref().unwrap_or_default()),
            a.replies,
            a.conversations,
            a.mean_score,
            a.with_findings,
            a.fatal,
            field(top.map(|t| t.item.as_str()).unwrap_or_default()),
            top.map_or(0, |t| t.replies),
            opt(a.response.mean_ms),
            opt(a.response.p90_ms),
        ));
    }
    out
}

/// One agent's figures as CSV: one row per day.
pub fn agent_csv(a: &AgentReport) -> String {
    let mut out = String::from("agent_id,day,replies,mean_score,with_findings,fatal\n");
    let id = field(a.agent_id.as_deref().unwrap_or_default());
    for d in &a.trend {
        out.push_str(&format!(
            "{id},{},{},{:.1},{},{}\n",
            d.day, d.replies, d.mean_score, d.with_findings, d.fatal
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(agent: &str, conv: &str, at_ms: i64, score: u32, items: &[&str]) -> QaRecord {
        QaRecord {
            conversation_id: conv.into(),
            turn: 2,
            agent_id: Some(agent.into()),
            at_ms,
            score,
            fatal: score == 0,
            response_ms: Some(score as i64 * 1000),
            abusive: None,
            findings: json!(items
                .iter()
                .map(|i| json!({"item": i, "title": format!("T {i}")}))
                .collect::<Vec<_>>()),
        }
    }

    #[test]
    fn agents_get_distribution_violations_timings_and_trend() {
        let day = period::parse("2026-12-07").unwrap();
        let rows = vec![
            rec("a1", "c1", day, 100, &[]),
            rec("a1", "c1", day + 1000, 0, &["pii_leak", "pii_leak"]),
            rec("a1", "c2", day + 86_400_000, 70, &["unauthorised_promise"]),
            rec("a2", "c3", day, 100, &[]),
        ];
        let r = report(&rows, day, day + 2 * 86_400_000, false);
        assert_eq!(r.replies, 4);
        let a1 = &r.agents[0];
        assert_eq!(a1.agent_id.as_deref(), Some("a1"));
        assert_eq!((a1.replies, a1.conversations, a1.fatal), (3, 2, 1));
        assert_eq!(a1.mean_score, 56.7);
        let dist: Vec<usize> = a1.score_distribution.iter().map(|b| b.replies).collect();
        assert_eq!(dist, vec![1, 0, 0, 1, 1]);
        // A reply counts once per item however many findings it had.
        assert_eq!(a1.top_violations[0].replies, 1);
        assert_eq!(a1.top_violations.len(), 2);
        assert_eq!(a1.response.max_ms, Some(100_000));
        assert_eq!(a1.response.p50_ms, Some(70_000));
        assert_eq!(a1.trend.len(), 2);
        assert_eq!(
            (a1.trend[0].day.as_str(), a1.trend[0].replies),
            ("2026-12-07", 2)
        );
        let csv = report_csv(&r);
        assert_eq!(csv.lines().count(), 3, "{csv}");
        assert!(
            csv.lines()
                .nth(1)
                .unwrap()
                .starts_with("a1,3,2,56.7,2,1,pii_leak,1,"),
            "{csv}"
        );
        let day_csv = agent_csv(a1);
        assert_eq!(
            day_csv.lines().nth(2).unwrap(),
            "a1,2026-12-08,1,70.0,1,0",
            "{day_csv}"
        );
        assert_eq!(field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
