#!/usr/bin/env python3
"""Turns the control-plane benchmark's raw results (run.sh's temp dir) into
the printed table, build/bench/control-plane.md and control-plane.csv, and
says for each target of the issues whether it is met.

  report.py --dir TMP --stores "sqlite etcd" --algorithms "maglev random" ... --md F --csv F
  report.py --brief-load STORE_DIR      one line about a store's load
  report.py --brief-rotad RESULT_JSON   one line about a rotad run"""
import argparse
import csv
import json
import os
import platform
import re
import subprocess
import sys
import time

FULL_SYNC_TARGET_S = 1.0
CHANGE_P99_TARGET_MS = 10.0
RSS_TARGET_MIB = 64.0


def read_json(path):
    with open(path) as f:
        return json.load(f)


def read_mem(path):
    """VmHWM/VmRSS lines of /proc/PID/status, in MiB."""
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = int(v.split()[0]) / 1024.0
    return out


def store_results(d):
    load, watch = read_json(os.path.join(d, "load.json")), read_json(os.path.join(d, "watch.json"))
    load.pop("cluster_ips", None)
    last = [w.get("last") for w in watch.values()]
    all_seen = all(w.get("seen") == load["services"]["n"] for w in watch.values()) and None not in last
    r = {"load": load, "watch": watch, "all_seen": all_seen,
         "watch_all_s": max(last) - load["services"]["start"] if all_seen else None,
         "watch_after_last_write_ms": (max(last) - load["slices"]["end"]) * 1e3 if all_seen else None}
    p = os.path.join(d, "cpu.json")
    r["cpu"] = read_json(p) if os.path.exists(p) else {}
    for name in ("load", "end"):
        p = os.path.join(d, "apiserver-mem-%s.txt" % name)
        r["mem_" + name] = read_mem(p) if os.path.exists(p) else {}
    return r


def brief_load(d):
    r = store_results(d)
    s, e = r["load"]["services"], r["load"]["slices"]
    watched = ("watcher had all %d+%d events %.1f s after the first write" % (s["n"], e["n"], r["watch_all_s"])
               if r["all_seen"] else "watcher saw only %s" % {k: v.get("seen") for k, v in r["watch"].items()})
    return "%.0f Services/s, %.0f EndpointSlices/s; %s; VmHWM %.0f MiB" % (
        s["per_s"], e["per_s"], watched, r["mem_load"].get("VmHWM", 0))


def brief_rotad(path):
    r = read_json(path)
    fs, ch = r["full_sync"], r.get("changes", {})
    out = "full sync %.2f s after lists and datapath were ready (from exec %.2f s: start %.2f, list %.2f, datapath load %.2f during it), VmHWM %.0f MiB" % (
        fs["writes_s"], fs["total_s"], fs["start_s"], fs["list_s"], fs["datapath_s"], fs["rss_mib"]["VmHWM"])
    ev = ch.get("from_watch_event", {})
    if ev.get("n"):
        out += "; change after watch event p50 %.1f ms, p99 %.1f ms" % (ev["p50_ms"], ev["p99_ms"])
    return out


# ---------------------------------------------------------------- machine

