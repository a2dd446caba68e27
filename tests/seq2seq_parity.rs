//! Parity of `triage::seq2seq` with Python transformers 5.x on tiny fixed-seed models
//! (tests/fixtures/seq2seq, made by scripts/make_seq2seq_fixtures.py): tokenizer ids (Marian from
//! `source.spm` + `vocab.json`, T5 from `tokenizer.json`), encoder outputs and teacher-forced
//! logits (1e-4), and exact generate() ids for greedy and beam search, batch 1 and batch 4.
//! The same for the PyTorch copies of those weights (tests/fixtures/seq2seq/pytorch, zip and
//! pre-1.6 format, made by scripts/make_seq2seq_pt_fixtures.py) in place of model.safetensors,
//! and for a Marian model with separate source/target vocabularies (`marian_separate`).

use candle_core::Device;
use serde_json::Value;
use std::path::{Path, PathBuf};
use triage::seq2seq::t5::relative_position_bucket;
use triage::seq2seq::{GenerateOptions, Seq2Seq};

const MODELS: [&str; 3] = ["marian", "t5_v1_0", "t5_v1_1"];

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seq2seq")
        .join(name)
}

fn load(name: &str) -> (Seq2Seq, Value) {
    load_at(name, &dir(name))
}

/// The model in `d` with the expected.json of fixture `name`.
fn load_at(name: &str, d: &Path) -> (Seq2Seq, Value) {
    let model = Seq2Seq::load(d, &Device::Cpu).unwrap_or_else(|e| panic!("loading {name}: {e:#}"));
    let d = dir(name);
    let text = std::fs::read_to_string(d.join("expected.json")).expect("expected.json");
    (
        model,
        serde_json::from_str(&text).expect("expected.json parses"),
    )
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("id list")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

fn id_rows(v: &Value) -> Vec<Vec<u32>> {
    v.as_array().expect("rows").iter().map(ids).collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("floats")
        .iter()
        .map(|x| x.as_f64().expect("float") as f32)
        .collect()
}

fn options(v: &Value) -> GenerateOptions {
    let u = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("option {k}")) as usize;
    GenerateOptions {
        max_new_tokens: u("max_new_tokens"),
        min_new_tokens: u("min_new_tokens"),
        num_beams: u("num_beams"),
        length_penalty: v["length_penalty"].as_f64().expect("length_penalty"),
        no_repeat_ngram_size: u("no_repeat_ngram_size"),
        early_stopping: v["early_stopping"].as_bool().expect("early_stopping"),
    }
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4,
            "{what}[{i}]: got {g}, HF {w}\n  got  {got:?}\n  want {want:?}"
        );
    }
}

fn check_tokenizer(name: &str) {
    let (model, exp) = load(name);
    check_tokenizer_of(name, &model, &exp);
}

fn check_tokenizer_of(name: &str, model: &Seq2Seq, exp: &Value) {
    for case in exp["tokenizer"].as_array().expect("tokenizer cases") {
        let text = case["text"].as_str().expect("text");
        let got = model.encode_texts(&[text], 1000).expect("encode");
        assert_eq!(got[0], ids(&case["ids"]), "{name}: ids of {text:?}");
    }
    // Batch of generation texts = the ids the generate cases were run on.
    let enc = &exp["encoder"]["inputs"];
    let texts = [
        "My order has not arrived yet.",
        "Hi!",
        "Guten Tag, ich habe eine Frage zu meiner Rechnung. Die Lieferung ist leider nicht angekommen.",
        "你好，请帮我退款。",
    ];
    assert_eq!(
        model.encode_texts(&texts, 1000).expect("encode"),
        id_rows(enc),
        "{name}"
    );
}

#[test]
fn marian_tokenizer_from_spm_matches_python() {
    assert!(
        !dir("marian").join("tokenizer.json").exists(),
        "the Marian fixture must exercise the source.spm conversion"
    );
    check_tokenizer("marian");
}

#[test]
fn t5_tokenizer_json_matches_python() {
    check_tokenizer("t5_v1_0");
    check_tokenizer("t5_v1_1");
}

