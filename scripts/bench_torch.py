"""Python baseline for the side-by-side embedding benchmark: PyTorch or ONNX Runtime on CPU, one JSON line per case.

Usage (venv with torch, transformers, sentence-transformers, onnxruntime, onnx):
    python scripts/bench_torch.py --backend torch|onnx --model-dir DIR --texts FILE --threads N
        [--prefix "query: "] [--min-seconds S] [--min-iters K] [--cache-dir DIR] [--device cpu|cuda]
        [--dump FILE] [--dtype float32|bfloat16]

FILE is {"cases": [{"name": "b1_len16", "batch": 1, "texts": ["..."]}, ...]}. Every timed call embeds one
case's texts as one batch (tokenize, padding to longest + forward + mean pooling + L2 normalise), after
2 warm-up calls, until at least --min-iters calls and --min-seconds seconds. Per case, stdout gets
    {"system", "case", "batch", "tokens", "iters", "emb_per_s", "p50_ms", "p99_ms"}
(the schema the Rust bench writes too); progress goes to stderr.

torch: a folder with modules.json runs through sentence-transformers (same weights); any other BERT folder
through transformers BertModel + tokenizer.json, mean pooling, L2. onnx: the transformer is exported once
(legacy TorchScript exporter, opset 17, dynamic batch/sequence) to --cache-dir/<model folder>/model.onnx,
run with CPUExecutionProvider and ORT_ENABLE_ALL; pooling in numpy. Exit code 3 when the export fails.
--device cuda (torch only; onnx exits 3): the model and inputs on the GPU in f32, embeddings copied back to
the host in every call (so each call is timed to completion); the system is named "pytorch-cuda".
--dtype bfloat16 (torch only): the model's weights and activations in bf16 (oneDNN, AMX where the CPU has
it), pooling in f32; the system is named "pytorch-bf16".
--dump: the embeddings of each case of batch <= 32 as JSON {case: [[float]]} (as benches/embed.rs writes).
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

DEFAULT_CACHE = Path.home() / ".cache/triage/bench/onnx"


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=["torch", "onnx"], required=True)
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--texts", type=Path, required=True, help="JSON file with the benchmark cases")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--prefix", default="", help='prepended to every text, e.g. "query: " for E5')
    p.add_argument("--min-seconds", type=float, default=5.0)
    p.add_argument("--min-iters", type=int, default=3)
    p.add_argument("--dump", type=Path, help="write the embeddings of cases with batch <= 32 here")
    p.add_argument("--device", default="cpu", help="cpu, or cuda / cuda:N (torch backend only)")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                   help="torch backend: the model's dtype (bfloat16 -> system pytorch-bf16)")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                   help="ONNX cache root; the export lives in <cache-dir>/<model folder name>/model.onnx")
    return p.parse_args(argv)


def set_thread_env(threads):
    """Must run before torch / onnxruntime are imported."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


class HfTokenizer:
    """tokenizer.json with padding to the longest text in the batch and the model's truncation length."""

    def __init__(self, model_dir):
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "config.json").read_text("utf-8"))
        st_config = model_dir / "sentence_bert_config.json"
        max_len = min(512, config.get("max_position_embeddings", 512))
        if st_config.exists():
            max_len = json.loads(st_config.read_text("utf-8")).get("max_seq_length", max_len)
        self.tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        pad_id = config.get("pad_token_id", 0)
        self.tok.enable_padding(pad_id=pad_id, pad_token=self.tok.id_to_token(pad_id))  # batch-longest
        self.tok.enable_truncation(max_length=max_len)

    def __call__(self, texts):
        import numpy as np

        enc = self.tok.encode_batch(texts)
        return {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64)}


def mean_pool_normalise(hidden, mask):
    import numpy as np

    mask = mask[..., None].astype(hidden.dtype)
    mean = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)


def load_bert(model_dir):
    from transformers import BertModel

    return BertModel.from_pretrained(str(model_dir), add_pooling_layer=False, dtype="float32").eval()


