//! The fast CPU encoder path against the candle reference path and the Python fixtures: f32
//! to float rounding (plain and fine-tuned branches, mixed lengths in one batch), bf16 within
//! the cosine it is documented to keep.

mod common;
use candle_core::Device;
use common::*;
use triage::config::Overlong;
use triage::models::encoder::{Embedder, TextPrep};
use triage::models::fast::Precision;

fn texts() -> Vec<String> {
    let mut t: Vec<String> = [
        "Where is my refund? I returned the shoes two weeks ago.",
        "我的订单还没有到，已经等了十天了。",
        "ok",
        "The app crashes every time I try to upload a photo of the receipt, and support has not answered my three emails about it.",
        "Bonjour, je voudrais annuler mon abonnement.",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    t.push("My card was charged twice for the same order. ".repeat(20));
    t
}

fn ids(dir: &std::path::Path) -> Vec<Vec<u32>> {
    let prep = TextPrep::load(dir, "query: ", 512).unwrap();
    texts()
        .iter()
        .map(|s| prep.prepare(s, Overlong::Truncate).unwrap().unwrap().ids)
        .collect()
}

#[test]
fn fast_f32_matches_the_reference_path() {
    let Some(dir) = pack_model("multilingual-e5-small") else {
        return;
    };
    let ids = ids(&dir);
    let refs: Vec<&[u32]> = ids.iter().map(|v| v.as_slice()).collect();
    let slow = Embedder::load_with(&dir, &Device::Cpu, None).unwrap();
    let fast = Embedder::load_with(&dir, &Device::Cpu, Some(Precision::F32)).unwrap();
    assert_eq!(fast.precision(), "f32");
    let want = slow.embed_batch(&refs).unwrap();
    let got = fast.embed_batch(&refs).unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let d = max_abs_diff(g, w);
        eprintln!("text {i} ({} tokens): max abs diff {d:.2e}", refs[i].len());
        assert!(
            d < 2e-5,
            "text {i}: fast f32 differs from the reference by {d}"
        );
    }
    // One at a time equals the batch (no padding either way).
    for (i, r) in refs.iter().enumerate() {
        let one = fast.embed_batch(&[r]).unwrap().remove(0);
        assert!(
            max_abs_diff(&one, &got[i]) < 1e-5,
            "text {i}: batched != single"
        );
    }
}

#[test]
fn fast_branches_match_the_reference_branches() {
    let Some(dir) = pack_model("multilingual-e5-small") else {
        return;
    };
    let head = triage::heads::registry::load_head("builtin:banking77").unwrap();
    let t = head.meta.tuned_layers.clone().unwrap();
    let layers = head.layers.as_ref().unwrap();
    let ids = ids(&dir);
    let refs: Vec<&[u32]> = ids.iter().map(|v| v.as_slice()).collect();
    let wants_owned: Vec<Vec<usize>> = (0..refs.len())
        .map(|i| match i % 3 {
            0 => vec![1, 0],
            1 => vec![1],
            _ => vec![0],
        })
        .collect();
    let wants: Vec<&[usize]> = wants_owned.iter().map(|v| v.as_slice()).collect();
    let mut outs = Vec::new();
    for p in [None, Some(Precision::F32)] {
        let mut e = Embedder::load_with(&dir, &Device::Cpu, p).unwrap();
        let b = triage::models::branch::Branch::from_bytes(
            layers,
            e.model(),
            t.first,
            t.count,
            &Device::Cpu,
        )
        .unwrap();
        assert_eq!(e.add_branch(b).unwrap(), 1);
        outs.push(e.branches_batch(&refs, &wants).unwrap());
    }
    for (i, (g, w)) in outs[1].iter().zip(&outs[0]).enumerate() {
        assert_eq!(g.len(), w.len());
        for (a, b) in g.iter().zip(w) {
            let d = max_abs_diff(a, b);
            assert!(d < 2e-5, "text {i}: branch embedding differs by {d}");
        }
    }
}

#[test]
fn bf16_keeps_cosine_with_the_python_reference() {
    let Some(dir) = pack_model("multilingual-e5-small") else {
        return;
    };
    if !triage::models::fast::bf16::supported() {
        eprintln!("skipped: this CPU has no AVX-512 BF16");
        return;
    }
    let fx = fixture("e5_hf.json");
    let prep = TextPrep::load(&dir, fx["prefix"].as_str().unwrap(), 512).unwrap();
    let emb = Embedder::load_with(&dir, &Device::Cpu, Some(Precision::Bf16)).unwrap();
    assert_eq!(emb.precision(), "bf16");
    let mut worst = 1.0f32;
    for (i, s) in fx["sentences"].as_array().unwrap().iter().enumerate() {
        let ids = prep
            .prepare(s.as_str().unwrap(), Overlong::Reject)
            .unwrap()
            .unwrap()
            .ids;
        let got = emb.embed_batch(&[ids.as_slice()]).unwrap().remove(0);
        let c = cosine(&got, &floats(&fx["embeddings"][i]));
        eprintln!("sentence {i}: bf16 cosine {c:.6}");
        worst = worst.min(c);
    }
    assert!(worst >= 0.9999, "bf16 cosine {worst} < 0.9999");
}

#[test]
fn bf16_keeps_cosine_with_f32_on_long_texts() {
    // bf16 (AMX attention where the CPU has it) against the fast f32 path on the same ids: short,
    // ~130-token and ~250-token texts, one batch, and every one at least 0.9999 (issue 23).
    let Some(dir) = pack_model("multilingual-e5-small") else {
        return;
    };
    if !triage::models::fast::bf16::supported() {
        eprintln!("skipped: this CPU has no AVX-512 BF16");
        return;
    }
    let mut ids = ids(&dir);
    let prep = TextPrep::load(&dir, "query: ", 512).unwrap();
    for s in [
        "I ordered a blue jacket three weeks ago and the tracking page still says the parcel is in the warehouse; I wrote twice and nobody answered, so please either ship it this week or refund the full amount to my card. ".repeat(3),
        "Die App stürzt ab, wenn ich die Rechnung hochladen will. ".repeat(12),
    ] {
        ids.push(prep.prepare(&s, Overlong::Truncate).unwrap().unwrap().ids);
    }
    let refs: Vec<&[u32]> = ids.iter().map(|v| v.as_slice()).collect();
    assert!(refs.iter().filter(|r| r.len() >= 128).count() >= 3);
    let f32e = Embedder::load_with(&dir, &Device::Cpu, Some(Precision::F32)).unwrap();
    let bf16e = Embedder::load_with(&dir, &Device::Cpu, Some(Precision::Bf16)).unwrap();
    let want = f32e.embed_batch(&refs).unwrap();
    let got = bf16e.embed_batch(&refs).unwrap();
    let mut worst = 1.0f32;
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let c = cosine(g, w);
        eprintln!(
            "text {i} ({} tokens): bf16 vs f32 cosine {c:.6}",
            refs[i].len()
        );
        worst = worst.min(c);
    }
    assert!(worst >= 0.9999, "bf16 vs f32 cosine {worst} < 0.9999");
}
