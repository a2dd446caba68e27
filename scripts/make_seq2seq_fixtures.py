#!/usr/bin/env python3
"""Make the tiny random-weight seq2seq fixtures for tests/seq2seq_parity.rs.

Rerun (from the repository root; needs torch, transformers 5.x, sentencepiece, safetensors):

    /root/.cache/triage/bench-venv/bin/pip install sentencepiece   # once
    /root/.cache/triage/bench-venv/bin/python scripts/make_seq2seq_fixtures.py

It rewrites tests/fixtures/seq2seq/{marian,t5_v1_0,t5_v1_1}/ with fixed seeds:

* marian:  MarianMTModel (d_model 16, 2+2 layers, 2 heads, swish, scale_embedding, forced EOS,
           generation_config.json with bad_words_ids [[pad]] like Helsinki-NLP) with a tiny
           SentencePiece source.spm (en/de/zh; a small custom normalization table compiled into
           precompiled_charsmap, since nmt_nfkc alone is 240 KB) + target.spm + vocab.json, and NO
           tokenizer.json, so the Rust side has to convert the .spm itself.
* t5_v1_0: T5ForConditionalGeneration, relu, tied embeddings (lm input scaled by d_model^-0.5),
           16 relative buckets / max distance 32; tokenizer.json.
* t5_v1_1: gated-gelu, untied lm_head (tie_word_embeddings false), 2+2 layers (5.23 crashes on
           num_decoder_layers != num_layers in generate),
           32 buckets / 128; tokenizer.json.

Weights: drawn at random with fixed seeds, then a few Adam steps on a copy task (pure random
weights emit one token forever regardless of the input), and an EOS nudge for Marian, so rows
stop at different lengths. Takes under a minute on CPU; the output is deterministic.

Each folder gets expected.json with: tokenizer cases (text -> HF ids), a few encoder output floats
and next-token logits (teacher forced) for layer-level checks, and generate() cases (greedy and
beam, batch 1 and batch 4 of different lengths) whose `expected` ids are HF's output minus the
decoder start token, cut right after the first EOS (EOS kept; rows that hit max_new_tokens have
no EOS unless forced_eos_token_id forces one).
"""

import io
import json
import os
import shutil
import sys

import sentencepiece as spm
import torch

torch.set_num_threads(1)
from safetensors.torch import load_file, save_file
from transformers import (
    MarianConfig,
    MarianMTModel,
    MarianTokenizer,
    T5Config,
    T5ForConditionalGeneration,
    T5Tokenizer,
)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "seq2seq")

SRC_SENTS = [
    "Hello, how can I help you today?",
    "My order has not arrived yet.",
    "I would like a refund for order 12345.",
    "The package was damaged during delivery!",
    "Can you reset my password, please?",
    "Guten Tag, ich habe eine Frage zu meiner Rechnung.",
    "Die Lieferung ist leider nicht angekommen.",
    "Können Sie mir bitte helfen? Das Gerät funktioniert nicht.",
    "Über die Größe bin ich mir unsicher.",
    "你好，我的订单还没有到。",
    "请帮我退款，谢谢！",
    "这个产品有问题，我想换货。",
    "Café, naïve, résumé – déjà vu.",
    "Price: 49.99 EUR (incl. 19% VAT).",
]
TGT_SENTS = [
    "Hallo, wie kann ich Ihnen heute helfen?",
    "Meine Bestellung ist noch nicht angekommen.",
    "Ich möchte eine Rückerstattung für die Bestellung 12345.",
    "Das Paket wurde beim Versand beschädigt!",
    "Können Sie mein Passwort zurücksetzen, bitte?",
    "你好，我能帮你什么？",
    "我们会尽快处理您的订单。",
]

# Tokenizer test sentences: ASCII, accented Latin, Chinese, digits/punctuation, NFKC-relevant
# full-width forms, extra/odd whitespace, unknown characters (emoji) and a Marian language code.
TOK_TEXTS = [
    "Hello, how can I help you today?",
    "Können Sie mir bitte helfen? Über die Größe bin ich unsicher.",
    "Café, naïve, résumé – déjà vu.",
    "你好，我的订单还没有到。请帮我退款！",
    "Order #12345: 49.99 EUR (incl. 19% VAT), call +49-30-1234567.",
    "  Zürich  ist   schön ＡＢＣ１２３，\t😀 end  ",
    "ﬁne… ① Cafe\u0301 Mu\u0308nchen\u3000ok",
    ">>deu<< My order has not arrived yet.",
    "",
]

