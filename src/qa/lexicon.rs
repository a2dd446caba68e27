//! Forbidden and sensitive words: every word of every lexicon item in one Aho-Corasick automaton
//! over folded text (`normalize.rs`), so one pass finds them all whatever their evasions. A word
//! in a spaced script (English) only counts at word edges (`ass` is not found in `pass`); Chinese
//! words count anywhere.

use super::normalize::{folded, spaced_script};
use aho_corasick::{AhoCorasick, MatchKind};
use anyhow::{bail, Result};

/// One word found: its item, the word as listed, and where it was written (character offsets
/// into the text, end exclusive), evasions included.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub item: usize,
    pub word: String,
    pub start: usize,
    pub end: usize,
}

struct Word {
    item: usize,
    word: String,
    spaced: bool,
}

pub struct Lexicon {
    ac: Option<AhoCorasick>,
    words: Vec<Word>,
}

impl Lexicon {
    /// The automaton over `(item, word)` pairs; a word that folds to nothing is an error.
    pub fn new(words: Vec<(usize, String)>) -> Result<Lexicon> {
        let mut keys = Vec::with_capacity(words.len());
        let mut out = Vec::with_capacity(words.len());
        for (item, word) in words {
            let f = folded(&word).text;
            if f.is_empty() {
                bail!("the word {word:?} has no letters or digits");
            }
            let spaced = f.chars().any(spaced_script);
            keys.push(f);
            out.push(Word { item, word, spaced });
        }
        let ac = if keys.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build(&keys)?,
            )
        };
        Ok(Lexicon { ac, words: out })
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Every listed word in `text`, in order of position.
    pub fn find(&self, text: &str) -> Vec<Found> {
        let Some(ac) = &self.ac else {
            return Vec::new();
        };
        let f = folded(text);
        let orig: Vec<char> = text.chars().collect();
        // Byte offset in the folded text -> its character index.
        let mut char_of = vec![0usize; f.text.len() + 1];
        for (ci, (b, _)) in f.text.char_indices().enumerate() {
            char_of[b] = ci;
        }
        char_of[f.text.len()] = f.at.len();
        let edge = |i: Option<usize>| {
            i.and_then(|i| orig.get(i))
                .is_none_or(|c| !spaced_script(*c))
        };
        let mut out = Vec::new();
        for m in ac.find_overlapping_iter(&f.text) {
            let w = &self.words[m.pattern().as_usize()];
            let (cs, ce) = (char_of[m.start()], char_of[m.end()]);
            if ce == 0 || ce > f.at.len() {
                continue;
            }
            let (first, last) = (f.at[cs], f.at[ce - 1]);
            if w.spaced && !(edge(first.checked_sub(1)) && edge(Some(last + 1))) {
                continue;
            }
            out.push(Found {
                item: w.item,
                word: w.word.clone(),
                start: first,
                end: last + 1,
            });
        }
        out.sort_by_key(|x| (x.start, x.item));
        out.dedup_by(|a, b| (a.item, a.start) == (b.item, b.start));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex() -> Lexicon {
        let words = ["傻逼", "废物", "stupid", "ass", "shut up"];
        Lexicon::new(words.iter().map(|w| (0, w.to_string())).collect()).unwrap()
    }

    fn found(text: &str) -> Vec<String> {
        let chars: Vec<char> = text.chars().collect();
        lex()
            .find(text)
            .iter()
            .map(|f| chars[f.start..f.end].iter().collect())
            .collect()
    }

    #[test]
    fn every_evasion_is_found_where_it_was_written() {
        assert_eq!(found("你真是个傻逼"), ["傻逼"]);
        assert_eq!(found("你真是个傻 逼"), ["傻 逼"]);
        assert_eq!(found("你是傻*逼吗"), ["傻*逼"]);
        assert_eq!(found("真是廢物"), ["廢物"]);
        assert_eq!(found("ＳＴＵＰＩＤ customer"), ["ＳＴＵＰＩＤ"]);
        assert_eq!(found("you s.t.u.p.i.d man"), ["s.t.u.p.i.d"]);
        assert_eq!(found("S t U p I d"), ["S t U p I d"]);
        assert_eq!(found("just SHUT UP"), ["SHUT UP"]);
        assert_eq!(found("你这个stupid人"), ["stupid"]);
    }

    #[test]
    fn english_words_only_at_word_edges() {
        assert!(found("please pass the class assignment").is_empty());
        assert_eq!(found("what an ass."), ["ass"]);
        assert!(Lexicon::new(vec![(0, "***".into())]).is_err());
        assert!(Lexicon::new(Vec::new()).unwrap().find("x").is_empty());
    }
}
