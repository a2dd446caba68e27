#!/usr/bin/env python3
"""Live-event latency against a running server: subscribe to /v1/events (SSE), send triage
calls from N concurrent clients, and report how long after each triage response its event
reached the subscriber (p50/p99/max), plus the triage latency and throughput.
   python3 scripts/bench_events.py --url http://127.0.0.1:8080 --messages 200 --clients 4
Standard library only."""
import argparse, http.client, json, threading, time, urllib.parse, statistics

TEXTS = [
    "Where is my order? It should have arrived by now.",
    "This is outrageous! I am so angry, your company is a disgrace!",
    "请问我的订单什么时候发货？",
    "我非常生气，你们的服务太差了，简直是垃圾！",
    "How do I change my shipping address?",
    "I want to talk to a real person.",
]

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--clients", type=int, default=4)
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    arrived, answered, triage_ms = {}, {}, []
    lock = threading.Lock()
    ready = threading.Event()

    def listen():
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        c.request("GET", "/v1/events", headers={"Accept": "text/event-stream"})
        r = c.getresponse()
        ready.set()
        eid = None
        while True:
            line = r.fp.readline()
            if not line:
                return
            line = line.decode().rstrip("\r\n")
            if line.startswith("id: "):
                eid = int(line[4:])
            elif line.startswith("data: ") and eid is not None:
                with lock:
                    arrived[eid] = time.perf_counter()

    threading.Thread(target=listen, daemon=True).start()
    ready.wait(30)
    time.sleep(0.2)
    per = a.messages // a.clients

    def client(k):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        for i in range(per):
            body = json.dumps({"conversation_id": f"bench-{k}-{i % 10}", "text": TEXTS[(i + k) % len(TEXTS)]})
            t = time.perf_counter()
            c.request("POST", "/v1/triage", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            done = time.perf_counter()
            if r.status != 200:
                raise SystemExit(f"triage {r.status}: {data[:200]}")
            eid = json.loads(data)["conversation"]["event_id"]
            with lock:
                answered[eid] = done
                triage_ms.append((done - t) * 1000)

    t0 = time.perf_counter()
    ts = [threading.Thread(target=client, args=(k,)) for k in range(a.clients)]
    for t in ts: t.start()
    for t in ts: t.join()
    wall = time.perf_counter() - t0
    time.sleep(1.0)
    with lock:
        lags = [(arrived[e] - answered[e]) * 1000 for e in answered if e in arrived]
        missing = [e for e in answered if e not in arrived]
    n = len(answered)
    print(json.dumps({
        "messages": n, "clients": a.clients, "throughput_per_s": round(n / wall, 2),
        "triage_ms_p50": round(pct(triage_ms, 50), 1), "triage_ms_p99": round(pct(triage_ms, 99), 1),
        # Negative: the event arrived before the client had read its response.
        "event_after_response_ms_p50": round(pct(lags, 50), 2),
        "event_after_response_ms_p99": round(pct(lags, 99), 2),
        "event_after_response_ms_max": round(max(lags), 2) if lags else None,
        "events_missing": len(missing),
    }, indent=1))

if __name__ == "__main__":
    main()
