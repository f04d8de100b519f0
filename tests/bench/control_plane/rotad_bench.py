#!/usr/bin/env python3
"""rotad at scale, measured from outside the agent: starts rotad on an
empty bpffs directory against an API server that already holds the
benchmark's objects, and measures

  full sync: rotad's exec until every frontend's master entry in
    rota_svc4 holds all its backends (the master entry is written last, so
    then the service is whole), split by rotad's own log lines (timestamped
    here as they arrive) into process start, list (the datapath loads
    meanwhile) and the sync proper: from the moment both lists are in and
    the datapath is ready until the last service is whole;
  memory: rotad's VmHWM/VmRSS after the sync and after the changes;
  single-endpoint changes: N sequential PATCHes of one EndpointSlice, each
    flipping one endpoint's readiness; per change the time from sending the
    PATCH, from its response (the write is done) and from a watcher of ours
    receiving the event, to the master entry's backend count changing;
    plus what rotad's /metrics histograms gained meanwhile.

Prints one JSON object. rotad's PID goes to --pid-file at once, so the
caller can end it if this process dies; SIGINT/SIGTERM end rotad here."""
import argparse
import datetime
import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import api
import bpfmap
import metrics
import objects

TRIGGER = "endpoints.kubernetes.io/last-change-trigger-time"
PROG_HIST = "kubeproxy_network_programming_duration_seconds"
SYNC_HIST = "kubeproxy_sync_proxy_rules_duration_seconds"
EVENT_HIST = "rota_event_to_programmed_seconds"     # rotad's own event → maps figure, where it has one


def proc_mem(pid):
    """VmHWM and VmRSS of a process, in MiB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS"):
                out[k] = int(v.split()[0]) / 1024.0
    return out


def proc_cpu(pid):
    """CPU seconds (user + system) the process has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Agent:
    """rotad as a child process; its stderr lines kept with arrival times."""

    def __init__(self, argv, log_path, pid_file):
        self.lines = []             # (time.monotonic(), line)
        self.cond = threading.Condition()
        self.log = open(log_path, "a")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        with open(pid_file, "w") as f:
            f.write("%d\n" % self.proc.pid)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stderr:
            t = time.monotonic()
            line = raw.decode(errors="replace").rstrip("\n")
            self.log.write("%.6f %s\n" % (t - self.started, line))
            self.log.flush()
            with self.cond:
                self.lines.append((t, line))
                self.cond.notify_all()

    def first(self, pattern):
        """(time, match) of the first log line matching pattern, or None."""
        rx = re.compile(pattern)
        with self.cond:
            for t, line in self.lines:
                m = rx.search(line)
                if m:
                    return t, m
        return None

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_map(agent, bpffs, timeout):
    """The pinned rota_svc4, once rotad has loaded the datapath."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not agent.alive():
            sys.exit("rotad_bench.py: rotad exited (status %s) before loading the datapath" % agent.proc.returncode)
        try:
            return bpfmap.SvcMap(bpffs)
        except OSError:
            time.sleep(0.005)
    sys.exit("rotad_bench.py: no rota_svc4 pinned in %s after %d s" % (bpffs, timeout))


def rotad_order(fe):
    """rotad writes services in its tree's order (reconcile.c fe_cmp: the
    address and port as stored, i.e. network-order bytes read as host
    integers). Polling in that order finds each entry right after its write;
    the result does not depend on it, only the polling cost does."""
    addr, port = fe
    return (int.from_bytes(socket.inet_aton(addr), "little"),
            int.from_bytes(port.to_bytes(2, "big"), "little"))


def programmed(count, want):
    """want None: present with any backend count."""
    return count is not None and (want is None or count == want)


def wait_programmed(agent, svc_map, frontends, endpoints_of, timeout, interval):
    """Time at which every frontend's master entry holds its backends:
    scans in rotad's write order and stops at the first one not there yet."""
    todo = sorted(frontends, key=rotad_order)
    keys = [svc_map.key(a, p) for a, p in todo]
    i, deadline = 0, time.monotonic() + timeout
    while i < len(todo):
        while i < len(todo) and programmed(svc_map.master_count(keys[i]), endpoints_of(todo[i])):
            i += 1
        if i == len(todo):
            break
        if time.monotonic() > deadline:
            sys.exit("rotad_bench.py: %d of %d frontends not programmed after %d s (first: %s:%d)"
                     % (len(todo) - i, len(todo), timeout, *todo[i]))
        if not agent.alive():
            sys.exit("rotad_bench.py: rotad exited (status %s) during the sync" % agent.proc.returncode)
        time.sleep(interval)
    return time.monotonic()


