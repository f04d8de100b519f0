#!/usr/bin/python3
"""Requests an attacker (or a careless client) sends rota-apiserver, one
subcommand per attack; each exits 0 when the server held, 1 with what went
wrong. Usage: hostile.py CASE PORT DATA_DIR [args]."""
import http.client
import json
import os
import socket
import ssl
import sys
import threading
import time

CASE, PORT, DATA = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ARGS = sys.argv[4:]
TOKEN = open(os.path.join(DATA, "admin.token")).read().strip()
CTX = ssl.create_default_context(cafile=os.path.join(DATA, "pki", "ca.crt"))
CTX.check_hostname = False


def conn(source="127.0.0.1", timeout=10):
    return http.client.HTTPSConnection("127.0.0.1", PORT, context=CTX, timeout=timeout,
                                       source_address=(source, 0))


def call(method, path, body=None, ctype="application/json", token=TOKEN, timeout=10):
    """One request on a fresh connection: (status, headers, parsed or raw body)."""
    c = conn(timeout=timeout)
    hdrs = {"Content-Type": ctype}
    if token:
        hdrs["Authorization"] = "Bearer " + token
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    c.request(method, path, body=body, headers=hdrs)
    r = c.getresponse()
    raw = r.read()
    c.close()
    try:
        return r.status, r, json.loads(raw)
    except ValueError:
        return r.status, r, raw


def fail(msg):
    print("FAILED:", msg)
    sys.exit(1)


def alive():
    st, _, body = call("GET", "/readyz", token=None)
    if st != 200:
        fail("server not ready afterwards: %s %s" % (st, body))


CM = "/api/v1/namespaces/default/configmaps"


