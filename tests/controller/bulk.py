#!/usr/bin/env python3
"""Sends many API requests over one keep-alive TLS connection (a process
per request costs more than the request here). Usage:
  bulk.py URL TOKEN < requests
with one request per line: METHOD PATH [CONTENT-TYPE BODY-JSON].
Exits 1 at the first HTTP status >= 400, naming it."""
import http.client
import ssl
import sys
import urllib.parse

url = urllib.parse.urlparse(sys.argv[1])
token = sys.argv[2]
ctx = ssl._create_unverified_context()
conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx, timeout=60)
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    parts = line.split(" ", 3)
    method, path = parts[0], parts[1]
    headers = {"Authorization": "Bearer " + token, "Accept": "application/json"}
    body = None
    if len(parts) == 4:
        headers["Content-Type"] = parts[2]
        body = parts[3].encode()
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status >= 400:
        print("%s %s: HTTP %d: %s" % (method, path, resp.status, data[:300].decode(errors="replace")), file=sys.stderr)
        sys.exit(1)
