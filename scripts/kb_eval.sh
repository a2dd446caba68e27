#!/usr/bin/env bash
# Issue 21's retrieval and answer measurements (not part of the test command: minutes of
# embedding). Builds the evaluation files (scripts/make_kb.py), then runs `triage kb eval`:
#  1. the default knowledge base (models/kb: 54 English + 54 Chinese articles): fits the
#     confidence and chooses the answer thresholds on the tuning questions (--tune), and
#     reports recall@1/5, MRR@10 (BM25, dense, hybrid) and bot answers on the dev questions;
#     then the shipped weights and thresholds on the tuning questions (fitted before the
#     language centring; they answer more at the same precision than a refit: README) and on
#     the dev questions (English, Chinese phrasings of the same questions, other Chinese);
#  2. every Bitext train-split response not held for tuning (2,939 articles) plus the Chinese
#     articles, with the shipped weights and thresholds.
#   scripts/kb_eval.sh            # release build (default)
#   TRIAGE_BIN=target/debug/triage scripts/kb_eval.sh
# Env: KB_EVAL_DIR (where the question files and the cached indexes go; default $TRIAGE_HOME/kb_eval).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TRIAGE_BIN:-}" ]; then
  cargo build --release --locked --bin triage
  TRIAGE_BIN=target/release/triage
fi
home="${TRIAGE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/triage}"
out="${KB_EVAL_DIR:-$home/kb_eval}"
[ -d ../shared/data/bitext_customer_support ] || { echo "kb_eval: ../shared/data is absent: skipped"; exit 0; }
python3 scripts/make_kb.py --eval-out "$out" > /dev/null
# make_kb.py rewrites models/kb/en/articles.jsonl: it must come out the same as committed.
git diff --quiet -- models/kb/en/articles.jsonl || { echo "kb_eval: models/kb/en/articles.jsonl changed" >&2; exit 1; }
dev=(--queries "en-dev=$out/en.dev.jsonl" --queries "zh-par-dev=$out/zh-par.dev.jsonl" --queries "zh-dev=$out/zh.dev.jsonl")
echo "## default knowledge base (tuning: fit and thresholds)"
"$TRIAGE_BIN" kb eval --store "$out/shipped.sqlite" \
  --articles models/kb/en/articles.jsonl --articles models/kb/zh/articles.jsonl \
  --tune "$out/en.tune.jsonl" --tune "$out/zh.tune.jsonl" --target 0.98 "${dev[@]}" 2> "$out/shipped.log"
echo "## default knowledge base, tuning questions (shipped weights and thresholds)"
"$TRIAGE_BIN" kb eval --store "$out/shipped.sqlite" \
  --articles models/kb/en/articles.jsonl --articles models/kb/zh/articles.jsonl \
  --queries "en-tune=$out/en.tune.jsonl" --queries "zh-tune=$out/zh.tune.jsonl" 2>> "$out/shipped.log"
echo "## default knowledge base (shipped weights and thresholds)"
"$TRIAGE_BIN" kb eval --store "$out/shipped.sqlite" \
  --articles models/kb/en/articles.jsonl --articles models/kb/zh/articles.jsonl "${dev[@]}" 2>> "$out/shipped.log"
echo "## Bitext train responses + Chinese articles"
"$TRIAGE_BIN" kb eval --store "$out/bitext.sqlite" \
  --articles "$out/bitext_responses.jsonl" --articles models/kb/zh/articles.jsonl \
  "${dev[@]}" 2> "$out/bitext.log"
