//! `triage qa run` as a process: 2,000 synthetic conversations with bad lines among them, one
//! uninterrupted run, and one killed with SIGKILL part way (while it waits on its input, then
//! with a torn last line added) and rerun: every id once, the same results as the uninterrupted
//! run, each bad line rejected once with its line number.

use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const N: usize = 2000;
const BATCH: usize = 50;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("triage-qa-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn triage(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(args)
        .env_remove("TRIAGE_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "triage {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn qa_run(input: &Path, output: &Path, rejects: &Path, batch: usize) -> String {
    let b = batch.to_string();
    let out = triage(&[
        "qa",
        "run",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--rejects",
        rejects.to_str().unwrap(),
        "--batch-size",
        &b,
    ]);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read_jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn count_lines(p: &Path) -> usize {
    std::fs::read(p)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// The bad lines put after synthetic line `after`, and the start of the reason each gets.
const BAD: [(usize, &str, &str); 6] = [
    (100, "{not json", "invalid JSON"),
    (
        400,
        r#"{"id": "r1", "turns": [{"role": "robot", "text": "beep"}]}"#,
        "unknown role `robot` in turns[0]",
    ),
    (
        700,
        r#"{"id": "t1", "turns": [{"role": "customer", "text": "hi", "at_ms": 5}, {"role": "agent", "text": "hello", "at_ms": "noon"}]}"#,
        "turns[1].at_ms is not an integer",
    ),
    (
        1200,
        r#"{"id": "e1", "turns": [{"role": "customer", "text": "  "}]}"#,
        "empty text in turns[0]",
    ),
    (
        1500,
        r#"{"id": "c000001", "turns": [{"role": "customer", "text": "again"}]}"#,
        "duplicate id",
    ),
    (
        1800,
        r#"{"id": "a1", "turns": [{"role": "agent", "text": "hello", "agent_id": {"x": 1}}]}"#,
        "turns[0].agent_id is not a string",
    ),
];

/// The synthetic lines with the bad ones among them; and each bad line's line number.
fn input(synth: &str) -> (Vec<String>, Vec<(u64, &'static str)>) {
    let mut lines = Vec::new();
    let mut bad = Vec::new();
    for (i, l) in synth.lines().enumerate() {
        lines.push(l.to_string());
        for (after, text, reason) in BAD {
            if after == i + 1 {
                lines.push(text.to_string());
                bad.push((lines.len() as u64, reason));
            }
        }
    }
    (lines, bad)
}

#[test]
fn killed_and_resumed_matches_one_uninterrupted_run() {
    let d = tmp("resume");
    let synth = d.join("synth.jsonl");
    triage(&[
        "qa",
        "synth",
        "--count",
        &N.to_string(),
        "--seed",
        "7",
        "--output",
        synth.to_str().unwrap(),
    ]);
    let (lines, bad) = input(&std::fs::read_to_string(&synth).unwrap());
    assert_eq!(lines.len(), N + BAD.len());
    let full = d.join("in.jsonl");
    std::fs::write(&full, lines.join("\n") + "\n").unwrap();

    // The reference: one uninterrupted run.
    let (ref_out, ref_rej) = (d.join("ref.jsonl"), d.join("ref.rejects.jsonl"));
    let err = qa_run(&full, &ref_out, &ref_rej, 32);
    assert!(
        err.contains(&format!(
            "inspected {N}, skipped (already done) 0, rejected 6 (6 new)"
        )),
        "{err}"
    );
    assert!(
        err.contains("conv/s") && err.contains("mean score"),
        "{err}"
    );

    // Run 1 reads a FIFO fed with the first 1,000 lines, then waits for more: once it has
    // written every full batch of them, it is killed with SIGKILL.
    let fifo = d.join("in.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let (out, rej) = (d.join("out.jsonl"), d.join("out.rejects.jsonl"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["qa", "run", "--input", fifo.to_str().unwrap()])
        .args(["--output", out.to_str().unwrap()])
        .args(["--rejects", rej.to_str().unwrap()])
        .args(["--batch-size", &BATCH.to_string()])
        .env_remove("TRIAGE_CONFIG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let head: String = lines[..1000].iter().map(|l| format!("{l}\n")).collect();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            // Blocks until the child opens the FIFO; errors once it is killed are expected.
            if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&fifo) {
                let _ = f.write_all(head.as_bytes());
                let _ = rx.recv(); // hold the FIFO open: the child waits for more
            }
        })
    };
    let valid = lines[..1000].len() - bad.iter().filter(|(l, _)| *l <= 1000).count();
    let want = valid - valid % BATCH;
    let t0 = Instant::now();
    while count_lines(&out) < want {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("run 1 ended early ({st}): {:?}", child.wait_with_output());
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "run 1 too slow");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(child.try_wait().unwrap().is_none(), "run 1 must still wait");
    child.kill().unwrap(); // SIGKILL
    let st = child.wait().unwrap();
    assert_eq!(st.signal(), Some(9), "{st}");
    drop(tx);
    writer.join().unwrap();
    assert_eq!(
        count_lines(&out),
        want,
        "a full batch at a time, nothing more"
    );
    // A kill in the middle of a write leaves a torn last line: the rerun cuts it off.
    let torn = std::fs::read_to_string(&ref_out).unwrap();
    let next = torn.lines().nth(want).unwrap();
    let mut f = std::fs::OpenOptions::new().append(true).open(&out).unwrap();
    f.write_all(&next.as_bytes()[..next.len() / 2]).unwrap();
    drop(f);

    // Run 2: the whole file, resumed.
    let err = qa_run(&full, &out, &rej, BATCH);
    assert!(
        err.contains(&format!(
            "inspected {}, skipped (already done) {want}",
            N - want
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("whole output: {N} conversations")),
        "{err}"
    );

    // Every id exactly once, and the same results, byte for byte, as the uninterrupted run.
    let got = read_jsonl(&out);
    let ids: Vec<&str> = got.iter().map(|v| v["id"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!((ids.len(), unique.len()), (N, N));
    assert!((1..=N).all(|i| unique.contains(format!("c{i:06}").as_str())));
    let reference = read_jsonl(&ref_out);
    for (a, b) in got.iter().zip(&reference) {
        assert_eq!((&a["id"], &a["score"]), (&b["id"], &b["score"]));
    }
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&ref_out).unwrap()
    );
    let agents: HashSet<&str> = got.iter().filter_map(|v| v["agent_id"].as_str()).collect();
    assert_eq!(agents.len(), 20);
    assert!(got.iter().any(|v| v["fatal"] == true) && got.iter().any(|v| v["score"] == 100));

    // Each bad line rejected once, by line number, as in the uninterrupted run.
    let rejects = |p: &Path| -> BTreeMap<u64, String> {
        let rs = read_jsonl(p);
        let m: BTreeMap<u64, String> = rs
            .iter()
            .map(|r| {
                (
                    r["line"].as_u64().unwrap(),
                    r["reason"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(m.len(), rs.len(), "a line rejected twice: {rs:?}");
        m
    };
    let (got_rej, ref_rej) = (rejects(&rej), rejects(&ref_rej));
    assert_eq!(got_rej, ref_rej);
    assert_eq!(got_rej.len(), bad.len());
    for ((line, reason), (want_line, want_reason)) in got_rej.iter().zip(&bad) {
        assert_eq!(line, want_line);
        assert!(reason.starts_with(want_reason), "line {line}: {reason}");
    }
}
