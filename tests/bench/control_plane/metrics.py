"""Prometheus text from rotad's /metrics: samples by name and labels, and
quantiles of the difference of two histogram scrapes (as bucket bounds: a
histogram says no more than "at most this")."""
import re
import urllib.request

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')


def scrape(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def value(samples, name, labels=""):
    return samples.get((name, labels))


def histogram(samples, name):
    """(sorted [(bound, cumulative count)], sum, count)."""
    buckets = []
    for (n, labels), v in samples.items():
        if n == name + "_bucket":
            le = re.search(r'le="([^"]+)"', labels).group(1)
            buckets.append((float("inf") if le == "+Inf" else float(le), v))
    buckets.sort()
    return buckets, samples.get((name + "_sum", ""), 0.0), samples.get((name + "_count", ""), 0.0)


def histogram_delta(before, after, name):
    """What the histogram gained between two scrapes: (buckets, sum, count)."""
    b0, s0, c0 = histogram(before, name) if before else ([], 0.0, 0.0)
    b1, s1, c1 = histogram(after, name)
    prev = dict(b0)
    return [(le, v - prev.get(le, 0.0)) for le, v in b1], s1 - s0, c1 - c0


def bucket_quantile(buckets, count, q):
    """Upper bound of the bucket holding quantile q (None without samples)."""
    if count <= 0:
        return None
    for le, cum in buckets:
        if cum >= q * count:
            return le
    return float("inf")


def share_within(buckets, count, bound):
    """Fraction of samples in buckets with upper bound <= bound."""
    if count <= 0:
        return None
    below = [cum for le, cum in buckets if le <= bound + 1e-12]
    return (below[-1] if below else 0.0) / count
