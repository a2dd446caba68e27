#!/usr/bin/env python3
"""Three `triage serve` replicas on one PostgreSQL, with failures, checked end to end.

Run through scripts/replicas.sh (it builds the binary and starts a throwaway PostgreSQL with
scripts/pg_test.sh, which exports TRIAGE_TEST_DATABASE_URL and the TRIAGE_PG_* variables used
here to stop and restart it). Loopback only, bounded (about 2-4 minutes).

What happens:
  * a webhook receiver logs every delivery's Idempotency-Key (it processes a key once; repeats
    on the wire are counted);
  * SSE subscribers read /v1/events, each reconnecting through the next replica with
    Last-Event-ID every few events (and whenever their replica dies);
  * clients send conversations round-robin over the replicas (English and Chinese; routine,
    angry and expert-bound messages, so routes change and webhooks go out), retrying a failed
    send on the next replica with a new attempt tag;
  * a batch job is submitted to replica 1;
  * replica 1 is killed with SIGKILL mid-stream and restarted; later PostgreSQL is stopped with
    `-m immediate` and restarted.
Afterwards, from the database and what the clients saw:
  * every turn answered 2xx is stored exactly once (no text stored twice);
  * every subscriber saw every event once, in id order;
  * every outbox row delivered; the receiver processed each key once;
  * the batch output has every id once, in input order (one runner at a time);
  * every replica exits 0 on SIGTERM.
Exit status 0 when all hold; the summary is printed as JSON.
"""

import collections
import http.client
import http.server
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
ADMIN_URL = os.environ["TRIAGE_TEST_DATABASE_URL"]
PG_BIN = os.environ["TRIAGE_PG_BIN"]
PG_DATA = os.environ["TRIAGE_PG_DATA"]
PG_SOCKET = os.environ["TRIAGE_PG_SOCKET"]
PG_USER = os.environ.get("TRIAGE_PG_USER", "")
PG_OPTS = os.environ["TRIAGE_PG_OPTS"]
DB = "triage_replicas"
DB_URL = ADMIN_URL.replace("dbname=postgres", f"dbname={DB}")
REPLICAS = 3
CONVERSATIONS = int(os.environ.get("CONVERSATIONS", "48"))
TURNS = int(os.environ.get("TURNS", "5"))
CLIENTS = 4
SUBSCRIBERS = 3
BATCH_CONVERSATIONS = int(os.environ.get("BATCH_CONVERSATIONS", "400"))
DEADLINE = time.time() + float(os.environ.get("DEADLINE_SECS", "420"))

MESSAGES = [
    "Where is my order {n}? It was supposed to arrive yesterday.",
    "How do I change the delivery address for order {n}?",
    "I want to delete my account and all my data.",
    "This is the third time I write. Your service is a disgrace, I want a refund NOW!",
    "Can I pay with a credit card?",
    "我的订单{n}什么时候发货？",
    "请帮我修改收货地址。",
    "气死我了！等了两个星期还没发货，你们到底想怎样？",
    "我要注销我的账号，删除所有数据。",
    "请问可以开发票吗？",
]


def as_pg(args):
    return (["runuser", "-u", PG_USER, "--"] if PG_USER else []) + args