#[test]
fn too_long_inputs_and_bad_ids_are_errors() {
    let (model, _) = load("marian");
    let texts = ["Hi!", "a much longer text than the first one"];
    let lens: Vec<usize> = model
        .encode_texts(&texts, 1000)
        .expect("encode")
        .iter()
        .map(Vec::len)
        .collect();
    assert!(lens[0] < lens[1]);
    let err = model.encode_texts(&texts, lens[0]).expect_err("too long");
    assert!(format!("{err:#}").contains("text 1"), "{err:#}");
    let opts = GenerateOptions {
        max_new_tokens: 3,
        ..Default::default()
    };
    let err = model
        .generate_ids(&[vec![3, 4, 0], vec![1_000_000]], &opts)
        .expect_err("bad id");
    assert!(format!("{err:#}").contains("input 1"), "{err:#}");
    assert!(model.generate_ids(&[vec![]], &opts).is_err());
    assert_eq!(
        model.generate_ids(&[], &opts).expect("empty batch"),
        Vec::<Vec<u32>>::new()
    );
}

fn check_numerics(name: &str) {
    let (model, exp) = load(name);
    check_numerics_of(name, &model, &exp);
}

fn check_numerics_of(name: &str, model: &Seq2Seq, exp: &Value) {
    let inputs = id_rows(&exp["encoder"]["inputs"]);
    let hidden = model.encoder_hidden_states(&inputs).expect("encoder");
    for s in exp["encoder"]["samples"].as_array().expect("samples") {
        let (r, p) = (
            s["row"].as_u64().expect("row") as usize,
            s["pos"].as_u64().expect("pos") as usize,
        );
        let want = floats(&s["values"]);
        assert_close(
            &format!("{name}: encoder row {r} pos {p}"),
            &hidden[r][p][..want.len()],
            &want,
        );
    }
    let rows = exp["next_token_logits"].as_array().expect("logits");
    let inputs_l: Vec<Vec<u32>> = rows
        .iter()
        .map(|c| inputs[c["row"].as_u64().expect("row") as usize].clone())
        .collect();
    let prefixes: Vec<Vec<u32>> = rows.iter().map(|c| ids(&c["prefix"])).collect();
    let logits = model
        .next_token_logits(&inputs_l, &prefixes)
        .expect("logits");
    for (c, l) in rows.iter().zip(&logits) {
        let want = floats(&c["first"]);
        let what = format!("{name}: decoder logits, prefix {:?}", prefixes[0]);
        assert_close(&what, &l[..want.len()], &want);
        let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert_close(&what, &[max], &[c["max"].as_f64().expect("max") as f32]);
    }
}

#[test]
fn encoder_and_decoder_numerics_match_python() {
    for name in MODELS {
        check_numerics(name);
    }
}

fn check_generate(name: &str) {
    let (model, exp) = load(name);
    check_generate_of(name, &model, &exp);
}

fn check_generate_of(name: &str, model: &Seq2Seq, exp: &Value) {
    let cases = exp["generate"].as_array().expect("generate cases");
    assert!(cases.len() >= 6);
    for case in cases {
        let case_name = case["name"].as_str().expect("name");
        let inputs = id_rows(&case["inputs"]);
        let opts = options(&case["options"]);
        let want = id_rows(&case["expected"]);
        let mut streamed = vec![Vec::new(); inputs.len()];
        let got = model
            .generate_ids_streaming(&inputs, &opts, &mut |r, t| streamed[r].push(t))
            .unwrap_or_else(|e| panic!("{name}/{case_name}: {e:#}"));
        for (r, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{name}/{case_name} row {r} ({opts:?})");
        }
        assert_eq!(got.len(), want.len());
        assert_eq!(streamed, got, "{name}/{case_name}: streamed ids");
        for (r, d) in case["decoded"]
            .as_array()
            .expect("decoded")
            .iter()
            .enumerate()
        {
            let text = model.decode(&got[r]).expect("decode");
            assert_eq!(
                text,
                d.as_str().expect("text"),
                "{name}/{case_name} row {r} text"
            );
        }
    }
}

