#!/usr/bin/env python3
"""PyTorch-format (`pytorch_model.bin`) fixtures for tests/seq2seq_parity.rs and tests/model_bundle.rs.

Rerun from the repository root (needs torch, transformers 5.x, sentencepiece, safetensors):

    python3 -m venv /work/wt24-venv
    /work/wt24-venv/bin/pip install torch transformers sentencepiece safetensors
    /work/wt24-venv/bin/python scripts/make_seq2seq_pt_fixtures.py

It leaves the safetensors fixtures of scripts/make_seq2seq_fixtures.py as they are and writes:

* tests/fixtures/seq2seq/pytorch/{marian,t5_v1_0,t5_v1_1}.bin: `torch.save(model.state_dict())`
  (the zip format of torch >= 1.6) of the same weights, tied tensors sharing one storage as
  transformers' own checkpoints do; the Rust test puts one beside the fixture's other files in
  place of model.safetensors, so the expected.json ids of the safetensors fixture apply.
* tests/fixtures/seq2seq/pytorch/marian_legacy.bin: the same Marian weights in the pre-1.6
  format (`_use_new_zipfile_serialization=False`), as checkpoints converted in 2020 are (its
  storage keys are Python object ids, so this file differs from run to run; any run's is valid).
* tests/fixtures/encoder_pt/: a tiny BERT encoder (pytorch_model.bin only) with transformers'
  mean-pooled, L2-normalised embeddings of a few id sequences.
* tests/fixtures/seq2seq/marian_separate/: a Marian model with separate source and target
  vocabularies (`separate_vocabs=True`, `share_encoder_decoder_embeddings=False`: vocab.json for
  the source, target_vocab.json for the target, their own embeddings), as the opus-mt-tc models
  are, saved as pytorch_model.bin only, with its expected.json (same cases as the others).

Every .bin is loaded back with transformers and checked to generate the recorded ids before it
is kept. Deterministic (fixed seeds); under a minute on a CPU.
"""

import json
import os
import shutil
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_seq2seq_fixtures as base  # noqa: E402

from transformers import (  # noqa: E402
    MarianConfig,
    MarianMTModel,
    MarianTokenizer,
    T5ForConditionalGeneration,
)

ROOT = base.ROOT
PT = os.path.join(ROOT, "pytorch")


def generated_ids(model, exp):
    """Run every generate case of expected.json; True when all ids equal the recorded ones."""
    for case in exp["generate"]:
        rows = case["inputs"]
        n = max(len(r) for r in rows)
        pad = model.config.pad_token_id
        ids = torch.tensor([r + [pad] * (n - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (n - len(r)) for r in rows])
        kw = {k: v for k, v in case["options"].items()}
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, **kw)
        eos = model.generation_config.eos_token_id
        got = [base.strip_output(r.tolist(), eos) for r in out]
        if got != case["expected"]:
            print(f"{case['name']}: {got} != {case['expected']}", file=sys.stderr)
            return False
    return True


def check_bin(name, cls, path):
    """Load `path` as the weights of fixture `name` (a temporary folder without safetensors)."""
    src = os.path.join(ROOT, name)
    with tempfile.TemporaryDirectory() as tmp:
        for f in os.listdir(src):
            if f != "model.safetensors":
                shutil.copy(os.path.join(src, f), tmp)
        shutil.copy(path, os.path.join(tmp, "pytorch_model.bin"))
        model = cls.from_pretrained(tmp, use_safetensors=False).eval()
        with open(os.path.join(src, "expected.json"), encoding="utf-8") as f:
            exp = json.load(f)
        assert generated_ids(model, exp), f"{path} does not reproduce {name}/expected.json"


def write_bins():
    os.makedirs(PT, exist_ok=True)
    for name, cls in (("marian", MarianMTModel), ("t5_v1_0", T5ForConditionalGeneration), ("t5_v1_1", T5ForConditionalGeneration)):
        model = cls.from_pretrained(os.path.join(ROOT, name)).eval()
        sd = model.state_dict()
        path = os.path.join(PT, f"{name}.bin")
        torch.save(sd, path)
        check_bin(name, cls, path)
        if name == "marian":
            legacy = os.path.join(PT, "marian_legacy.bin")
            torch.save(sd, legacy, _use_new_zipfile_serialization=False)
            check_bin(name, cls, legacy)
        print(f"{path}: {os.path.getsize(path)} bytes, {len(sd)} tensors", file=sys.stderr)


def train_translate(model, tok, steps, lr, seed):
    """A few Adam steps mapping each sentence to itself through the two vocabularies (the copy
    task of make_seq2seq_fixtures.py; target ids come from the target tokenizer here)."""
    torch.manual_seed(seed)
    texts = base.SRC_SENTS + base.TGT_SENTS + base.GEN_TEXTS
    enc = tok(texts, text_target=texts, return_tensors="pt", padding=True)
    labels = enc["labels"].clone()
    labels[labels == tok.pad_token_id] = -100
    labels[labels == model.config.pad_token_id] = -100
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.eval()
    for _ in range(steps):
        loss = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"separate-vocab loss after {steps} steps: {loss.item():.4f}", file=sys.stderr)


