#!/usr/bin/python3
"""Turns the work directory of bench/run.sh into the Markdown results (stdout).

Usage: /usr/bin/python3 bench/report.py WORKDIR   (machine facts come in R_* environment variables)
Layout read: WORKDIR/load.txt, WORKDIR/L<lines>/{meta.json,stat-before,stat-after},
WORKDIR/L<lines>/<config>/run<k>/{time,rc,stdout,stderr[,summary.json]}.
Exit status 0 when every run succeeded and cvm's checks equal both peers' on every size, else 1.
"""
import json
import os
import re
import statistics
import sys
from decimal import Decimal
from pathlib import Path

work = Path(sys.argv[1])
env = os.environ.get
CONFIGS = env("R_CONFIGS", "cvm-1 cvm-2 duckdb-1 duckdb-2 pandas-1").split()
LABEL = {"cvm": "cvm (ingest + RFM + profit job)", "duckdb": "DuckDB (one SQL statement)",
         "pandas": "pandas"}
STAGES = [("ingest", "ingest"), ("↳ parse", "ingest_parse"), ("↳ merge", "ingest_merge"),
          ("↳ sort", "ingest_sort"), ("features", "features"), ("profit", "profit"),
          ("rfm", "rfm"), ("grading", "grading"), ("actions", "actions"), ("publish", "publish")]
TOP_STAGES = ["ingest", "features", "profit", "rfm", "grading", "actions", "publish"]
ok_all = True
out = []
p = out.append


def read(path, default=""):
    try:
        return Path(path).read_text()
    except OSError:
        return default


def norm_checks(line):
    """'customers=.. sum_recency=.. sum_frequency=.. sum_monetary=..' -> comparable tuple."""
    d = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    try:
        return (int(d["customers"]), int(d["sum_recency"]), int(d["sum_frequency"]),
                Decimal(d["sum_monetary"]).quantize(Decimal("0.01")))
    except (KeyError, ValueError, ArithmeticError):
        return None


def fmt_checks(t):
    return f"customers={t[0]} sum_recency={t[1]} sum_frequency={t[2]} sum_monetary={t[3]}"


def load_run(d, cfg):
    r = {"rc": read(d / "rc", "?").strip(), "dir": d}
    parts = read(d / "time").strip().splitlines()
    if parts:
        f = parts[-1].split()
        try:
            r["wall"], r["rss_kb"] = float(f[0]), int(f[1])
            r["cpu"] = float(f[2]) + float(f[3])
        except (IndexError, ValueError):
            pass
    try:  # the finer wall time run.sh takes around /usr/bin/time (%e has 10 ms steps)
        if "wall" in r:
            r["wall"] = float(read(d / "wall"))
    except ValueError:
        pass
    r["ok"] = r["rc"] == "0" and "wall" in r
    stdout = read(d / "stdout")
    if cfg.startswith("cvm") and (d / "summary.json").exists():
        s = json.loads(read(d / "summary.json"))
        r["summary"] = s
        c = s.get("checks", {})
        r["checks_line"] = (f"customers={c.get('customers')} sum_recency={c.get('sum_recency')} "
                            f"sum_frequency={c.get('sum_frequency')} sum_monetary={c.get('sum_monetary')}")
        t = s.get("timings", {})
        r["own"] = sum(t.get(k, 0.0) for k in TOP_STAGES)
    else:
        m = re.search(r"^customers=.*$", stdout, re.M)
        r["checks_line"] = m.group(0) if m else None
        m = re.search(r"^duckdb threads=(\d+) total ([0-9.]+)", stdout, re.M)
        if m:
            r["own"], r["duckdb_threads"] = float(m.group(2)), int(m.group(1))
        m = re.search(r"^total\s+([0-9.]+)", stdout, re.M)
        if m:
            r["own"] = float(m.group(1))
    r["checks"] = norm_checks(r["checks_line"]) if r.get("checks_line") else None
    if r["ok"] and r["checks"] is None:
        r["ok"], r["rc"] = False, "no checks in output"
    return r


