//! Greedy and beam-search decoding with the semantics of Hugging Face transformers 5.x `generate`
//! (`_sample` without sampling, and the vectorised `_beam_search` of 4.5x+), over a KV cache.
//!
//! Logits processors, in HF's order: no-repeat n-gram, bad words, `min_new_tokens` (EOS
//! suppressed), forced EOS at the last position. Greedy takes the first maximum; beam search
//! keeps `max(2, 1 + #eos) * num_beams` candidates per step, moves the top `num_beams` ones that
//! hit EOS / max length into the finished set with score `sum_logprobs / len^length_penalty`
//! (len counts generated tokens, EOS included), and stops a batch item with HF's early-stop
//! heuristic (`early_stopping=false`) or once it holds `num_beams` finished (`true`). Finished
//! rows/items are dropped from the batch (HF keeps computing them but never uses the result).

use super::layers::{argmax, log_softmax, KvCache};
use anyhow::{bail, Result};
use candle_core::{Device, Tensor};
use rayon::prelude::*;
use std::cmp::Ordering;

/// Decoding settings (the `generate` keyword arguments we support).
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Most tokens generated per row (EOS included).
    pub max_new_tokens: usize,
    /// EOS is suppressed until this many tokens were generated.
    pub min_new_tokens: usize,
    /// 1: greedy; more: beam search.
    pub num_beams: usize,
    /// Beam scores are `sum_logprobs / generated_len^length_penalty`.
    pub length_penalty: f64,
    /// 0: off; n: an n-gram may occur only once in a hypothesis (decoder start included).
    pub no_repeat_ngram_size: usize,
    /// Beam search: stop an input as soon as it has `num_beams` finished hypotheses.
    pub early_stopping: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_new_tokens: 128,
            min_new_tokens: 0,
            num_beams: 1,
            length_penalty: 1.0,
            no_repeat_ngram_size: 0,
            early_stopping: false,
        }
    }
}

/// Special tokens and generation-config constraints of a model.
#[derive(Clone, Debug)]
pub struct TokenRules {
    pub decoder_start: u32,
    pub eos: Vec<u32>,
    pub pad: u32,
    /// `forced_eos_token_id`: at the last allowed position only these may be produced.
    pub forced_eos: Vec<u32>,
    /// `bad_words_ids` (sequences equal to a single EOS are ignored, as HF does).
    pub bad_words: Vec<Vec<u32>>,
}

/// Something that decodes one position at a time (Marian, T5).
pub trait StepModel {
    /// Feed one token per cache row; returns next-token logits `(rows, vocab)` in f32.
    fn step(&self, tokens: &Tensor, cache: &mut KvCache) -> Result<Tensor>;
}

const NEG_INF: f32 = f32::NEG_INFINITY;
/// HF's "very large negative" beam score.
const BIG_NEG: f32 = -1.0e9;

impl TokenRules {
    /// Apply the logits processors to one row. `seq` is the decoder sequence so far (start token
    /// included), `max_len` = 1 + max_new_tokens.
    fn process(&self, scores: &mut [f32], seq: &[u32], opts: &GenerateOptions, max_len: usize) {
        let cur_len = seq.len();
        let n = opts.no_repeat_ngram_size;
        if n > 0 && cur_len + 1 >= n {
            let prefix = &seq[cur_len + 1 - n..];
            for w in seq.windows(n) {
                if &w[..n - 1] == prefix {
                    ban(scores, w[n - 1]);
                }
            }
        }
        for bad in &self.bad_words {
            if bad.len() == 1 && self.eos.contains(&bad[0]) {
                continue;
            }
            if let Some((&last, prefix)) = bad.split_last() {
                if seq.ends_with(prefix) {
                    ban(scores, last);
                }
            }
        }
        if cur_len - 1 < opts.min_new_tokens {
            for &e in &self.eos {
                ban(scores, e);
            }
        }
        if !self.forced_eos.is_empty() && cur_len + 1 == max_len {
            scores.iter_mut().for_each(|s| *s = NEG_INF);
            for &e in &self.forced_eos {
                if let Some(s) = scores.get_mut(e as usize) {
                    *s = 0.0;
                }
            }
        }
    }
}