def make_marian_separate():
    out = os.path.join(ROOT, "marian_separate")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    src = base.train_spm(base.SRC_SENTS, 220, None, normalization_rule_tsv=base.norm_rules_tsv(out))
    tgt = base.train_spm(base.TGT_SENTS, 160, "identity")
    for fname, proto in (("source.spm", src), ("target.spm", tgt)):
        with open(os.path.join(out, fname), "wb") as f:
            f.write(proto)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=src)
    tp = spm.SentencePieceProcessor(model_proto=tgt)

    def vocab_of(proc, extra):
        v = {"</s>": 0, "<unk>": 1}
        for i in range(proc.get_piece_size()):
            p = proc.id_to_piece(i)
            if p not in v and p != "<s>":
                v[p] = len(v)
        for p in extra:
            v[p] = len(v)
        return v

    # Source: its own pieces, a language code and <pad> last. Target: its pieces, then <pad>;
    # the target is smaller, so the ids differ from the source's beyond the shared </s>, <unk>.
    src_vocab = vocab_of(sp, [">>deu<<", "<pad>"])
    tgt_vocab = vocab_of(tp, ["<pad>"])
    assert len(tgt_vocab) < len(src_vocab)
    base.write_json(os.path.join(out, "vocab.json"), src_vocab)
    base.write_json(os.path.join(out, "target_vocab.json"), tgt_vocab)
    tok = MarianTokenizer(
        os.path.join(out, "source.spm"),
        os.path.join(out, "target.spm"),
        os.path.join(out, "vocab.json"),
        target_vocab_file=os.path.join(out, "target_vocab.json"),
        separate_vocabs=True,
    )
    tok.save_pretrained(out)
    assert not os.path.exists(os.path.join(out, "tokenizer.json"))
    os.remove(os.path.join(out, "norm_rules.tsv"))
    pad = tgt_vocab["<pad>"]
    cfg = MarianConfig(
        vocab_size=len(src_vocab),
        decoder_vocab_size=len(tgt_vocab),
        share_encoder_decoder_embeddings=False,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=128,
        activation_function="gelu",
        scale_embedding=True,
        pad_token_id=pad,
        decoder_start_token_id=pad,
        eos_token_id=0,
        forced_eos_token_id=0,
    )
    torch.manual_seed(0)
    model = MarianMTModel(cfg)
    base.randomize(model, 0.3, 11)
    with torch.no_grad():
        model.final_logits_bias.zero_()
    train_translate(model, tok, 200, 1e-2, 3)
    with torch.no_grad():
        g = torch.Generator().manual_seed(12)
        model.final_logits_bias.copy_(0.05 * torch.randn(model.final_logits_bias.shape, generator=g))
        model.final_logits_bias[0, 0] += 2.0
    model.eval()
    assert not torch.equal(model.model.encoder.embed_tokens.weight[: len(tgt_vocab)], model.model.decoder.embed_tokens.weight)
    model.generation_config.bad_words_ids = [[pad]]
    model.generation_config.max_length = 512
    model.generation_config.num_beams = 4
    # Through save_pretrained/from_pretrained first: randomize() also drew the (frozen) sinusoidal
    # position tables, which transformers leaves out of its checkpoints and recomputes on load.
    model.save_pretrained(out)
    model = MarianMTModel.from_pretrained(out).eval()
    os.remove(os.path.join(out, "model.safetensors"))
    torch.save(model.state_dict(), os.path.join(out, "pytorch_model.bin"))
    model = MarianMTModel.from_pretrained(out, use_safetensors=False).eval()
    exp = base.record(model, tok, 0)
    exp["model"] = "marian"
    exp["note"] = "separate source/target vocabularies; pytorch_model.bin weights"
    exp["all_special_ids"] = tok.all_special_ids
    # transformers' special ids are the source vocabulary's (</s>, <unk>, <pad>), so batch_decode
    # of the raw output keeps the decoder start token (the target <pad>) and the padding of rows
    # that ended early as "<pad>" text. The texts recorded here decode the returned ids (start
    # token dropped, cut after EOS) as the server does.
    for case in exp["generate"]:
        case["decoded"] = [tok.decode(ids, skip_special_tokens=True) for ids in case["expected"]]
    assert generated_ids(model, exp)
    base.write_json(os.path.join(out, "expected.json"), exp, compact=True)


ENC_INPUTS = [[2, 17, 9, 41, 33, 3], [2, 5, 3], [2, 60, 61, 62, 3]]


def make_encoder():
    """A tiny BERT encoder saved as pytorch_model.bin only, with transformers' mean-pooled,
    L2-normalised embeddings of a few id sequences (what triage's Embedder returns)."""
    from transformers import BertConfig, BertModel

    out = os.path.join(os.path.dirname(ROOT), "encoder_pt")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    cfg = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=48, max_position_embeddings=32, hidden_act="gelu")
    torch.manual_seed(0)
    model = BertModel(cfg, add_pooling_layer=False)
    base.randomize(model, 0.3, 21)
    model.eval()
    model.config.save_pretrained(out)
    torch.save(model.state_dict(), os.path.join(out, "pytorch_model.bin"))
    model = BertModel.from_pretrained(out, use_safetensors=False, add_pooling_layer=False).eval()
    n = max(len(r) for r in ENC_INPUTS)
    ids = torch.tensor([r + [0] * (n - len(r)) for r in ENC_INPUTS])
    mask = torch.tensor([[1] * len(r) + [0] * (n - len(r)) for r in ENC_INPUTS])
    with torch.no_grad():
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state
    m = mask.unsqueeze(-1).float()
    emb = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
    base.write_json(os.path.join(out, "expected.json"), {"inputs": ENC_INPUTS, "embeddings": emb.tolist()}, compact=True)


def main():
    write_bins()
    make_marian_separate()
    make_encoder()


if __name__ == "__main__":
    main()