def med(xs):
    return statistics.median(xs) if xs else None


def f2(x, nd=2):
    return "–" if x is None else f"{x:.{nd}f}"


def rate(x):
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.0f} k"
    return f"{x:.0f}"


def cpu_jiffies(path):
    f = read(path).split()
    if len(f) < 9 or f[0] != "cpu":
        return None
    v = [int(x) for x in f[1:9]]  # user nice system idle iowait irq softirq steal
    return {"busy": v[0] + v[1] + v[2] + v[5] + v[6], "steal": v[7],
            "all": sum(v)}


# ------------------------------------------------------------------ header
loads = [ln.split() for ln in read(work / "load.txt").splitlines() if ln.strip()]
load_start = float(loads[0][1]) if loads else 0.0
load_max = max((float(x[1]) for x in loads), default=0.0)
p(f"# cvm benchmark results, {env('R_DATE', '?')}")
p("")
p(f"- Machine: {env('R_NPROC', '?')} CPUs (`nproc`), CPU model \"{env('R_CPU', '?')}\", "
  f"{env('R_MEM_TOTAL_MB', '?')} MiB memory, {env('R_MEM_AVAIL_MB', '?')} MiB available at the start; "
  f"Linux {env('R_KERNEL', '?')}.")
p(f"- Load: `uptime` before: `{env('R_UPTIME_START', '?')}`; after: `{env('R_UPTIME_END', '?')}`.")
p(f"- Software: {env('R_CVM', 'cvm ?')} (git {env('R_GIT', '?')}, Release, {env('R_CC', '?')}); "
  f"DuckDB node client @duckdb/node-api {env('R_DUCKDB', '?')} on Node.js {env('R_NODE', '?')}; "
  f"pandas {env('R_PANDAS', '?')}.")
runs = int(env("R_RUNS", "3"))
p(f"- Method: each configuration run {runs} time(s), interleaved, as a whole process under "
  "`/usr/bin/time` (start-up, CSV read, compute, output and exit included); the tables show the "
  "median wall time and the largest peak RSS of the runs. The file is in the page cache. "
  "MB/s = file bytes / 10^6 / wall; rows/s = data rows / wall; "
  "\"× cvm 2t\" = wall / cvm's 2-thread wall (above 1: slower than cvm).")
busy_notes = []
sizes = [s for s in env("R_SIZES", "").split(",") if s]
other_share = {}
for L in sizes:
    sdir = work / f"L{L}"
    a, b = cpu_jiffies(sdir / "stat-before"), cpu_jiffies(sdir / "stat-after")
    if not a or not b:
        continue
    hz = os.sysconf("SC_CLK_TCK")
    busy = (b["busy"] - a["busy"]) / hz
    elapsed_cpu = (b["all"] - a["all"]) / hz
    ours = 0.0
    for cfg in CONFIGS:
        for d in sorted((sdir / cfg).glob("run*")):
            ours += load_run(d, cfg).get("cpu", 0.0)
    other = max(0.0, busy - ours)
    steal = (b["steal"] - a["steal"]) / hz
    other_share[L] = (other, elapsed_cpu, steal)
for L, (other, total, steal) in other_share.items():
    share = other / total if total else 0.0
    if share > 0.10:
        busy_notes.append(f"{int(L):,} lines: {share:.0%} of the CPU time went to other processes")
    p(f"- CPU used by other processes while the {int(L):,}-line runs went on: {other:.0f} CPU-s of "
      f"{total:.0f} CPU-s available ({other / total if total else 0:.0%}); stolen by the hypervisor: "
      f"{steal:.0f} CPU-s.")
if load_start > 0.5 or busy_notes:
    why = [f"the 1-minute load average was {load_start:.2f} before the runs"] if load_start > 0.5 else []
    p("")
    p("**Measured while other processes were busy** (" + "; ".join(why + busy_notes) + "): "
      "absolute times are inflated and noisy; compare the ratios within this run.")
p("")

