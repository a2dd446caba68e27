"""Deterministic customer-service texts for the embedding benchmark (both systems read the same file).

    python3 scripts/bench_texts.py [--batches 1,8,32] > texts.json
Cases: batch 1, 8, 32 (or --batches) x about 16 and about 128 tokens (English; token counts are measured
per system).
"""
import argparse
import json
import random

WORDS = ("my order has not arrived yet and the tracking page shows no update since last week "
         "please help me get a refund for the damaged item I received the package was open "
         "the app keeps crashing when I try to pay with my credit card and I was charged twice "
         "can you change the delivery address to my office I cannot log in to my account after "
         "the password reset email never came I want to cancel my subscription before renewal").split()


def text(rng, words):
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="1,8,32", help="comma-separated batch sizes")
    batches = [int(b) for b in p.parse_args().batches.split(",")]
    rng = random.Random(0)
    cases = []
    for length, words in ((16, 12), (128, 100)):
        for batch in batches:
            cases.append({"name": f"b{batch}_len{length}", "batch": batch,
                          "texts": [text(rng, words) for _ in range(batch)]})
    print(json.dumps({"cases": cases}))


if __name__ == "__main__":
    main()
