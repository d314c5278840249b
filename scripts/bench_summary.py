#!/usr/bin/env python3
"""Turns the JSON results of scripts/bench.sh into the markdown table that BENCHMARKS.md quotes.

`bench_summary.py DIR` reads DIR/run-1, DIR/run-2, ... (the runs of one bench.sh invocation) and
DIR/machine.txt. Every figure is the median of the runs; a figure a target judges carries the
range of the runs (min–max), and its verdict says in how many runs the target was met. A result
that a run must have made and did not stops the summary: nothing is written as "skipped"."""

import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

base = Path(sys.argv[1] if len(sys.argv) > 1 else "artifacts/bench")
machine = (base / "machine.txt").read_text() if (base / "machine.txt").exists() else ""
skip_pg = "BENCH_SKIP_PG=1" in machine
skip_micro = "BENCH_SKIP_MICRO=1" in machine
runs = sorted((p for p in base.glob("run-*") if p.is_dir()), key=lambda p: int(p.name[4:]))
if not runs:
    sys.exit(f"bench_summary.py: no run-K directory in {base}: the run did not finish")


def load(run, name):
    """A result the run must have made: a missing or empty one stops the summary."""
    p = run / f"{name}.json"
    if not p.exists() or not p.read_text().strip():
        sys.exit(f"bench_summary.py: {p} is missing or empty: the run did not finish")
    return json.loads(p.read_text())


@dataclass
class Fig:
    """One row of the table, as one run measured it."""
    what: str
    numbers: dict  # name -> value, shown through `template`
    template: str  # str.format over `numbers`; `{name:spec}`
    spread: str = ""  # the number shown with the runs' range
    target: str = ""
    judged: float | None = None  # the value the target judges
    goal: float | None = None
    higher: bool = True
    judged_fmt: str = ""  # how the judged value reads: "{:.1f} %" (×100), "{:.2f}×", "{:.2f} ms"
    note: str = ""


class Spread:
    """The median of a figure's values over the runs; formats as the median, or, for the
    figure's spread number, as `median (min–max)`."""

    def __init__(self, values, with_range=False):
        self.values = values
        self.median = statistics.median(values)
        self.with_range = with_range and len(values) > 1

    def __format__(self, spec):
        m = format(self.median, spec)
        if not self.with_range:
            return m
        return f"{m} ({format(min(self.values), spec)}–{format(max(self.values), spec)})"


def judged_text(fmt, value):
    return fmt.format(100 * value if "%" in fmt else value)


