#!/usr/bin/python3
"""Turns the CSVs of tests/bench/compare/run.sh (build/bench/compare-*.csv)
into compare.md and compare.csv: per N and dataplane the median of every
measurement with its spread over the runs, ratios to the no-proxy floor and
to each kube-proxy baseline, the control-plane and memory figures, and the
issue's targets checked. The PNG plots come from plots.py."""
import argparse
import csv
import os
import platform
import statistics
import subprocess
from collections import defaultdict

import plots

ORDER = ["floor", "ipt-legacy", "ipt-legacy-rand", "ipt-nft", "nft",
	 "rota-tc", "rota-tc-maglev", "rota-sock", "rota-sock-maglev"]
BASELINES = ("ipt-legacy", "ipt-nft", "nft")
WHAT = {
	"floor": "no proxy: client → pod IP",
	"ipt-legacy": "kube-proxy iptables, iptables-legacy, service last",
	"ipt-legacy-rand": "same, service at a random position",
	"ipt-nft": "kube-proxy iptables, nf_tables backend, service last",
	"nft": "kube-proxy nftables mode",
	"rota-tc": "rota tc path (socket LB off), random",
	"rota-tc-maglev": "rota tc path, Maglev",
	"rota-sock": "rota socket LB, random",
	"rota-sock-maglev": "rota socket LB, Maglev",
}


def sh(cmd):
	try:
		return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=5).stdout.strip()
	except Exception:
		return ""


def rows(path):
	if not os.path.exists(path):
		return []
	with open(path) as f:
		return list(csv.DictReader(f))


def med(v):
	return statistics.median(v) if v else None


def ratio(a, b):
	return a / b if a and b else None


def fr(x):
	return f"{x:.2f}×" if x is not None else "–"


def fnum(x, d=0):
	return f"{x:,.{d}f}" if x is not None else "–"


def spread(v, d=0, scale=1.0):
	"""'median (min–max)' of v, scaled."""
	if not v:
		return "–"
	v = [x * scale for x in v]
	if len(v) == 1:
		return fnum(v[0], d)
	return f"{fnum(med(v), d)} ({fnum(min(v), d)}–{fnum(max(v), d)})"


def mib(b):
	return f"{b / 1048576:,.1f} MiB" if b is not None else "–"


class Data:
	def __init__(self, d):
		self.rate = defaultdict(list)		# (n, dp) -> [conn/s]
		self.cpu = defaultdict(list)		# (n, dp) -> [µs of our cgroups per connection]
		self.busy = defaultdict(list)		# (n, dp) -> [µs the machine was busy per connection]
		self.errors = defaultdict(int)
		self.endpoints = ""
		for r in rows(os.path.join(d, "compare-raw.csv")):
			k = (int(r["n"]), r["dataplane"])
			self.rate[k].append(float(r["conn_per_s"]))
			self.errors[k] += int(r["errors"] or 0)
			reqs = int(r["requests"] or 0)
			if reqs:
				self.cpu[k].append(int(r["cpu_us"]) / reqs)
				self.busy[k].append(int(r["busy_us"]) / reqs)
			self.endpoints = r["endpoints"]
		self.loads = {}
		for r in rows(os.path.join(d, "compare-loads.csv")):
			self.loads[(int(r["n"]), r["dataplane"])] = (float(r["load_s"]), r["status"])
		self.first = defaultdict(lambda: ([], []))	# (n, dp) -> ([p50], [p99]) per round
		for r in rows(os.path.join(d, "compare-firstpacket.csv")):
			k = (int(r["n"]), r["dataplane"])
			self.first[k][0].append(float(r["p50_us"]))
			self.first[k][1].append(float(r["p99_us"]))
		self.ka = defaultdict(lambda: defaultdict(list))	# (n, dp) -> field -> [per round]
		for r in rows(os.path.join(d, "compare-persistent.csv")):
			k = (int(r["n"]), r["dataplane"])
			for f in ("req_per_s", "p50_us", "p99_us", "p999_us", "max_us"):
				self.ka[k][f].append(float(r[f]))
		self.iperf = defaultdict(list)
		for r in rows(os.path.join(d, "compare-iperf.csv")):
			self.iperf[(int(r["n"]), r["dataplane"])].append(float(r["bits_per_s"]))
		self.change = defaultdict(list)
		self.change_failed = defaultdict(int)
		for r in rows(os.path.join(d, "compare-change.csv")):
			k = (int(r["n"]), r["dataplane"])
			if r["status"] == "ok":
				self.change[k].append(float(r["seconds"]))
			else:
				self.change_failed[k] += 1
		self.mem = {}
		for r in rows(os.path.join(d, "compare-mem.csv")):
			self.mem[(int(r["n"]), r["dataplane"], r["what"])] = float(r["value"])
		self.ns = sorted({k[0] for k in list(self.rate) + list(self.loads)} - {0})

	def m(self, n, dp):
		return med(self.rate.get((n, dp)))

	def load(self, n, dp):
		return self.loads.get((n, dp))

	def ok_load(self, n, dp):
		v = self.loads.get((n, dp))
		return v[0] if v and v[1] == "ok" else None


