//! SentencePiece `.model` files turned into a `tokenizers::Tokenizer` (Marian folders that ship
//! `source.spm` + `vocab.json` but no `tokenizer.json`), with a small hand-written protobuf reader.
//!
//! The result reproduces Python's `MarianTokenizer` (sentencepiece + `vocab.json`):
//! * the normalizer is the model's own `precompiled_charsmap` followed by SentencePiece's
//!   `remove_extra_whitespaces` (trim, collapse runs of spaces), the pre-tokenizer is `Metaspace`
//!   (`▁`, prefix space), the model is `Unigram` with the source pieces' scores;
//! * ids are Marian's `vocab.json` ids: the Unigram vocabulary is laid out in `vocab.json` order.
//!   Entries of `vocab.json` that are not source pieces (target-only pieces) get an unmatchable
//!   placeholder string (so the source segmentation is unchanged) that the decoder strips again;
//!   source pieces missing from `vocab.json` get ids past the end and, like unknown spans, are
//!   mapped through `vocab.json` by their surface by [`MarianSpm::encode`] (that is what Python
//!   does: `vocab.get(piece, unk)`);
//! * `</s>` is appended; `</s>`, `<unk>`, `<pad>` and `>>xx<<` language codes are special tokens;
//! * with separate vocabularies (`separate_vocabs`), `vocab.json` is the source vocabulary and
//!   output ids are decoded by [`TargetVocab`] (`target_vocab.json` + `target.spm`).

pub use super::spm_model::{parse_model, Piece, PieceType, SpmModel};
use super::spm_target::{separate_vocabs, TargetVocab};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::{Precompiled, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, DecoderWrapper, NormalizerWrapper, Tokenizer};

/// Prefix that no normalized input contains: marks `vocab.json` entries the source model lacks.
const PLACEHOLDER: &str = "\u{F8FF}\u{F8FF}not-a-source-piece\u{F8FF}";

/// Marian tokenizer built from `source.spm` + `vocab.json`.
pub struct MarianSpm {
    pub tokenizer: Tokenizer,
    vocab: HashMap<String, u32>,
    unk: u32,
    n_vocab: u32,
    /// Separate vocabularies: generated ids are target ids, decoded by this.
    target: Option<Box<TargetVocab>>,
}

fn is_language_code(s: &str) -> bool {
    s.len() > 4 && s.starts_with(">>") && s.ends_with("<<")
}

impl MarianSpm {
    /// Build from `dir/source.spm` and `dir/vocab.json`; with `separate_vocabs`, ids are decoded
    /// with `dir/target_vocab.json` + `dir/target.spm` ([`TargetVocab`]).
    pub fn load(dir: &Path) -> Result<MarianSpm> {
        let separate = separate_vocabs(dir)?;
        let spm_path = dir.join("source.spm");
        let bytes =
            std::fs::read(&spm_path).with_context(|| format!("reading {}", spm_path.display()))?;
        let model =
            parse_model(&bytes).with_context(|| format!("parsing {}", spm_path.display()))?;
        let vocab_path = dir.join("vocab.json");
        let text = std::fs::read_to_string(&vocab_path)
            .with_context(|| format!("reading {}", vocab_path.display()))?;
        let vocab: HashMap<String, u32> = serde_json::from_str(&text)
            .with_context(|| format!("parsing {}", vocab_path.display()))?;
        let mut m = Self::build(&model, vocab)?;
        if separate {
            m.target = Some(Box::new(TargetVocab::load(dir, &m.vocab)?));
        }
        Ok(m)
    }

