//! PyTorch `pytorch_model.bin` weights: an encoder read from one (tests/fixtures/encoder_pt,
//! made by scripts/make_seq2seq_pt_fixtures.py) embeds as transformers does; the one-time
//! conversion to model.safetensors keeps every value, writes tied weights once and generates the
//! same ids; bad files are errors naming the file, never a panic.

use candle_core::Device;
use std::io::Write;
use std::path::{Path, PathBuf};
use triage::models::pth;
use triage::models::weights::{convert_folder, Weights};
use triage::seq2seq::{GenerateOptions, Seq2Seq};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("triage-pth-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Copy the files of `from` (but `skip`) into `to`.
fn copy_dir(from: &Path, to: &Path, skip: &str) {
    for e in std::fs::read_dir(from).expect("fixture") {
        let p = e.expect("entry").path();
        let f = p.file_name().expect("name");
        if f != skip {
            std::fs::copy(&p, to.join(f)).expect("copy");
        }
    }
}

#[test]
fn encoder_from_pytorch_weights_matches_python() {
    let dir = fixtures().join("encoder_pt");
    let exp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).expect("read"))
            .expect("json");
    let inputs: Vec<Vec<u32>> = serde_json::from_value(exp["inputs"].clone()).expect("inputs");
    let want: Vec<Vec<f32>> =
        serde_json::from_value(exp["embeddings"].clone()).expect("embeddings");
    let refs: Vec<&[u32]> = inputs.iter().map(Vec::as_slice).collect();
    for fast in [None, Some(triage::models::fast::Precision::F32)] {
        let m = triage::models::encoder::Embedder::load_with(&dir, &Device::Cpu, fast)
            .expect("encoder from pytorch_model.bin");
        let got = m.embed_batch(&refs).expect("embed");
        for (r, (g, w)) in got.iter().zip(&want).enumerate() {
            let diff = g
                .iter()
                .zip(w)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(diff < 1e-4, "row {r} ({fast:?}): max diff {diff}");
        }
    }
}