def figures(run):
    figs = []
    sign = {} if skip_micro else load(run, "signing")
    for alg in ("RS256", "ES256", "EdDSA"):
        h, j = sign.get(f"{alg}_herald"), sign.get(f"{alg}_jsonwebtoken")
        if h and j:
            figs.append(Fig(f"raw signing {alg}, key parsed once (aws-lc-rs), 1 core",
                            {"h": h, "j": j, "r": h / j},
                            "{h:,.0f} sig/s; {r:.2f}× jsonwebtoken::encode ({j:,.0f} sig/s)",
                            spread="h", target="ceiling"))
    for backend in ("sqlite",) if skip_pg else ("sqlite", "postgres"):
        raw = sign.get("RS256_herald")
        for alg, goal in (("RS256", 0.95), ("ES256", 0.5), ("EdDSA", 0.5)):
            c = load(run, f"{backend}-client-credentials" + ("" if alg == "RS256" else f"-{alg}"))
            raw_alg = sign.get(f"{alg}_herald")
            figs.append(Fig(f"{backend}: /token client_credentials {alg}",
                            {"rate": c["ok_per_s"], "p50": c["p50_ms"], "p99": c["p99_ms"]},
                            "{rate:,.0f} req/s, p50 {p50:.3f} ms, p99 {p99:.3f} ms", spread="rate",
                            target=f"≥ {goal:.0%} of raw {alg}".replace("%", " %"),
                            judged=c["ok_per_s"] / raw_alg if raw_alg else None, goal=goal,
                            judged_fmt="{:.1f} %"))
        empty = load(run, f"{backend}-exchange-empty")
        t = empty["token"]
        sigs = 2 * t["per_s"]  # an access token and an ID token per request (scope openid)
        figs.append(Fig(f"{backend}: /token authorization_code RS256, empty store",
                        {"rate": t["per_s"], "sigs": sigs, "p50": t["p50_ms"], "p99": t["p99_ms"],
                         "errors": t["errors"], "cpu": empty["cpu_ms_per_request"]},
                        "{rate:,.0f} req/s ({sigs:,.0f} sig/s), p50 {p50:.3f} ms, p99 {p99:.3f} ms, "
                        "{errors:.0f} errors, {cpu:.3f} ms CPU/req", spread="rate",
                        target="≥ 90 % of raw RS256 (in signatures)",
                        judged=sigs / raw if raw else None, goal=0.9, judged_fmt="{:.1f} %"))
        figs.append(Fig(f"{backend}: RSS after that /token run",
                        {"mb": empty["rss_after_kb"] / 1024}, "{mb:.1f} MiB"))
        full = load(run, f"{backend}-exchange-full")
        seed = load(run, f"{backend}-seed")
        f = full["token"]
        figs.append(Fig(f"{backend}: /token authorization_code, {seed['seeded_rows_per_table']:,} rows "
                        "in each of users, grants, codes, access_tokens",
                        {"rate": f["per_s"], "p50": f["p50_ms"], "p99": f["p99_ms"]},
                        "{rate:,.0f} req/s, p50 {p50:.3f} ms, p99 {p99:.3f} ms", spread="rate",
                        target="slowdown ≤ 1.5×", judged=t["per_s"] / f["per_s"], goal=1.5,
                        higher=False, judged_fmt="{:.2f}×"))
        probe = empty["probe"]
        figs.append(Fig(f"{backend}: discovery while /token is saturated (100 req/s probe)",
                        {"p50": probe["p50_ms"], "p99": probe["p99_ms"], "max": probe["max_ms"]},
                        "p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {max:.3f} ms", spread="p99",
                        target="p99 ≤ 5 ms", judged=probe["p99_ms"], goal=5, higher=False,
                        judged_fmt="{:.2f} ms"))
        for name, label in (("discovery", "discovery"), ("jwks", "JWKS")):
            d = load(run, f"{backend}-{name}")
            figs.append(Fig(f"{backend}: {label} alone (wrk)",
                            {"rate": d["ok_per_s"], "p99": d["p99_ms"]},
                            "{rate:,.0f} req/s, p99 {p99:.3f} ms", spread="rate"))
        idle = load(run, f"{backend}-idle")
        figs.append(Fig(f"{backend}: idle RSS (the benchmark configuration: three clients)",
                        {"mb": idle["idle_rss_kb"] / 1024}, "{mb:.1f} MiB", spread="mb"))
        if backend == "sqlite":
            logins = load(run, "sqlite-logins")
            lg = logins["logins"]
            flows = load(run, "oidc-provider-RS256-flows")["logins"]
            figs.append(Fig("sqlite: full brokered logins (authorize → dev upstream → callback → "
                            "consent → token), 16 in flight",
                            {"rate": lg["per_s"], "p50": lg["p50_ms"], "p99": lg["p99_ms"],
                             "ok": lg["ok"], "errors": lg["errors"]},
                            "{rate:,.1f} logins/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, {ok:,.0f} ok, "
                            "{errors:.0f} errors", spread="rate",
                            target="≥ 2× oidc-provider's auth-code flows/core",
                            judged=lg["per_s"] / flows["per_s"], goal=2, judged_fmt="{:.2f}×"))
            figs.append(Fig("sqlite: Herald CPU per login (dev upstream in process)",
                            {"cpu": logins["cpu_ms_per_login"]}, "{cpu:.3f} ms", spread="cpu"))
            figs.append(Fig(f"sqlite: RSS after {lg['ok']:,} logins",
                            {"mb": logins["rss_after_kb"] / 1024, "idle": idle["idle_rss_kb"] / 1024},
                            "{mb:.1f} MiB", spread="mb", target="≤ 2× idle RSS",
                            judged=logins["rss_after_kb"] / idle["idle_rss_kb"], goal=2,
                            higher=False, judged_fmt="{:.2f}×"))

    path = load(run, "login-path")
    for r in path["runs"]:
        where = "oidc-provider upstream, out of process" if r["upstream"] == "op" \
            else "dev upstream, in process"
        what = f"login path ({where}), {r['store']}: Herald CPU per login"
        numbers = {"cpu": r["cpu_ms_per_login"], "rate": r["per_s"], "p50": r["p50_ms"]}
        if r["upstream"] == "op":
            numbers |= {"up": r["upstream_cpu_ms_per_login"], "x": r["herald_to_upstream"]}
            figs.append(Fig(what, numbers,
                            "{cpu:.3f} ms ({rate:,.1f} logins/s, p50 {p50:.1f} ms); the upstream's "
                            "own CPU {up:.3f} ms, Herald {x:.2f}× of it", spread="cpu",
                            target="≤ 1.0 ms", judged=r["cpu_ms_per_login"], goal=1.0,
                            higher=False, judged_fmt="{:.3f} ms"))
            figs.append(Fig(f"login path ({where}), {r['store']}: "
                            "Herald's CPU ÷ the upstream's", {"x": r["herald_to_upstream"]},
                            "{x:.2f}×", spread="x", target="≤ 0.35×", judged=r["herald_to_upstream"],
                            goal=0.35, higher=False, judged_fmt="{:.2f}×"))
        else:
            figs.append(Fig(what, numbers, "{cpu:.3f} ms ({rate:,.1f} logins/s, p50 {p50:.1f} ms)",
                            spread="cpu"))
    st = path["statements"]
    figs.append(Fig("login path: store statements per login (sqlx's statement log)",
                    {"all": st["per_login"], "writes": st["writes_per_login"]},
                    "{all:.2f}, of which {writes:.2f} writes"))
    rss = load(run, "rss")
    figs.append(Fig("idle RSS, default configuration + ten argon2-hashed client secrets "
                    "(scripts/bench-rss.sh)",
                    {"mb": rss["idle_rss_kb"] / 1024, "anon": rss["anon_kb"] / 1024,
                     "file": rss["file_kb"] / 1024},
                    "{mb:.1f} MiB ({anon:.1f} MiB anonymous, {file:.1f} MiB file-backed)",
                    spread="mb", target="≤ 20 MB", judged=rss["idle_rss_kb"] * 1024 / 1e6, goal=20,
                    higher=False, judged_fmt="{:.1f} MB"))

    flows = load(run, "oidc-provider-RS256-flows")
    lg = flows["logins"]
    figs.append(Fig("oidc-provider 9.13.3 whole auth-code flows RS256 (dev login + consent pages), "
                    "1 core",
                    {"rate": lg["per_s"], "p50": lg["p50_ms"], "p99": lg["p99_ms"],
                     "cpu": flows["cpu_ms_per_login"], "errors": lg["errors"]},
                    "{rate:,.1f} flows/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, {cpu:.2f} ms CPU/flow, "
                    "{errors:.0f} errors", spread="rate"))
    for alg, goal in (("RS256", 1.6), ("ES256", 4.0)):
        op = load(run, f"oidc-provider-{alg}-client-credentials")
        figs.append(Fig(f"oidc-provider 9.13.3 client_credentials {alg}, 1 core",
                        {"rate": op["ok_per_s"], "p50": op["p50_ms"], "p99": op["p99_ms"],
                         "non2xx": op["non2xx"]},
                        "{rate:,.0f} req/s, p50 {p50:.3f} ms, p99 {p99:.3f} ms, {non2xx:.0f} non-2xx",
                        spread="rate"))
        cc = load(run, "sqlite-client-credentials" + ("" if alg == "RS256" else f"-{alg}"))
        r = cc["ok_per_s"] / op["ok_per_s"]
        figs.append(Fig(f"Herald ÷ oidc-provider, client_credentials {alg}", {"r": r}, "{r:.2f}×",
                        spread="r", target=f"≥ {goal}×", judged=r, goal=goal,
                        judged_fmt="{:.2f}×"))
    return figs