fn ban(scores: &mut [f32], tok: u32) {
    if let Some(s) = scores.get_mut(tok as usize) {
        *s = NEG_INF;
    }
}

fn tokens_tensor(tokens: Vec<u32>, device: &Device) -> Result<Tensor> {
    let n = tokens.len();
    Ok(Tensor::from_vec(tokens, n, device)?)
}

/// Greedy decoding of every cache row. Returns the generated ids per row (no decoder start,
/// EOS kept when produced); `on_token(row, id)` sees each of them as soon as it is chosen.
pub fn greedy(
    model: &dyn StepModel,
    mut cache: KvCache,
    rules: &TokenRules,
    opts: &GenerateOptions,
    on_token: &mut dyn FnMut(usize, u32),
) -> Result<Vec<Vec<u32>>> {
    let device = cache.enc_bias.device().clone();
    let b = cache.rows()?;
    let max_len = 1 + opts.max_new_tokens;
    let mut seqs: Vec<Vec<u32>> = vec![vec![rules.decoder_start]; b];
    let mut active: Vec<usize> = (0..b).collect();
    let mut cur_len = 1;
    while !active.is_empty() && cur_len < max_len {
        let tokens = active.iter().map(|&r| seqs[r][cur_len - 1]).collect();
        let logits = model.step(&tokens_tensor(tokens, &device)?, &mut cache)?;
        let logits: Vec<Vec<f32>> = logits.to_vec2()?;
        let mut keep = Vec::with_capacity(active.len());
        for (i, (&r, mut scores)) in active.iter().zip(logits).enumerate() {
            rules.process(&mut scores, &seqs[r], opts, max_len);
            let tok = argmax(&scores);
            seqs[r].push(tok);
            on_token(r, tok);
            if !rules.eos.contains(&tok) {
                keep.push(i as u32);
            }
        }
        cur_len += 1;
        if keep.len() != active.len() && !keep.is_empty() && cur_len < max_len {
            cache.select(&keep, Some(&keep))?;
        }
        active = keep.iter().map(|&i| active[i as usize]).collect();
    }
    Ok(seqs.into_iter().map(|s| s[1..].to_vec()).collect())
}

struct Hyp {
    seq: Vec<u32>,
    score: f32,
}

struct Finished {
    seq: Vec<u32>,
    score: f32,
    done: bool,
}

struct Item {
    running: Vec<Hyp>,
    finished: Vec<Finished>,
    /// HF's `is_early_stop_heuristic_unsatisfied` (sticky).
    can_improve: bool,
    done: bool,
}

/// Indices of the `k` largest scores, best first; ties go to the lower index. One pass keeping
/// the best `k` so far (most scores fail the comparison with the k-th and cost one compare).
fn top_k(scores: &[f32], k: usize) -> Vec<usize> {
    let mut best: Vec<usize> = Vec::with_capacity(k + 1);
    if k == 0 {
        return best;
    }
    for (i, &s) in scores.iter().enumerate() {
        if best.len() == k && s.total_cmp(&scores[best[k - 1]]) != Ordering::Greater {
            continue;
        }
        // Scores >= s stay ahead (an equal one has the lower index).
        let pos = best.partition_point(|&j| scores[j].total_cmp(&s) != Ordering::Less);
        best.insert(pos, i);
        best.truncate(k);
    }
    best
}

