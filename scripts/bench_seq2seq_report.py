"""Join the JSONL results of scripts/bench_seq2seq.sh into one markdown table of generated tokens/s
(triage, PyTorch, CTranslate2) with the ratios triage/PyTorch and triage/CTranslate2.

    python3 scripts/bench_seq2seq_report.py triage.1.jsonl+triage.2.jsonl pytorch.1.jsonl+... ct2...
Each argument is one system's rounds joined by `+`; per (model, case) the round with the highest
throughput is kept (best of N on a noisy shared machine). A case whose systems produced different
output lengths is flagged.
"""
import json
import sys


def load(paths):
    best, name = {}, None
    for path in paths.split("+"):
        try:
            rows = [json.loads(line) for line in open(path) if line.strip()]
        except FileNotFoundError:
            continue
        for r in rows:
            name = r["system"]
            key = (r["model"], r["case"])
            if key not in best or r["tokens_per_s"] > best[key]["tokens_per_s"]:
                best[key] = r
    return name, best


def main():
    systems = [load(p) for p in sys.argv[1:]]
    systems = [(n, b) for n, b in systems if b]
    if not systems:
        sys.exit("bench_seq2seq_report: no results")
    ours, rest = systems[0], systems[1:]
    head = ["model", "case", "tokens"] + [f"{n} tok/s" for n, _ in systems]
    head += [f"{ours[0]}/{n}" for n, _ in rest]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for key in sorted(ours[1]):
        row = ours[1][key]
        cells = [key[0], key[1], f"{row['batch']}x{max(row['lengths'])}"]
        lengths = set()
        for _, b in systems:
            r = b.get(key)
            cells.append(f"{r['tokens_per_s']:.0f}" if r else "-")
            if r:
                lengths.update(r["lengths"])
        for _, b in rest:
            r = b.get(key)
            cells.append(f"{row['tokens_per_s'] / r['tokens_per_s']:.2f}" if r else "-")
        if len(lengths) > 1:
            cells[2] += f" (lengths differ: {sorted(lengths)})"
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