def claims(run):
    p = run / "claims.jsonl"
    if skip_micro:
        return {}
    if not p.exists():
        sys.exit(f"bench_summary.py: {p} is missing: the run did not finish")
    return {c["bench"]: c["mean_us"] for c in map(json.loads, p.read_text().splitlines())}


per_run = [figures(r) for r in runs]
order = [f.what for f in per_run[0]]
for i, figs in enumerate(per_run[1:], 2):
    if [f.what for f in figs] != order:
        sys.exit(f"bench_summary.py: run-{i} measured other figures than run-1")

print(f"Every figure is the median of {len(runs)} run(s); the range (min–max) follows the "
      "figure a target judges, and the verdict counts the runs that met it.\n")
print("| measurement | result (median of the runs) | target | verdict |")
print("|---|---|---|---|")
for idx, what in enumerate(order):
    figs = [run[idx] for run in per_run]
    first = figs[0]
    numbers = {name: Spread([f.numbers[name] for f in figs], name == first.spread)
               for name in first.numbers}
    measured = first.template.format(**numbers)
    verdict = ""
    if first.goal is not None:
        values = [f.judged for f in figs]
        if any(v is None for v in values):
            verdict = "not measured (criterion left out)"
        else:
            met = sum((v >= f.goal) if f.higher else (v <= f.goal) for v, f in zip(values, figs))
            m = statistics.median(values)
            ok = m >= first.goal if first.higher else m <= first.goal
            shown = judged_text(first.judged_fmt, m)
            if len(values) > 1:
                shown += (f" ({judged_text(first.judged_fmt, min(values))}–"
                          f"{judged_text(first.judged_fmt, max(values))})")
            verdict = f"{shown} — {'met' if ok else '**missed**'}, met in {met} of {len(values)} runs"
    print(f"| {what} | {measured} | {first.target} | {verdict} |")

micro = [claims(r) for r in runs]
if micro and micro[0]:
    print(f"\nClaims micro-benchmarks (criterion, mean per run; median and range of {len(runs)} runs):\n")
    for name in micro[0]:
        print(f"- {name}: {format(Spread([m[name] for m in micro], True), '.2f')} µs")
print()
print(machine)