def psql(url, sql):
    out = subprocess.run(["psql", url, "-AtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line != ""]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, headers=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


class Receiver(http.server.BaseHTTPRequestHandler):
    lock = threading.Lock()
    wire = collections.Counter()
    processed = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        key = self.headers.get("Idempotency-Key", "")
        with Receiver.lock:
            Receiver.wire[key] += 1
            if Receiver.wire[key] == 1:
                Receiver.processed.append(key)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_):
        pass


class Replica:
    def __init__(self, i, work, hook_port):
        self.i, self.port, self.proc = i, free_port(), None
        self.log = os.path.join(work, f"replica{i}.log")
        self.config = os.path.join(work, f"replica{i}.toml")
        with open(self.config, "w") as f:
            f.write(f"""
[server]
shutdown_timeout_secs = 10
[limits]
queue_wait_ms = 60000
[store]
backend = "postgres"
url = "{DB_URL}"
pool_size = 4
keepalive_secs = 1
[webhooks]
urls = ["http://127.0.0.1:{hook_port}/hook"]
secret = "replicas-test-secret"
initial_backoff_ms = 200
max_backoff_secs = 2
timeout_secs = 2
[batch]
dir = "{work}/batch"
batch_size = 8
[[models]]
name = "multilingual-e5-small"
source = "pack:multilingual-e5-small"
prefix = "query: "
""")

    def start(self):
        log = open(self.log, "a")
        self.proc = subprocess.Popen([BIN, "serve", "--config", self.config,
                                      "--bind", f"127.0.0.1:{self.port}"],
                                     stdout=log, stderr=log)

    def ready(self, secs=300):
        until = time.time() + secs
        while time.time() < until:
            if self.proc.poll() is not None:
                raise SystemExit(f"replica {self.i} exited: see {self.log}")
            try:
                if request(self.port, "GET", "/ready", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"replica {self.i} not ready after {secs} s")

    def kill9(self):
        self.proc.kill()
        self.proc.wait()


def subscriber(n, replicas, seen, stop, errors):
    """Read /v1/events, moving to the next replica every few events with Last-Event-ID."""
    last, hop = 0, n
    while not stop.is_set() and time.time() < DEADLINE:
        r = replicas[hop % REPLICAS]
        hop += 1
        budget = random.randint(3, 12)
        try:
            c = http.client.HTTPConnection("127.0.0.1", r.port, timeout=3)
            c.request("GET", "/v1/events", headers={"Last-Event-ID": str(last)})
            resp = c.getresponse()
            if resp.status != 200:
                resp.read()
                time.sleep(0.3)
                continue
            event_id = None
            while budget > 0 and not stop.is_set():
                line = resp.readline()
                if not line:
                    break
                line = line.decode().rstrip("\n")
                if line.startswith("id:"):
                    event_id = int(line[3:].strip())
                elif line.startswith("data:") and event_id is not None:
                    if event_id <= last:
                        errors.append(f"subscriber {n}: event {event_id} after {last}")
                    seen.append(event_id)
                    last, event_id = event_id, None
                    budget -= 1
            c.close()
        except (OSError, http.client.HTTPException):
            time.sleep(0.2)


def client(w, replicas, acked, stats, gates):
    """Send this worker's conversations turn by turn, round-robin over the replicas. Each gate
    (a share of all turns, an event) holds the clients at that share until the failure it
    stands for has happened, so both failures always fall mid-stream."""
    convs = [f"rep-{c}" for c in range(CONVERSATIONS) if c % CLIENTS == w]
    rr = w
    total = CONVERSATIONS * TURNS
    for t in range(TURNS):
        for conv in convs:
            for share, done in gates:
                if len(acked) >= total * share:
                    done.wait(max(0.0, DEADLINE - time.time()))
            base = random.choice(MESSAGES).replace("{n}", str(random.randint(10000, 99999)))
            for attempt in range(1000):
                if time.time() > DEADLINE:
                    return
                text = f"{base} [ref {conv}-{t}-a{attempt}]"
                r = replicas[rr % REPLICAS]
                rr += 1
                body = json.dumps({"conversation_id": conv, "text": text, "channel": "chat"})
                try:
                    s, answer = request(r.port, "POST", "/v1/triage", body,
                                        {"content-type": "application/json"})
                except (OSError, http.client.HTTPException):
                    stats["connection_errors"] += 1
                    time.sleep(0.2)
                    continue
                kind = "" if 200 <= s < 300 else json.loads(answer or b"{}").get("kind", "")
                stats[f"status_{s}" + (f"_{kind}" if kind else "")] += 1
                if 200 <= s < 300:
                    acked.append(text)
                    break
                time.sleep(0.3)


def pg_restart():
    subprocess.run(as_pg([f"{PG_BIN}/pg_ctl", "-D", PG_DATA, "-m", "immediate", "stop"]),
                   check=True, capture_output=True)
    time.sleep(3)
    subprocess.run(as_pg([f"{PG_BIN}/pg_ctl", "-D", PG_DATA, "-l",
                          os.path.join(PG_SOCKET, "server.log"), "-w", "-t", "60",
                          "-o", PG_OPTS, "start"]), check=True, capture_output=True)


def batch_input():
    lines = []
    for i in range(BATCH_CONVERSATIONS):
        turns = [{"role": "customer", "text": random.choice(MESSAGES).replace("{n}", str(i))},
                 {"role": "agent", "text": "Thanks, let me check that for you."},
                 {"role": "customer", "text": random.choice(MESSAGES).replace("{n}", str(i))}]
        lines.append(json.dumps({"id": f"b{i:05d}", "turns": turns}, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode()


def wait_for(what, cond, secs):
    until = time.time() + secs
    while time.time() < until:
        if cond():
            return True
        time.sleep(0.5)
    print(f"replicas: timed out waiting for {what}", file=sys.stderr)
    return False


def main():
    random.seed(7)
    work = tempfile.mkdtemp(prefix="triage-replicas-")
    psql(ADMIN_URL, f"DROP DATABASE IF EXISTS {DB}")
    psql(ADMIN_URL, f"CREATE DATABASE {DB}")
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    replicas = [Replica(i, work, hook.server_address[1]) for i in range(REPLICAS)]
    t0 = time.time()
    subprocess.run([BIN, "store", "migrate", "--config", replicas[0].config], check=True)
    for r in replicas:
        r.start()
    for r in replicas:
        r.ready()
    print(f"replicas: 3 ready in {time.time() - t0:.1f} s (logs in {work})", file=sys.stderr)

    stop = threading.Event()
    seen = [[] for _ in range(SUBSCRIBERS)]
    sub_errors = []
    subs = [threading.Thread(target=subscriber, args=(n, replicas, seen[n], stop, sub_errors))
            for n in range(SUBSCRIBERS)]
    acked, stats = [], collections.Counter()
    killed, restarted = threading.Event(), threading.Event()
    gates = [(0.4, killed), (0.8, restarted)]
    clients = [threading.Thread(target=client, args=(w, replicas, acked, stats, gates))
               for w in range(CLIENTS)]
    for t in subs + clients:
        t.start()

    s, b = request(replicas[1].port, "POST", "/v1/batch/summarize", batch_input(),
                   {"content-type": "application/x-ndjson"})
    assert s == 202, (s, b)
    job = json.loads(b)["job_id"]

    total = CONVERSATIONS * TURNS
    wait_for("a fifth of the turns", lambda: len(acked) >= total // 5, 300)
    replicas[1].kill9()
    killed_at = len(acked)
    killed.set()
    time.sleep(2)
    replicas[1].start()
    replicas[1].ready()
    wait_for("half of the turns", lambda: len(acked) >= total // 2, 300)
    pg_at = len(acked)
    pg_restart()
    restarted.set()
    for t in clients:
        t.join(max(1, DEADLINE - time.time()))

    def job_state():
        try:
            s, b = request(replicas[0].port, "GET", f"/v1/batch/{job}")
            return json.loads(b).get("state") if s == 200 else None
        except OSError:
            return None
    wait_for("the batch job", lambda: job_state() in ("done", "failed"), 240)
    undelivered = lambda: int(psql(DB_URL, "SELECT COUNT(*) FROM outbox "
                                           "WHERE delivered_ms IS NULL AND NOT dead")[0])
    wait_for("the webhook outbox", lambda: undelivered() == 0, 120)
    events = [int(x) for x in psql(DB_URL, "SELECT seq FROM events ORDER BY seq")]
    wait_for("the subscribers", lambda: all(s[-1:] == events[-1:] for s in seen), 60)
    stop.set()
    for t in subs:
        t.join(10)

    stored = collections.Counter(psql(DB_URL, "SELECT text FROM turns WHERE role = 'customer'"))
    keys = set(psql(DB_URL, "SELECT key FROM outbox"))
    s, b = request(replicas[0].port, "GET", f"/v1/batch/{job}/result")
    out_ids = [json.loads(line)["id"] for line in b.decode().splitlines() if line.strip()]
    want_ids = [f"b{i:05d}" for i in range(BATCH_CONVERSATIONS)]
    runners = collections.Counter()
    for r in replicas:
        with open(r.log) as f:
            runners[f"replica{r.i}"] = sum("batch: job started" in line for line in f)
    final_state, pending = job_state(), undelivered()
    for r in replicas:
        r.proc.terminate()
    exits = [r.proc.wait(60) for r in replicas]

    checks = {
        "every acked turn stored once": all(stored[t] == 1 for t in acked),
        "no turn text stored twice": all(n == 1 for n in stored.values()),
        "every turn acked": len(acked) == total,
        "subscribers saw every event once, in order":
            not sub_errors and all(s == events for s in seen),
        "outbox all delivered": pending == 0,
        "receiver processed each key once": sorted(Receiver.processed) == sorted(keys)
            and len(Receiver.processed) == len(set(Receiver.processed)),
        "batch job done": final_state == "done",
        "batch output has every id once, in order": out_ids == want_ids,
        "both failures happened mid-stream": killed_at < pg_at < total,
        "replicas exit 0 on SIGTERM": exits == [0] * REPLICAS,
    }
    summary = {
        "turns_acked": len(acked), "turns_stored": sum(stored.values()),
        "failed_attempts_stored": sum(stored.values()) - len(acked),
        "client_outcomes": dict(stats), "killed_replica1_after_turns": killed_at,
        "postgres_restarted_after_turns": pg_at, "events": len(events),
        "subscriber_events_seen": [len(s) for s in seen], "subscriber_errors": sub_errors[:5],
        "outbox_rows": len(keys), "webhooks_on_wire": sum(Receiver.wire.values()),
        "webhook_duplicates_on_wire": sum(Receiver.wire.values()) - len(Receiver.wire),
        "batch_output_lines": len(out_ids), "batch_job_starts_by_replica": dict(runners),
        "exit_statuses": exits, "seconds": round(time.time() - t0, 1), "checks": checks,
    }
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
