#!/usr/bin/env python3
"""A watcher of the benchmark's namespace, started before the load: one
raw HTTP watch each on Services and EndpointSlices (from the resourceVersion
of a list, as informers do), counting ADDED events until it has seen N of
each. Touches READY_FILE once both streams are open; at the end prints one
JSON object with, per kind, the events seen and the arrival (time.monotonic())
of the last one.

  watch.py URL DATA_DIR N READY_FILE [--timeout SECONDS]"""
import argparse
import json
import sys
import threading
import time

import api
import objects


def follow(client, path, want, result, opened):
    try:
        rv = client.request("GET", path + "?limit=1")["metadata"]["resourceVersion"]
        resp = client.stream(path + "?watch=1&allowWatchBookmarks=true&resourceVersion=" + rv)
    except Exception as e:
        result["error"] = str(e)
        opened.release()
        return
    opened.release()
    seen, last = 0, None
    for arrival, typ, _ in api.events(resp):
        if typ == "ADDED":
            seen += 1
            last = arrival
            if seen == want:
                break
    result.update(seen=seen, last=last)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("data_dir")
    ap.add_argument("n", type=int)
    ap.add_argument("ready_file")
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()

    results = {"services": {"seen": 0}, "slices": {"seen": 0}}
    opened = threading.Semaphore(0)
    threads = [threading.Thread(target=follow, daemon=True,
                                args=(api.Api(a.url, a.data_dir, timeout=a.timeout), path, a.n, results[kind], opened))
               for kind, path in (("services", objects.SERVICES_PATH), ("slices", objects.SLICES_PATH))]
    for t in threads:
        t.start()
    for _ in threads:
        opened.acquire()
    errors = [r["error"] for r in results.values() if "error" in r]
    if errors:
        sys.exit("watch.py: " + "; ".join(errors))
    open(a.ready_file, "w").close()
    deadline = time.monotonic() + a.timeout
    for t in threads:
        t.join(max(0, deadline - time.monotonic()))
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