#[test]
fn marian_generate_matches_python() {
    check_generate("marian");
}

#[test]
fn t5_v1_0_generate_matches_python() {
    check_generate("t5_v1_0");
}

#[test]
fn t5_v1_1_generate_matches_python() {
    check_generate("t5_v1_1");
}

#[test]
fn generate_texts_end_to_end() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Seq2Seq>();
    let (model, exp) = load("t5_v1_0");
    assert_eq!(model.kind(), "t5");
    let case = &exp["generate"][1];
    let texts = [
        "My order has not arrived yet.",
        "Hi!",
        "Guten Tag, ich habe eine Frage zu meiner Rechnung. Die Lieferung ist leider nicht angekommen.",
        "你好，请帮我退款。",
    ];
    let out = model
        .generate(&texts, &options(&case["options"]))
        .expect("generate");
    let want: Vec<&str> = case["decoded"]
        .as_array()
        .expect("decoded")
        .iter()
        .map(|d| d.as_str().expect("text"))
        .collect();
    assert_eq!(out, want);
    let (marian, _) = load("marian");
    assert_eq!(marian.kind(), "marian");
}

#[test]
fn t5_relative_buckets_match_python() {
    let (_, exp) = load("t5_v1_0");
    let tables = exp["buckets"].as_object().expect("buckets");
    assert_eq!(tables.len(), 2);
    for (key, t) in tables {
        let nb = t["num_buckets"].as_u64().expect("nb") as usize;
        let md = t["max_distance"].as_u64().expect("md") as usize;
        let from = t["relative_from"].as_i64().expect("from");
        for (bidir, field) in [(true, "bidirectional"), (false, "causal")] {
            for (i, want) in ids(&t[field]).into_iter().enumerate() {
                let rel = from + i as i64;
                assert_eq!(
                    relative_position_bucket(rel, bidir, nb, md) as u32,
                    want,
                    "{key} {field} rel {rel}"
                );
            }
        }
    }
}

/// A copy of fixture `name` with `pytorch/<bin>` as its pytorch_model.bin and no safetensors.
fn pytorch_copy(name: &str, bin: &str) -> PathBuf {
    let out = std::env::temp_dir().join(format!("triage-pt-{name}-{bin}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("temp dir");
    for e in std::fs::read_dir(dir(name)).expect("fixture") {
        let p = e.expect("entry").path();
        let f = p.file_name().expect("name");
        if f != "model.safetensors" {
            std::fs::copy(&p, out.join(f)).expect("copy");
        }
    }
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seq2seq/pytorch")
        .join(bin);
    std::fs::copy(src, out.join("pytorch_model.bin")).expect("copy bin");
    out
}

#[test]
fn pytorch_weights_generate_like_python() {
    for (name, bin) in [
        ("marian", "marian.bin"),
        ("marian", "marian_legacy.bin"),
        ("t5_v1_0", "t5_v1_0.bin"),
        ("t5_v1_1", "t5_v1_1.bin"),
    ] {
        let d = pytorch_copy(name, bin);
        assert_eq!(
            triage::models::weights::Weights::find(&d).expect("weights"),
            triage::models::weights::Weights::Pytorch(vec![d.join("pytorch_model.bin")])
        );
        let (model, exp) = load_at(name, &d);
        let label = format!("{name} from {bin}");
        check_numerics_of(&label, &model, &exp);
        check_generate_of(&label, &model, &exp);
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[test]
fn separate_vocabularies_match_python() {
    let name = "marian_separate";
    assert!(dir(name).join("target_vocab.json").exists());
    assert!(!dir(name).join("model.safetensors").exists());
    let (model, exp) = load(name);
    assert_eq!(model.kind(), "marian");
    check_tokenizer_of(name, &model, &exp);
    check_numerics_of(name, &model, &exp);
    check_generate_of(name, &model, &exp);
    // Python's special ids (from the source vocabulary) are skipped in the text.
    let specials = ids(&exp["all_special_ids"]);
    let text = model.decode(&specials).expect("decode");
    assert_eq!(text, "");
}
