#!/usr/bin/env python3
"""Send each bad screenshot upload N times to a running server and report the status codes,
the JSON error fields and the server's resident memory before and after (stdlib only).
    bench_bad_uploads.py --url http://127.0.0.1:PORT --pid PID [--rounds 10]"""
import argparse, http.client, json, os, struct, subprocess, tempfile, urllib.parse, zlib


def chunk(kind, data):
    c = struct.pack(">I", len(data)) + kind + data
    return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(w, h, rows=None):
    """A grey PNG; `rows` limits how many rows are really compressed (the rest is missing)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    z = zlib.compressobj(9)
    line = b"\x00" + b"\x80" * w
    data = b"".join(z.compress(line) for _ in range(h if rows is None else rows)) + z.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def animated_gif():
    head = b"GIF89a" + struct.pack("<HHBBB", 2, 2, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frame = (b"\x21\xf9\x04\x00\x0a\x00\x00\x00" + b"\x2c" + struct.pack("<HHHHB", 0, 0, 2, 2, 0)
             + b"\x02\x02\x44\x01\x00")
    return head + loop + frame + frame + b"\x3b"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--rounds", type=int, default=10)
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    good = png(64, 64)
    bomb = png(20000, 20000, rows=64)  # header says 400 Mpixel; a few KB on the wire
    cases = [
        ("text file named .png", "image/png", b"hello, I am not an image\n" * 10),
        ("truncated PNG", "image/png", good[: len(good) // 2]),
        ("20000x20000 PNG bomb", "image/png", bomb),
        ("0x0 PNG", "image/png", png(0, 0)),
        ("animated GIF", "image/gif", animated_gif()),
        ("50 MB upload", "image/png", good + b"\x00" * (50 * 1024 * 1024)),
    ]
    before = rss_kib(a.pid)
    print(f"RSS before: {before} KiB")
    peak = before
    for name, ctype, body in cases:
        seen = set()
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(body)
        for _ in range(a.rounds):
            # curl reads the early answer to an oversized upload (Python's client cannot).
            out = subprocess.run(
                ["curl", "-s", "-H", f"content-type: {ctype}", "--data-binary", "@" + f.name,
                 "-w", "\n%{http_code}", a.url + "/v1/screenshot"],
                capture_output=True, text=True, timeout=120).stdout
            text, _, status = out.rpartition("\n")
            try:
                j = json.loads(text)
            except ValueError:
                j = {}
            seen.add((status, j.get("field"), j.get("error", "")[:90]))
            peak = max(peak, rss_kib(a.pid))
        os.unlink(f.name)
        for s in sorted(seen, key=str):
            print(f"{name:<22} x{a.rounds}: {s[0]} field={s[1]} {s[2]}")
    after = rss_kib(a.pid)
    print(f"RSS after: {after} KiB (peak seen {peak} KiB, +{after - before} KiB)")
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    c.request("GET", "/health")
    print("health after:", c.getresponse().status)


if __name__ == "__main__":
    main()