    pub fn build(model: &SpmModel, vocab: HashMap<String, u32>) -> Result<MarianSpm> {
        if model.model_type != 1 {
            bail!(
                "only unigram SentencePiece models are supported (model_type {})",
                model.model_type
            );
        }
        if model.treat_whitespace_as_suffix {
            bail!("treat_whitespace_as_suffix SentencePiece models are not supported");
        }
        let Some(&unk) = vocab.get("<unk>") else {
            bail!("vocab.json has no <unk>")
        };
        let Some(&eos) = vocab.get("</s>") else {
            bail!("vocab.json has no </s>")
        };
        // The ids index a table: a huge id (a corrupt file) must not size it. Real files number
        // their entries 0..N; gaps are tolerated up to twice the entries.
        let max_id = vocab.values().max().map_or(0, |&m| m as usize);
        if max_id >= vocab.len().saturating_mul(2) {
            bail!(
                "vocab.json: id {max_id} is out of range for {} entries",
                vocab.len()
            );
        }
        let n = max_id + 1;
        let n_vocab = n as u32;
        let mut entries: Vec<Option<(String, f64)>> = vec![None; n];
        let mut specials = Vec::new();
        let mut user_defined = Vec::new();
        let source: HashMap<&str, &Piece> =
            model.pieces.iter().map(|p| (p.piece.as_str(), p)).collect();
        for (piece, &id) in &vocab {
            let entry = match source.get(piece.as_str()) {
                Some(p) if p.kind == PieceType::Normal => (piece.clone(), f64::from(p.score)),
                _ if piece == "</s>" || piece == "<unk>" || piece == "<pad>" => {
                    specials.push(piece.clone());
                    (piece.clone(), 0.0)
                }
                _ if is_language_code(piece) => {
                    specials.push(piece.clone());
                    (piece.clone(), 0.0)
                }
                Some(p) if p.kind == PieceType::UserDefined => {
                    user_defined.push(piece.clone());
                    (piece.clone(), 0.0)
                }
                _ => (format!("{PLACEHOLDER}{piece}"), 0.0),
            };
            entries[id as usize] = Some(entry);
        }
        let mut vocab_scores: Vec<(String, f64)> = entries
            .into_iter()
            .enumerate()
            .map(|(i, e)| e.unwrap_or_else(|| (format!("{PLACEHOLDER}#{i}"), 0.0)))
            .collect();
        // Source pieces that vocab.json lacks still take part in the segmentation.
        for p in &model.pieces {
            if p.kind == PieceType::Normal && !vocab.contains_key(&p.piece) {
                vocab_scores.push((p.piece.clone(), f64::from(p.score)));
            }
        }
        let unigram = Unigram::from(vocab_scores, Some(unk as usize), model.byte_fallback)
            .map_err(|e| anyhow::anyhow!("building the unigram model: {e}"))?;
        let mut tokenizer = Tokenizer::new(unigram);

        let mut norms: Vec<NormalizerWrapper> = Vec::new();
        if !model.precompiled_charsmap.is_empty() {
            check_charsmap(&model.precompiled_charsmap)?;
            let pre = Precompiled::from(&model.precompiled_charsmap)
                .map_err(|e| anyhow::anyhow!("precompiled_charsmap: {e}"))?;
            norms.push(pre.into());
        }
        if model.remove_extra_whitespaces {
            norms.push(replace_regex("^ +| +$", "")?.into());
            norms.push(replace_regex(" {2,}", " ")?.into());
        }
        tokenizer
            .with_normalizer(Some(NormalizerSequence::new(norms)))
            .map_err(|e| anyhow::anyhow!("normalizer: {e}"))?;
        let prepend = if model.add_dummy_prefix {
            PrependScheme::Always
        } else {
            PrependScheme::Never
        };
        tokenizer.with_pre_tokenizer(Some(Metaspace::new('▁', prepend, true)));
        let strip: DecoderWrapper = Replace::new(PLACEHOLDER, "")
            .map_err(|e| anyhow::anyhow!("decoder: {e}"))?
            .into();
        let meta: DecoderWrapper = Metaspace::new('▁', prepend, true).into();
        tokenizer.with_decoder(Some(DecoderSequence::new(vec![strip, meta])));
        let post = TemplateProcessing::builder()
            .try_single("$A </s>")
            .map_err(|e| anyhow::anyhow!("post-processor: {e}"))?
            .special_tokens(vec![("</s>", eos)])
            .build()
            .map_err(|e| anyhow::anyhow!("post-processor: {e}"))?;
        tokenizer.with_post_processor(Some(post));
        specials.sort_by_key(|s| vocab.get(s).copied().unwrap_or(u32::MAX));
        tokenizer
            .add_special_tokens(
                specials
                    .iter()
                    .map(|s| AddedToken::from(s.clone(), true).normalized(false)),
            )
            .map_err(|e| anyhow::anyhow!("special tokens: {e}"))?;
        if !user_defined.is_empty() {
            tokenizer
                .add_tokens(
                    user_defined
                        .iter()
                        .map(|s| AddedToken::from(s.clone(), false).normalized(false)),
                )
                .map_err(|e| anyhow::anyhow!("user-defined pieces: {e}"))?;
        }
        Ok(MarianSpm {
            tokenizer,
            vocab,
            unk,
            n_vocab,
            target: None,
        })
    }

