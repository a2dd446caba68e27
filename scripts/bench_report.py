"""Join the JSONL results of scripts/bench.sh into one table with triage/baseline ratios.

    python3 scripts/bench_report.py triage.jsonl pytorch.jsonl [onnxruntime.jsonl]
    python3 scripts/bench_report.py triage-f32.jsonl triage-bf16.jsonl -- pytorch.jsonl [onnx.jsonl]
(one table per triage run before `--`, each against every baseline after it). A path may be
several rounds of one system joined by `+` (`f32.1.jsonl+f32.2.jsonl`): per case, the round with
the highest throughput is kept (best of N, the usual answer to a noisy shared machine).
"""
import json
import sys


def load(paths):
    best = {}
    for path in paths.split("+"):
        try:
            rows = [r for r in map(json.loads, open(path)) if r]
        except FileNotFoundError:
            continue
        for r in rows:
            if r["case"] not in best or r["emb_per_s"] > best[r["case"]]["emb_per_s"]:
                best[r["case"]] = r
    return best


def main():
    args = sys.argv[1:]
    cut = args.index("--") if "--" in args else 1
    bases = [r for r in (load(p) for p in args[cut:] if p != "--") if r]
    for path in args[:cut]:
        ours = load(path)
        if ours:
            table(ours, bases)
            print()
    print("ratio = triage throughput / baseline throughput (same texts, same thread count, one run)")


def table(ours, bases):
    names = [next(iter(b.values()))["system"] for b in bases]
    me = next(iter(ours.values())).get("system", "triage")
    w = max(20, len(me) + 8)
    head = f"{'case':<12}{'tok/text':>9}{me + ' emb/s':>{w}}{'p50 ms':>9}{'p99 ms':>9}"
    widths = [max(20, len(n) + 8) for n in names]
    for n, wn in zip(names, widths):
        head += f"{n + ' emb/s':>{wn}}{'p50 ms':>9}{'ratio':>7}"
    print(head)
    for case, r in ours.items():
        line = f"{case:<12}{r['tokens']:>9.1f}{r['emb_per_s']:>{w}.2f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
        for b, wn in zip(bases, widths):
            o = b.get(case)
            if o:
                line += f"{o['emb_per_s']:>{wn}.2f}{o['p50_ms']:>9.1f}{r['emb_per_s'] / o['emb_per_s']:>6.2f}x"
        print(line)


if __name__ == "__main__":
    main()