def machine(a):
	o = ["| machine | |", "|---|---|"]
	cpu = sh("awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo")
	mem = sh("awk '/^MemTotal/ { printf \"%.1f GiB\", $2 / 1048576 }' /proc/meminfo")
	o.append(f"| CPU | {cpu or 'unknown'} |")
	o.append(f"| CPUs (nproc) | {os.cpu_count()} |")
	o.append(f"| memory | {mem} |")
	o.append(f"| kernel | {platform.release()} |")
	o.append(f"| virtualization | {sh('systemd-detect-virt 2>/dev/null') or 'unknown'} |")
	o.append(f"| load average before / after | {a.load_before} / {a.load_after} |")
	wrk = sh("wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2")
	iperf = sh("iperf3 --version | head -n1 | cut -d' ' -f1-2")
	o.append(f"| wrk, iperf3 | {wrk}, {iperf} |")
	o.append(f"| iptables | {sh('iptables-legacy --version')}, {sh('iptables-nft --version')} |")
	o.append(f"| nft | {sh('nft --version')} |")
	o.append(f"| rota commit | {sh('git rev-parse --short HEAD') or 'unknown'}"
		 f" ({sh('git status --porcelain | wc -l')} files changed in the tree) |")
	o.append("")
	return o


def summary_rows(D):
	out = []
	for n in D.ns:
		for dp in ORDER:
			k = (n, dp)
			base = dp if dp in BASELINES else {"ipt-legacy-rand": "ipt-legacy"}.get(dp)
			st = D.load(n, base) if base else None
			if k not in D.rate:
				if dp in BASELINES and st and st[1] != "ok":
					note = ("did not load in %.0f s" % st[0] if st[1] == "timeout" else
						"not tried (" + st[1][len("skipped: "):] + ")" if st[1].startswith("skipped") else
						"load " + st[1])
					out.append(dict(n=n, dataplane=dp, note=note))
				continue
			v = D.rate[k]
			ka = D.ka.get(k, {})
			row = dict(n=n, dataplane=dp, note="", conn_per_s=round(D.m(n, dp), 1), min=round(min(v), 1),
				   max=round(max(v), 1), runs=len(v), errors=D.errors[k])
			for b, col in (("floor", "x_floor"), ("ipt-legacy", "x_ipt_legacy"), ("nft", "x_nft")):
				x = ratio(D.m(n, dp), D.m(n, b))
				row[col] = round(x, 3) if x else ""
			row["cpu_us_per_conn"] = round(med(D.cpu[k]), 1) if D.cpu.get(k) else ""
			row["busy_us_per_conn"] = round(med(D.busy[k]), 1) if D.busy.get(k) else ""
			row["first_p50_us"] = med(D.first[k][0]) if D.first[k][0] else ""
			row["first_p99_us"] = med(D.first[k][1]) if D.first[k][1] else ""
			for f in ("req_per_s", "p50_us", "p99_us", "p999_us"):
				row["ka_" + f] = med(ka[f]) if ka and ka.get(f) else ""
			row["iperf_gbit_s"] = round(med(D.iperf[k]) / 1e9, 2) if D.iperf.get(k) else ""
			out.append(row)
	return out


