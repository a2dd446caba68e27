//! Air-gapped installs: `triage models bundle` packs local folders (the tiny Marian fixtures, one
//! with PyTorch weights and separate vocabularies) into one file, `triage models install` puts
//! them into an empty hub cache (HF_HOME) with no hub access, and `/v1/translate` then answers
//! through `hf:` sources, HF_HUB_OFFLINE=1. Damaged bundles (checksum mismatch, damaged or
//! unlisted entries, truncation) fail naming the file and install nothing.
//! Its own test binary: it sets process-wide environment variables.

mod common;
use common::post_json;
use serde_json::json;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use triage::config::Config;
use triage::models::bundle::{self, Manifest, MANIFEST};
use triage::models::bundle_install;
use triage::seq2seq::Seq2Seq;
use triage::translate::Pair;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seq2seq")
        .join(name)
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("triage-bundle-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn triage(args: &[&str], hf_home: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(args)
        .env("HF_HOME", hf_home)
        .env("HF_HUB_OFFLINE", "1")
        .env("TRIAGE_HOME", hf_home.join("triage-home"))
        .output()
        .expect("run triage");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const FROM: &str = "test-org/opus-mt-de-en";
const TO: &str = "test-org/opus-mt-tc-en-de";

#[tokio::test]
async fn bundle_install_then_translate_offline() {
    let work = temp("roundtrip");
    let hf_home = work.join("hf");
    let file = work.join("models.bundle");
    let (marian, separate) = (fixture("marian"), fixture("marian_separate"));
    let (ok, log) = triage(
        &[
            "models",
            "bundle",
            marian.to_str().expect("path"),
            separate.to_str().expect("path"),
            "--name",
            FROM,
            "--name",
            &format!("{TO}@v1"),
            "--out",
            file.to_str().expect("path"),
        ],
        &hf_home,
    );
    assert!(ok, "bundle: {log}");
    let (_, manifest) = bundle_install::open(&file).expect("bundle opens");
    assert_eq!(manifest.models.len(), 2);
    let names: Vec<&str> = manifest.models[1]
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    for f in [
        "config.json",
        "pytorch_model.bin",
        "target_vocab.json",
        "target.spm",
    ] {
        assert!(names.contains(&f), "{f} not bundled: {names:?}");
    }
    assert!(!names.contains(&"expected.json"), "{names:?}");

    let (ok, log) = triage(
        &["models", "install", file.to_str().expect("path")],
        &hf_home,
    );
    assert!(ok, "install: {log}");
    assert!(log.contains("converted"), "{log}");
    assert!(log.contains("loads as a marian model"), "{log}");
    let cache = hf_home.join("hub");
    let repo = bundle_install::repo_dir(&cache, TO);
    let commit = std::fs::read_to_string(repo.join("refs/v1")).expect("refs/v1");
    assert_eq!(commit, manifest.models[1].commit);
    let snap = repo.join("snapshots").join(&commit);
    assert!(
        snap.join("model.safetensors").is_file(),
        "converted at install"
    );
    assert!(bundle_install::repo_dir(&cache, FROM)
        .join("refs/main")
        .is_file());
    // Installing the same bundle again replaces the snapshots.
    let (ok, log) = triage(
        &["models", "install", file.to_str().expect("path")],
        &hf_home,
    );
    assert!(ok, "reinstall: {log}");

    // A cache entry triage did not write (as Python's huggingface_hub leaves it): PyTorch
    // weights only. It is read as it is, nothing written into it.
    let py = bundle_install::repo_dir(&cache, "py-org/bin-only");
    let py_snap = py.join("snapshots/0123456789abcdef0123456789abcdef01234567");
    std::fs::create_dir_all(&py_snap).expect("snapshot");
    for e in std::fs::read_dir(&separate).expect("fixture") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, py_snap.join(p.file_name().expect("name"))).expect("copy");
    }
    std::fs::create_dir_all(py.join("refs")).expect("refs");
    std::fs::write(
        py.join("refs/main"),
        "0123456789abcdef0123456789abcdef01234567",
    )
    .expect("ref");

    // The server, offline, on the installed cache.
    std::env::set_var("HF_HUB_OFFLINE", "1");
    std::env::set_var("HF_HOME", &hf_home);
    let mut cfg = Config::default();
    cfg.models.retain(|m| m.name == "multilingual-e5-small");
    let pair = |s: &str, t: &str, model: String| Pair {
        source: s.into(),
        target: t.into(),
        model,
    };
    cfg.translate.pairs = vec![
        pair("de", "en", format!("hf:{FROM}")),
        pair("en", "de", format!("hf:{TO}@v1")),
        pair("en", "fr", "hf:test-org/not-installed".into()),
        pair("en", "it", "hf:py-org/bin-only".into()),
    ];
    cfg.translate.num_beams = 2;
    cfg.translate.max_new_tokens = 12;
    cfg.validate().expect("config");
    let metrics = Arc::new(triage::metrics::Metrics::default());
    let heads = triage::heads::registry::HeadRegistry::load(&cfg.intent, &cfg.emotion, &cfg.models)
        .expect("heads");
    let app = triage::app(triage::AppState::new(cfg, metrics, heads));

    let (s, v) = post_json(
        &app,
        "/v1/translate",
        json!({"texts": ["My order has not arrived yet."], "source": "en", "target": "de"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"][0]["model"], json!([format!("hf:{TO}@v1")]));
    let m = Seq2Seq::load(&snap, &candle_core::Device::Cpu).expect("installed model");
    let mut opts = m.default_options();
    opts.num_beams = 2;
    opts.max_new_tokens = opts.max_new_tokens.min(12);
    let want = m
        .generate(&["My order has not arrived yet."], &opts)
        .expect("generate");
    assert_eq!(v["results"][0]["text"], want[0].trim());
    // The other installed model (safetensors, shared vocabulary).
    let (s, v) = post_json(
        &app,
        "/v1/translate",
        json!({"texts": ["Hallo."], "source": "de", "target": "en"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // The PyTorch-only cache entry translates like the installed (converted) copy.
    let (s, v2) = post_json(
        &app,
        "/v1/translate",
        json!({"texts": ["My order has not arrived yet."], "source": "en", "target": "it"}),
    )
    .await;
    assert_eq!(s, 200, "{v2}");
    assert_eq!(v2["results"][0]["text"], want[0].trim());
    assert!(!py_snap.join("model.safetensors").exists());
    // Not in the bundle: 503 telling how to bring it in.
    let (s, v) = post_json(
        &app,
        "/v1/translate",
        json!({"texts": ["Hello."], "source": "en", "target": "fr"}),
    )
    .await;
    assert_eq!(s, 503, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("triage models install"),
        "{v}"
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// Rewrite a bundle with `edit` applied to its manifest and `extra` entries added.
fn rewrite(src: &Path, dst: &Path, edit: impl Fn(&mut Manifest), extra: &[(&str, &[u8])]) {
    let mut zin = zip::ZipArchive::new(std::fs::File::open(src).expect("open")).expect("zip");
    let mut zout = zip::ZipWriter::new(std::fs::File::create(dst).expect("create"));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..zin.len() {
        let mut e = zin.by_index(i).expect("entry");
        let name = e.name().expect("name").to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read");
        if name == MANIFEST {
            let mut m: Manifest = serde_json::from_slice(&data).expect("manifest");
            edit(&mut m);
            data = serde_json::to_vec(&m).expect("json");
        }
        zout.start_file(name, opts).expect("entry");
        zout.write_all(&data).expect("write");
    }
    for (name, data) in extra {
        zout.start_file(*name, opts).expect("entry");
        zout.write_all(data).expect("write");
    }
    zout.finish().expect("finish");
}

fn install_err(file: &Path, cache: &Path) -> String {
    let err = match bundle_install::install(file, cache) {
        Ok(_) => panic!("{} installed", file.display()),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains(&file.display().to_string()),
        "the bundle is not named: {err}"
    );
    let placed = std::fs::read_dir(cache)
        .map(|d| {
            d.flatten()
                .flat_map(|e| {
                    std::fs::read_dir(e.path().join("snapshots"))
                        .into_iter()
                        .flatten()
                })
                .count()
        })
        .unwrap_or(0);
    assert_eq!(placed, 0, "something was installed after: {err}");
    err
}

#[test]
fn damaged_bundles_install_nothing() {
    let work = temp("damaged");
    let good = work.join("good.bundle");
    let models = bundle::sources_for(
        &[fixture("marian").display().to_string()],
        &[FROM.to_string()],
        &work,
    )
    .expect("sources");
    bundle::write(&models, &good).expect("write bundle");
    let cache = work.join("cache");

    // A checksum that does not match: the manifest says otherwise than the file.
    let bad = work.join("checksum.bundle");
    rewrite(
        &good,
        &bad,
        |m| {
            let f = &mut m.models[0].files[1];
            let first = if f.sha256.starts_with('0') { "1" } else { "0" };
            f.sha256.replace_range(0..1, first);
        },
        &[],
    );
    let err = install_err(&bad, &cache);
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(err.contains(FROM), "{err}");

    // A flipped byte inside a file: the zip CRC (or the sha256) catches it.
    let mut bytes = std::fs::read(&good).expect("read");
    let name = b"models/0/model.safetensors";
    let at = bytes
        .windows(name.len())
        .position(|w| w == name)
        .expect("entry");
    bytes[at + name.len() + 2000] ^= 0x01;
    let flipped = work.join("flipped.bundle");
    std::fs::write(&flipped, &bytes).expect("write");
    let err = install_err(&flipped, &cache);
    assert!(err.contains("model.safetensors"), "{err}");

    // Truncated, and not a bundle at all.
    let good_bytes = std::fs::read(&good).expect("read");
    let cut = work.join("cut.bundle");
    std::fs::write(&cut, &good_bytes[..good_bytes.len() / 2]).expect("write");
    assert!(install_err(&cut, &cache).contains("truncated"));
    let junk = work.join("junk.bundle");
    std::fs::write(&junk, b"nothing to see").expect("write");
    install_err(&junk, &cache);

    // An entry the manifest does not list, and a path that leaves the snapshot.
    let unlisted = work.join("unlisted.bundle");
    rewrite(
        &good,
        &unlisted,
        |_| {},
        &[("models/0/extra.py", b"print(1)")],
    );
    assert!(install_err(&unlisted, &cache).contains("not listed"));
    let escape = work.join("escape.bundle");
    rewrite(
        &good,
        &escape,
        |m| m.models[0].files[0].path = "../../evil.json".into(),
        &[],
    );
    install_err(&escape, &cache);
    assert!(!work.join("evil.json").exists());

    // The good one installs.
    let done = bundle_install::install(&good, &cache).expect("install");
    assert_eq!(done[0].source, format!("hf:{FROM}@main"));
    assert!(done[0].snapshot.join("model.safetensors").is_file());
    let _ = std::fs::remove_dir_all(&work);
}
