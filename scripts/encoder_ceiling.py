"""How far multilingual-e5-small itself can go on issue 18's two eval-only Chinese bars, whatever
head sits on it. Diagnosis only: it trains throwaway probes on the eval-only sets, writes nothing,
and nothing it fits ships.

- SMP2017-ECDT: a linear probe on the frozen encoder trained on all 2,299 train rows (not 10 per
  label), scored on dev: the ceiling that few-shot matching at k=10 approaches.
- NLPCC 2013 anger + disgust against the rest: 5-fold out-of-fold scores of a linear probe on the
  frozen encoder, trained on ~9,500 in-domain Weibo posts per fold; with `--tune-top2`, also the
  encoder's top two layers fine-tuned with the probe on fold 0's 80% and scored on its 20%.
  Reported as the best recall at precision >= 0.6, and the precision where recall reaches 0.5.

Same weights as the server (the converted model pack, `query: ` prefix, mean pooling; parity with
the candle encoder is tested in tests/). Runs with the benchmark venv (torch, transformers):

    ~/.cache/triage/bench-venv/bin/python scripts/encoder_ceiling.py [--tune-top2]

Needs `python3 scripts/prepare_data.py` (for smp2017.*.eval.jsonl) and ../shared/data.
"""
import argparse
import copy
import csv
import json
import os
import random
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from bench_torch import load_bert

ROOT = Path(__file__).resolve().parent.parent
HOME = Path(os.environ.get("TRIAGE_HOME", Path.home() / ".cache/triage"))
SHARED = ROOT.parent / "shared/data"


def batches(texts, size):
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[i:i + size] for i in range(0, len(order), size)]


def tokens(tok, texts):
    return tok(["query: " + t for t in texts], padding=True, truncation=True, max_length=128,
               return_tensors="pt")


def pool(h, mask):
    m = mask.unsqueeze(-1).float()
    return torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)


def embed(model, tok, texts):
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    for b in batches(texts, 64):
        enc = tokens(tok, [texts[i] for i in b])
        with torch.no_grad():
            out[b] = pool(model(**enc).last_hidden_state, enc["attention_mask"]).numpy()
    return out


def probe(x_train, y_train, x_test, classes, epochs=300):
    """Softmax regression (Adam, weight decay 1e-3) on unit embeddings scaled by 10."""
    w = torch.nn.Linear(x_train.shape[1], classes)
    opt = torch.optim.Adam(w.parameters(), lr=1e-2, weight_decay=1e-3)
    x, y = torch.tensor(x_train) * 10, torch.tensor(y_train)
    for _ in range(epochs):
        loss = torch.nn.functional.cross_entropy(w(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return torch.softmax(w(torch.tensor(x_test) * 10), -1).numpy()


def curve(scores, gold):
    """(best recall at precision >= 0.6, precision where recall first reaches 0.5)."""
    pairs = sorted(zip(scores, gold), key=lambda t: -t[0])
    positives = sum(gold)
    tp = fp = 0
    best, at_half = 0.0, None
    for _, g in pairs:
        tp += g
        fp += 1 - g
        p, r = tp / (tp + fp), tp / positives
        if p >= 0.6:
            best = max(best, r)
        if r >= 0.5 and at_half is None:
            at_half = p
    return best, at_half


def smp2017(model, tok):
    data = HOME / "data"
    rows = {s: [json.loads(l) for l in open(data / f"smp2017.{s}.eval.jsonl", encoding="utf-8")]
            for s in ("train", "dev")}
    labels = sorted({r["label"] for r in rows["train"]})
    x = {s: embed(model, tok, [r["text"] for r in rows[s]]) for s in rows}
    p = probe(x["train"], [labels.index(r["label"]) for r in rows["train"]], x["dev"], len(labels))
    acc = np.mean([labels[i] == r["label"] for i, r in zip(p.argmax(1), rows["dev"])])
    print(f"SMP2017 dev, linear probe on all {len(rows['train'])} train rows: accuracy {acc:.3f}")


def nlpcc_rows():
    with open(SHARED / "nlpcc2013_emotion/train.csv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["文本"].strip()]
    texts = [r["文本"] for r in rows]
    gold = np.array([r["标签"] in ("anger", "disgust") for r in rows]).astype(int)
    folds = np.array_split(np.random.RandomState(0).permutation(len(rows)), 5)
    return texts, gold, folds


def nlpcc_probe(model, tok, texts, gold, folds):
    x = embed(model, tok, texts)
    scores = np.zeros(len(texts))
    for f in folds:
        train = np.setdiff1d(np.arange(len(texts)), f)
        scores[f] = probe(x[train], gold[train], x[f], 2)[:, 1]
    best, at_half = curve(scores.tolist(), gold.tolist())
    print(f"NLPCC anger+disgust ({gold.sum()} of {len(gold)} posts), frozen encoder + linear probe, "
          f"5-fold: best recall at P>=0.6 {best:.2f}, precision at recall 0.5 {at_half:.2f}")


def nlpcc_tuned(model, tok, texts, gold, folds, epochs=3):
    """Layers 11-12 and a linear head trained on fold 0's 80%, scored on its 20% after each epoch."""
    test = set(folds[0].tolist())
    cached = []
    for b in batches(texts, 32):
        enc = tokens(tok, [texts[i] for i in b])
        with torch.no_grad():
            h = model(**enc, output_hidden_states=True).hidden_states[-3]
        cached.append((b, h, enc["attention_mask"]))
    layers = copy.deepcopy(torch.nn.ModuleList(model.encoder.layer[-2:]))
    head = torch.nn.Linear(model.config.hidden_size, 2)

    def forward(h, mask):
        ext = (1.0 - mask[:, None, None, :].float()) * -1e9
        for layer in layers:
            o = layer(h, attention_mask=ext)
            h = o[0] if isinstance(o, tuple) else o
        return head(pool(h, mask) * 10)

    opt = torch.optim.AdamW([{"params": layers.parameters(), "lr": 3e-5},
                             {"params": head.parameters(), "lr": 1e-3}])
    rng = random.Random(0)
    for epoch in range(epochs):
        layers.train()
        for b, h, mask in rng.sample(cached, len(cached)):
            keep = [j for j, i in enumerate(b) if i not in test]
            if keep:
                loss = torch.nn.functional.cross_entropy(
                    forward(h[keep], mask[keep]), torch.tensor(gold[[b[j] for j in keep]]))
                opt.zero_grad()
                loss.backward()
                opt.step()
        layers.eval()
        scores, labels = [], []
        with torch.no_grad():
            for b, h, mask in cached:
                keep = [j for j, i in enumerate(b) if i in test]
                if keep:
                    scores += torch.softmax(forward(h[keep], mask[keep]), -1)[:, 1].tolist()
                    labels += [int(gold[b[j]]) for j in keep]
        best, at_half = curve(scores, labels)
        print(f"NLPCC, top two layers tuned in-domain, epoch {epoch + 1}, fold 0 ({len(labels)} posts):"
              f" best recall at P>=0.6 {best:.2f}, precision at recall 0.5 {at_half:.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(HOME / "models/multilingual-e5-small"))
    ap.add_argument("--tune-top2", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(a.model)
    model = load_bert(a.model)
    if not (SHARED / "nlpcc2013_emotion/train.csv").exists():
        raise SystemExit(f"skipped: {SHARED} has no nlpcc2013_emotion")
    smp2017(model, tok)
    texts, gold, folds = nlpcc_rows()
    nlpcc_probe(model, tok, texts, gold, folds)
    if a.tune_top2:
        nlpcc_tuned(model, tok, texts, gold, folds)


if __name__ == "__main__":
    main()
