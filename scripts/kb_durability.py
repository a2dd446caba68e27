"""Issue 21's durability check: bulk knowledge-base imports into a running `triage serve` (real
model, SQLite store), SIGKILL of the server while an import is in flight, a restart, then:
every acknowledged article is there and searchable by its title, the import that was cut off is
there whole or not at all, and no article is stored twice. Loopback only.

    TRIAGE_BIN=target/debug/triage python3 scripts/kb_durability.py
Env: BATCHES (12), PER_BATCH (40), KILL_AFTER (5 acknowledged imports).
"""
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ.get("TRIAGE_BIN", "target/release/triage")
BATCHES = int(os.environ.get("BATCHES", "12"))
PER_BATCH = int(os.environ.get("PER_BATCH", "40"))
KILL_AFTER = int(os.environ.get("KILL_AFTER", "5"))
WORDS = ("parcel invoice refund password voucher warranty courier address account payment "
         "subscription receipt delivery exchange coupon").split()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"content-type": "application/json"} if body is not None else {}
        c.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def article(b, i):
    # Distinct words per article, so that searching its title finds it first.
    w = [WORDS[(b * 7 + i * 3 + k) % len(WORDS)] for k in range(3)]
    return {
        "id": f"b{b}-a{i}",
        "title": f"Article {b}-{i} about {w[0]} {w[1]} code K{b}x{i}",
        "body": f"How to handle {w[0]}, {w[1]} and {w[2]}: reference K{b}x{i}. " * 3,
        "language": "en",
        "tags": [f"batch{b}"],
    }


class Server:
    def __init__(self, work):
        self.port = free_port()
        self.log = os.path.join(work, "serve.log")
        self.config = os.path.join(work, "triage.toml")
        with open(self.config, "w") as f:
            f.write(f"""
[limits]
queue_wait_ms = 120000
[store]
path = "{work}/triage.sqlite"
[kb]
seed_builtin = false
[[models]]
name = "multilingual-e5-small"
source = "pack:multilingual-e5-small"
prefix = "query: "
""")
        self.proc = None

    def start(self):
        log = open(self.log, "a")
        self.proc = subprocess.Popen([BIN, "serve", "--config", self.config,
                                      "--bind", f"127.0.0.1:{self.port}"], stdout=log, stderr=log)
        until = time.time() + 300
        while time.time() < until:
            if self.proc.poll() is not None:
                raise SystemExit(f"kb_durability: serve exited: see {self.log}")
            try:
                if request(self.port, "GET", "/ready", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise SystemExit("kb_durability: serve not ready after 300 s")


def main():
    work = tempfile.mkdtemp(prefix="triage-kb-durability-")
    srv = Server(work)
    srv.start()
    acked, attempted, errors = [], [], []
    killed = threading.Event()

    def importer():
        for b in range(BATCHES):
            if killed.is_set():
                return
            attempted.append(b)
            body = {"kb": "dur", "articles": [article(b, i) for i in range(PER_BATCH)]}
            try:
                status, text = request(srv.port, "POST", "/v1/kb/import", body, timeout=300)
            except OSError as e:
                errors.append(f"batch {b}: {e}")
                return
            if status != 200:
                errors.append(f"batch {b}: {status} {text[:200]!r}")
                return
            acked.append(b)

    t = threading.Thread(target=importer)
    t.start()
    # Kill while the import after the KILL_AFTER-th acknowledgement is in flight.
    while len(acked) < KILL_AFTER and t.is_alive():
        time.sleep(0.05)
    time.sleep(random.uniform(0.1, 2.5))
    srv.proc.kill()
    srv.proc.wait()
    killed.set()
    t.join()
    cut = [b for b in attempted if b not in acked]
    print(f"kb_durability: {len(acked)} imports acknowledged, SIGKILL with {cut} in flight",
          file=sys.stderr)
    srv.start()

    status, text = request(srv.port, "GET", "/v1/kb")
    kbs = {k["name"]: k for k in json.loads(text)["knowledge_bases"]}
    stored = kbs.get("dur", {}).get("articles", 0)
    missing, unsearchable = [], []
    for b in acked:
        for i in range(PER_BATCH):
            a = article(b, i)
            s, _ = request(srv.port, "GET", f"/v1/kb/articles/{a['id']}?kb=dur")
            if s != 200:
                missing.append(a["id"])
                continue
            s, r = request(srv.port, "POST", "/v1/kb/search",
                           {"query": a["title"], "kb": "dur", "top_k": 5})
            hits = [h["id"] for h in json.loads(r)["hits"]] if s == 200 else []
            if a["id"] not in hits or len(hits) != len(set(hits)):
                unsearchable.append(a["id"])
    cut_present = []
    for b in cut:
        n = sum(request(srv.port, "GET", f"/v1/kb/articles/b{b}-a{i}?kb=dur")[0] == 200
                for i in range(PER_BATCH))
        cut_present.append(n)
    srv.proc.terminate()
    srv.proc.wait(timeout=30)
    checks = {
        "killed mid-import": len(cut) == 1 and len(acked) >= KILL_AFTER,
        "every acknowledged article stored": not missing,
        "every acknowledged article found by its title": not unsearchable,
        "the cut import whole or absent": all(n in (0, PER_BATCH) for n in cut_present),
        "none twice (count = acknowledged + whole cut imports)":
            stored == len(acked) * PER_BATCH + sum(cut_present),
        "exit 0 on SIGTERM": srv.proc.returncode == 0,
    }
    print(json.dumps({"acked": len(acked), "cut": cut, "cut_present": cut_present,
                      "stored": stored, "errors": errors[:3], "missing": missing[:5],
                      "unsearchable": unsearchable[:5], "checks": checks}, indent=1))
    if not all(checks.values()):
        raise SystemExit(f"kb_durability: FAILED (logs in {work})")
    print("kb_durability: ok", file=sys.stderr)


if __name__ == "__main__":
    main()
