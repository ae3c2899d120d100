#!/usr/bin/env python3
"""Admin changes in a large realm: fills the demo realm of a running Cambio with N clients
(partial import, 2,000 per request), then times creating 100 more clients one by one through
the admin API and prints p50/p90/p99. Only loopback; every loop is bounded.

    CAMBIO_ADMIN_PASSWORD=admin target/release/cambio serve --listen 127.0.0.1:18181 \
        --data-dir /tmp/tenant --demo &
    python3 scripts/bench-tenant.py http://127.0.0.1:18181 admin 10000
"""
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid


def call(method, url, body=None, token=None, form=None):
    headers = {}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    if token:
        headers["authorization"] = "Bearer " + token
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def main():
    base, password, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    assert base.startswith("http://127.0.0.1:"), "loopback only"
    assert count <= 200_000

    def admin():
        status, body = call("POST", base + "/realms/master/protocol/openid-connect/token",
                            form={"grant_type": "password", "client_id": "admin-cli",
                                  "username": "admin", "password": password})
        assert status == 200, body
        return json.loads(body)["access_token"]

    run = uuid.uuid4().hex[:8]
    started = time.time()
    for first in range(0, count, 2000):
        clients = [{"clientId": f"bulk-{run}-{i}", "secret": "s"}
                   for i in range(first, min(count, first + 2000))]
        status, body = call("POST", base + "/admin/realms/demo/partialImport",
                            body={"ifResourceExists": "SKIP", "clients": clients}, token=admin())
        assert status == 200, body[:300]
    print(f"added {count} clients in {time.time() - started:.1f} s")
    token = admin()
    latencies = []
    for i in range(100):
        began = time.time()
        status, body = call("POST", base + "/admin/realms/demo/clients",
                            body={"clientId": f"timed-{run}-{i}", "secret": "s"}, token=token)
        latencies.append((time.time() - began) * 1000)
        assert status == 201, body
    latencies.sort()
    print(f"creating a client: p50 {latencies[50]:.1f} ms, p90 {latencies[90]:.1f} ms, "
          f"p99 {latencies[98]:.1f} ms, max {latencies[-1]:.1f} ms")


main()
