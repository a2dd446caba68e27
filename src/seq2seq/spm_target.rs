//! The target side of a Marian tokenizer with separate vocabularies (`separate_vocabs: true`,
//! as the opus-mt-tc models): generated ids are `target_vocab.json` ids and are turned into text
//! the way transformers' `MarianTokenizer` does it, with the target SentencePiece model
//! (`target.spm`): id -> piece (`target_vocab.json`, else the `target.spm` piece of that
//! index), special tokens skipped, runs of pieces joined like SentencePiece's `decode_pieces`
//! (unknown pieces kept as they are, `<unk>` as " ⁇ ", control pieces dropped, byte pieces
//! joined as UTF-8, the first piece's `▁` dropped), `▁` read as a space, the result trimmed.
//!
//! Skipped as special: `</s>`, `<unk>` and `<pad>` by their source (`vocab.json`) ids, which is
//! what Python compares against, and by their target ids too, so that a target `<pad>` whose id
//! differs from the source one never shows up as text (Python would print "<pad>").

use super::spm_model::{parse_model, PieceType, SpmModel};
use anyhow::{bail, Context, Result};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Python's `all_special_tokens` of a MarianTokenizer.
const SPECIALS: [&str; 3] = ["</s>", "<unk>", "<pad>"];
/// SentencePiece's surface for `<unk>`.
const UNK_SURFACE: &str = " \u{2047} ";

pub struct TargetVocab {
    /// `target_vocab.json`: id -> piece.
    pieces: Vec<Option<String>>,
    spm: SpmModel,
    /// piece -> index in `target.spm`.
    spm_ids: HashMap<String, usize>,
    skip: HashSet<u32>,
}

impl TargetVocab {
    /// `dir/target_vocab.json` + `dir/target.spm`; `source_vocab` is `vocab.json`.
    pub fn load(dir: &Path, source_vocab: &HashMap<String, u32>) -> Result<TargetVocab> {
        let path = dir.join("target_vocab.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (separate_vocabs is set: the target vocabulary is needed)",
                path.display()
            )
        })?;
        let vocab: HashMap<String, u32> =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let max_id = vocab.values().max().map_or(0, |&m| m as usize);
        if vocab.is_empty() || max_id >= vocab.len().saturating_mul(2) {
            bail!(
                "{}: id {max_id} is out of range for {} entries",
                path.display(),
                vocab.len()
            );
        }
        let mut pieces = vec![None; max_id + 1];
        for (p, &id) in &vocab {
            pieces[id as usize] = Some(p.clone());
        }
        let spm_path = dir.join("target.spm");
        let bytes =
            std::fs::read(&spm_path).with_context(|| format!("reading {}", spm_path.display()))?;
        let spm = parse_model(&bytes).with_context(|| format!("parsing {}", spm_path.display()))?;
        let spm_ids = spm
            .pieces
            .iter()
            .enumerate()
            .map(|(i, p)| (p.piece.clone(), i))
            .collect();
        let skip = SPECIALS
            .iter()
            .flat_map(|s| [source_vocab.get(*s), vocab.get(*s)])
            .flatten()
            .copied()
            .collect();
        Ok(TargetVocab {
            pieces,
            spm,
            spm_ids,
            skip,
        })
    }

    fn token(&self, id: u32) -> &str {
        let i = id as usize;
        match self.pieces.get(i) {
            Some(Some(p)) => p,
            _ => self.spm.pieces.get(i).map_or("<unk>", |p| p.piece.as_str()),
        }
    }

    /// Text of target ids.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> String {
        let mut out = String::new();
        let mut run: Vec<&str> = Vec::new();
        for &id in ids {
            if skip_special_tokens && self.skip.contains(&id) {
                continue;
            }
            let tok = self.token(id);
            if SPECIALS.contains(&tok) {
                out.push_str(&self.decode_pieces(&run));
                out.push_str(tok);
                out.push(' ');
                run.clear();
            } else {
                run.push(tok);
            }
        }
        out.push_str(&self.decode_pieces(&run));
        out.replace('▁', " ").trim().to_string()
    }

    /// SentencePiece's `decode_pieces` with the target model.
    fn decode_pieces(&self, pieces: &[&str]) -> String {
        let mut text = String::new();
        let mut bytes: Vec<u8> = Vec::new();
        let mut bos = true;
        let consume_ws = self.spm.add_dummy_prefix || self.spm.remove_extra_whitespaces;
        for &piece in pieces {
            let known = self.spm_ids.get(piece).map(|&i| &self.spm.pieces[i]);
            if let Some(b) = known
                .filter(|p| p.kind == PieceType::Byte)
                .and_then(|_| byte_of(piece))
            {
                bytes.push(b);
                continue;
            }
            if !bytes.is_empty() {
                let s = String::from_utf8_lossy(&bytes).into_owned();
                bos &= s.is_empty();
                text.push_str(&s);
                bytes.clear();
            }
            let surface = match known.map(|p| p.kind) {
                Some(PieceType::Control) => String::new(),
                Some(PieceType::Unknown) => UNK_SURFACE.to_string(),
                // Not in the model: SentencePiece maps it to <unk> and returns the piece itself.
                None => piece.to_string(),
                Some(_) => {
                    let p = if bos && consume_ws {
                        piece.strip_prefix('▁').unwrap_or(piece)
                    } else {
                        piece
                    };
                    p.replace('▁', " ")
                }
            };
            bos &= surface.is_empty();
            text.push_str(&surface);
        }
        if !bytes.is_empty() {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
        text
    }
}

/// The byte of a `<0xAB>` piece.
fn byte_of(piece: &str) -> Option<u8> {
    let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
    u8::from_str_radix(hex, 16).ok()
}

/// Whether a Marian folder uses separate source/target vocabularies: `separate_vocabs: true` in
/// `tokenizer_config.json` (where transformers reads it) or in `config.json`.
pub fn separate_vocabs(dir: &Path) -> Result<bool> {
    for name in ["tokenizer_config.json", "config.json"] {
        let path = dir.join(name);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if v.get("separate_vocabs")
            .and_then(serde_json::Value::as_bool)
            == Some(true)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_of_byte_pieces() {
        assert_eq!(byte_of("<0x41>"), Some(0x41));
        assert_eq!(byte_of("<0xZZ>"), None);
        assert_eq!(byte_of("A"), None);
    }
}