# Generation inputs: four texts of clearly different token lengths.
GEN_TEXTS = [
    "My order has not arrived yet.",
    "Hi!",
    "Guten Tag, ich habe eine Frage zu meiner Rechnung. Die Lieferung ist leider nicht angekommen.",
    "你好，请帮我退款。",
]

CASES = [
    # name, batch rows (indices into GEN_TEXTS), generate kwargs
    ("greedy_b1", [0], dict(num_beams=1, max_new_tokens=16)),
    ("greedy_b4", [0, 1, 2, 3], dict(num_beams=1, max_new_tokens=16)),
    ("greedy_b4_min_ngram", [0, 1, 2, 3], dict(num_beams=1, max_new_tokens=14, min_new_tokens=6, no_repeat_ngram_size=2)),
    ("beam_b1", [2], dict(num_beams=4, max_new_tokens=16)),
    ("beam_b4", [0, 1, 2, 3], dict(num_beams=4, max_new_tokens=16)),
    ("beam_b4_lp_ngram", [0, 1, 2, 3], dict(num_beams=4, max_new_tokens=18, length_penalty=2.0, no_repeat_ngram_size=2)),
    ("beam_b4_short_es", [0, 1, 2, 3], dict(num_beams=4, max_new_tokens=12, length_penalty=0.5, early_stopping=True)),
    ("beam_b4_min", [3, 0, 2, 1], dict(num_beams=3, max_new_tokens=15, min_new_tokens=4, no_repeat_ngram_size=3)),
    ("beam_b4_lp3", [0, 1, 2, 3], dict(num_beams=3, max_new_tokens=16, length_penalty=3.0)),
    ("beam_b4_lpneg", [0, 1, 2, 3], dict(num_beams=5, max_new_tokens=14, length_penalty=-1.0)),
    ("beam_b4_b2_es", [2, 3, 0, 1], dict(num_beams=2, max_new_tokens=16, early_stopping=True, no_repeat_ngram_size=2)),
]

DEFAULTS = dict(max_new_tokens=16, min_new_tokens=0, num_beams=1, length_penalty=1.0, no_repeat_ngram_size=0, early_stopping=False)


def train_spm(sents, vocab_size, norm, **kw):
    w = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sents * 3),
        model_writer=w,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
        **({"normalization_rule_name": norm} if norm else {}),
        **kw,
    )
    return w.getvalue()


def norm_rules_tsv(tmpdir):
    """A small custom normalization table (compiled by sentencepiece into precompiled_charsmap).
    The real nmt_nfkc table is 240 KB; this one exercises the same Precompiled code path."""
    rules = [(f"{c:X}", f"{c - 0xFF01 + 0x21:X}") for c in range(0xFF01, 0xFF5F)]  # full-width ASCII
    rules += [("3000", "20"), ("9", "20"), ("A", "20"), ("D", "20"), ("A0", "20")]  # odd spaces
    rules += [("FB01", "66 69"), ("FB02", "66 6C"), ("2026", "2E 2E 2E"), ("2460", "31"), ("2461", "32")]
    rules += [("65 301", "E9"), ("61 308", "E4"), ("75 308", "FC"), ("6F 308", "F6")]  # compose
    path = os.path.join(tmpdir, "norm_rules.tsv")
    with open(path, "w") as f:
        for a, b in rules:
            f.write(f"{a}\t{b}\n")
    return path


