#!/usr/bin/python3
"""Helpers for rotad's end-to-end tests (stdlib only).

Objects (print JSON for `kubectl apply -f -`):
  service NAME PORTS [affinity=SECONDS|ClientIP] [clusterIP=IP] [type=T]
        [itp=Local|Cluster] [label=KEY=VALUE]...
      PORTS: comma-separated NAME:PORT[/PROTO] (NAME may be empty: ":80")
  slice NAME SERVICE PORTS [ENDPOINT...] [trigger=now|RFC3339] [ns=NAMESPACE]
      PORTS as above (the target ports); ENDPOINT:
      ADDRESS[+ADDRESS...][/STATE][@NODENAME] (several addresses: the
      endpoint's addresses list; @NODENAME: its nodeName), with
      STATE one of: (none) conditions left unset; ready (ready: true);
      notready (ready: false, serving: false); terminating (ready: false,
      serving: true, terminating: true); stopping (ready: false,
      serving: false, terminating: true)
Clients (run inside a client netns):
  loop ADDR PORT SECONDS INTERVAL
      one HTTP GET on a new TCP connection every INTERVAL for SECONDS;
      prints a line per failure and then "requests N failed F B1:n ...";
      exit 0 when nothing failed
  get N ADDR PORT
      N HTTP GETs, each on a new TCP connection: one line each, the body
      (first word) or "ERR <errno name>" (what http_n does with curl, in
      one process instead of N)
  connect-from LPORT ADDR PORT
      one TCP connection from local port LPORT (SO_REUSEADDR) to a greeter
      (e2e_tool.py tcp-server): prints its name, or "ERR ..." after 3 s;
      closed with a reset, as a busy client's short connections often are
  udp-from LPORT ADDR PORT
      a connected UDP socket on local port LPORT to a UDP echo (e2e_tool.py
      udp-server): sends one datagram, prints the answering name or "ERR ..."
Servers (root netns, loopback only):
  tcp-proxy LISTEN_PORT TARGET_PORT
      forwards 127.0.0.1:LISTEN_PORT to 127.0.0.1:TARGET_PORT (TLS passes
      through untouched). SIGUSR1 freezes every connection open at that
      moment: both sockets stay open and nothing more is forwarded either
      way, as on a path that black-holes packets; later connections are
      forwarded. Logs connections and freezes to stderr
  fake-apiserver PORT OBJECTS.json
      a minimal Kubernetes API over plain HTTP that serves list and watch
      of services, endpointslices and nodes with objects the real API
      server would refuse (see fake_apiserver below)
Misc:
  metric NAME [LABELS]   the value of a Prometheus sample from stdin
                         (LABELS exactly as printed, e.g. resource="services")
  hist NAME              "<count> <sum>" of a Prometheus histogram from stdin
"""
import errno
import json
import socket
import struct
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def parse_ports(spec, with_target=False):
    ports = []
    for item in filter(None, spec.split(",")):
        name, _, rest = item.partition(":")
        num, _, proto = rest.partition("/")
        p = {"port": int(num), "protocol": proto or "TCP"}
        if name:
            p["name"] = name
        ports.append(p)
    return ports