#[test]
fn conversion_keeps_values_and_writes_tied_weights_once() {
    let d = temp("convert");
    copy_dir(&fixtures().join("seq2seq/marian"), &d, "model.safetensors");
    std::fs::copy(
        fixtures().join("seq2seq/pytorch/marian.bin"),
        d.join("pytorch_model.bin"),
    )
    .expect("copy");
    let from_bin = Seq2Seq::load(&d, &Device::Cpu).expect("load from bin");
    let all = pth::load(&d.join("pytorch_model.bin")).expect("read bin");
    // transformers' state dict names the shared embeddings four times, stored once.
    for n in [
        "model.shared.weight",
        "model.encoder.embed_tokens.weight",
        "model.decoder.embed_tokens.weight",
        "lm_head.weight",
    ] {
        assert!(all.contains_key(n), "{n}");
    }
    let out = convert_folder(&d).expect("convert").expect("converted");
    assert_eq!(out, d.join("model.safetensors"));
    assert!(matches!(
        Weights::find(&d).expect("find"),
        Weights::Safetensors(_)
    ));
    let st = candle_core::safetensors::load(&out, &Device::Cpu).expect("safetensors");
    assert!(st.contains_key("model.shared.weight"));
    for alias in [
        "model.encoder.embed_tokens.weight",
        "model.decoder.embed_tokens.weight",
        "lm_head.weight",
    ] {
        assert!(!st.contains_key(alias), "{alias} written twice");
    }
    for (name, t) in &st {
        let a: Vec<f32> = t.flatten_all().and_then(|t| t.to_vec1()).expect("values");
        let b: Vec<f32> = all[name]
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .expect("values");
        assert_eq!(a, b, "{name}");
    }
    // Nothing more to do the second time; the converted folder generates the same ids.
    assert!(convert_folder(&d).expect("again").is_none());
    let from_st = Seq2Seq::load(&d, &Device::Cpu).expect("load converted");
    let inputs = from_bin
        .encode_texts(&["My order has not arrived yet.", "Hi!"], 100)
        .expect("encode");
    let opts = GenerateOptions {
        num_beams: 3,
        max_new_tokens: 10,
        ..Default::default()
    };
    assert_eq!(
        from_bin.generate_ids(&inputs, &opts).expect("gen"),
        from_st.generate_ids(&inputs, &opts).expect("gen")
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A zip holding `archive/data.pkl` = `pickle` (and nothing else), as torch.save lays it out.
fn zip_with_pickle(path: &Path, pickle: &[u8]) {
    let f = std::fs::File::create(path).expect("create");
    let mut z = zip::ZipWriter::new(f);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("archive/data.pkl", opts).expect("entry");
    z.write_all(pickle).expect("write");
    z.finish().expect("finish");
}

/// Where the stored bytes of zip entry `name` start (its local header: 30 bytes, the name, the
/// extra field).
fn data_offset(zip: &[u8], name: &[u8]) -> usize {
    let at = zip
        .windows(name.len() + 1)
        .position(|w| &w[..name.len()] == name && !w[name.len()].is_ascii_digit())
        .expect("entry");
    let header = at - 30;
    let extra = u16::from_le_bytes([zip[header + 28], zip[header + 29]]) as usize;
    at + name.len() + extra
}

fn load_err(folder: &Path) -> String {
    let err = match Seq2Seq::load(folder, &Device::Cpu) {
        Ok(_) => panic!("{} loaded", folder.display()),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("pytorch_model.bin"), "no file named: {err}");
    err
}

#[test]
fn bad_pytorch_files_are_errors_naming_the_file() {
    let d = temp("bad");
    copy_dir(&fixtures().join("seq2seq/marian"), &d, "model.safetensors");
    let bin = d.join("pytorch_model.bin");
    let good = std::fs::read(fixtures().join("seq2seq/pytorch/marian.bin")).expect("read");

    // Not a zip (nor the older format).
    std::fs::write(&bin, b"this is not a PyTorch checkpoint at all").expect("write");
    assert!(load_err(&d).contains("not a PyTorch checkpoint"));
    std::fs::write(&bin, b"").expect("write");
    load_err(&d);

    // A pickle asking for a class outside the tensor whitelist (here os.system, as a
    // malicious checkpoint would): refused before anything is built.
    zip_with_pickle(
        &bin,
        b"\x80\x02}q\x00X\x01\x00\x00\x00wcos\nsystem\nX\x05\x00\x00\x00touchq\x01\x85R\x73.",
    );
    let err = load_err(&d);
    assert!(
        err.contains("os.system") && err.contains("refusing"),
        "{err}"
    );
    // A class that is on no list even though it looks harmless.
    zip_with_pickle(&bin, b"\x80\x02cbuiltins\nset\n)R.");
    assert!(load_err(&d).contains("builtins.set"));

    // Truncated archives: the zip directory is gone, or the last storage is cut.
    for keep in [good.len() / 2, good.len() - 30, 100] {
        std::fs::write(&bin, &good[..keep]).expect("write");
        load_err(&d);
    }
    let legacy = std::fs::read(fixtures().join("seq2seq/pytorch/marian_legacy.bin")).expect("read");
    for keep in [legacy.len() - 1, legacy.len() / 2, 200, 40] {
        std::fs::write(&bin, &legacy[..keep]).expect("write");
        load_err(&d);
    }

    // A damaged byte inside a stored tensor (the shared embeddings): the zip CRC catches it.
    let mut damaged = good.clone();
    let at = data_offset(&good, b"marian/data/1") + 100;
    damaged[at] ^= 0x55;
    std::fs::write(&bin, &damaged).expect("write");
    load_err(&d);

    // A state dict whose tensor reaches past its storage.
    let mut big = Vec::new();
    big.extend_from_slice(b"\x80\x02}q\x00X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n(");
    big.extend_from_slice(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000");
    big.extend_from_slice(b"X\x03\x00\x00\x00cpuK\x04tQK\x00K\x10\x85K\x01\x85\x89)tR\x73.");
    {
        let f = std::fs::File::create(&bin).expect("create");
        let mut z = zip::ZipWriter::new(f);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file("archive/data.pkl", opts).expect("entry");
        z.write_all(&big).expect("write");
        z.start_file("archive/data/0", opts).expect("entry");
        z.write_all(&[0u8; 16]).expect("write");
        z.finish().expect("finish");
    }
    let err = format!("{:#}", pth::read(&bin).err().expect("past the storage"));
    assert!(
        err.contains("tensor w") && err.contains("storage 0"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