def write_csv(path, srows):
	fields = ["n", "dataplane", "conn_per_s", "min", "max", "runs", "errors", "x_floor", "x_ipt_legacy", "x_nft",
		  "cpu_us_per_conn", "busy_us_per_conn", "first_p50_us", "first_p99_us", "ka_req_per_s", "ka_p50_us",
		  "ka_p99_us", "ka_p999_us", "iperf_gbit_s", "note"]
	with open(path, "w", newline="") as f:
		w = csv.DictWriter(f, fieldnames=fields, restval="")
		w.writeheader()
		w.writerows(srows)


def conn_tables(D, srows):
	o = []
	for n in D.ns:
		o.append(f"### N = {n:,} services: new connections\n")
		o.append("| dataplane | conn/s median (min–max) | × floor | × ipt-legacy | × nft | CPU µs/conn (ours) "
			 "| CPU µs/conn (machine) | first packet p50 / p99 µs | errors | |")
		o.append("|---|---|---|---|---|---|---|---|---|---|")
		for r in srows:
			if r["n"] != n:
				continue
			dp = r["dataplane"]
			if r["note"]:
				o.append(f"| {dp} | {r['note']} | | | | | | | | {WHAT[dp]} |")
				continue
			k = (n, dp)
			fp = D.first[k]
			pl = f"{med(fp[0]):.0f} / {med(fp[1]):.0f}" if fp[0] else "–"
			o.append(f"| {dp} | {spread(D.rate[k])} | {fr(r['x_floor'] or None)} | {fr(r['x_ipt_legacy'] or None)} "
				 f"| {fr(r['x_nft'] or None)} | {spread(D.cpu.get(k), 1)} | {spread(D.busy.get(k), 1)} "
				 f"| {pl} | {r['errors']} | {WHAT[dp]} |")
		o.append("")
	return o


def ka_tables(D):
	o = []
	for n in D.ns:
		ks = [(n, dp) for dp in ORDER if (n, dp) in D.ka]
		if not ks:
			continue
		o.append(f"### N = {n:,} services: request latency over one persistent connection (requests in turn)\n")
		o.append("| dataplane | requests/s | p50 µs | p99 µs | p99.9 µs | max µs |")
		o.append("|---|---|---|---|---|---|")
		for k in ks:
			a = D.ka[k]
			o.append(f"| {k[1]} | {spread(a['req_per_s'])} | {spread(a['p50_us'], 1)} | {spread(a['p99_us'])} "
				 f"| {spread(a['p999_us'])} | {fnum(med(a['max_us']))} |")
		o.append("")
	return o


def first_packet_table(D):
	"""p50 per N, the largest N over the smallest, raw and relative to the
	floor measured in the same rounds (which takes out how busy the machine
	was while each N ran)."""
	o = []
	ns = D.ns
	if len(ns) < 2:
		return o, {}
	lo, hi = ns[0], ns[-1]
	o.append("### First packet (SYN → SYN-ACK) p50 by N\n")
	o.append("| dataplane | " + " | ".join(f"N={n:,} p50 / p99 µs" for n in ns) +
		 f" | p50 N={hi:,} ÷ N={lo:,} | same, each ÷ floor of its N |")
	o.append("|---|" + "---|" * len(ns) + "---|---|")
	flat = {}
	fl = {n: med(D.first[(n, "floor")][0]) for n in ns}
	for dp in ORDER:
		cells, p = [], {}
		for n in ns:
			v = D.first[(n, dp)]
			if v[0]:
				p[n] = med(v[0])
				cells.append(f"{med(v[0]):.0f} / {med(v[1]):.0f}")
			else:
				cells.append("–")
		if not p:
			continue
		x = p[hi] / p[lo] if lo in p and hi in p else None
		xn = (p[hi] / fl[hi]) / (p[lo] / fl[lo]) if x and fl.get(lo) and fl.get(hi) else None
		flat[dp] = (x, xn, p.get(lo), p.get(hi))
		o.append(f"| {dp} | " + " | ".join(cells) + f" | {fr(x)} | {fr(xn) if dp != 'floor' else ''} |")
	o.append("")
	return o, flat