def machine(load):
    def cmd(*argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
    mem = next((int(l.split()[1]) / 1048576 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    try:
        clocksource = open("/sys/devices/system/clocksource/clocksource0/current_clocksource").read().strip()
    except OSError:
        clocksource = "unknown"
    dirty = len([l for l in cmd("git", "status", "--porcelain").splitlines() if l.strip()])
    etcd = re.search(r"etcd Version: (\S+)", cmd("etcd", "--version"))
    return [
        ("CPU", model), ("CPUs (nproc)", str(os.cpu_count())), ("memory", "%.1f GiB" % mem),
        ("kernel (uname -r)", platform.release()),
        ("virtualization", "vm: %s, container: %s" % (cmd("systemd-detect-virt", "--vm") or "unknown",
                                                       cmd("systemd-detect-virt", "--container") or "unknown")),
        ("clocksource", clocksource), ("load average before / after", load),
        ("etcd", etcd.group(1) if etcd else "not used"),
        ("Python (clients)", platform.python_version()),
        ("source", (cmd("git", "rev-parse", "--short", "HEAD") or "unknown")
         + (" + %d uncommitted changes" % dirty if dirty else "")),
    ]


# ---------------------------------------------------------------- tables

def fmt(v, spec="%.1f"):
    return "n/a" if v is None else spec % v


def table(head, rows):
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def cpu_cell(cpu, objects):
    """'API server s (ms/object) + etcd s (ms/object)'."""
    parts = []
    for who in ("apiserver", "etcd"):
        v = cpu.get(who)
        if v:
            parts.append("%s %.1f s (%.2f ms/object)" % ("rota-apiserver" if who == "apiserver" else who,
                                                         v, v / objects * 1e3))
    return " + ".join(parts) or "n/a"


def hist_cell(h):
    """rotad's own event → maps histogram, where this rotad has one."""
    if not h or not h.get("n"):
        return "not exported"
    return "%s / ≤ %s" % (fmt(h["mean_ms"]), fmt(h["p99_le_ms"], "%g"))


def met(ok):
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def build(a):
    stores = {s: store_results(os.path.join(a.dir, s)) for s in a.stores.split()}
    rotad = {}
    for algo in a.algorithms.split():
        p = os.path.join(a.dir, "rotad-%s.json" % algo)
        if os.path.exists(p):
            rotad[algo] = read_json(p)
            c = os.path.join(a.dir, "rotad-%s.cli-count" % algo)
            rotad[algo]["cli_count"] = int(open(c).read()) if os.path.exists(c) else None
    rows_csv = []

    def rec(section, subject, metric, value, unit):
        rows_csv.append((section, subject, metric, "" if value is None else ("%.6g" % value), unit))

    api_rows = []
    for s, r in stores.items():
        sv, sl = r["load"]["services"], r["load"]["slices"]
        api_rows.append([s, "%.0f" % sv["per_s"], "%.0f (%.0f endpoints/s)" % (sl["per_s"], sl["per_s"] * a.endpoints),
                         fmt(sv["end"] - sv["start"], "%.2f") + " + " + fmt(sl["end"] - sl["start"], "%.2f"),
                         fmt(r["watch_all_s"], "%.2f") if r["all_seen"] else "incomplete",
                         fmt(r["watch_after_last_write_ms"], "%.1f"),
                         cpu_cell(r["cpu"], 2 * sv["n"]),
                         fmt(r["mem_load"].get("VmHWM"), "%.0f"), fmt(r["mem_end"].get("VmHWM"), "%.0f")])
        rec("apiserver", s, "services_per_s", sv["per_s"], "1/s")
        rec("apiserver", s, "endpointslices_per_s", sl["per_s"], "1/s")
        rec("apiserver", s, "endpoints_per_s", sl["per_s"] * a.endpoints, "1/s")
        rec("apiserver", s, "watch_all_events_after_first_write", r["watch_all_s"], "s")
        rec("apiserver", s, "watch_all_events_after_last_write", r["watch_after_last_write_ms"], "ms")
        rec("apiserver", s, "apiserver_cpu_during_load", r["cpu"].get("apiserver"), "s")
        rec("apiserver", s, "etcd_cpu_during_load", r["cpu"].get("etcd") if s == "etcd" else None, "s")
        rec("apiserver", s, "vmhwm_after_load", r["mem_load"].get("VmHWM"), "MiB")
        rec("apiserver", s, "vmhwm_at_end", r["mem_end"].get("VmHWM"), "MiB")

    sync_rows, change_rows, targets = [], [], []
    for algo, r in rotad.items():
        fs, ch = r["full_sync"], r.get("changes", {})
        hwm = max(fs["rss_mib"]["VmHWM"], ch.get("rss_mib", {}).get("VmHWM", 0))
        sync_rows.append([algo, "%.2f" % fs["writes_s"], "%.2f" % fs["total_s"], "%.2f" % fs["start_s"],
                          "%.2f" % fs["list_s"], "%.2f" % fs["datapath_s"], "%.0f" % fs["rotad_sync_ms"],
                          "%d / %s" % (fs["frontends"], r.get("cli_count")),
                          "%.1f" % fs.get("cpu_s", float("nan")),
                          "%.0f / %.0f" % (fs["rss_mib"]["VmHWM"], fs["rss_mib"]["VmRSS"]),
                          "%.0f (%d tables)" % (r["maps"]["memlock_mib"], r["maps"]["maglev_tables"])])
        for k, unit, v in (("full_sync_total", "s", fs["total_s"]), ("full_sync_datapath_load", "s", fs["datapath_s"]),
                           ("full_sync_process_start", "s", fs["start_s"]), ("full_sync_list", "s", fs["list_s"]),
                           ("full_sync_from_ready", "s", fs["writes_s"]), ("rotad_sync_logged", "ms", fs["rotad_sync_ms"]),
                           ("vmhwm_after_sync", "MiB", fs["rss_mib"]["VmHWM"]), ("vmrss_after_sync", "MiB", fs["rss_mib"]["VmRSS"]),
                           ("full_sync_rotad_cpu", "s", fs.get("cpu_s")),
                           ("maps_memlock", "MiB", r["maps"]["memlock_mib"])):
            rec("rotad", algo, k, v, unit)
        if ch:
            pr, sy = ch["rotad_programming"], ch["rotad_sync"]

            def pp(x):
                return "%s / %s" % (fmt(x.get("p50_ms")), fmt(x.get("p99_ms"))) if x.get("n") else "n/a"
            change_rows.append([algo, "%d (%d timed out)" % (ch["changes"], ch["timeouts"]), pp(ch["from_watch_event"]),
                                pp(ch["from_response"]), pp(ch["from_sent"]),
                                "%s / ≤ %s (%s ≤ 10 ms)" % (fmt(pr["mean_ms"]), fmt(pr["p99_le_ms"], "%g"),
                                                             fmt(None if pr["share_le_10ms"] is None else pr["share_le_10ms"] * 100, "%.0f %%")),
                                hist_cell(ch.get("rotad_event_to_programmed")),
                                "%s / ≤ %s" % (fmt(sy["mean_ms"]), fmt(sy["p99_le_ms"], "%g")),
                                fmt(ch.get("cpu_ms_per_change")),
                                "%.0f" % ch["rss_mib"]["VmHWM"]])
            for src in ("from_watch_event", "from_response", "from_sent"):
                for q in ("p50", "p99", "max"):
                    rec("rotad", algo, "change_%s_%s" % (src, q), ch[src].get(q + "_ms"), "ms")
            rec("rotad", algo, "programming_histogram_mean", pr["mean_ms"], "ms")
            rec("rotad", algo, "programming_histogram_p99_bucket", pr["p99_le_ms"], "ms")
            rec("rotad", algo, "sync_histogram_mean", sy["mean_ms"], "ms")
            rec("rotad", algo, "cpu_per_change", ch.get("cpu_ms_per_change"), "ms")
            evh = ch.get("rotad_event_to_programmed")
            if evh:
                rec("rotad", algo, "event_to_programmed_histogram_mean", evh["mean_ms"], "ms")
                rec("rotad", algo, "event_to_programmed_histogram_p99_bucket", evh["p99_le_ms"], "ms")
            rec("rotad", algo, "vmhwm_after_changes", ch["rss_mib"]["VmHWM"], "MiB")
        ev99 = ch.get("from_watch_event", {}).get("p99_ms") if ch else None
        evh = ch.get("rotad_event_to_programmed") if ch else None
        ev_text = fmt(ev99) + " ms (client side)"
        if evh and evh.get("n"):
            ev_text += "; rotad's histogram: p99 ≤ %s ms" % fmt(evh["p99_le_ms"], "%g")
        targets += [
            ["rotad full sync from empty ≤ %g s (%s): lists in and datapath ready → every service whole"
             % (FULL_SYNC_TARGET_S, algo),
             "%.2f s (%.2f s from exec, of which the list %.2f s)" % (fs["writes_s"], fs["total_s"], fs["list_s"]),
             met(fs["writes_s"] <= FULL_SYNC_TARGET_S)],
            ["one endpoint change → map write p99 ≤ %g ms after the watch event (%s)" % (CHANGE_P99_TARGET_MS, algo),
             ev_text, met(None if ev99 is None else ev99 <= CHANGE_P99_TARGET_MS)],
            ["rotad RSS ≤ %g MiB (%s; VmHWM)" % (RSS_TARGET_MIB, algo), "%.0f MiB" % hwm, met(hwm <= RSS_TARGET_MIB)],
        ]
    return stores, rotad, api_rows, sync_rows, change_rows, targets, rows_csv


def render(a):
    stores, rotad, api_rows, sync_rows, change_rows, targets, rows_csv = build(a)
    body = []
    body += ["## rota-apiserver: %d Services, then %d EndpointSlices × %d endpoints, %d keep-alive clients"
             % (a.services, a.services, a.endpoints, a.clients), ""]
    body += table(["store", "Services/s", "EndpointSlices/s", "load time (s, Services + slices)",
                   "watcher has every event (s after the first write)", "… ms after the last write's answer",
                   "CPU used during the load", "VmHWM after load (MiB)", "VmHWM at end (MiB)"], api_rows)
    if sync_rows:
        body += ["", "## rotad: full sync from empty (API server: %s, %d frontends)" % (a.rotad_store, a.services + 1), ""]
        body += table(["LB algorithm", "sync: lists in and datapath ready → all written (s)", "from exec (s)",
                       "process start (s)", "list (s)", "datapath load (s from exec, during the list)",
                       "rotad's sync (ms, its log)", "frontends in maps / `rota service list`",
                       "rotad CPU (s)", "VmHWM / VmRSS after sync (MiB)", "maps' kernel memory (MiB)"], sync_rows)
    if change_rows:
        body += ["", "## rotad: single-endpoint changes (one EndpointSlice patched, one at a time)", ""]
        body += table(["LB algorithm", "changes", "map write after our watch event p50 / p99 (ms)",
                       "after the PATCH answer p50 / p99 (ms)", "after the PATCH was sent p50 / p99 (ms)",
                       "rotad programming histogram mean / p99 bucket (ms)",
                       "rotad event → maps histogram mean / p99 bucket (ms)",
                       "rotad sync duration mean / p99 bucket (ms)", "rotad CPU per change (ms)",
                       "VmHWM after changes (MiB)"], change_rows)
    body += ["", "## Targets", ""] + table(["target", "measured", ""], targets)
    print("\n".join(body))
    head = ["# rota control-plane benchmark", "",
            "Generated by `%s` on %s in %s s." % (a.command, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), a.seconds),
            ""] + table(["machine", ""], machine(a.load)) + [""]
    tail = ["", "What is measured and how: docs/benchmarks-control-plane.md."]
    with open(a.md + ".tmp", "w") as f:
        f.write("\n".join(head + body + tail) + "\n")
    os.replace(a.md + ".tmp", a.md)
    with open(a.csv + ".tmp", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("section", "subject", "metric", "value", "unit"))
        w.writerows(rows_csv)
    os.replace(a.csv + ".tmp", a.csv)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brief-load")
    ap.add_argument("--brief-rotad")
    ap.add_argument("--dir")
    ap.add_argument("--stores", default="sqlite etcd")
    ap.add_argument("--algorithms", default="maglev random")
    ap.add_argument("--rotad-store", default="sqlite")
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--changes", type=int, default=200)
    ap.add_argument("--seconds", default="?")
    ap.add_argument("--load", default="?")
    ap.add_argument("--command", default="tests/bench/control_plane/run.sh")
    ap.add_argument("--md")
    ap.add_argument("--csv")
    a = ap.parse_args()
    if a.brief_load:
        print(brief_load(a.brief_load))
    elif a.brief_rotad:
        print(brief_rotad(a.brief_rotad))
    elif a.dir and a.md and a.csv:
        render(a)
    else:
        sys.exit("report.py: give --brief-load DIR, --brief-rotad FILE, or --dir, --md and --csv")


if __name__ == "__main__":
    main()