/// Beam search for each batch row of `cache` (one row per input). Returns the best finished
/// hypothesis per input (no decoder start; EOS kept when it ended with one).
pub fn beam_search(
    model: &dyn StepModel,
    mut cache: KvCache,
    rules: &TokenRules,
    opts: &GenerateOptions,
) -> Result<Vec<Vec<u32>>> {
    let nb = opts.num_beams;
    if nb == 0 {
        bail!("num_beams must be at least 1");
    }
    let device = cache.enc_bias.device().clone();
    let b = cache.rows()?;
    let max_len = 1 + opts.max_new_tokens;
    let lp = opts.length_penalty;
    let keep_k = 2.max(1 + rules.eos.len()) * nb;
    // Expand every input to num_beams rows.
    let expand: Vec<u32> = (0..b as u32)
        .flat_map(|i| std::iter::repeat_n(i, nb))
        .collect();
    cache.select(&expand, Some(&expand))?;
    let start = rules.decoder_start;
    let mut items: Vec<Item> = (0..b)
        .map(|_| Item {
            running: (0..nb)
                .map(|j| Hyp {
                    seq: vec![start],
                    score: if j == 0 { 0.0 } else { BIG_NEG },
                })
                .collect(),
            finished: (0..nb)
                .map(|_| Finished {
                    seq: vec![start],
                    score: BIG_NEG,
                    done: false,
                })
                .collect(),
            can_improve: true,
            done: false,
        })
        .collect();
    let mut active: Vec<usize> = (0..b).collect();
    let mut cur_len = 1;
    while !active.is_empty() && cur_len < max_len {
        let tokens = active
            .iter()
            .flat_map(|&it| items[it].running.iter().map(|h| h.seq[cur_len - 1]))
            .collect();
        let logits = model.step(&tokens_tensor(tokens, &device)?, &mut cache)?;
        let vocab = logits.dim(1)?;
        // Row r = slot * nb + j holds log_softmax + processors + beam score of hypothesis j of
        // active item `slot`, so an item's candidates are one contiguous run of nb * vocab.
        let mut flat: Vec<f32> = logits.flatten_all()?.to_vec1()?;
        let hyps: Vec<&Hyp> = active
            .iter()
            .flat_map(|&it| items[it].running.iter())
            .collect();
        flat.par_chunks_mut(vocab.max(1))
            .zip(hyps.par_iter())
            .for_each(|(row, hyp)| {
                log_softmax(row);
                rules.process(row, &hyp.seq, opts, max_len);
                row.iter_mut().for_each(|x| *x += hyp.score);
            });
        let span = nb * vocab;
        let cands: Vec<Vec<usize>> = (0..active.len())
            .into_par_iter()
            .map(|slot| top_k(&flat[slot * span..(slot + 1) * span], keep_k))
            .collect();
        let denom = (cur_len as f64).powf(lp) as f32;
        let mut self_rows = Vec::with_capacity(active.len() * nb);
        for ((slot, &it), cand) in active.iter().enumerate().zip(cands) {
            let item = &mut items[it];
            let acc = &flat[slot * span..(slot + 1) * span];
            let beam_of = |k: usize| cand[k] / vocab;
            let tok_of = |k: usize| (cand[k] % vocab) as u32;
            let hits: Vec<bool> = (0..cand.len())
                .map(|k| rules.eos.contains(&tok_of(k)) || cur_len + 1 >= max_len)
                .collect();
            let extend = |k: usize| {
                let mut s = item.running[beam_of(k)].seq.clone();
                s.push(tok_of(k));
                s
            };
            // Finished set: only the top num_beams candidates may enter, if they just stopped.
            let full = opts.early_stopping && item.finished.iter().all(|f| f.done);
            let mut merged: Vec<Finished> = std::mem::take(&mut item.finished);
            for (k, &flat) in cand.iter().enumerate() {
                let did = hits[k] && k < nb;
                let mut s = acc[flat] / denom;
                if full {
                    s += BIG_NEG;
                }
                if !item.can_improve {
                    s += BIG_NEG;
                }
                if !did {
                    s += BIG_NEG;
                }
                merged.push(Finished {
                    seq: if did { extend(k) } else { Vec::new() },
                    score: s,
                    done: did,
                });
            }
            let merged_scores: Vec<f32> = merged.iter().map(|f| f.score).collect();
            let mut slots: Vec<Option<Finished>> = merged.into_iter().map(Some).collect();
            item.finished = top_k(&merged_scores, nb)
                .into_iter()
                .filter_map(|i| slots[i].take())
                .collect();
            // Running beams: best num_beams candidates that did not stop.
            let run_scores: Vec<f32> = (0..cand.len())
                .map(|k| acc[cand[k]] + if hits[k] { BIG_NEG } else { 0.0 })
                .collect();
            let next: Vec<Hyp> = top_k(&run_scores, nb)
                .into_iter()
                .map(|k| {
                    self_rows.push((slot * nb + beam_of(k)) as u32);
                    Hyp {
                        seq: extend(k),
                        score: run_scores[k],
                    }
                })
                .collect();
            item.running = next;
        }
        cur_len += 1;
        // Early-stop heuristic and per-item completion.
        let mut still = Vec::with_capacity(active.len());
        for (slot, &it) in active.iter().enumerate() {
            let item = &mut items[it];
            let len = cur_len - 1;
            let best = item.running[0].score / (len as f64).powf(lp) as f32;
            let worst = item
                .finished
                .iter()
                .map(|f| f.score)
                .fold(f32::INFINITY, f32::min);
            item.can_improve &= item
                .finished
                .iter()
                .any(|f| best > if f.done { worst } else { BIG_NEG });
            let all_done = item.finished.iter().all(|f| f.done);
            item.done = !item.can_improve || (opts.early_stopping && all_done);
            if !item.done {
                still.push(slot);
            }
        }
        if cur_len >= max_len || still.is_empty() {
            break;
        }
        let keep_self: Vec<u32> = still
            .iter()
            .flat_map(|&s| self_rows[s * nb..(s + 1) * nb].iter().copied())
            .collect();
        if still.len() == active.len() {
            cache.select(&keep_self, None)?;
        } else {
            let keep_cross: Vec<u32> = still
                .iter()
                .flat_map(|&s| (s * nb..(s + 1) * nb).map(|r| r as u32))
                .collect();
            cache.select(&keep_self, Some(&keep_cross))?;
        }
        active = still.iter().map(|&s| active[s]).collect();
    }
    Ok(items
        .into_iter()
        .map(|item| {
            item.finished
                .into_iter()
                .next()
                .filter(|f| f.done)
                .map(|f| f.seq[1..].to_vec())
                .unwrap_or_default()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> TokenRules {
        TokenRules {
            decoder_start: 0,
            eos: vec![1],
            pad: 0,
            forced_eos: vec![],
            bad_words: vec![vec![0]],
        }
    }

    #[test]
    fn top_k_prefers_lower_index_on_ties() {
        assert_eq!(top_k(&[1.0, 3.0, 3.0, 2.0], 3), vec![1, 2, 3]);
        assert_eq!(top_k(&[1.0], 3), vec![0]);
    }

    #[test]
    fn processors_follow_hf() {
        let opts = GenerateOptions {
            no_repeat_ngram_size: 2,
            min_new_tokens: 2,
            ..Default::default()
        };
        let mut s = vec![0.0f32; 6];
        // seq [0, 3, 4, 3]: bigram (3, 4) seen, last token 3 => 4 banned; pad (bad word) banned;
        // 3 generated >= min_new_tokens => EOS allowed.
        rules().process(&mut s, &[0, 3, 4, 3], &opts, 10);
        assert_eq!(s[4], NEG_INF);
        assert_eq!(s[0], NEG_INF);
        assert_eq!(s[1], 0.0);
        let mut s = vec![0.0f32; 6];
        rules().process(&mut s, &[0, 3], &opts, 10);
        assert_eq!(s[1], NEG_INF);
    }
}
