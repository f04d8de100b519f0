#!/usr/bin/env python3
"""Reads `bpftool map dump` of rota_svc4 (with BTF: JSON with field names) on
stdin and prints the entries of one frontend, one line each, slot order.
Usage: svc4_entries.py VIP PORT"""
import json
import socket
import struct
import sys


def main():
    vip, port = sys.argv[1], int(sys.argv[2])
    addr = struct.unpack("<I", socket.inet_aton(vip))[0]   # network order read as host
    nport = struct.unpack("<H", struct.pack(">H", port))[0]
    try:
        entries = json.loads(sys.stdin.read())
    except ValueError as e:
        print(f"(could not parse bpftool output: {e})")
        return
    rows = []
    for e in entries:
        e = e.get("formatted", e)
        k, v = e.get("key"), e.get("value")
        if not isinstance(k, dict) or k.get("addr") != addr or k.get("port") != nport:
            continue
        rows.append((k.get("slot", 0), k, v))
    for slot, k, v in sorted(rows, key=lambda r: r[0]):
        ks = json.dumps(k, separators=(", ", ": "))
        vs = json.dumps(v, separators=(", ", ": "))
        print(f'"key": {ks}, "value": {vs}')
    if rows:
        print(f"(addr {addr} = {vip}, port {nport} = {port}, in network byte order)")


main()
