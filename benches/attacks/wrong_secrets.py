#!/usr/bin/env python3
"""Hole 2 of the hardening issue, as the attack was made: wrong client secrets sent to /token
by 300 attackers at once from three loopback addresses, for SECONDS, spread over the clients
victim-0 .. victim-19 (so per-client back-off alone cannot stop them), while a client whose
secret is already verified keeps asking for tokens. Prints one JSON line: the honest client's
latency before and during the flood, how the flood was answered, and Herald's peak RSS.

Usage: benches/attacks/wrong_secrets.py BASE PID [SECONDS]
  SECONDS  how long the flood lasts (default 10); 0 sends each attacker's one wrong secret
           once, 300 in all, as the attack was first made
  BASE  Herald's issuer URL. Its configuration needs the clients `honest` (secret
        honest-secret-0123456789) and victim-0 .. victim-19, all confidential with the
        client_credentials grant and the scope `api`, and `limits = { per_ip_per_second = 0 }`
        so that the rate limiter does not hide the cost of argon2. benches/attacks/herald.toml
        is such a configuration.
  PID   Herald's process id (for RSS)
"""
import base64, collections, http.client, json, sys, threading, time, urllib.parse

BASE, PID = sys.argv[1], int(sys.argv[2])
SECONDS = float(sys.argv[3]) if len(sys.argv) > 3 else 10
ATTACKERS = 300
VICTIMS = 20
HONEST_SECRET = "honest-secret-0123456789"
url = urllib.parse.urlparse(BASE)


def token(client, secret, source):
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60,
                                      source_address=(source, 0))
    auth = base64.b64encode(f"{client}:{secret}".encode()).decode()
    body = "grant_type=client_credentials&scope=api"
    start = time.perf_counter()
    conn.request("POST", "/token", body, {
        "Authorization": f"Basic {auth}",
        "Content-Type": "application/x-www-form-urlencoded"})
    res = conn.getresponse()
    res.read()
    conn.close()
    return res.status, time.perf_counter() - start


def rss_kb():
    with open(f"/proc/{PID}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))


# The honest client's secret is verified once (and cached) before the flood.
assert token("honest", HONEST_SECRET, "127.0.0.1")[0] == 200
baseline = sorted(token("honest", HONEST_SECRET, "127.0.0.1")[1] for _ in range(20))

statuses = collections.Counter()
lock = threading.Lock()


stop = threading.Event()


def attacker(i):
    n = 0
    while not stop.is_set() and (SECONDS > 0 or n == 0):
        status, _ = token(f"victim-{(i + n) % VICTIMS}", f"wrong-{i}-{n}", f"127.0.0.{1 + i % 3}")
        n += 1
        with lock:
            statuses[status] += 1


peak = [rss_kb()]


def watch():
    while not stop.is_set():
        peak[0] = max(peak[0], rss_kb())
        time.sleep(0.01)


threading.Thread(target=watch, daemon=True).start()
flood = [threading.Thread(target=attacker, args=(i,)) for i in range(ATTACKERS)]
for t in flood:
    t.start()
started = time.perf_counter()
during = []
while (time.perf_counter() - started < SECONDS if SECONDS > 0
       else any(t.is_alive() for t in flood)):
    during.append(token("honest", HONEST_SECRET, "127.0.0.1"))
stop.set()
for t in flood:
    t.join()
ms = sorted(d * 1000 for _, d in during)
print(json.dumps({
    "attackers": ATTACKERS,
    "seconds": SECONDS,
    "wrong_secrets_sent": sum(statuses.values()),
    "flood_statuses": dict(statuses),
    "honest_before_p50_ms": round(baseline[len(baseline) // 2] * 1000, 2),
    "honest_during": {
        "requests": len(during),
        "non_200": sum(1 for s, _ in during if s != 200),
        "p50_ms": round(ms[len(ms) // 2], 2) if ms else None,
        "p99_ms": round(ms[int(len(ms) * 0.99)], 2) if ms else None,
        "max_ms": round(ms[-1], 2) if ms else None,
    },
    "peak_rss_mb": round(peak[0] / 1024, 1),
}))
