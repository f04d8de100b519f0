"""A small keep-alive HTTPS client for rota-apiserver, shared by the
control-plane benchmark's loader, watcher and churner: one TLS connection
per client (a process per request would cost more than the request), the
server's CA from its data dir, the admin bearer token."""
import http.client
import json
import os
import ssl
import time
import urllib.parse


class ApiError(Exception):
    pass


class Api:
    def __init__(self, url, data_dir, timeout=60):
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port
        with open(os.path.join(data_dir, "admin.token")) as f:
            self.token = f.read().strip()
        self.ctx = ssl.create_default_context(cafile=os.path.join(data_dir, "pki", "ca.crt"))
        self.timeout = timeout
        self.conn = None

    def connect(self):
        self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=self.timeout)
        return self.conn

    def headers(self, ctype=None):
        h = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
        if ctype:
            h["Content-Type"] = ctype
        return h

    def request(self, method, path, body=None, ctype="application/json"):
        """One request on the kept-alive connection; the decoded JSON answer.
        Any HTTP status >= 400 raises ApiError naming the request."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        headers = self.headers(ctype if data is not None else None)
        reused = self.conn is not None
        if not reused:
            self.connect()
        try:
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            # The server closes idle connections (60 s): the request never
            # reached it, so it is sent once more on a new one.
            self.connect()
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
        out = resp.read()
        if resp.status >= 400:
            raise ApiError("%s %s: HTTP %d: %s" % (method, path, resp.status, out[:300].decode(errors="replace")))
        return json.loads(out) if out else None

    def stream(self, path):
        """Opens a watch on its own connection; returns the HTTP response
        once the server has answered with 200 (events follow)."""
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=self.timeout)
        conn.request("GET", path, headers=self.headers())
        resp = conn.getresponse()
        if resp.status != 200:
            raise ApiError("watch %s: HTTP %d: %s" % (path, resp.status, resp.read()[:300].decode(errors="replace")))
        return resp


def events(resp):
    """Yields each watch event of a chunked stream as (arrival, type,
    object): arrival is time.monotonic() when the bytes that completed the
    event were read. Read in large pieces (IOBase.readline over chunked
    encoding is slow)."""
    buf = b""
    while True:
        piece = resp.read1(1 << 16)
        arrival = time.monotonic()
        if not piece:
            return
        buf += piece
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.strip():
                ev = json.loads(line)
                yield arrival, ev["type"], ev["object"]
