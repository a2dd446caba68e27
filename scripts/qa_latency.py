#!/usr/bin/env python3
"""Live quality-inspection latency (issue 22): how long after an agent reply is posted its `qa`
event arrives on the quality queue's SSE stream, beside the baseline of the same server: how
long after a customer message is posted to /v1/triage its `triage` event arrives.

Usage: scripts/qa_latency.py --url http://127.0.0.1:8080 [--n 200]
(scripts/qa_latency.sh starts a release server on a scratch store and runs this.)
Each sample: one customer message (timed: its triage event) then one rude agent reply with a
card number, alternating English and Chinese (timed: its qa event). Posts are sequential.
"""
import argparse
import http.client
import json
import queue
import socket
import statistics
import threading
import time
import urllib.parse

# Each sample's texts differ (an order number), so no embedding cache answers for the encoder.
RUDE = {
    "en": "Shut up, idiot. Order {n} is your problem, your card 4111 1111 1111 1111 is charged.",
    "zh": "你是不是傻逼？订单{n}的钱从卡号 4111111111111111 已经扣了，爱买不买。",
}
ASK = {"en": "My parcel {n} is a week late and nobody answers.",
       "zh": "我的快递{n}一个星期了还没到，怎么回事？"}


def sse(host, port, path, events, out):
    """Read an SSE stream; put (arrival time, event name, data) for each frame named in events."""
    s = socket.create_connection((host, port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
    f = s.makefile("rb")
    name = None
    for raw in f:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name in events:
            out.put((time.perf_counter(), name, json.loads(line[6:])))
            name = None


def post(conn, path, body):
    t = time.perf_counter()
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        raise SystemExit(f"POST {path}: {r.status} {data[:300]!r}")
    return t, time.perf_counter(), json.loads(data)


def wait(q, kind, conv, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            at, name, d = q.get(timeout=max(0.01, end - time.time()))
        except queue.Empty:
            break
        if name == kind and d.get("conversation_id") == conv:
            return at
    raise SystemExit(f"no {kind} event for {conv} within {timeout} s")


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, round(p / 100 * len(v) + 0.5) - 1))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    host, port = u.hostname, u.port or 80
    q = queue.Queue()
    # One stream for everything: triage events arrive on their routing queue, qa on `qa`.
    threading.Thread(target=sse, args=(host, port, "/v1/events", {"triage", "qa"}, q), daemon=True).start()
    time.sleep(0.5)
    conn = http.client.HTTPConnection(host, port, timeout=60)
    tri, qa, answered = [], [], []
    stamp = int(time.time())
    for i in range(a.n):
        lang = "en" if i % 2 == 0 else "zh"
        conv = f"lat-{stamp}-{i}"
        t0, _, _ = post(conn, "/v1/triage", {"conversation_id": conv, "text": ASK[lang].format(n=100000 + i)})
        tri.append((wait(q, "triage", conv) - t0) * 1000)
        t0, t1, r = post(conn, f"/v1/conversations/{conv}/messages",
                         {"role": "agent", "text": RUDE[lang].format(n=100000 + i), "agent_id": f"agent-{lang}"})
        assert r["qa"]["fatal"], r
        qa.append((wait(q, "qa", conv) - t0) * 1000)
        answered.append((t1 - t0) * 1000)
    print(f"{a.n} samples, sequential, {a.url}\n")
    print("| event | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|")
    for name, v in [("triage event after POST /v1/triage (baseline)", tri),
                    ("qa event after POST .../messages", qa),
                    ("(the reply's own answer)", answered)]:
        print(f"| {name} | {pct(v, 50):.1f} | {pct(v, 90):.1f} | {pct(v, 99):.1f} | {max(v):.1f} |")
    print(f"\nqa / triage event latency, p50: {statistics.median(qa) / statistics.median(tri):.2f}x; "
          f"qa events within 100 ms: {sum(x <= 100 for x in qa)}/{len(qa)}")


if __name__ == "__main__":
    main()