    /// Marian ids of `text` with `</s>` appended.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
        Ok(enc
            .get_ids()
            .iter()
            .zip(enc.get_tokens())
            .map(|(&id, tok)| {
                if id == self.unk || id >= self.n_vocab {
                    // Python looks the sentencepiece piece (an unknown span's surface) up in vocab.json.
                    self.vocab.get(tok).copied().unwrap_or(self.unk)
                } else {
                    id
                }
            })
            .collect())
    }

    /// Text of `ids`, trimmed like `MarianTokenizer.convert_tokens_to_string`.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        if let Some(t) = &self.target {
            return Ok(t.decode(ids, skip_special_tokens));
        }
        let text = self
            .tokenizer
            .decode(ids, skip_special_tokens)
            .map_err(|e| anyhow::anyhow!("decoding: {e}"))?;
        Ok(text.trim().to_string())
    }
}

/// Check a `precompiled_charsmap` (`u32` trie size in bytes, the double-array trie as `u32`
/// units, then the NUL-separated replacement strings) the way `spm_precompiled` walks it: its
/// lookups index the trie and the strings without bounds checks, so a corrupt map would panic
/// on every text normalised. Every state reachable from the root must keep each of its 255
/// children inside the trie, and every leaf must point at a character boundary of the strings.
fn check_charsmap(map: &[u8]) -> Result<()> {
    let bad = |why: &str| anyhow::anyhow!("precompiled_charsmap: {why}");
    let (size, rest) = map
        .split_first_chunk::<4>()
        .ok_or_else(|| bad("truncated"))?;
    let size = u32::from_le_bytes(*size) as usize / 4;
    if rest.len() / 4 < size {
        return Err(bad("the trie runs past the end"));
    }
    let (trie, strings) = rest.split_at(size * 4);
    let unit = |i: usize| -> usize {
        u32::from_le_bytes([
            trie[4 * i],
            trie[4 * i + 1],
            trie[4 * i + 2],
            trie[4 * i + 3],
        ]) as usize
    };
    let strings = std::str::from_utf8(strings).map_err(|_| bad("strings are not UTF-8"))?;
    // The unit layout of `spm_precompiled` (Darts-clone).
    let offset = |u: usize| (u >> 10) << ((u & (1 << 9)) >> 6);
    let label = |u: usize| u & ((1 << 31) | 0xFF);
    let has_leaf = |u: usize| (u >> 8) & 1 == 1;
    let value = |u: usize| u & ((1 << 31) - 1);
    if size == 0 {
        return Err(bad("empty trie"));
    }
    let mut seen = std::collections::HashSet::new();
    let mut todo = vec![offset(unit(0))];
    while let Some(pos) = todo.pop() {
        if !seen.insert(pos) {
            continue;
        }
        for c in 1..=255usize {
            let child = pos ^ c;
            if child >= size {
                return Err(bad("the trie points past its end"));
            }
            let u = unit(child);
            if label(u) != c {
                continue;
            }
            let next = child ^ offset(u);
            if has_leaf(u) && (next >= size || !strings.is_char_boundary(value(unit(next)))) {
                return Err(bad("a replacement points outside the strings"));
            }
            todo.push(next);
        }
    }
    Ok(())
}

fn replace_regex(pattern: &str, content: &str) -> Result<Replace> {
    Replace::new(
        tokenizers::normalizers::replace::ReplacePattern::Regex(pattern.to_string()),
        content,
    )
    .map_err(|e| anyhow::anyhow!("normalizer regex {pattern:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_rejects_truncated_input() {
        // field 1, length-delimited, claims 10 bytes but has 2
        assert!(parse_model(&[0x0a, 10, 1, 2]).is_err());
        assert!(parse_model(&[]).is_err());
        assert!(parse_model(&[0x80]).is_err());
    }

    #[test]
    fn parses_a_piece() {
        // pieces { piece: "ab" score: 1.5 type: NORMAL }
        let score = 1.5f32.to_le_bytes();
        let mut piece = vec![0x0a, 2, b'a', b'b', 0x15];
        piece.extend_from_slice(&score);
        piece.extend_from_slice(&[0x18, 1]);
        let mut model = vec![0x0a, piece.len() as u8];
        model.extend_from_slice(&piece);
        let m = parse_model(&model).unwrap();
        assert_eq!(m.pieces.len(), 1);
        assert_eq!(m.pieces[0].piece, "ab");
        assert_eq!(m.pieces[0].score, 1.5);
        assert_eq!(m.pieces[0].kind, PieceType::Normal);
        assert!(m.add_dummy_prefix && m.remove_extra_whitespaces);
    }
}