def iperf_table(D):
	ks = sorted(D.iperf, key=lambda k: (k[0], ORDER.index(k[1])))
	if not ks:
		return []
	o = [f"### Bulk throughput (iperf3, one TCP stream) at N = {', '.join(f'{n:,}' for n in sorted({k[0] for k in ks}))}\n",
	     "| N | dataplane | Gbit/s median (min–max) | × floor |", "|---|---|---|---|"]
	for k in ks:
		fl = med(D.iperf.get((k[0], "floor")))
		o.append(f"| {k[0]:,} | {k[1]} | {spread(D.iperf[k], 2, 1e-9)} | {fr(ratio(med(D.iperf[k]), fl))} |")
	o.append("")
	return o


def ld(D, n, dp):
	v = D.load(n, dp)
	if not v:
		return "–"
	if v[1] == "timeout":
		return f"did not load in {v[0]:.0f} s"
	if v[1].startswith("skipped"):
		return "not tried (" + v[1][len("skipped: "):] + ")"
	if v[1] != "ok":
		return v[1]
	return f"{v[0]:.3f}"


def control_tables(D):
	o = ["### Time to program N services from nothing (s)\n",
	     "| N | rota (librota upserts) | rotad from the API (start → maps) | rotad sync | rota load (maps + programs) "
	     "| iptables-legacy-restore | iptables-restore (nf_tables) | nft -f | API objects created in |",
	     "|---|---|---|---|---|---|---|---|---|"]
	for n in D.ns:
		o.append(f"| {n:,} | {ld(D, n, 'rota')} | {ld(D, n, 'rotad')} | {ld(D, n, 'rotad-sync')} | {ld(D, n, 'rota-load')} "
			 f"| {ld(D, n, 'ipt-legacy')} | {ld(D, n, 'ipt-nft')} | {ld(D, n, 'nft')} | {ld(D, n, 'api-create')} |")
	o.append("")
	o.append("### Time to apply one endpoint change at N (ms, median (min–max) over the changes)\n")
	o.append("| N | rota service add (CLI) | rotad (trigger → maps) | iptables-legacy-restore (partial sync) "
		 "| iptables-restore nf_tables (partial sync) | nft -f (transaction) |")
	o.append("|---|---|---|---|---|---|")
	for n in D.ns:
		cells = []
		for dp in ("rota", "rotad", "ipt-legacy", "ipt-nft", "nft"):
			v = D.change.get((n, dp))
			c = spread(v, 1, 1e3) if v else "–"
			if D.change_failed.get((n, dp)):
				c += f" ({D.change_failed[(n, dp)]} failed)"
			cells.append(c)
		o.append(f"| {n:,} | " + " | ".join(cells) + " |")
	o.append("")
	return o


