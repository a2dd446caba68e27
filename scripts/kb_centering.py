"""Per-language mean embeddings for the knowledge base's language centring (models/kb/centering.json;
models/kb/README.md says why). Embeds the tuning questions (English: Bitext train rows held from
the index; Chinese: the project's training rows) with `triage embed` and writes their means.

    python3 scripts/make_kb.py --eval-out DIR
    python3 scripts/kb_centering.py --eval DIR [--triage target/release/triage] [--alpha 0.8]

alpha 0.8 was chosen on the same tuning questions (dense recall@1 over the Bitext index plus the
Chinese articles, for 0, 0.5, 0.6, ..., 1.0); dev questions never enter.
"""
import argparse
import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def embed(triage, texts, batch=128):
    out = []
    for i in range(0, len(texts), batch):
        r = subprocess.run([triage, "embed", *texts[i:i + batch]], capture_output=True,
                           text=True, cwd=ROOT, check=True)
        out += [json.loads(line) for line in r.stdout.splitlines() if line.startswith("[")]
    if len(out) != len(texts):
        raise SystemExit(f"triage embed gave {len(out)} vectors for {len(texts)} texts")
    return out


def mean(vectors):
    n = len(vectors)
    return [round(sum(v[j] for v in vectors) / n, 6) for j in range(len(vectors[0]))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval", required=True, help="make_kb.py --eval-out folder")
    ap.add_argument("--triage", default="target/release/triage")
    ap.add_argument("--alpha", type=float, default=0.8)
    ap.add_argument("--model", default="multilingual-e5-small")
    a = ap.parse_args()
    means = {}
    for lang in ("en", "zh"):
        rows = [json.loads(l) for l in open(Path(a.eval) / f"{lang}.tune.jsonl", encoding="utf-8")]
        means[lang] = mean(embed(a.triage, [r["text"] for r in rows]))
        print(f"{lang}: {len(rows)} questions")
    doc = {"model": a.model, "alpha": a.alpha, "means": means}
    (ROOT / "models/kb/centering.json").write_text(json.dumps(doc) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
