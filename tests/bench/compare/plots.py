"""PNG plots of the kube-proxy comparison, drawn by gnuplot from report.py's
data: new connections/s against N (log x) for each dataplane, request
latency percentiles over persistent connections per dataplane, and
first-packet latency against N. The data and the gnuplot script stay in
build/bench/plots/ so a plot can be redrawn or restyled by hand."""
import os
import shutil
import statistics
import subprocess

COLOR = {
	"floor": "#000000", "ipt-legacy": "#d62728", "ipt-legacy-rand": "#ff9896", "ipt-nft": "#8c564b",
	"nft": "#ff7f0e", "rota-tc": "#1f77b4", "rota-tc-maglev": "#aec7e8", "rota-sock": "#2ca02c",
	"rota-sock-maglev": "#98df8a",
}


def _write(path, lines):
	with open(path, "w") as f:
		f.write("\n".join(lines) + "\n")


def connrate(D, order, pdir):
	plots = []
	for dp in order:
		pts = [(n, D.rate[(n, dp)]) for n in D.ns if D.rate.get((n, dp))]
		if not pts:
			continue
		f = os.path.join(pdir, f"connrate-{dp}.dat")
		_write(f, ["# N median min max"] + [f"{n} {statistics.median(v):.1f} {min(v):.1f} {max(v):.1f}" for n, v in pts])
		plots.append(f"'{f}' using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb '{COLOR[dp]}' title '{dp}'")
	if not plots:
		return None
	return ["set output 'compare-connrate.png'",
		"set title 'New connections/s through each dataplane (median, min–max over runs)'",
		"set logscale x", "set xlabel 'services (N)'", "set ylabel 'connections/s'", "set yrange [0:*]",
		"set key outside right", "set grid",
		f"set xrange [{min(D.ns) / 1.5}:{max(D.ns) * 1.5}]",
		"plot " + ", \\\n     ".join(plots), "unset logscale x", "unset xrange", "unset yrange"]


def latency(D, order, pdir):
	ns = [n for n in D.ns if any((n, dp) in D.ka for dp in order)]
	if not ns:
		return None
	g = ["set terminal pngcairo size 1400,650 font 'DejaVu Sans,10'",
	     "set output 'compare-latency.png'", f"set multiplot layout 1,{len(ns)} "
	     "title 'Request latency over a persistent connection (requests in turn; median over runs)'",
	     "set style data histogram", "set style histogram cluster gap 1", "set style fill solid 0.8 border -1",
	     "set boxwidth 0.9", "set logscale y", "set yrange [1:*]", "set ylabel 'µs'", "set xtics rotate by -35",
	     "set grid ytics", "set key top left"]
	for n in ns:
		rows = [(dp, D.ka[(n, dp)]) for dp in order if (n, dp) in D.ka]
		f = os.path.join(pdir, f"latency-{n}.dat")
		_write(f, ["# dataplane p50 p99 p99.9"] + [
			f"{dp} {statistics.median(a['p50_us']):.0f} {statistics.median(a['p99_us']):.0f} "
			f"{statistics.median(a['p999_us']):.0f}" for dp, a in rows])
		g += [f"set title 'N = {n:,}'",
		      f"plot '{f}' using 2:xtic(1) title 'p50' lc rgb '#9ecae1', '' using 3 title 'p99' lc rgb '#3182bd', "
		      "'' using 4 title 'p99.9' lc rgb '#08519c'"]
	return g + ["unset multiplot", "unset logscale y", "unset yrange", "unset style", "set xtics norotate"]


def first_packet(D, order, pdir):
	plots = []
	for dp in order:
		pts = [(n, D.first[(n, dp)]) for n in D.ns if D.first[(n, dp)][0]]
		if not pts:
			continue
		f = os.path.join(pdir, f"firstpacket-{dp}.dat")
		_write(f, ["# N p50 p99"] + [f"{n} {statistics.median(v[0]):.1f} {statistics.median(v[1]):.1f}" for n, v in pts])
		plots.append(f"'{f}' using 1:2 with linespoints lw 2 pt 7 lc rgb '{COLOR[dp]}' title '{dp} p50'")
		plots.append(f"'{f}' using 1:3 with linespoints lw 1 dt 2 pt 6 lc rgb '{COLOR[dp]}' title '{dp} p99'")
	if not plots:
		return None
	return ["set output 'compare-firstpacket.png'",
		"set title 'First packet: connect() time (SYN → SYN-ACK) by number of services'",
		"set logscale xy", "set xlabel 'services (N)'", "set ylabel 'µs'", "set key outside right", "set grid",
		f"set xrange [{min(D.ns) / 1.5}:{max(D.ns) * 1.5}]",
		"plot " + ", \\\n     ".join(plots), "unset logscale", "unset xrange"]


def draw(D, order, outdir):
	"""Writes the PNGs into outdir; returns their file names."""
	if not shutil.which("gnuplot"):
		print("plots: gnuplot is missing (scripts/deps.sh installs it); no PNGs")
		return []
	pdir = os.path.join(outdir, "plots")
	os.makedirs(pdir, exist_ok=True)
	script = ["set terminal pngcairo size 1100,600 font 'DejaVu Sans,10'"]
	made = []
	for part in (connrate(D, order, pdir), latency(D, order, pdir), first_packet(D, order, pdir)):
		if part:
			script += part + ["reset", "set terminal pngcairo size 1100,600 font 'DejaVu Sans,10'"]
			made.append(next(x for x in part if x.startswith("set output")).split("'")[1])
	if len(D.ns) and made:
		gp = os.path.join(pdir, "compare.gp")
		_write(gp, script)
		r = subprocess.run(["gnuplot", gp], cwd=outdir, capture_output=True, text=True)
		if r.returncode:
			print("plots: gnuplot failed: " + r.stderr[-500:])
			return []
	return made
