"""Split the project's own written data (models/data) into train and dev files, once.

    python3 scripts/split_project_data.py SOURCE_DIR

SOURCE_DIR holds the files as written (zh/intents.jsonl, zh/emotion.jsonl, en/emotion.jsonl,
abuse/zh.jsonl, abuse/en.jsonl, and the Traditional-Chinese dev-only sets zh/intents_hant.jsonl,
zh/emotion_hant.jsonl). Writes models/data/<same folder>/<name>.train.jsonl and .dev.jsonl: a row
goes to dev when md5("dev:" + text) % 3 == 0, so about a third is held out and never trains or
tunes anything. Chinese rows get "lang": "zh" (the language their calibration is fitted for);
English rows get none (they fall under the global calibration). The Traditional sets are dev
only. zh/intents.dev.hant.jsonl is the Simplified dev split converted to Traditional (Taiwan
phrasing) with OpenCC (PyPI `opencc-python-reimplemented`), when that package is installed.
"""
import hashlib
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "models/data"


def dev(text):
    return int(hashlib.md5(("dev:" + text.strip()).encode("utf-8")).hexdigest(), 16) % 3 == 0


def rows(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def write(path, rs):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{path.relative_to(OUT.parent.parent)}: {len(rs)} rows")


def split(src, rel, lang):
    rs = rows(src / rel)
    for r in rs:
        if lang:
            r["lang"] = lang
    stem = rel[: -len(".jsonl")]
    write(OUT / f"{stem}.train.jsonl", [r for r in rs if not dev(r["text"])])
    held = [r for r in rs if dev(r["text"])]
    write(OUT / f"{stem}.dev.jsonl", held)
    return held


def main():
    src = Path(sys.argv[1])
    zh_intents = split(src, "zh/intents.jsonl", "zh")
    split(src, "zh/emotion.jsonl", "zh")
    split(src, "en/emotion.jsonl", None)
    split(src, "abuse/zh.jsonl", "zh")
    split(src, "abuse/en.jsonl", None)
    for rel in ("zh/intents_hant.jsonl", "zh/emotion_hant.jsonl"):
        rs = rows(src / rel)
        for r in rs:
            r["lang"] = "zh"
        write(OUT / rel, rs)
    try:
        import opencc  # opencc-python-reimplemented
    except ImportError:
        print("opencc not installed: zh/intents.dev.hant.jsonl not written")
        return
    conv = opencc.OpenCC("s2twp")
    write(OUT / "zh/intents.dev.hant.jsonl", [dict(r, text=conv.convert(r["text"])) for r in zh_intents])


if __name__ == "__main__":
    main()
