#!/usr/bin/env python3
"""free_ports.py N: prints N distinct loopback TCP ports, free right now,
picked at random below the ephemeral range, so that a port of a test's
server that is briefly unbound (a restart) is never handed out meanwhile as
some connection's local port or as another test's "free port 0"."""
import random
import socket
import sys

lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
top = min(lo, 32768)
ports, held = [], []
while len(ports) < int(sys.argv[1]):
    p = random.randrange(10000, top)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        s.close()
        continue
    if p not in ports:
        ports.append(p)
        held.append(s)
print(" ".join(map(str, ports)))
