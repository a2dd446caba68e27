"""Python side of the seq2seq throughput benchmark (scripts/bench_seq2seq.sh): random-weight models
of the real sizes, and the PyTorch / CTranslate2 baselines on them, one JSON line per case.

Usage (venv with torch, transformers, ctranslate2, safetensors):
    python scripts/bench_seq2seq.py make OUT_DIR
        OUT_DIR/{marian,t5}: config.json, model.safetensors, tokenizer.json (a word-level stand-in:
        the benchmark feeds ids), OUT_DIR/{marian,t5}-ct2: the same weights converted by
        ctranslate2's TransformersConverter (float32), OUT_DIR/inputs.json: 16 source rows of 32
        ids (31 random + EOS), the same for every system.
    python scripts/bench_seq2seq.py torch|ct2 --model-dir DIR --inputs FILE --threads N
        [--new-tokens 64] [--cases greedy-b1,...] [--min-seconds 2] [--min-iters 1]

Marian has opus-mt-zh-en's configuration (d_model 512, 6+6 layers, 8 heads, ffn 2048, swish,
vocab 65001, static sinusoidal positions, scaled embeddings, tied), T5 t5-small's (d_model 512,
d_kv 64, d_ff 2048, 6+6 layers, 8 heads, relu, vocab 32128). Weights are transformers' random
init (seeded): speed does not depend on their values. Output is forced to --new-tokens tokens per
row in every system (transformers: min_new_tokens = max_new_tokens; CTranslate2:
min_decoding_length = max_decoding_length); each line records the lengths produced.
Per case, stdout gets {"system", "model", "case", "batch", "beams", "iters", "seconds",
"tokens_per_s", "lengths"} (the schema benches/seq2seq.rs writes); one short warm-up call per
process, then every call is timed (mean over --min-iters / --min-seconds).
"""
import argparse
import json
import os
import sys
import time

MARIAN = dict(
    vocab_size=65001, decoder_vocab_size=65001, d_model=512, encoder_layers=6, decoder_layers=6,
    encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048,
    decoder_ffn_dim=2048, activation_function="swish", max_position_embeddings=512,
    scale_embedding=True, share_encoder_decoder_embeddings=True, pad_token_id=65000,
    eos_token_id=0, bos_token_id=0, decoder_start_token_id=65000, forced_eos_token_id=0,
    bad_words_ids=[[65000]], num_beams=6, max_length=512,
)
T5 = dict(
    vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8,
    relative_attention_num_buckets=32, feed_forward_proj="relu", tie_word_embeddings=True,
    pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
)
# Special tokens per model: (id, string). Every other id i is the token "t<i>".
SPECIALS = {"marian": {0: "</s>", 1: "<unk>", 65000: "<pad>"}, "t5": {0: "<pad>", 1: "</s>", 2: "<unk>"}}


def vocab(kind, size):
    sp = SPECIALS[kind]
    return [sp.get(i, f"t{i}") for i in range(size)]


class StandInTokenizer:
    """What ctranslate2's Marian / T5 loaders read from a tokenizer: the vocabulary and specials."""

    def __init__(self, kind, size):
        self.tokens = vocab(kind, size)
        sp = {v: k for k, v in SPECIALS[kind].items()}
        self.eos_token, self.unk_token, self.pad_token = "</s>", "<unk>", "<pad>"
        self.pad_token_id = sp["<pad>"]
        self.special_tokens_map = {}

    def get_vocab(self):
        return {t: i for i, t in enumerate(self.tokens)}

    def convert_ids_to_tokens(self, i):
        return self.tokens[i]


def save_tokenizer(kind, size, path):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    tok = Tokenizer(WordLevel({t: i for i, t in enumerate(vocab(kind, size))}, unk_token="<unk>"))
    tok.pre_tokenizer = WhitespaceSplit()
    tok.save(path)


