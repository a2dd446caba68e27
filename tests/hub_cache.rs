//! `hf:org/name@revision` sources resolve from a Hugging Face hub cache offline (HF_HOME,
//! HF_HUB_OFFLINE=1), by branch and by commit hash, and load a working model.
//! Its own test binary: it sets process-wide environment variables.

mod common;
use common::*;
use triage::models::encoder::Embedder;
use triage::models::source::Source;

#[test]
fn hub_cache_sources_resolve_offline() {
    let Some(pack) = pack_model("all-MiniLM-L6-v2") else {
        return;
    };
    let hf_home = std::env::temp_dir().join(format!("triage-hub-test-{}", std::process::id()));
    let repo = hf_home.join("hub/models--sentence-transformers--all-MiniLM-L6-v2");
    let commit = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf";
    let snap = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::os::unix::fs::symlink(pack.join(f), snap.join(f)).unwrap();
    }
    std::env::set_var("HF_HOME", &hf_home);
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let home = std::path::Path::new("/nonexistent");

    let by_branch = Source::parse("hf:sentence-transformers/all-MiniLM-L6-v2")
        .unwrap()
        .resolve(home)
        .unwrap();
    assert_eq!(by_branch, snap);
    let by_commit = Source::parse(&format!(
        "hf:sentence-transformers/all-MiniLM-L6-v2@{commit}"
    ))
    .unwrap()
    .resolve(home)
    .unwrap();
    assert_eq!(by_commit, snap);
    let missing = Source::parse("hf:org/absent@main")
        .unwrap()
        .resolve(home)
        .unwrap_err();
    assert!(
        format!("{missing:#}").contains("HF_HUB_OFFLINE"),
        "{missing:#}"
    );

    // The cached model works and equals the pack's.
    let a = Embedder::load(&by_branch, &candle_core::Device::Cpu).unwrap();
    let b = Embedder::load(&pack, &candle_core::Device::Cpu).unwrap();
    let ids: &[u32] = &[101, 7592, 2088, 102];
    let (ea, eb) = (
        a.embed_batch(&[ids]).unwrap(),
        b.embed_batch(&[ids]).unwrap(),
    );
    assert!(max_abs_diff(&ea[0], &eb[0]) == 0.0);
    let _ = std::fs::remove_dir_all(&hf_home);
}
