#!/usr/bin/env python3
"""Creates the benchmark's Services, then their EndpointSlices, from
several client processes at once, each over one keep-alive TLS
connection. Prints one JSON object: per phase the start and end
(time.monotonic(), comparable across processes), objects/s, and the
ClusterIP of every Service (the frontends rotad must program).

  load.py URL DATA_DIR --services N --endpoints E --clients P
  load.py URL DATA_DIR --namespace     (creates the namespace only)"""
import argparse
import json
import multiprocessing as mp
import os
import queue
import signal
import sys
import time

import api
import objects


def worker(url, data_dir, kind, indices, endpoints, barrier, results):
    client = api.Api(url, data_dir)
    client.connect().connect()      # TLS handshake before the clock starts
    out = {}
    barrier.wait()
    try:
        for i in indices:
            if kind == "services":
                svc = client.request("POST", objects.SERVICES_PATH, objects.service(i))
                out[i] = svc["spec"]["clusterIP"]
            else:
                client.request("POST", objects.SLICES_PATH, objects.endpoint_slice(i, endpoints))
    except Exception as e:          # reported by the parent, which fails the run
        results.put(("error", "%s client: %s" % (kind, e)))
        return
    results.put(("done", time.monotonic(), out))


PARENT = os.getpid()
WORKERS = []


def on_signal(sig, _):
    """SIGTERM/SIGINT end the workers too (they are this process's own)."""
    if os.getpid() == PARENT:
        for p in WORKERS:
            if p.is_alive():
                p.terminate()
    os._exit(128 + sig)


def phase(url, data_dir, kind, n, endpoints, clients):
    """Runs one phase; returns (start, end, {index: clusterIP})."""
    barrier = mp.Barrier(clients + 1)
    results = mp.Queue()
    procs = [mp.Process(target=worker, args=(url, data_dir, kind, range(c, n, clients), endpoints, barrier, results))
             for c in range(clients)]
    WORKERS[:] = procs
    for p in procs:
        p.start()
    barrier.wait()
    start = time.monotonic()
    end, ips, errors = start, {}, []
    pending = len(procs)
    while pending:
        try:
            r = results.get(timeout=1)
        except queue.Empty:
            if not any(p.is_alive() for p in procs) and results.empty():
                errors.append("%d %s client(s) exited without a result" % (pending, kind))
                break
            continue
        pending -= 1
        if r[0] == "error":
            errors.append(r[1])
        else:
            end = max(end, r[1])
            ips.update(r[2])
    for p in procs:
        p.join()
    if errors:
        sys.exit("load.py: " + "; ".join(errors))
    return start, end, ips


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("data_dir")
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--namespace", action="store_true", help="create the benchmark's namespace and exit")
    a = ap.parse_args()

    if a.namespace:
        api.Api(a.url, a.data_dir).request("POST", "/api/v1/namespaces",
                                           {"metadata": {"name": objects.NAMESPACE}})
        return
    mp.set_start_method("fork")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    s_start, s_end, ips = phase(a.url, a.data_dir, "services", a.services, a.endpoints, a.clients)
    e_start, e_end, _ = phase(a.url, a.data_dir, "slices", a.services, a.endpoints, a.clients)
    json.dump({
        "services": {"n": a.services, "start": s_start, "end": s_end, "per_s": a.services / (s_end - s_start)},
        "slices": {"n": a.services, "endpoints": a.services * a.endpoints, "start": e_start, "end": e_end,
                   "per_s": a.services / (e_end - e_start)},
        "clients": a.clients,
        "cluster_ips": [ips[i] for i in range(a.services)],
    }, sys.stdout)


if __name__ == "__main__":
    main()
