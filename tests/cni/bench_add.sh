#!/usr/bin/env bash
# ADD latency of rota-cni: 100 sequential ADDs, then 20 concurrent ADDs
# (each its own pod netns), timed per plugin exec (fork+exec to exit, as a
# runtime sees it) from inside the node netns; p50/p99/max printed, target
# p99 <= 50 ms. Every pod is DELed and everything removed afterwards.
# Usage: tests/cni/bench_add.sh [SEQUENTIAL [CONCURRENT]]
# shellcheck source=tests/cni/lib.sh
source "$(dirname "$0")/lib.sh"
require_env
SEQ=${1:-100}
CONC=${2:-20}
setup_node
CONF=$TMP/bench.conf
cat >"$CONF" <<JSON
{"cniVersion": "1.0.0", "name": "bench", "type": "rota-cni", "bpffsDir": "$BPFFS",
 "dataDir": "$STATE", "ipam": {"type": "rota-ipam", "subnet": "${POD_NET%.*}.0.0/16"}}
JSON
total=$((SEQ + CONC))
log "creating $total pod namespaces"
for i in $(seq $total); do new_netns "$T_PREFIX-p$i"; done

in_ns "$NS_NODE" "$PY" - "$ROTA_CNI" "$CONF" "$T_PREFIX" "$SEQ" "$CONC" <<'PY'
import os, subprocess, sys, time, threading
plugin, conf, prefix, seq, conc = sys.argv[1], open(sys.argv[2]).read().encode(), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])

def call(cmd, i):
    env = dict(os.environ, CNI_COMMAND=cmd, CNI_CONTAINERID="b%d" % i, CNI_NETNS="/run/netns/%s-p%d" % (prefix, i),
               CNI_IFNAME="eth0", CNI_PATH="/usr/lib/cni")
    t = time.perf_counter()
    p = subprocess.run([plugin], input=conf, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    dt = (time.perf_counter() - t) * 1000
    if p.returncode:
        raise SystemExit("%s %d failed: %s %s" % (cmd, i, p.stdout.decode(), p.stderr.decode()))
    return dt

def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]

def report(label, xs):
    print("%-28s n=%-4d p50=%6.1f ms  p99=%6.1f ms  max=%6.1f ms  %s" % (
        label, len(xs), pct(xs, 50), pct(xs, 99), max(xs), "(p99 <= 50 ms: ok)" if pct(xs, 99) <= 50 else "(p99 > 50 ms)"))

seq_t = [call("ADD", i) for i in range(1, seq + 1)]
report("ADD, %d sequential" % seq, seq_t)
conc_t = [None] * conc
def worker(k):
    conc_t[k] = call("ADD", seq + 1 + k)
ths = [threading.Thread(target=worker, args=(k,)) for k in range(conc)]
t0 = time.perf_counter()
for t in ths: t.start()
for t in ths: t.join()
wall = (time.perf_counter() - t0) * 1000
if None in conc_t:
    raise SystemExit("a concurrent ADD failed")
report("ADD, %d concurrent" % conc, conc_t)
print("%-28s %.1f ms for all %d" % ("  wall time", wall, conc))
del_t = [call("DEL", i) for i in range(1, seq + conc + 1)]
report("DEL, sequential", del_t)
PY
rc=$?
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
exit $rc