def service(argv):
    name, ports = argv[0], parse_ports(argv[1])
    spec = {"ports": ports}
    labels = {}
    for a in argv[2:]:
        k, _, v = a.partition("=")
        if k == "affinity":
            spec["sessionAffinity"] = "ClientIP"
            if v != "ClientIP":
                spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": int(v)}}
        elif k == "clusterIP":
            spec["clusterIP"] = v
        elif k == "type":
            spec["type"] = v
        elif k == "itp":
            spec["internalTrafficPolicy"] = v
        elif k == "label":
            lk, _, lv = v.partition("=")
            labels[lk] = lv
        else:
            raise SystemExit("service: unknown option " + a)
    md = {"name": name}
    if labels:
        md["labels"] = labels
    print(json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": md, "spec": spec}))


STATES = {
    "": None,
    "ready": {"ready": True},
    "notready": {"ready": False, "serving": False},
    "terminating": {"ready": False, "serving": True, "terminating": True},
    "stopping": {"ready": False, "serving": False, "terminating": True},
}


def rfc3339_now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def slice_(argv):
    name, svc, ports = argv[0], argv[1], parse_ports(argv[2])
    eps, md = [], {"name": name, "labels": {"kubernetes.io/service-name": svc}}
    for a in argv[3:]:
        if a.startswith("trigger="):
            v = a.split("=", 1)[1]
            md["annotations"] = {"endpoints.kubernetes.io/last-change-trigger-time":
                                 rfc3339_now() if v == "now" else v}
            continue
        if a.startswith("ns="):
            md["namespace"] = a.split("=", 1)[1]
            continue
        a, _, node = a.partition("@")
        addrs, _, state = a.partition("/")
        ep = {"addresses": addrs.split("+")}
        if STATES[state] is not None:
            ep["conditions"] = STATES[state]
        if node:
            ep["nodeName"] = node
        eps.append(ep)
    print(json.dumps({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": md,
                      "addressType": "IPv4", "ports": ports, "endpoints": eps}))


def http_get(addr, port, timeout):
    s = socket.create_connection((addr, port), timeout=timeout)
    try:
        s.settimeout(timeout)
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            c = s.recv(4096)
            if not c:
                break
            data += c
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n")[0]:
        raise OSError("bad response %r" % head[:40])
    return body.decode().strip()


def err_name(e):
    if isinstance(e, socket.timeout):
        return "ERR timeout"
    code = getattr(e, "errno", None)
    return "ERR " + (errno.errorcode.get(code, str(code)) if code else type(e).__name__)


def get_n(n, addr, port):
    for _ in range(n):
        try:
            print(http_get(addr, port, 2.0).split("\n")[0], flush=True)
        except OSError as e:
            print(err_name(e), flush=True)


def loop(addr, port, seconds, interval):
    start = time.monotonic()
    end = start + seconds
    n = failed = 0
    seen = {}
    nxt = start
    while time.monotonic() < end:
        n += 1
        t = time.monotonic() - start
        try:
            who = http_get(addr, port, 1.0)
            seen[who] = seen.get(who, 0) + 1
        except Exception as e:  # noqa: BLE001 - every failure counts
            failed += 1
            print("fail at %.2fs: %s" % (t, e), flush=True)
        nxt += interval
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print("requests %d failed %d %s" % (n, failed, " ".join("%s:%d" % kv for kv in sorted(seen.items()))),
          flush=True)
    return 0 if failed == 0 else 1


def connect_from(lport, addr, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(3)
    try:
        s.bind(("0.0.0.0", lport))
        s.connect((addr, port))
        buf = b""
        while not buf.endswith(b"\n"):
            c = s.recv(1)
            if not c:
                raise ConnectionResetError("closed before the greeting")
            buf += c
        print(buf.decode().split()[0], flush=True)
        rc = 0
    except OSError as e:
        print("ERR %s" % (e if str(e) else type(e).__name__), flush=True)
        rc = 1
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    return rc


def udp_from(lport, addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(2)
    try:
        s.bind(("0.0.0.0", lport))
        s.connect((addr, port))
        s.send(b"ping")
        print(s.recv(2048).partition(b"\n")[0].decode(), flush=True)
        return 0
    except OSError as e:
        print(err_name(e), flush=True)
        return 1
    finally:
        s.close()


# ---------------------------------------------------------------- freezing TCP proxy

def tcp_proxy(listen_port, target_port):
    import signal
    lock = threading.Lock()
    live = []           # open connections: {"frozen": Event (set = frozen), "pumps": running}
    never = threading.Event()

    def log(msg):
        sys.stderr.write("tcp-proxy: %s\n" % msg)
        sys.stderr.flush()

    def pump(src, dst, frozen, conn):
        try:
            while True:
                data = src.recv(65536)
                if frozen.is_set():
                    never.wait()        # swallow it and everything after
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        with lock:
            conn["pumps"] -= 1
            if not conn["pumps"]:
                live.remove(conn)

    def freeze(signum, frame):
        with lock:
            n = 0
            for conn in live:
                if not conn["frozen"].is_set():
                    conn["frozen"].set()
                    n += 1
        log("froze %d open connections" % n)

    signal.signal(signal.SIGUSR1, freeze)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen_port))
    srv.listen(64)
    log("listening on %d, forwarding to %d" % (listen_port, target_port))
    n = 0
    while True:
        try:
            c, _ = srv.accept()
        except InterruptedError:
            continue
        n += 1
        try:
            u = socket.create_connection(("127.0.0.1", target_port), timeout=5)
            u.settimeout(None)
        except OSError as e:
            log("connection %d: upstream: %s" % (n, e))
            c.close()
            continue
        conn = {"frozen": threading.Event(), "pumps": 2}
        with lock:
            live.append(conn)
        log("connection %d open" % n)
        for a, b in ((c, u), (u, c)):
            threading.Thread(target=pump, args=(a, b, conn["frozen"], conn), daemon=True).start()


# ---------------------------------------------------------------- fake API server

RESOURCES = {
    "/api/v1/services": ("services", "ServiceList"),
    "/apis/discovery.k8s.io/v1/endpointslices": ("endpointslices", "EndpointSliceList"),
    "/api/v1/nodes": ("nodes", "NodeList"),
}


def fake_apiserver(port, path):
    """Serves OBJECTS.json: {"rv": "100", "services": [...], "endpointslices": [...],
    "nodes": [...], "watch": {"services": [EVENT...], ...}}. A list returns
    the objects as they are (no validation, no defaults). The first watch of
    each resource sends its "watch" events, each written in small pieces
    with pauses (so the client gets them split at many byte positions),
    then stays open until timeoutSeconds; later watches send nothing.
    Every request is logged to stderr."""
    with open(path) as f:
        state = json.load(f)
    rv = state.get("rv", "100")
    watched = set()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, fmt, *args):
            sys.stderr.write("fake-apiserver: " + (fmt % args) + "\n")

        def send_json(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            u = urlparse(self.path)
            q = parse_qs(u.query)
            if u.path in ("/readyz", "/healthz"):
                body = b"ok"
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(body)
                return
            if u.path not in RESOURCES:
                self.send_json(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                return
            res, kind = RESOURCES[u.path]
            if q.get("watch", ["0"])[0] in ("1", "true"):
                self.watch(res, float(q.get("timeoutSeconds", ["30"])[0]))
                return
            self.send_json(200, {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": rv},
                                 "items": state.get(res, [])})

        def watch(self, res, timeout):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            with lock:
                first = res not in watched
                watched.add(res)
            end = time.monotonic() + timeout
            try:
                if first:
                    for ev in state.get("watch", {}).get(res, []):
                        data = (json.dumps(ev) + "\n").encode()
                        step = 7
                        for i in range(0, len(data), step):
                            self.wfile.write(data[i:i + step])
                            self.wfile.flush()
                            time.sleep(0.002)
                while time.monotonic() < end:
                    time.sleep(0.2)
            except OSError:
                pass

    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


# ---------------------------------------------------------------- metrics

def metric(name, labels=None):
    want = name + ("{%s}" % labels if labels else "")
    for line in sys.stdin:
        if line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) == 2 and parts[0] == want:
            print(parts[1])
            return 0
    print("absent")
    return 1


def hist(name):
    count = total = None
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 2:
            continue
        if parts[0] == name + "_count":
            count = parts[1]
        elif parts[0] == name + "_sum":
            total = parts[1]
    print("%s %s" % (count or "absent", total or "absent"))
    return 0 if count is not None else 1


def main(argv):
    mode = argv[1] if len(argv) > 1 else ""
    if mode == "service":
        service(argv[2:])
    elif mode == "slice":
        slice_(argv[2:])
    elif mode == "loop":
        return loop(argv[2], int(argv[3]), float(argv[4]), float(argv[5]))
    elif mode == "get":
        get_n(int(argv[2]), argv[3], int(argv[4]))
    elif mode == "connect-from":
        return connect_from(int(argv[2]), argv[3], int(argv[4]))
    elif mode == "udp-from":
        return udp_from(int(argv[2]), argv[3], int(argv[4]))
    elif mode == "tcp-proxy":
        tcp_proxy(int(argv[2]), int(argv[3]))
    elif mode == "fake-apiserver":
        fake_apiserver(int(argv[2]), argv[3])
    elif mode == "metric":
        return metric(argv[2], argv[3] if len(argv) > 3 else None)
    elif mode == "hist":
        return hist(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
