#!/usr/bin/python3
"""Servers and clients for rota's end-to-end tests (stdlib only).

Run by tests/e2e/*_test.sh inside network namespaces; each mode prints one
line per result so the shell can count them.

Servers (run in a backend netns until killed):
  udp-server NAME PORT         answers every datagram with "NAME\n" + the
                               datagram (an echo that says who answered)
  tcp-server NAME PORT         greets each connection with "NAME PEER_IP\\n",
                               then echoes every line back
Clients:
  who tcp|udp ADDR PORT N      N new connections/sockets, one line each:
                               tcp: "NAME PEER_SEEN_BY_SERVER GETPEERNAME"
                               udp: "NAME RECVFROM_ADDR ok|mismatch", a new
                               unconnected socket each time
                               or "ERR <errno name>" / "ERR timeout"
  who udp ADDR PORT N SIZE     the same with SIZE-byte datagrams (IP fragments
                               when SIZE exceeds the MTU)
  udp-same ADDR PORT N         N datagrams from one unconnected socket
  reuse ADDR PORT LPORT N      N TCP connections in a row from local port
                               LPORT, each closed with a reset (no
                               TIME_WAIT), so every one reuses the last
                               one's tuple: "NAME" or "ERR ..." each
  udp-connected ADDR PORT      connect(), send, recv: "NAME" or "ERR ..."
  json EXPR [NAME=VALUE]...    evaluates the Python expression EXPR over the
                               JSON on stdin (d: the document, or None when
                               empty; docs: every concatenated document;
                               each NAME a string variable) and prints the
                               result: strings raw, anything else as compact
                               sorted JSON. The tests' stand-in for jq.
  long ADDR PORT SECONDS INTERVAL NAMEFILE
                               one TCP connection kept for SECONDS, a line every
                               INTERVAL, every echo checked; writes the
                               backend's name to NAMEFILE once known; exit 0
                               and "ok N" when every exchange worked
"""
import errno
import json
import os
import socket
import socketserver
import struct
import sys
import time

TIMEOUT = 1.5


def err_line(e):
    if isinstance(e, socket.timeout):
        return "ERR timeout"
    code = getattr(e, "errno", None)
    return "ERR " + (errno.errorcode.get(code, str(code)) if code else type(e).__name__)


def udp_server(name, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(name.encode() + b"\n" + data, peer)


def tcp_server(name, port):
    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            self.wfile.write(("%s %s\n" % (name, self.client_address[0])).encode())
            self.wfile.flush()
            for line in self.rfile:
                self.wfile.write(line)
                self.wfile.flush()

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    Server(("0.0.0.0", port), Handler).serve_forever()


def readline(sock):
    buf = b""
    while not buf.endswith(b"\n"):
        c = sock.recv(1)
        if not c:
            raise ConnectionResetError(errno.ECONNRESET, "closed")
        buf += c
    return buf.decode().strip()


def udp_exchange(s, addr, port, size):
    payload = os.urandom(size // 2).hex().encode()[:size] if size > 4 else b"ping"
    s.sendto(payload, (addr, port))
    data, frm = s.recvfrom(65535)
    name, _, echoed = data.partition(b"\n")
    return "%s %s:%d %s" % (name.decode(), frm[0], frm[1], "ok" if echoed == payload else "mismatch")


def who(proto, addr, port, n, size=4):
    for _ in range(n):
        if proto == "tcp":
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(TIMEOUT)
            try:
                s.connect((addr, port))
                peer = "%s:%d" % s.getpeername()
                greeting = readline(s)
                print("%s %s" % (greeting, peer), flush=True)
            except OSError as e:
                print(err_line(e), flush=True)
            finally:
                s.close()
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(TIMEOUT)
            try:
                print(udp_exchange(s, addr, port, size), flush=True)
            except OSError as e:
                print(err_line(e), flush=True)
            finally:
                s.close()


def udp_same(addr, port, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    for _ in range(n):
        try:
            print(udp_exchange(s, addr, port, 4), flush=True)
        except OSError as e:
            print(err_line(e), flush=True)


def reuse(addr, port, lport, n):
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(TIMEOUT)
        try:
            s.bind(("0.0.0.0", lport))
            s.connect((addr, port))
            print(readline(s).split()[0], flush=True)
        except OSError as e:
            print(err_line(e), flush=True)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


def udp_connected(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    try:
        s.connect((addr, port))
        s.send(b"ping")
        print(s.recv(2048).partition(b"\n")[0].decode(), flush=True)
    except OSError as e:
        print(err_line(e), flush=True)


def long_lived(addr, port, seconds, interval, namefile):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    try:
        s.connect((addr, port))
        name = readline(s).split()[0]
    except OSError as e:
        print("connect: " + err_line(e), flush=True)
        return 1
    tmp = namefile + ".tmp"
    with open(tmp, "w") as f:
        f.write(name + "\n")
    os.rename(tmp, namefile)
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        msg = "line %d from %s" % (n, name)
        try:
            s.sendall((msg + "\n").encode())
            got = readline(s)
        except OSError as e:
            print("exchange %d with %s: %s" % (n, name, err_line(e)), flush=True)
            return 1
        if got != msg:
            print("exchange %d with %s: sent %r, got %r" % (n, name, msg, got), flush=True)
            return 1
        n += 1
        time.sleep(interval)
    s.close()
    print("ok %d %s" % (n, name), flush=True)
    return 0


def json_eval(expr, assigns):
    text = sys.stdin.read()
    docs, pos, dec = [], 0, json.JSONDecoder()
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        doc, pos = dec.raw_decode(text, pos)
        docs.append(doc)
    env = {"d": docs[0] if len(docs) == 1 else (None if not docs else docs), "docs": docs, "json": json}
    for a in assigns:
        name, _, value = a.partition("=")
        env[name] = value
    r = eval(expr, env)
    print(r if isinstance(r, str) else json.dumps(r, sort_keys=True, separators=(",", ":")))


def main(argv):
    mode = argv[1] if len(argv) > 1 else ""
    if mode == "udp-server":
        udp_server(argv[2], int(argv[3]))
    elif mode == "tcp-server":
        tcp_server(argv[2], int(argv[3]))
    elif mode == "who":
        who(argv[2], argv[3], int(argv[4]), int(argv[5]), int(argv[6]) if len(argv) > 6 else 4)
    elif mode == "udp-same":
        udp_same(argv[2], int(argv[3]), int(argv[4]))
    elif mode == "reuse":
        reuse(argv[2], int(argv[3]), int(argv[4]), int(argv[5]))
    elif mode == "udp-connected":
        udp_connected(argv[2], int(argv[3]))
    elif mode == "json":
        json_eval(argv[2], argv[3:])
    elif mode == "long":
        return long_lived(argv[2], int(argv[3]), float(argv[4]), float(argv[5]), argv[6])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
