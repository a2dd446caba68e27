//! BM25 over one knowledge base's passages: a tantivy index in memory (rebuilt from the store at
//! start, so nothing on disk can disagree with it), updated in place as articles are written
//! and deleted. Queries are the analyzed words of the text OR-ed together, never parsed as
//! query syntax, so no customer text can be a syntax error.
//!
//! Two fields hold each passage: `text` its Latin words, `zh` its Chinese characters and pairs
//! (kb/text.rs), and each query word searches the field of its kind. Apart, a Chinese passage's
//! many characters and pairs do not lengthen the average passage that English words are scored
//! against (in one field English tuning questions lost recall: `scripts/kb_eval.sh`, default
//! knowledge base, BM25 recall@1 0.614 -> 0.606; in two, 0.625).

use super::text::{analyzer_of, is_chinese, words, Keep, ANALYZER, ANALYZER_ZH};
use anyhow::{Context, Result};
use parking_lot::Mutex;
use std::collections::BTreeSet;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, Term};

/// A passage found by BM25: the article's key, the passage's number, the score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found {
    pub key: u64,
    pub chunk: u32,
    pub score: f32,
}

pub struct Bm25 {
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
    text: Field,
    zh: Field,
    key: Field,
    chunk: Field,
}

impl Bm25 {
    pub fn new() -> Result<Bm25> {
        let mut sb = Schema::builder();
        let field = |analyzer: &str| {
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(analyzer)
                    .set_index_option(IndexRecordOption::WithFreqs),
            )
        };
        let text = sb.add_text_field("text", field(ANALYZER));
        let zh = sb.add_text_field("zh", field(ANALYZER_ZH));
        let num = NumericOptions::default().set_indexed().set_fast();
        let key = sb.add_u64_field("key", num.clone());
        let chunk = sb.add_u64_field("chunk", NumericOptions::default().set_fast());
        let index = Index::create_in_ram(sb.build());
        let tokenizers = index.tokenizers();
        tokenizers.register(ANALYZER, analyzer_of(Keep::Latin));
        tokenizers.register(ANALYZER_ZH, analyzer_of(Keep::Chinese));
        let writer = index
            .writer_with_num_threads(1, 20_000_000)
            .context("kb: cannot start the BM25 index writer")?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .context("kb: cannot open the BM25 index reader")?;
        Ok(Bm25 {
            writer: Mutex::new(writer),
            reader,
            text,
            zh,
            key,
            chunk,
        })
    }

    /// Remove the passages of the articles `gone`, add `(key, passages)`, and make it all
    /// searchable before returning.
    pub fn update(&self, gone: &[u64], added: &[(u64, &[String])]) -> Result<()> {
        let mut w = self.writer.lock();
        for k in gone {
            w.delete_term(Term::from_field_u64(self.key, *k));
        }
        for (k, chunks) in added {
            for (i, c) in chunks.iter().enumerate() {
                w.add_document(doc!(
                    self.text => c.as_str(),
                    self.zh => c.as_str(),
                    self.key => *k,
                    self.chunk => i as u64,
                ))
                .context("kb: BM25 add")?;
            }
        }
        w.commit().context("kb: BM25 commit")?;
        self.reader.reload().context("kb: BM25 reload")?;
        Ok(())
    }

    /// The best `n` passages for `query`, best first (none when no word of it is indexed).
    pub fn search(&self, query: &str, n: usize) -> Result<Vec<Found>> {
        let terms: BTreeSet<String> = words(query).into_iter().collect();
        if terms.is_empty() || n == 0 {
            return Ok(Vec::new());
        }
        let clauses: Vec<(Occur, Box<dyn Query>)> = terms
            .into_iter()
            .map(|w| {
                let field = if is_chinese(&w) { self.zh } else { self.text };
                let q = TermQuery::new(
                    Term::from_field_text(field, &w),
                    IndexRecordOption::WithFreqs,
                );
                (Occur::Should, Box::new(q) as Box<dyn Query>)
            })
            .collect();
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&BooleanQuery::new(clauses), &TopDocs::with_limit(n))
            .context("kb: BM25 search")?;
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let seg = searcher.segment_reader(addr.segment_ord);
            let ff = seg.fast_fields();
            let key = ff.u64("key").context("kb: key column")?.first(addr.doc_id);
            let chunk = ff
                .u64("chunk")
                .context("kb: chunk column")?
                .first(addr.doc_id);
            if let (Some(key), Some(chunk)) = (key, chunk) {
                out.push(Found {
                    key,
                    chunk: chunk as u32,
                    score,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_updates_and_deletes() {
        let b = Bm25::new().unwrap();
        let a = vec!["如何取消订单\n进入我的订单点击取消".to_string()];
        let e = vec![
            "Track your order\nOpen Orders to see where it is".to_string(),
            "Refunds\nMoney back in 5 days".to_string(),
        ];
        b.update(&[], &[(1, &a), (2, &e)]).unwrap();
        let f = b.search("訂單怎麼取消", 10).unwrap();
        assert_eq!(f[0].key, 1, "{f:?}");
        let f = b.search("where is my ORDER?", 10).unwrap();
        assert_eq!((f[0].key, f[0].chunk), (2, 0), "{f:?}");
        // Each word searches its own field: both articles are found.
        let f = b.search("refunds 取消", 10).unwrap();
        assert!(
            f.iter().any(|x| x.key == 1) && f.iter().any(|x| x.key == 2),
            "{f:?}"
        );
        assert!(b.search("？？ !!", 10).unwrap().is_empty());
        assert!(b.search("AND OR (\"", 10).unwrap().is_empty());
        b.update(&[2], &[]).unwrap();
        assert!(b
            .search("where is my order", 10)
            .unwrap()
            .iter()
            .all(|x| x.key != 2));
    }
}