# ------------------------------------------------------------------ per size
targets = []
for L in sizes:
    sdir = work / f"L{L}"
    meta = json.loads(read(sdir / "meta.json", "{}") or "{}")
    nbytes, nrows = meta.get("bytes", 0), meta.get("rows", 0)
    p(f"## {int(L):,} lines")
    p("")
    p(f"File `{meta.get('file', '?')}`: {nbytes / 1e6:.0f} MB, {nrows:,} data rows, "
      f"generated by `cvm gen --customers {meta.get('customers', '?')} --lines {L} "
      f"--seed {meta.get('seed', '?')} --bad-rows 0`.")
    p("")
    res = {}
    for cfg in CONFIGS:
        rs = [load_run(d, cfg) for d in sorted((sdir / cfg).glob("run*"))]
        good = [r for r in rs if r["ok"]]
        res[cfg] = {
            "runs": rs, "good": good,
            "wall": med([r["wall"] for r in good]),
            "min": min((r["wall"] for r in good), default=None),
            "max": max((r["wall"] for r in good), default=None),
            "rss": max((r["rss_kb"] for r in good), default=None),
            "own": med([r["own"] for r in good if "own" in r]),
            "checks": {r["checks"] for r in good},
        }
        if len(good) < len(rs) or not rs:
            ok_all = False
    ref = res.get("cvm-2", {}).get("wall")
    peer_checks = set()
    for cfg in CONFIGS:
        if not cfg.startswith("cvm"):
            peer_checks |= res[cfg]["checks"]
    cvm2_checks = res.get("cvm-2", {}).get("checks", set())

    def equal(cfg):
        c = res[cfg]["checks"]
        if not res[cfg]["good"]:
            return "–"
        if cfg.startswith("cvm"):
            return "yes" if len(c) == 1 and c == peer_checks else "no"
        if not cvm2_checks:
            return "–"  # nothing to compare with: cvm failed
        return "yes" if len(c) == 1 and c == cvm2_checks else "no"

    p(f"| tool | threads | wall s (median) | min–max s | peak RSS MiB | MB/s | rows/s | × cvm 2t "
      f"| own timer s | checks equal |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for cfg in CONFIGS:
        tool, th = cfg.split("-")
        r = res[cfg]
        n_ok, n = len(r["good"]), len(r["runs"])
        if not r["good"]:
            p(f"| {LABEL[tool]} | {th} | failed ({n} of {n} runs) | | | | | | | – |")
            continue
        failed = f" ({n - n_ok} of {n} failed)" if n_ok < n else ""
        w = r["wall"]
        p(f"| {LABEL[tool]} | {th} | {w:.2f}{failed} | {r['min']:.2f}–{r['max']:.2f} "
          f"| {r['rss'] / 1024:.0f} | {nbytes / 1e6 / w:.0f} | {rate(nrows / w)} "
          f"| {f2(w / ref) if ref else '–'} | {f2(r['own'])} | {equal(cfg)} |")
    p("")
    p("\"checks equal\": for cvm, its checks equal both peers' (every run); for a peer, its "
      "checks equal cvm's with 2 threads. \"own timer\": the tool's own measure of its work "
      "(cvm: the sum of its stage timings; DuckDB: the statement; pandas: read to score).")
    p("")
    # checks
    p("Checks (customers, sums of recency, frequency and monetary over customers):")
    p("")
    p("```")
    for cfg in CONFIGS:
        for c in sorted(res[cfg]["checks"], key=str):
            p(f"{cfg:<9} {fmt_checks(c)}")
    p("```")
    cvm_cfgs = [c for c in CONFIGS if c.startswith("cvm")]
    verdict_ok = (all(res[c]["good"] and equal(c) == "yes" for c in cvm_cfgs)
                  and len(peer_checks) == 1
                  and all(res[c]["good"] for c in CONFIGS))
    if verdict_ok:
        p("")
        p("**PASS**: cvm's checks (1 and 2 threads) equal pandas' and DuckDB's.")
    else:
        ok_all = False
        p("")
        p("**FAIL**: " + ("some runs failed (see Notes)" if not all(res[c]["good"] for c in CONFIGS)
                          else "the checks differ (numbers above)") + ".")
    for cfg in CONFIGS:
        for r in res[cfg]["runs"]:
            if cfg.startswith("duckdb") and r.get("duckdb_threads") not in (None, int(cfg.split("-")[1])):
                p(f"\nNote: {cfg} {r['dir'].name} ran with {r['duckdb_threads']} DuckDB threads.")
    p("")
    # cvm stages
    if all(res.get(c, {}).get("good") for c in ("cvm-1", "cvm-2")):
        p("### cvm per stage")
        p("")
        p("Seconds from `summary.json` `timings`, median of the runs; total = the sum of the "
          "top-level stages; process wall = the whole process under /usr/bin/time.")
        p("")
        p("| stage | 1 thread s | 2 threads s | 1t / 2t |")
        p("|---|---:|---:|---:|")
        rows = []
        for name, key in STAGES:
            v = [med([r["summary"]["timings"].get(key, 0.0) for r in res[c]["good"]])
                 for c in ("cvm-1", "cvm-2")]
            rows.append((name, v))
        rows.append(("**total**", [res[c]["own"] for c in ("cvm-1", "cvm-2")]))
        rows.append(("process wall", [res[c]["wall"] for c in ("cvm-1", "cvm-2")]))
        for name, (a, b) in rows:
            p(f"| {name} | {a:.3f} | {b:.3f} | {f2(a / b) if b else '–'} |")
        rss = [max(r["summary"].get("peak_rss_mb", 0) for r in res[c]["good"]) for c in ("cvm-1", "cvm-2")]
        rr = [res[c]["good"][0]["summary"].get("rows", {}).get("read") for c in ("cvm-1", "cvm-2")]
        p(f"| peak RSS MiB (summary.json) | {rss[0]:.0f} | {rss[1]:.0f} | |")
        p(f"| rows.read | {rr[0]} | {rr[1]} | |")
        p("")
    # targets
    c2, d2, pd1 = (res.get(k) for k in ("cvm-2", "duckdb-2", "pandas-1"))
    if c2 and c2["good"] and d2 and d2["good"] and pd1 and pd1["good"]:
        t_duck = c2["wall"] < d2["wall"]
        t_pd = pd1["wall"] / c2["wall"]
        cvm_rss = max(res[c]["rss"] for c in CONFIGS if c.startswith("cvm") and res[c]["good"])
        t_mem = cvm_rss < 1024 * 1024
        targets.append((L, t_duck, c2["wall"], d2["wall"], t_pd, cvm_rss, t_mem))

if targets:
    p("## Targets")
    p("")
    p("The targets are set on 10M lines: cvm's whole job faster than DuckDB's single statement "
      "with 2 threads, at least 10× faster than pandas, peak memory below 1 GiB.")
    p("")
    p("| lines | cvm 2t < DuckDB 2t | cvm 2t vs pandas (≥ 10×) | cvm peak RSS < 1 GiB (1 and 2 threads) |")
    p("|---:|---|---|---|")
    yn = lambda b: "yes" if b else "**no**"
    for L, t_duck, cw, dw, t_pd, rss, t_mem in targets:
        p(f"| {int(L):,} | {yn(t_duck)} ({cw:.2f} s vs {dw:.2f} s) | {yn(t_pd >= 10)} ({t_pd:.1f}×) "
          f"| {yn(t_mem)} ({rss / 1024:.0f} MiB) |")
    p("")

# ------------------------------------------------------------------ notes on failures
notes = []
for L in sizes:
    for cfg in CONFIGS:
        for d in sorted((work / f"L{L}" / cfg).glob("run*")):
            r = load_run(d, cfg)
            if not r["ok"]:
                tail = read(d / "stderr").strip().splitlines()[-8:]
                notes.append(f"- {int(L):,} lines, {cfg}, {d.name}: exit {r['rc']}\n\n```\n"
                             + "\n".join(tail) + "\n```")
if notes:
    p("## Notes: failed runs")
    p("")
    out.extend(notes)
    p("")

print("\n".join(out))
sys.exit(0 if ok_all else 1)