def make(out):
    import torch
    import ctranslate2
    from transformers import MarianConfig, MarianMTModel, T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    for kind, cfg_cls, model_cls, cfg in [
        ("marian", MarianConfig, MarianMTModel, MARIAN),
        ("t5", T5Config, T5ForConditionalGeneration, T5),
    ]:
        path = os.path.join(out, kind)
        model = model_cls(cfg_cls(**cfg)).eval()
        model.save_pretrained(path, safe_serialization=True)
        save_tokenizer(kind, cfg["vocab_size"], os.path.join(path, "tokenizer.json"))

        class Converter(ctranslate2.converters.TransformersConverter):
            def load_tokenizer(self, *args, **kwargs):
                return StandInTokenizer(kind, cfg["vocab_size"])

        Converter(path).convert(path + "-ct2", quantization="float32", force=True)
        print(f"bench_seq2seq: made {path} and {path}-ct2", file=sys.stderr)
    g = torch.Generator().manual_seed(1)
    rows = [torch.randint(3, 32000, (31,), generator=g).tolist() for _ in range(16)]
    # Each model's EOS differs (Marian 0, T5 1): the shell passes the model's own inputs file.
    for kind, eos in [("marian", 0), ("t5", 1)]:
        with open(os.path.join(out, f"inputs-{kind}.json"), "w") as f:
            json.dump([r + [eos] for r in rows], f)


def parse_case(case):
    search, batch = case.split("-b")
    return (1 if search == "greedy" else int(search.removeprefix("beam"))), int(batch)


def run(args):
    rows = json.load(open(args.inputs))
    kind = json.load(open(os.path.join(args.model_dir, "config.json")))["model_type"]
    n = args.new_tokens
    if args.backend == "torch":
        import torch
        from transformers import AutoModelForSeq2SeqLM

        torch.set_num_threads(args.threads)
        model = AutoModelForSeq2SeqLM.from_pretrained(args.model_dir).eval()

        def call(batch, beams, n):
            ids = torch.tensor(batch)
            with torch.inference_mode():
                out = model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                    num_beams=beams, max_new_tokens=n, min_new_tokens=n,
                )
            return [out.shape[1] - 1] * len(batch)  # minus the decoder start column
        system = "pytorch"
    else:
        import ctranslate2

        tokens = vocab(kind, json.load(open(os.path.join(args.model_dir, "config.json")))["vocab_size"])
        model = ctranslate2.Translator(
            args.model_dir + "-ct2", device="cpu", compute_type="float32",
            intra_threads=args.threads, inter_threads=1,
        )

        def call(batch, beams, n):
            src = [[tokens[i] for i in r] for r in batch]
            res = model.translate_batch(
                src, beam_size=beams, max_batch_size=0, max_decoding_length=n,
                min_decoding_length=n, return_scores=False,
            )
            return [len(r.hypotheses[0]) for r in res]
        system = "ctranslate2"
    call(rows[:1], 1, 4)  # warm-up
    for case in args.cases.split(","):
        beams, batch = parse_case(case)
        times = []
        start = time.perf_counter()
        while len(times) < args.min_iters or time.perf_counter() - start < args.min_seconds:
            t = time.perf_counter()
            lengths = call(rows[:batch], beams, n)
            times.append(time.perf_counter() - t)
        mean = sum(times) / len(times)
        line = json.dumps({
            "system": system, "model": kind, "case": case, "batch": batch, "beams": beams,
            "iters": len(times), "seconds": mean, "tokens_per_s": batch * n / mean,
            "lengths": lengths,
        })
        print(line, flush=True)
        print(line, file=sys.stderr)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        return make(sys.argv[2])
    p = argparse.ArgumentParser()
    p.add_argument("backend", choices=["torch", "ct2"])
    p.add_argument("--model-dir", required=True)
    p.add_argument("--inputs", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--cases", default="greedy-b1,greedy-b16,beam4-b1,beam4-b16")
    p.add_argument("--min-seconds", type=float, default=2.0)
    p.add_argument("--min-iters", type=int, default=1)
    run(p.parse_args())


if __name__ == "__main__":
    main()