def torch_embedder(model_dir, threads, device="cpu", dtype="float32"):
    """Returns (embed(texts) -> np.ndarray, count(texts) -> unpadded token lengths, system name)."""
    import torch

    bf16 = dtype == "bfloat16"

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError as exc:  # only allowed once, before any inter-op work
        log("warning: set_num_interop_threads:", exc)
    system = ("pytorch" if device == "cpu" else "pytorch-cuda") + ("-bf16" if bf16 else "")
    if (model_dir / "modules.json").exists():
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(model_dir), device=device).float().eval()
        if bf16:
            model = model.to(torch.bfloat16)

        def embed(texts):
            if bf16:  # numpy has no bf16: the tensor, then f32
                out = model.encode(texts, batch_size=len(texts), normalize_embeddings=True,
                                   convert_to_tensor=True, show_progress_bar=False)
                return out.float().cpu().numpy()
            return model.encode(texts, batch_size=len(texts), normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)

        def count(texts):
            prep = getattr(model, "preprocess", None) or model.tokenize  # tokenize: ST < 6
            return prep(texts)["attention_mask"].sum(1).tolist()

        return embed, count, system
    tok, model = HfTokenizer(model_dir), load_bert(model_dir).to(device)
    if bf16:
        model = model.to(torch.bfloat16)

    def embed(texts):
        batch = {k: torch.from_numpy(v).to(device) for k, v in tok(texts).items()}
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1).cpu().numpy()

    return embed, lambda texts: tok(texts)["attention_mask"].sum(1).tolist(), system


def export_onnx(model_dir, path):
    """Exports BertModel (ids, mask[, token types] -> last_hidden_state) with dynamic batch and sequence."""
    import inspect

    import torch

    model = load_bert(model_dir)
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids")
             if n in inspect.signature(model.forward).parameters]

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = model

        def forward(self, *inputs):
            return self.bert(**dict(zip(names, inputs)), return_dict=True).last_hidden_state

    sample = HfTokenizer(model_dir)(["a short sample sentence", "and another, slightly longer one here"])
    inputs = tuple(torch.from_numpy(sample[n]) for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    start = time.perf_counter()
    with torch.inference_mode():
        torch.onnx.export(Encoder().eval(), inputs, str(tmp), input_names=names,
                          output_names=["last_hidden_state"], dynamic_axes=axes,
                          opset_version=17, do_constant_folding=True, dynamo=False)
    tmp.replace(path)
    log(f"exported {path} in {time.perf_counter() - start:.1f}s")


def onnx_embedder(model_dir, threads, cache_dir):
    path = cache_dir / model_dir.resolve().name / "model.onnx"
    weights = model_dir / "model.safetensors"
    if not path.exists() or (weights.exists() and path.stat().st_mtime < weights.stat().st_mtime):
        try:
            export_onnx(model_dir, path)
        except Exception as exc:  # noqa: BLE001 - any failure means: no ORT numbers for this model
            log(f"error: ONNX export of {model_dir} failed: {type(exc).__name__}: {exc}")
            sys.exit(3)
    else:
        log(f"using cached {path}")
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    wanted = [i.name for i in session.get_inputs()]
    tok = HfTokenizer(model_dir)

    def embed(texts):
        batch = tok(texts)
        (hidden,) = session.run(["last_hidden_state"], {n: batch[n] for n in wanted})
        return mean_pool_normalise(hidden, batch["attention_mask"])

    return embed, lambda texts: tok(texts)["attention_mask"].sum(1).tolist(), "onnxruntime"


def bench_case(embed, texts, min_seconds, min_iters):
    for _ in range(2):
        embed(texts)
    times, start = [], time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        embed(texts)
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None):
    args = parse_args(argv)
    set_thread_env(args.threads)
    import numpy as np

    cases = json.loads(args.texts.read_text("utf-8"))["cases"]
    if args.backend == "torch":
        embed, count, system = torch_embedder(args.model_dir, args.threads, args.device, args.dtype)
    elif args.device != "cpu" or args.dtype != "float32":
        log("error: the onnx backend runs on the CPU in float32 only here (CPUExecutionProvider)")
        sys.exit(3)
    else:
        embed, count, system = onnx_embedder(args.model_dir, args.threads, args.cache_dir)
    dump = {}
    for case in cases:
        texts = [args.prefix + t for t in case["texts"]]
        if len(texts) <= 32:
            dump[case["name"]] = np.asarray(embed(texts), dtype=np.float64).tolist()
        if len(texts) != case["batch"]:
            log(f"warning: case {case['name']}: batch {case['batch']} but {len(texts)} texts")
        times = bench_case(embed, texts, args.min_seconds, args.min_iters)
        ms = np.array(times) * 1000.0
        row = {"system": system, "case": case["name"], "batch": case["batch"],
               "tokens": round(float(np.mean(count(texts))), 2), "iters": len(times),
               "emb_per_s": round(len(texts) * len(times) / float(np.sum(times)), 3),
               "p50_ms": round(float(np.percentile(ms, 50)), 3),
               "p99_ms": round(float(np.percentile(ms, 99)), 3)}
        print(json.dumps(row), flush=True)
        log(f"{system} {case['name']}: {row['emb_per_s']} emb/s, p50 {row['p50_ms']} ms ({len(times)} calls)")
    if args.dump:
        args.dump.write_text(json.dumps(dump))


if __name__ == "__main__":
    main()