def memory_table(D):
	"""One row per N and dataplane: what its rules or maps hold in the
	kernel after programming N services, and how that was measured."""
	M = D.mem

	def g(n, dp, w):
		return M.get((n, dp, w))

	def ct(n, dp):
		e = g(n, dp, "conntrack_entries")
		return f"{int(e):,} entries = {mib(g(n, dp, 'conntrack_bytes'))}" if e is not None else "–"
	o = ["### Memory after programming N services\n",
	     "| N | dataplane | rules or maps | how measured | kernel conntrack after the runs |",
	     "|---|---|---|---|---|"]
	for n in D.ns:
		if g(n, "rota", "memlock_delta") is not None:
			o.append(f"| {n:,} | rota | {mib(g(n, 'rota', 'memlock_delta'))} added by the N services "
				 f"(slab + per-CPU Δ {mib(g(n, 'rota', 'kmem_delta'))}); all maps "
				 f"{mib(g(n, 'rota', 'memlock_total'))}, sized at `rota load` | bpftool map show: memlock "
				 "after − before programming; /proc/meminfo Δ | none (rota's own conntrack map is in the maps) |")
		if g(n, "rotad", "rss_bytes") is not None:
			o.append(f"| {n:,} | rotad | RSS {mib(g(n, 'rotad', 'rss_bytes'))} (watch cache of N Services and "
				 "EndpointSlices, the model, the client) | /proc/PID/status VmRSS after the sync | |")
		blob = g(n, "ipt-legacy", "blob_bytes")
		if blob is not None or g(n, "ipt-legacy", "kmem_delta") is not None:
			rules = f" ({int(g(n, 'ipt-legacy', 'blob_entries')):,} rules)" if blob is not None else ""
			o.append(f"| {n:,} | ipt-legacy | {mib(blob)} rule blob{rules} + {mib(g(n, 'ipt-legacy', 'kmem_delta'))} "
				 "slab + per-CPU Δ (rule counters and the rest) | blob: IPT_SO_GET_INFO (exact); rest: /proc/meminfo Δ "
				 f"| {ct(n, 'ipt-legacy')} |")
		for dp in ("ipt-nft", "nft"):
			if g(n, dp, "kmem_delta") is not None:
				o.append(f"| {n:,} | {dp} | {mib(g(n, dp, 'kmem_delta'))} | /proc/meminfo slab + per-CPU Δ | {ct(n, dp)} |")
	idle = [(k[1], v) for k, v in M.items() if k[0] == 0 and k[2] == "kmem_delta"]
	o.append("")
	o.append("/proc/meminfo Δ: unreclaimable slab + per-CPU memory after the load minus before, machine-wide, so "
		 "other jobs' allocations in that window count too (vmalloc is left out: other jobs' BPF maps move it by "
		 "100 MiB and more)." + (" The same Δ over an idle interval at the start of the run: " +
					  ", ".join(f"{v / 1048576:+.1f} MiB ({w})" for w, v in idle) + "." if idle else ""))
	o.append("")
	return o


def targets(D, flat):
	t = []
	ns = D.ns

	def tgt(name, val, ok, detail=""):
		t.append(f"| {name} | {val} | {'met' if ok else ('not met' if ok is not None else 'not measured')} | {detail} |")
	for dp, lim in (("rota-sock", 0.97), ("rota-tc", 0.9)):
		for n in ns:
			x = ratio(D.m(n, dp), D.m(n, "floor"))
			tgt(f"{dp} ≥ {lim}× floor at N={n:,}", fr(x), None if x is None else x >= lim)
	n10 = 10000 if 10000 in ns else ns[-1]
	for dp, base, lim in (("rota-tc", "ipt-legacy", 1.6), ("rota-tc", "nft", 1.25)):
		x = ratio(D.m(n10, dp), D.m(n10, base))
		st = D.load(n10, base)
		why = f"{base} did not load in {st[0]:.0f} s" if st and st[1] == "timeout" else ""
		tgt(f"{dp} ≥ {lim}× {base} at N={n10:,}", fr(x), None if x is None else x >= lim, why)
	if len(ns) >= 2:
		lo, hi = ns[0], ns[-1]
		for dp in ("rota-tc", "rota-sock"):
			if dp in flat and flat[dp][0] is not None:
				x, xn, a, b = flat[dp]
				tgt(f"{dp} first-packet p50 N={hi:,} ≤ 1.15× N={lo:,}", fr(x), x <= 1.15, f"{a:.0f} → {b:.0f} µs")
				if xn is not None:
					tgt(f"{dp} same, each N ÷ its floor", fr(xn), xn <= 1.15, "takes out how busy the machine was")
		for dp in ("ipt-legacy", "nft"):
			if dp in flat and flat[dp][0] is not None:
				x, xn, a, b = flat[dp]
				t.append(f"| ({dp} first-packet p50 N={hi:,} vs N={lo:,}, for reference) | {fr(x)} (÷ floor: {fr(xn)}) | "
					 f"| {a:.0f} → {b:.0f} µs |")
	missing = sorted({k[1] for k in D.rate if not D.cpu.get(k)})
	have = sorted({k[1] for k in D.cpu if D.cpu[k]}, key=ORDER.index)
	tgt("CPU per new connection reported for each dataplane", f"{len(have)} dataplanes", not missing and bool(have),
	    ("missing: " + ", ".join(missing)) if missing else "")
	nmax = n10
	for dp, what in (("rota", "librota upserts, after rota load"), ("rotad-sync", "rotad's sync from its watch cache"),
			 ("rotad", "rotad start → maps hold N (list + sync)")):
		v = D.ok_load(nmax, dp)
		if v is not None:
			tgt(f"programming {nmax:,} services ≤ 1 s ({dp})", f"{v:.3f} s", v <= 1.0, what)
	base_ok = [(D.ok_load(nmax, b), b) for b in BASELINES if D.ok_load(nmax, b) is not None]
	rp = D.ok_load(nmax, "rota")
	if rp is not None and base_ok:
		fb, which = min(base_ok)
		tgt(f"programming ≤ 1/10 of the fastest baseline at N={nmax:,}", f"{rp / fb:.3f} of {fb:.2f} s ({which})",
		    rp <= fb / 10, "librota upserts")
	return t