def full_sync(agent, svc_map, frontends, endpoints_of, a):
    t_done = wait_programmed(agent, svc_map, frontends, endpoints_of, a.timeout, a.poll_interval)
    mem, cpu = proc_mem(agent.proc.pid), proc_cpu(agent.proc.pid)
    time.sleep(0.2)                 # the sync's own log line comes after its last write
    t0 = agent.started
    marks = {
        "datapath": agent.first(r"loaded the datapath|adopting the datapath"),
        "adopted": agent.first(r"adopted \d+ services with \d+ backends"),
        "watching": agent.first(r"watching services and endpointslices"),
        "listed_services": agent.first(r"listed (\d+) services"),
        "listed_slices": agent.first(r"listed (\d+) endpointslices"),
        "sync": agent.first(r"sync: (\d+) services written, \d+ removed, (\d+) failed in ([\d.]+) ms"),
    }
    missing = [k for k, v in marks.items() if v is None]
    if missing:
        sys.exit("rotad_bench.py: rotad's log lacks the lines for %s (is --log-level debug passed?)" % ", ".join(missing))
    listed = max(marks["listed_services"][0], marks["listed_slices"][0])
    ready = max(listed, marks["adopted"][0])      # the sync can start
    sync_m = marks["sync"][1]
    return {
        "total_s": t_done - t0,
        "datapath_s": marks["datapath"][0] - t0,
        "start_s": marks["watching"][0] - t0,
        "list_s": listed - marks["watching"][0],
        "listed_services": int(marks["listed_services"][1].group(1)),
        "listed_slices": int(marks["listed_slices"][1].group(1)),
        "ready_s": ready - t0,
        "writes_s": t_done - ready,
        "sync_logged_at_s": marks["sync"][0] - t0,
        "rotad_sync_ms": float(sync_m.group(3)),
        "services_written": int(sync_m.group(1)),
        "write_failures": int(sync_m.group(2)),
        "frontends": len(frontends),
        "rss_mib": mem,
        "cpu_s": cpu,
    }


class SliceWatch:
    """Our own watch on one EndpointSlice: arrival time per resourceVersion."""

    def __init__(self, client, name):
        rv = client.request("GET", objects.SLICES_PATH + "/" + name)["metadata"]["resourceVersion"]
        sel = urllib.parse.quote("metadata.name=" + name)
        self.resp = client.stream(objects.SLICES_PATH + "?watch=1&fieldSelector=%s&resourceVersion=%s" % (sel, rv))
        self.seen = {}
        self.cond = threading.Condition()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            for arrival, typ, obj in api.events(self.resp):
                if typ == "MODIFIED":
                    with self.cond:
                        self.seen[obj["metadata"]["resourceVersion"]] = arrival
                        self.cond.notify_all()
        except Exception:
            pass                    # the changes' own checks report missing events

    def arrival(self, rv, timeout):
        with self.cond:
            self.cond.wait_for(lambda: rv in self.seen, timeout)
            return self.seen.get(rv)


