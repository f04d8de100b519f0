#!/usr/bin/env bash
# ADD latency of rota-cni: 100 sequential ADDs, then 20 concurrent ADDs
# (each its own pod netns), timed per plugin exec (fork+exec to exit, as a
# runtime sees it) from inside the node netns; p50/p99/max printed, target
# p99 <= 50 ms, and the CPU time of the sequential ADDs (steadier than wall
# time on a busy machine). Every pod is DELed and everything removed
# afterwards.
#
# ROTA_CNI_BASE=<another rota-cni build> compares the two under the same
# machine state: their sequential ADDs alternate one by one, and their
# concurrent rounds run back to back.
# Usage: tests/cni/bench_add.sh [SEQUENTIAL [CONCURRENT]]
# shellcheck source=tests/cni/lib.sh
source "$(dirname "$0")/lib.sh"
require_env
SEQ=${1:-100}
CONC=${2:-20}
BUILDS=("$ROTA_CNI")
[[ -n ${ROTA_CNI_BASE:-} ]] && BUILDS=("$ROTA_CNI_BASE" "$ROTA_CNI")
for b in "${BUILDS[@]}"; do [[ -x $b ]] || die "$b is not an executable"; done
setup_node
CONF=$TMP/bench.conf
cat >"$CONF" <<JSON
{"cniVersion": "1.0.0", "name": "bench", "type": "rota-cni", "bpffsDir": "$BPFFS",
 "dataDir": "$STATE", "ipam": {"type": "rota-ipam", "subnet": "${POD_NET%.*}.0.0/16"}}
JSON
total=$(((SEQ + CONC) * ${#BUILDS[@]}))
log "creating $total pod namespaces"
for i in $(seq $total); do new_netns "$T_PREFIX-p$i"; done

in_ns "$NS_NODE" "$PY" - "$CONF" "$T_PREFIX" "$SEQ" "$CONC" "${BUILDS[@]}" <<'PY'
import os, subprocess, sys, time, threading
conf, prefix, seq, conc = open(sys.argv[1]).read().encode(), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
builds = sys.argv[5:]
pods = iter(range(1, (seq + conc) * len(builds) + 1))
added = []  # (build, pod) for the DELs

def call(build, cmd, i, cpu_times=None):
    env = dict(os.environ, CNI_COMMAND=cmd, CNI_CONTAINERID="b%d" % i, CNI_NETNS="/run/netns/%s-p%d" % (prefix, i),
               CNI_IFNAME="eth0", CNI_PATH="/usr/lib/cni")
    t = time.perf_counter()
    p = subprocess.Popen([build], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    p.stdin.write(conf)
    p.stdin.close()
    out, err = p.stdout.read(), p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = 0  # reaped here, not by Popen
    dt = (time.perf_counter() - t) * 1000
    if status:
        raise SystemExit("%s %s %d failed: %s %s" % (build, cmd, i, out.decode(), err.decode()))
    if cpu_times is not None:
        cpu_times.append((ru.ru_utime + ru.ru_stime) * 1000)
    return dt

def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]

def report(label, xs):
    print("%-30s n=%-4d p50=%6.1f ms  p99=%6.1f ms  max=%6.1f ms  %s" % (
        label, len(xs), pct(xs, 50), pct(xs, 99), max(xs), "(p99 <= 50 ms: ok)" if pct(xs, 99) <= 50 else "(p99 > 50 ms)"))

name = {b: ("base " if len(builds) > 1 and k == 0 else "") + os.path.basename(b) for k, b in enumerate(builds)}
seq_t = {b: [] for b in builds}
cpu = {b: [] for b in builds}
for _ in range(seq):
    for b in builds:
        i = next(pods)
        seq_t[b].append(call(b, "ADD", i, cpu[b]))
        added.append((b, i))
conc_t, wall = {}, {}
for b in builds:
    ids = [next(pods) for _ in range(conc)]
    res = [None] * conc
    def worker(k, b=b, ids=ids, res=res):
        res[k] = call(b, "ADD", ids[k])
    ths = [threading.Thread(target=worker, args=(k,)) for k in range(conc)]
    t0 = time.perf_counter()
    for t in ths: t.start()
    for t in ths: t.join()
    wall[b] = (time.perf_counter() - t0) * 1000
    if None in res:
        raise SystemExit("a concurrent ADD of %s failed" % b)
    conc_t[b] = res
    added += [(b, i) for i in ids]
del_t = {b: [] for b in builds}
for b, i in added:
    del_t[b].append(call(b, "DEL", i))
for b in builds:
    print("== %s" % name[b])
    report("ADD, %d sequential" % seq, seq_t[b])
    print("%-30s p50=%6.1f ms  p99=%6.1f ms" % ("  CPU time per ADD", pct(cpu[b], 50), pct(cpu[b], 99)))
    report("ADD, %d concurrent" % conc, conc_t[b])
    print("%-30s %.1f ms for all %d" % ("  wall time", wall[b], conc))
    report("DEL, sequential", del_t[b])
PY
rc=$?
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
exit $rc
