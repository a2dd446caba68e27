"""Join the JSONL results of scripts/bench.sh into one table with triage/baseline ratios.

    python3 scripts/bench_report.py triage.jsonl pytorch.jsonl [onnxruntime.jsonl]
"""
import json
import sys


def load(path):
    try:
        return {r["case"]: r for r in map(json.loads, open(path)) if r}
    except FileNotFoundError:
        return {}


def main():
    runs = [load(p) for p in sys.argv[1:]]
    ours, bases = runs[0], [r for r in runs[1:] if r]
    names = [next(iter(b.values()))["system"] for b in bases]
    head = f"{'case':<12}{'tok/text':>9}{'triage emb/s':>14}{'p50 ms':>9}{'p99 ms':>9}"
    for n in names:
        head += f"{n + ' emb/s':>20}{'p50 ms':>9}{'ratio':>7}"
    print(head)
    for case, r in ours.items():
        line = f"{case:<12}{r['tokens']:>9.1f}{r['emb_per_s']:>14.2f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
        for b in bases:
            o = b.get(case)
            if o:
                line += f"{o['emb_per_s']:>20.2f}{o['p50_ms']:>9.1f}{r['emb_per_s'] / o['emb_per_s']:>6.2f}x"
        print(line)
    print("ratio = triage throughput / baseline throughput (same texts, same thread count, one run)")


if __name__ == "__main__":
    main()