def maps_memlock(bpffs, bpftool="bpftool"):
    """Kernel memory (bytes_memlock) of the maps pinned in bpffs plus the
    Maglev tables they hold (inner maps, found through rota_maglev4):
    (total bytes, number of Maglev tables). Read off the clock with bpftool."""
    def run(*args):
        return json.loads(subprocess.run([bpftool, "-j", *args], check=True, capture_output=True).stdout or b"null")
    ids = set()
    for name in os.listdir(bpffs):
        path = os.path.join(bpffs, name)
        if name.startswith("rota_") and os.path.isfile(path):
            ids.add(run("map", "show", "pinned", path)["id"])
    inner = {int.from_bytes(bytes(int(b, 16) for b in e["value"]), "little")
             for e in run("map", "dump", "pinned", os.path.join(bpffs, "rota_maglev4")) or []}
    total = sum(m.get("bytes_memlock", 0) for m in run("map", "show") if m["id"] in ids | inner)
    return total, len(inner)


def rfc3339_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pct(values, q):
    """Nearest-rank percentile."""
    v = sorted(values)
    return v[min(len(v), max(1, math.ceil(q * len(v) - 1e-9))) - 1] if v else None


def summary(values):
    return {"n": len(values), "p50_ms": pct(values, 0.5) * 1e3, "p99_ms": pct(values, 0.99) * 1e3,
            "max_ms": max(values) * 1e3, "min_ms": min(values) * 1e3} if values else {"n": 0}


def changes(agent, svc_map, client, a, cluster_ips, metrics_url):
    i = a.change_service
    name, key = objects.slice_name(i), svc_map.key(cluster_ips[i], 80)
    watch = SliceWatch(api.Api(a.url, a.data_dir), name)
    before, cpu0 = metrics.scrape(metrics_url), proc_cpu(agent.proc.pid)
    from_sent, from_resp, from_event, timeouts, missed_events = [], [], [], 0, 0
    for j in range(a.changes):
        not_ready = (a.endpoints - 1,) if j % 2 == 0 else ()
        want = a.endpoints - len(not_ready)
        body = {"metadata": {"annotations": {TRIGGER: rfc3339_now()}},
                "endpoints": objects.slice_endpoints(i, a.endpoints, not_ready)}
        t_sent = time.monotonic()
        out = client.request("PATCH", objects.SLICES_PATH + "/" + name, body, "application/merge-patch+json")
        t_resp = time.monotonic()
        deadline = t_resp + 10
        while svc_map.master_count(key) != want:
            if time.monotonic() > deadline:
                break
            time.sleep(0.0001)
        t_map = time.monotonic()
        if t_map > deadline:
            timeouts += 1
            continue
        from_sent.append(t_map - t_sent)
        from_resp.append(t_map - t_resp)
        t_event = watch.arrival(out["metadata"]["resourceVersion"], 5)
        if t_event is None:
            missed_events += 1
        else:
            from_event.append(t_map - t_event)
        # Let the sync that wrote this change finish, so that each change is
        # measured on its own; jitter keeps changes off any periodic beat.
        time.sleep(a.change_gap + random.uniform(0, a.change_gap))
    time.sleep(0.2)
    after, cpu1 = metrics.scrape(metrics_url), proc_cpu(agent.proc.pid)
    prog, prog_sum, prog_n = metrics.histogram_delta(before, after, PROG_HIST)
    sync, sync_sum, sync_n = metrics.histogram_delta(before, after, SYNC_HIST)
    if metrics.value(after, EVENT_HIST + "_count") is not None:
        ev, ev_sum, ev_n = metrics.histogram_delta(before, after, EVENT_HIST)
        rotad_event = {"n": ev_n, "mean_ms": ev_sum / ev_n * 1e3 if ev_n else None,
                       "p50_le_ms": _ms(metrics.bucket_quantile(ev, ev_n, 0.5)),
                       "p99_le_ms": _ms(metrics.bucket_quantile(ev, ev_n, 0.99)),
                       "share_le_10ms": metrics.share_within(ev, ev_n, 0.010)}
    else:
        rotad_event = None
    return {
        "service": objects.svc_name(i), "frontend": "%s:80" % cluster_ips[i], "changes": a.changes,
        "timeouts": timeouts, "missed_events": missed_events,
        "from_sent": summary(from_sent), "from_response": summary(from_resp), "from_watch_event": summary(from_event),
        "rotad_programming": {"n": prog_n, "mean_ms": prog_sum / prog_n * 1e3 if prog_n else None,
                              "p50_le_ms": _ms(metrics.bucket_quantile(prog, prog_n, 0.5)),
                              "p99_le_ms": _ms(metrics.bucket_quantile(prog, prog_n, 0.99)),
                              "share_le_10ms": metrics.share_within(prog, prog_n, 0.010)},
        "rotad_event_to_programmed": rotad_event,
        "rotad_sync": {"n": sync_n, "mean_ms": sync_sum / sync_n * 1e3 if sync_n else None,
                       "p50_le_ms": _ms(metrics.bucket_quantile(sync, sync_n, 0.5)),
                       "p99_le_ms": _ms(metrics.bucket_quantile(sync, sync_n, 0.99))},
        "samples_from_response_ms": [round(v * 1e3, 3) for v in from_resp],
        "samples_from_watch_event_ms": [round(v * 1e3, 3) for v in from_event],
        "rss_mib": proc_mem(agent.proc.pid),
        "cpu_ms_per_change": (cpu1 - cpu0) / a.changes * 1e3,
    }


