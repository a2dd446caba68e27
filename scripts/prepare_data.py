"""Turn the datasets in ../shared/data into the generic JSONL that `triage train` / `triage eval` read.

    python3 scripts/prepare_data.py [--data ../shared/data] [--out $TRIAGE_HOME/data]

Writes (outside the repo) <name>.train.jsonl / <name>.dev.jsonl with {"text", "label"} (intent)
or {"text", "labels": [...]} (emotion). Splits are deterministic: the dataset's own dev split
where it has one, else md5("dev:" + text) % 10 == 0 (salted: md5(text) % 10 == 0 is the held-out test split).
Licence policy (../shared/data/README.md): banking77, clinc150, goemotions, bitext, cold may
train shipped heads; smp2017 and nlpcc2013 are written only for evaluation (`*.eval.jsonl`).
"""
import argparse
import csv
import hashlib
import json
import os
from pathlib import Path


def held_out(text):
    # Salted: the datasets' own md5 % 10 == 0 rows are already gone (their held-out test split).
    return int(hashlib.md5(("dev:" + text.strip()).encode("utf-8")).hexdigest(), 16) % 10 == 0


def write(out, name, rows):
    path = out / f"{name}.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{path}: {len(rows)} rows")


def split(rows):
    return [r for r in rows if not held_out(r["text"])], [r for r in rows if held_out(r["text"])]


def csv_intents(data, out, name, path, text_col, label_col):
    with open(data / path, encoding="utf-8") as f:
        rows = [{"text": r[text_col], "label": r[label_col]} for r in csv.DictReader(f)]
    tr, dev = split(rows)
    write(out, f"{name}.train", tr)
    write(out, f"{name}.dev", dev)


def banking77(data, out):
    csv_intents(data, out, "banking77", "banking77/train.csv", "text", "category")


def bitext(data, out):
    csv_intents(data, out, "bitext", "bitext_customer_support/train.csv", "instruction", "intent")


def clinc150(data, out):
    d = json.load(open(data / "clinc150/data_full.json", encoding="utf-8"))
    # data_oos_plus: the same splits, with 250 out-of-scope training examples instead of 100.
    plus = json.load(open(data / "clinc150/data_oos_plus.json", encoding="utf-8"))
    rows = lambda *keys: [{"text": t, "label": l} for k in keys for t, l in d[k]]
    write(out, "clinc150.train", [{"text": t, "label": l} for k in ("train", "oos_train") for t, l in plus[k]])
    write(out, "clinc150.dev", rows("val", "oos_val"))
    # The official test split: evaluation only, never used to train or tune.
    write(out, "clinc150.test", rows("test", "oos_test"))


# CLINC150 intents far from e-commerce support: with CLINC150's own out-of-scope queries they teach
# the `bitext` head an `oos` class (what the shop's bot must not answer).
UNRELATED = """alarm book_flight book_hotel calculator calendar calories car_rental change_accent change_ai_name
change_speed change_volume cook_time date definition directions distance do_you_have_pets exchange_rate
flight_status flip_coin fun_fact gas gas_type how_old_are_you ingredient_substitution ingredients_list
international_visa jump_start meal_suggestion meaning_of_life measurement_conversion mpg next_holiday
next_song nutrition_info oil_change_how oil_change_when play_music plug_type recipe restaurant_reservation
restaurant_reviews restaurant_suggestion roll_dice spelling tell_joke time timer timezone tire_change
tire_pressure traffic translate travel_suggestion uber vaccines weather what_are_your_hobbies what_song
where_are_you_from whisper_mode who_made_you""".split()


def bitext_oos(data, out):
    plus = json.load(open(data / "clinc150/data_oos_plus.json", encoding="utf-8"))
    per = {}
    for t, l in plus["train"]:
        if l in UNRELATED and len(per.setdefault(l, [])) < 10:
            per[l].append(t)
    rows = [{"text": t, "label": "oos"} for ts in per.values() for t in ts]
    rows += [{"text": t, "label": "oos"} for t, _ in plus["oos_train"]]
    write(out, "bitext_oos.train", rows)


def goemotions(data, out):
    labels = (data / "goemotions/labels.txt").read_text("utf-8").split()
    for part, name in (("train", "goemotions.train"), ("dev", "goemotions.dev")):
        rows = []
        with open(data / f"goemotions/{part}.tsv", encoding="utf-8") as f:
            for line in f:
                text, ids, _ = line.rstrip("\n").split("\t")
                rows.append({"text": text, "labels": [labels[int(i)] for i in ids.split(",")]})
        write(out, name, rows)


def cold(data, out):
    # COLD (Apache-2.0, Chinese offensive language): trains the abuse head; its official dev
    # split is the evaluation set (never used for training or tuning).
    for part in ("train", "dev"):
        with open(data / f"cold/{part}.csv", encoding="utf-8-sig") as f:
            rows = [{"text": r["TEXT"], "labels": ["abusive" if r["label"] == "1" else "ok"], "lang": "zh"}
                    for r in csv.DictReader(f)]
        write(out, f"cold.{part}", rows)


# NLPCC 2013 labels -> the support-oriented emotion groups of the emotion head.
NLPCC_GROUPS = {"anger": "anger", "disgust": "anger", "sadness": "sadness", "fear": "fear",
                "happiness": "gratitude_joy", "like": "gratitude_joy", "surprise": "neutral",
                "none": "neutral"}


def chinese_eval(data, out):
    for part in ("train", "dev"):
        rows = [json.loads(l) for l in open(data / f"smp2017_ecdt_task1/{part}.jsonl", encoding="utf-8")]
        write(out, f"smp2017.{part}.eval", [{"text": r["text"], "label": r["label"]} for r in rows])
    with open(data / "nlpcc2013_emotion/train.csv", encoding="utf-8") as f:
        rows = [{"text": r["文本"], "label": NLPCC_GROUPS[r["标签"]]} for r in csv.DictReader(f)]
    write(out, "nlpcc2013.dev.eval", [r for r in rows if held_out(r["text"])])


def main():
    home = Path(os.environ.get("TRIAGE_HOME", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "triage"))
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parent.parent.parent / "shared/data"))
    ap.add_argument("--out", default=str(home / "data"))
    a = ap.parse_args()
    data, out = Path(a.data), Path(a.out)
    if not data.is_dir():
        print(f"no dataset folder at {data}: nothing to prepare")
        return
    out.mkdir(parents=True, exist_ok=True)
    for fn in (banking77, bitext, bitext_oos, clinc150, goemotions, cold, chinese_eval):
        fn(data, out)


if __name__ == "__main__":
    main()