def main():
	ap = argparse.ArgumentParser()
	ap.add_argument("--dir", required=True, help="where compare-*.csv are and the outputs go")
	for a in ("command", "mode", "seconds", "load-before", "load-after", "settings"):
		ap.add_argument("--" + a, default="")
	a = ap.parse_args()
	D = Data(a.dir)
	srows = summary_rows(D)
	write_csv(os.path.join(a.dir, "compare.csv"), srows)

	o = ["# rota vs kube-proxy dataplanes\n"]
	when = sh("date -u '+%Y-%m-%d %H:%M UTC'")
	o.append(f"Generated by `{a.command}` ({a.mode} grid) on {when} in {a.seconds} s. Settings: {a.settings}.\n")
	o.extend(machine(a))
	o.append(f"New connections: `wrk -t2 -c16 -H 'Connection: close'` from the client netns to the service "
		 f"(every request is a new TCP connection), {D.endpoints} endpoints per service; median over the runs "
		 "(min–max), runs alternate the dataplanes. CPU µs/conn (ours): CPU time of the client's and backend's "
		 "cgroups (cpu.stat) over the run ÷ connections; (machine): every CPU's busy time (/proc/stat) ÷ "
		 "connections, other jobs included. First packet: `connect()` time (SYN → SYN-ACK through the "
		 "dataplane), median over the rounds of each round's p50/p99.\n")
	o.extend(conn_tables(D, srows))
	o.extend(ka_tables(D))
	ft, flat = first_packet_table(D)
	o.extend(ft)
	o.extend(iperf_table(D))
	o.extend(control_tables(D))
	o.extend(memory_table(D))
	o.append("### Targets\n")
	o.append("| target | measured | verdict | |")
	o.append("|---|---|---|---|")
	o.extend(targets(D, flat))
	o.append("")
	pngs = plots.draw(D, ORDER, a.dir)
	if pngs:
		o.append("### Plots\n")
		for p in pngs:
			o.append(f"![{p}]({p})")
		o.append("")
	o.append("Raw data next to this file: compare-raw.csv (every wrk run), compare-firstpacket.csv, "
		 "compare-persistent.csv, compare-iperf.csv, compare-loads.csv, compare-change.csv, compare-mem.csv.")
	with open(os.path.join(a.dir, "compare.md"), "w") as f:
		f.write("\n".join(o) + "\n")
	print("\n".join(o))


if __name__ == "__main__":
	main()