def _ms(v):
    return None if v is None else v * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("data_dir", help="rota-apiserver's data dir (admin token, CA)")
    ap.add_argument("load_json", help="load.py's output: the ClusterIPs")
    ap.add_argument("--rotad", required=True)
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--bpffs-dir", required=True)
    ap.add_argument("--healthz-bind", required=True)
    ap.add_argument("--metrics-bind", required=True)
    ap.add_argument("--pid-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--lb-algorithm", default="maglev")
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--changes", type=int, default=200)
    ap.add_argument("--change-service", type=int, default=None, help="index of the service whose slice changes")
    ap.add_argument("--change-gap", type=float, default=0.03, help="seconds between changes (plus as much jitter)")
    ap.add_argument("--poll-interval", type=float, default=0.002)
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()

    with open(a.load_json) as f:
        cluster_ips = json.load(f)["cluster_ips"]
    if a.change_service is None:
        a.change_service = len(cluster_ips) // 2
    client = api.Api(a.url, a.data_dir)
    kube = client.request("GET", "/api/v1/namespaces/default/services/kubernetes")
    frontends = [(ip, 80) for ip in cluster_ips] + [(kube["spec"]["clusterIP"], kube["spec"]["ports"][0]["port"])]
    kube_fe = frontends[-1]

    def endpoints_of(fe):
        return None if fe == kube_fe else a.endpoints     # the API server's own: any backend count

    sys.setswitchinterval(0.0005)   # the watcher thread stamps arrivals promptly
    agent = Agent([a.rotad, "--kubeconfig", a.kubeconfig, "--bpffs-dir", a.bpffs_dir, "--socket-lb", "off",
                   "--node-name", "cpb-node", "--healthz-bind", a.healthz_bind, "--metrics-bind", a.metrics_bind,
                   "--lb-algorithm", a.lb_algorithm, "--log-level", "debug"], a.log, a.pid_file)

    def on_signal(sig, _):
        agent.stop()
        sys.exit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        svc_map = wait_map(agent, a.bpffs_dir, 30)
        result = {"lb_algorithm": a.lb_algorithm,
                  "full_sync": full_sync(agent, svc_map, frontends, endpoints_of, a)}
        if a.changes > 0:
            result["changes"] = changes(agent, svc_map, client, a, cluster_ips,
                                        "http://%s/metrics" % a.metrics_bind)
        memlock, tables = maps_memlock(a.bpffs_dir)
        result["maps"] = {"memlock_mib": memlock / 2**20, "maglev_tables": tables}
        svc_map.close()
    finally:
        agent.stop()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