def randomize(model, std, seed):
    """Re-draw every weight with a wider normal than HF's init (std 0.02 gives near-uniform logits)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name or name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(std * torch.randn(p.shape, generator=g))


def train_copy(model, tok, steps, lr, seed):
    """A few Adam steps on a copy task (target = source ids). Purely random weights generate one
    token forever whatever the input; this makes outputs depend on the input and end with EOS at
    different lengths, while staying far from a converged model (ties are still impossible)."""
    torch.manual_seed(seed)
    ids, mask = batch(tok, SRC_SENTS + TGT_SENTS + GEN_TEXTS)
    labels = ids.clone()
    labels[mask == 0] = -100
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.eval()  # no dropout
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"copy-task loss after {steps} steps: {loss.item():.4f}", file=sys.stderr)


def strip_output(row, eos_id):
    out = []
    for t in row[1:]:
        out.append(int(t))
        if int(t) == eos_id:
            break
    return out


def batch(tok, texts):
    enc = tok(texts, return_tensors="pt", padding=True)
    return enc.input_ids, enc.attention_mask


def record(model, tok, eos_id, floats_rows=(0, 1)):
    """Tokenizer cases, encoder floats, teacher-forced logits and generate cases."""
    exp = {"tokenizer": [], "generate": []}
    for t in TOK_TEXTS:
        exp["tokenizer"].append({"text": t, "ids": tok(t).input_ids})

    ids, mask = batch(tok, GEN_TEXTS)
    with torch.no_grad():
        enc = model.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    inputs = [[int(x) for x, m in zip(r, mr) if m] for r, mr in zip(ids, mask)]
    samples = []
    for r in range(len(GEN_TEXTS)):
        n = len(inputs[r])
        for p in sorted({0, n // 2, n - 1}):
            samples.append({"row": r, "pos": p, "values": [float(v) for v in enc[r, p, :6]]})
    exp["encoder"] = {"inputs": inputs, "samples": samples}

    start = model.config.decoder_start_token_id
    prefixes = [[start], [start, 5, 7], [start, 9], [start, 4, 4, 11, 6]]
    L = max(len(p) for p in prefixes)
    logit_rows = []
    with torch.no_grad():
        for r, pre in enumerate(prefixes):
            out = model(input_ids=ids[r : r + 1, : len(inputs[r])], decoder_input_ids=torch.tensor([pre]))
            lg = out.logits[0, -1]
            logit_rows.append({"row": r, "prefix": pre, "first": [float(v) for v in lg[:8]], "argmax": int(lg.argmax()), "max": float(lg.max())})
    exp["next_token_logits"] = logit_rows
    del L

    for name, rows, kw in CASES:
        texts = [GEN_TEXTS[i] for i in rows]
        ids, mask = batch(tok, texts)
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, **kw)
        opts = dict(DEFAULTS)
        opts.update(kw)
        exp["generate"].append(
            {
                "name": name,
                "inputs": [[int(x) for x, m in zip(r, mr) if m] for r, mr in zip(ids, mask)],
                "options": opts,
                "expected": [strip_output(r.tolist(), eos_id) for r in out],
                "decoded": tok.batch_decode(out, skip_special_tokens=True),
            }
        )
        print(name, [len(e) for e in exp["generate"][-1]["expected"]], file=sys.stderr)
    return exp


def write_json(path, obj, compact=False):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=None if compact else 1, separators=(",", ":") if compact else None)
        f.write("\n")


def make_marian():
    out = os.path.join(ROOT, "marian")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    src = train_spm(SRC_SENTS, 220, None, normalization_rule_tsv=norm_rules_tsv(out))
    tgt = train_spm(TGT_SENTS, 160, "identity")
    with open(os.path.join(out, "source.spm"), "wb") as f:
        f.write(src)
    with open(os.path.join(out, "target.spm"), "wb") as f:
        f.write(tgt)
    sp = spm.SentencePieceProcessor(model_proto=src)
    tp = spm.SentencePieceProcessor(model_proto=tgt)
    # Marian layout: </s>=0, <unk>=1, pieces of both models (source first), language codes, <pad> last.
    # One source piece is left out on purpose: the Python tokenizer maps it to <unk>.
    dropped = "ord"
    vocab = {"</s>": 0, "<unk>": 1}
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    pieces += [tp.id_to_piece(i) for i in range(tp.get_piece_size())]
    for p in pieces:
        if p not in vocab and p not in ("<s>", dropped):
            vocab[p] = len(vocab)
    vocab[">>deu<<"] = len(vocab)
    vocab["<pad>"] = len(vocab)
    pad = vocab["<pad>"]
    write_json(os.path.join(out, "vocab.json"), vocab)
    tok = MarianTokenizer(os.path.join(out, "source.spm"), os.path.join(out, "target.spm"), os.path.join(out, "vocab.json"))
    tok.save_pretrained(out)
    assert not os.path.exists(os.path.join(out, "tokenizer.json"))
    os.remove(os.path.join(out, "norm_rules.tsv"))

    torch.manual_seed(0)
    cfg = MarianConfig(
        vocab_size=len(vocab),
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        activation_function="swish",
        scale_embedding=True,
        pad_token_id=pad,
        decoder_start_token_id=pad,
        eos_token_id=0,
        forced_eos_token_id=0,
    )
    model = MarianMTModel(cfg)
    randomize(model, 0.3, 1)
    with torch.no_grad():
        model.final_logits_bias.zero_()
    train_copy(model, tok, 200, 1e-2, 0)
    with torch.no_grad():
        g = torch.Generator().manual_seed(2)
        model.final_logits_bias.copy_(0.05 * torch.randn(model.final_logits_bias.shape, generator=g))
        model.final_logits_bias[0, 0] += 2.5  # EOS: some rows stop early
    model.eval()
    model.generation_config.bad_words_ids = [[pad]]  # as in the Helsinki-NLP generation_config.json
    model.generation_config.max_length = 512
    model.generation_config.num_beams = 4
    model.save_pretrained(out)
    model = MarianMTModel.from_pretrained(out).eval()
    exp = record(model, tok, 0)
    exp["model"] = "marian"
    exp["note"] = f"source piece {dropped!r} is not in vocab.json (Python maps it to <unk>)"
    write_json(os.path.join(out, "expected.json"), exp, compact=True)


def t5_tokenizer(out):
    proto = train_spm(SRC_SENTS + TGT_SENTS, 200, "identity", pad_id=0, eos_id=1, unk_id=2, bos_id=-1)
    sp = spm.SentencePieceProcessor(model_proto=proto)
    vocab = [(sp.id_to_piece(i), float(sp.get_score(i))) for i in range(sp.get_piece_size())]
    extra = 4
    vocab += [(f"<extra_id_{i}>", 0.0) for i in range(extra - 1, -1, -1)]
    tok = T5Tokenizer(vocab=vocab, extra_ids=extra)
    tok.save_pretrained(out)
    return tok, len(vocab)


def make_t5(name, v11):
    out = os.path.join(ROOT, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    tok, n_vocab = t5_tokenizer(out)
    assert os.path.exists(os.path.join(out, "tokenizer.json"))
    torch.manual_seed(0)
    if v11:
        cfg = T5Config(vocab_size=n_vocab + 6, d_model=16, d_kv=8, d_ff=24, num_layers=2, num_decoder_layers=2, num_heads=2,
                       feed_forward_proj="gated-gelu", tie_word_embeddings=False, decoder_start_token_id=0)
    else:
        cfg = T5Config(vocab_size=n_vocab + 6, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2, feed_forward_proj="relu",
                       relative_attention_num_buckets=16, relative_attention_max_distance=32, decoder_start_token_id=0)
    model = T5ForConditionalGeneration(cfg)
    train_copy(model, tok, 150 if v11 else 120, 1e-2, 6 if v11 else 7)
    model.eval()
    model.save_pretrained(out)
    if v11:
        # save_pretrained in transformers 5 always ties T5's lm_head; write a flan-t5 style checkpoint
        # with its own lm_head.weight and tie_word_embeddings=false, then reload it.
        path = os.path.join(out, "model.safetensors")
        sd = load_file(path)
        g = torch.Generator().manual_seed(5)
        lm = 0.5 * torch.randn(sd["shared.weight"].shape, generator=g)
        lm[1] += 0.9
        sd["lm_head.weight"] = lm.contiguous()
        save_file(sd, path, metadata={"format": "pt"})
        with open(os.path.join(out, "config.json")) as f:
            c = json.load(f)
        c["tie_word_embeddings"] = False
        for k in ("scale_decoder_outputs", "dense_act_fn", "is_gated_act"):
            c.pop(k, None)
        write_json(os.path.join(out, "config.json"), c)
    model = T5ForConditionalGeneration.from_pretrained(out).eval()
    if v11:
        assert not torch.equal(model.lm_head.weight, model.shared.weight)
    exp = record(model, tok, 1)
    exp["model"] = "t5"
    # Relative position buckets exactly as HF computes them (f32 log), for the Rust bucket function.
    att = model.encoder.block[0].layer[0].SelfAttention
    rel = torch.arange(-150, 151)
    exp["buckets"] = {}
    for nb, md in ((cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance), (32, 128)):
        exp["buckets"][f"{nb}_{md}"] = {
            "num_buckets": nb,
            "max_distance": md,
            "relative_from": -150,
            "bidirectional": att._relative_position_bucket(rel, True, nb, md).tolist(),
            "causal": att._relative_position_bucket(rel, False, nb, md).tolist(),
        }
    write_json(os.path.join(out, "expected.json"), exp, compact=True)


def main():
    os.makedirs(ROOT, exist_ok=True)
    make_marian()
    make_t5("t5_v1_0", False)
    make_t5("t5_v1_1", True)
    for n in ("spiece.model", "special_tokens_map.json"):
        for d in ("t5_v1_0", "t5_v1_1"):
            p = os.path.join(ROOT, d, n)
            if os.path.exists(p):
                os.remove(p)


if __name__ == "__main__":
    main()