def concurrent_delete():
    """4 DELETEs of one object at once, 40 rounds: one 200 and three 404
    each round (the server once died of a double free within 17)."""
    for rnd in range(40):
        st, _, b = call("POST", CM, {"metadata": {"name": "race"}, "data": {"r": str(rnd)}})
        if st != 201:
            fail("round %d: create: %s %s" % (rnd, st, b))
        codes, start = [], threading.Barrier(4)

        def one():
            start.wait()
            try:
                codes.append(call("DELETE", CM + "/race")[0])
            except Exception as e:  # a dead server resets the connection
                codes.append(repr(e))
        ts = [threading.Thread(target=one) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if sorted(map(str, codes)) != ["200", "404", "404", "404"]:
            fail("round %d: DELETE answers %s, want one 200 and three 404" % (rnd, codes))
    alive()
    print("40 rounds of 4 concurrent DELETEs: one 200 and three 404 each")


def patch_index():
    """A JSON-patch index past 2^31 once wrapped negative and spun a thread."""
    call("POST", CM, {"metadata": {"name": "idx"}, "data": {"a": "1"},
                      "binaryData": {}})
    call("PATCH", CM + "/idx", [{"op": "add", "path": "/metadata/finalizers", "value": ["x"]}],
         "application/json-patch+json")
    for idx in ("4294967295", "2147483648", "18446744073709551617"):
        t0 = time.time()
        st, _, b = call("PATCH", CM + "/idx",
                        [{"op": "add", "path": "/metadata/finalizers/" + idx, "value": "y"}],
                        "application/json-patch+json", timeout=5)
        if st != 422 or "missing path" not in b.get("message", ""):
            fail("index %s: %s %s" % (idx, st, b))
        print("index %s: 422 in %.3f s" % (idx, time.time() - t0))
    st, _, b = call("GET", CM + "/idx")
    if b["metadata"].get("finalizers") != ["x"]:
        fail("object changed: %s" % b)
    call("PATCH", CM + "/idx", [{"op": "remove", "path": "/metadata/finalizers"}],
         "application/json-patch+json")
    call("DELETE", CM + "/idx")
    alive()


def copy_bomb():
    """20 copy ops that each double the object (1 KB of patch, a 1 GB
    result): refused with 413, the object untouched, the server's memory
    not blown."""
    call("POST", CM, {"metadata": {"name": "bomb"}, "data": {"seed": "x" * 1000}})
    body = json.dumps([{"op": "copy", "from": "/data", "path": "/data/c%d" % i} for i in range(20)])
    st, _, b = call("PATCH", CM + "/bomb", body, "application/json-patch+json", timeout=20)
    if st != 413 or b.get("reason") != "RequestEntityTooLarge":
        fail("%d-byte bomb: %s %s" % (len(body), st, str(b)[:300]))
    st, _, b = call("GET", CM + "/bomb")
    if set(b["data"]) != {"seed"}:
        fail("object changed: %s" % str(b)[:300])
    rss = int(open("/proc/%s/status" % ARGS[0]).read().split("VmRSS:")[1].split()[0])
    if rss > 200 * 1024:
        fail("server RSS %d KiB after the bomb" % rss)
    print("copy bomb (%d bytes): 413, object unchanged, server RSS %d KiB" % (len(body), rss))
    # merge patches that each fit but grow the object past the limit
    big = "y" * (1600 * 1024)
    st, _, b = call("PATCH", CM + "/bomb", {"data": {"a": big}}, "application/merge-patch+json")
    st2, _, b2 = call("PATCH", CM + "/bomb", {"data": {"b": big}}, "application/merge-patch+json")
    if st != 200 or st2 != 413:
        fail("1.6 MiB merge patches: first %s, second %s %s (want 200, 413)" % (st, st2, str(b2)[:200]))
    call("DELETE", CM + "/bomb")
    alive()


def yaml_deep():
    """YAML nested 40,000 levels: refused at level 64 without parsing on."""
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata: " + "[" * 40000
    t0 = time.time()
    st, _, b = call("POST", CM, body, "application/yaml", timeout=10)
    took = time.time() - t0
    if st != 400 or "nested deeper than 64 levels" not in b.get("message", ""):
        fail("%s %s" % (st, str(b)[:300]))
    print("40k-deep YAML: 400 in %.3f s" % took)
    alive()


def bad_strings():
    """Duplicate keys refused; NUL refused in bodies and paths; invalid
    UTF-8 stored as U+FFFD so clients can still decode the list."""
    st, _, b = call("POST", CM, '{"metadata":{"name":"dup","name":"other"},"data":{}}')
    if st != 400 or 'duplicate field \\"metadata.name\\"' not in json.dumps(b):
        fail("duplicate key: %s %s" % (st, b))
    for body in ('{"metadata":{"name":"a\\u0000b"}}',
                 '{"metadata":{"name":"nul","labels":{"k\\u0000":"v"}}}',
                 '{"metadata":{"name":"nul"},"data":{"a\\u0000b":"v"}}'):
        st, _, b = call("POST", CM, body)
        if st != 400 or "NUL" not in b.get("message", ""):
            fail("NUL in %s: %s %s" % (body, st, b))
    if call("GET", CM + "/nul")[0] != 404 or call("GET", CM + "/a")[0] != 404:
        fail("an object with a NUL-cut name was stored")
    st, _, b = call("GET", "/api/v1/namespaces/default%00junk/configmaps")
    if st != 400 or "%00" not in b.get("message", ""):
        fail("%%00 in the path: %s %s" % (st, str(b)[:200]))
    st, _, b = call("GET", CM + "?labelSelector=a%00b")
    if st != 400:
        fail("%%00 in the query: %s" % st)
    raw = b'{"metadata":{"name":"utf"},"data":{"v":"\xff\xfe\xc0\x80","ok":"caf\xc3\xa9"}}'
    st, _, b = call("POST", CM, raw)
    if st != 201:
        fail("invalid UTF-8 create: %s %s" % (st, b))
    if b["data"] != {"v": "\ufffd" * 4, "ok": "caf\u00e9"}:
        fail("stored %r" % b["data"])
    # the client kubectl users script against decodes the namespace's list
    from kubernetes import client, config
    config.load_kube_config(os.path.join(DATA, "kubeconfig"))
    items = client.CoreV1Api().list_namespaced_config_map("default").items
    if not any(i.metadata.name == "utf" and i.data["v"] == "\ufffd" * 4 for i in items):
        fail("python-kubernetes does not see the mended value")
    call("DELETE", CM + "/utf")
    alive()
    print("duplicate keys, NUL (body, path, query) refused; invalid UTF-8 mended")


def unauth_closes():
    """401 closes the connection: an unauthenticated client keeps nothing."""
    c = conn()
    c.request("GET", "/api/v1/namespaces")
    r = c.getresponse()
    r.read()
    if r.status != 401 or r.getheader("Connection", "").lower() != "close":
        fail("401 answer: %s Connection=%s" % (r.status, r.getheader("Connection")))
    print("401 answered with Connection: close")


def slowloris():
    """Clients from one address (127.0.0.2) that dribble header lines: at
    most --max-connections-per-client of them get in, each is cut at the
    header deadline, and clients elsewhere are served all along."""
    per_client, deadline = int(ARGS[0]), float(ARGS[1])
    socks, refused = [], 0
    t0 = time.time()
    for _ in range(3 * per_client):
        try:
            s = CTX.wrap_socket(socket.create_connection(("127.0.0.1", PORT), timeout=3,
                                                         source_address=("127.0.0.2", 0)))
            s.sendall(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except (OSError, ssl.SSLError):
            refused += 1
    if len(socks) > per_client:
        fail("%d connections from one address got in (cap %d)" % (len(socks), per_client))
    # served meanwhile from another address
    for _ in range(5):
        st, _, _ = call("GET", "/api/v1/namespaces/default")
        if st != 200:
            fail("a client elsewhere got %s during the attack" % st)
    # dribble a header line every 0.5 s; the server must cut each one
    open_ = list(socks)
    while open_ and time.time() - t0 < deadline + 5:
        for s in list(open_):
            try:
                s.sendall(b"X-Slow: 1\r\n")
                s.settimeout(0.01)
                if s.recv(1) == b"":
                    raise OSError("closed")
            except (socket.timeout, ssl.SSLWantReadError):
                pass
            except (OSError, ssl.SSLError):
                open_.remove(s)
        time.sleep(0.5)
    took = time.time() - t0
    if open_:
        fail("%d dribbling connections still open after %.1f s (deadline %.0f s)" %
             (len(open_), took, deadline))
    print("%d of %d connections from one address got in (%d refused); all cut by %.1f s "
          "(deadline %.0f s); others served throughout" %
          (len(socks), 3 * per_client, refused, took, deadline))


def inflight():
    """With --max-mutating-requests-inflight 1, a write held open by a slow
    body makes the next write 429 with Retry-After; afterwards it goes."""
    body = json.dumps({"metadata": {"name": "slow"}, "data": {}}).encode()
    s = CTX.wrap_socket(socket.create_connection(("127.0.0.1", PORT)))
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" %
               (CM, TOKEN, len(body))).encode() + body[:5])
    time.sleep(0.5)
    st, r, b = call("POST", CM, {"metadata": {"name": "second"}, "data": {}})
    if st != 429 or r.getheader("Retry-After") != "1" or b.get("reason") != "TooManyRequests":
        fail("second write while one is in flight: %s %s" % (st, b))
    if call("GET", CM)[0] != 200:
        fail("a read was refused with one write in flight")
    s.sendall(body[5:])
    reply = s.recv(4096)
    if b" 201 " not in reply.split(b"\r\n")[0]:
        fail("slow write answered %r" % reply[:80])
    s.close()
    time.sleep(0.2)
    if call("POST", CM, {"metadata": {"name": "second"}, "data": {}})[0] != 201:
        fail("the retried write was refused")
    print("write in flight: the next got 429 + Retry-After: 1; retried, 201")


globals()[CASE]()
