//! Accuracy and speed of whatlang vs lingua on short customer messages: the committed
//! multilingual fixture plus short Chinese/English texts from ../shared/data when present.

use lingua::{Language, LanguageDetectorBuilder};
use std::time::Instant;

fn whatlang_code(t: &str) -> String {
    use whatlang::Lang::*;
    match whatlang::detect_lang(t) {
        Some(Cmn) => "zh", Some(Eng) => "en", Some(Deu) => "de", Some(Fra) => "fr", Some(Spa) => "es",
        Some(Por) => "pt", Some(Ita) => "it", Some(Rus) => "ru", Some(Jpn) => "ja", Some(Kor) => "ko",
        Some(Ara) => "ar", Some(_) => "other", None => "none",
    }
    .into()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (fixture, data) = (&args[1], &args[2]);
    let mut rows: Vec<(String, String, &str)> = Vec::new();
    for line in std::fs::read_to_string(fixture).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        rows.push((v["text"].as_str().unwrap().into(), v["lang"].as_str().unwrap().into(), "fixture (11 languages)"));
    }
    let mut add = |path: &str, lang: &str, set: &'static str, key: &str| {
        if let Ok(text) = std::fs::read_to_string(format!("{data}/{path}")) {
            for line in text.lines().take(600) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                    rows.push((v[key].as_str().unwrap_or_default().into(), lang.into(), set));
                }
            }
        }
    };
    add("smp2017.dev.eval.jsonl", "zh", "zh short queries (SMP2017 dev)", "text");
    add("banking77.dev.jsonl", "en", "en short queries (BANKING77 dev)", "text");
    add("nlpcc2013.dev.eval.jsonl", "zh", "zh weibo posts (NLPCC2013 dev)", "text");
    let langs = [Language::English, Language::Chinese, Language::German, Language::French, Language::Spanish,
        Language::Portuguese, Language::Italian, Language::Russian, Language::Japanese, Language::Korean, Language::Arabic];
    let lingua = LanguageDetectorBuilder::from_languages(&langs).build();
    let lingua_code = |t: &str| -> String {
        lingua.detect_language_of(t).map(|l| l.iso_code_639_1().to_string()).unwrap_or_else(|| "none".into())
    };
    let detectors: [(&str, &dyn Fn(&str) -> String); 2] = [("whatlang", &whatlang_code), ("lingua", &lingua_code)];
    let mut sets: Vec<&str> = rows.iter().map(|r| r.2).collect();
    sets.dedup();
    for (name, f) in detectors {
        let t = Instant::now();
        let preds: Vec<String> = rows.iter().map(|r| f(&r.0)).collect();
        let us = t.elapsed().as_secs_f64() * 1e6 / rows.len() as f64;
        println!("{name}: {us:.0} us/text");
        for set in &sets {
            let idx: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].2 == *set).collect();
            let ok = idx.iter().filter(|&&i| preds[i] == rows[i].1).count();
            let wrong: Vec<String> = idx.iter().filter(|&&i| preds[i] != rows[i].1).take(4)
                .map(|&i| format!("{:?}->{}", rows[i].0.chars().take(20).collect::<String>(), preds[i])).collect();
            println!("  {set:<34} {:>5.1}% of {:>4}  e.g. {}", 100.0 * ok as f64 / idx.len() as f64, idx.len(), wrong.join(", "));
        }
    }
}
