#!/usr/bin/env python3
"""Admin changes in a large realm: fills the demo realm of a running Cambio with N clients
(partial import, 2,000 per request), then times creating 100 more clients one by one through
the admin API and prints p50/p90/p99. With `--kind role`, it fills N clients and N realm roles
and times creating 100 realm roles instead; `--users M` also adds M users (2,000 per request). Only loopback; every loop is bounded.

    CAMBIO_ADMIN_PASSWORD=admin target/release/cambio serve --listen 127.0.0.1:18181 \
        --data-dir /tmp/tenant --demo &
    python3 scripts/bench-tenant.py http://127.0.0.1:18181 admin 10000
    python3 scripts/bench-tenant.py http://127.0.0.1:18181 admin 10000 --kind role
"""
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_http import call  # noqa: E402




def main():
    args = sys.argv[1:]
    kind = "client"
    if "--kind" in args:
        at = args.index("--kind")
        kind = args[at + 1]
        del args[at:at + 2]
    assert kind in ("client", "role"), "--kind client or --kind role"
    users = 0
    if "--users" in args:
        at = args.index("--users")
        users = int(args[at + 1])
        del args[at:at + 2]
    base, password, count = args[0], args[1], int(args[2])
    assert base.startswith("http://127.0.0.1:"), "loopback only"
    assert count <= 200_000 and users <= 1_000_000

    def admin():
        status, body = call("POST", base + "/realms/master/protocol/openid-connect/token",
                            form={"grant_type": "password", "client_id": "admin-cli",
                                  "username": "admin", "password": password})
        assert status == 200, body
        return json.loads(body)["access_token"]

    run = uuid.uuid4().hex[:8]
    started = time.time()
    for first in range(0, count, 2000):
        batch = range(first, min(count, first + 2000))
        document = {"ifResourceExists": "SKIP",
                    "clients": [{"clientId": f"bulk-{run}-{i}", "secret": "s"} for i in batch]}
        if kind == "role":
            document["roles"] = {"realm": [{"name": f"bulk-{run}-{i}"} for i in batch]}
        status, body = call("POST", base + "/admin/realms/demo/partialImport",
                            body=document, token=admin())
        assert status == 200, body[:300]
    for first in range(0, users, 2000):
        batch = range(first, min(users, first + 2000))
        document = {"ifResourceExists": "SKIP",
                    "users": [{"username": f"bulk-{run}-user-{i}", "enabled": True,
                               "email": f"bulk-{run}-user-{i}@example.com"} for i in batch]}
        status, body = call("POST", base + "/admin/realms/demo/partialImport",
                            body=document, token=admin())
        assert status == 200, body[:300]
    added = f"{count} clients and roles" if kind == "role" else f"{count} clients"
    if users:
        added += f" and {users} users"
    print(f"added {added} in {time.time() - started:.1f} s")
    token, token_at = admin(), time.time()
    latencies = []
    for i in range(100):
        # A new admin token only as the old one nears its end (master's tokens live 60 s): a
        # password login costs an Argon2id hash, which would load the server more than the
        # changes being measured.
        if time.time() - token_at > 30:
            token, token_at = admin(), time.time()
        began = time.time()
        if kind == "role":
            status, body = call("POST", base + "/admin/realms/demo/roles",
                                body={"name": f"timed-{run}-{i}"}, token=token)
        else:
            status, body = call("POST", base + "/admin/realms/demo/clients",
                                body={"clientId": f"timed-{run}-{i}", "secret": "s"}, token=token)
        latencies.append((time.time() - began) * 1000)
        assert status == 201, body
    latencies.sort()
    print(f"creating a {kind}: p50 {latencies[50]:.1f} ms, p90 {latencies[90]:.1f} ms, "
          f"p99 {latencies[98]:.1f} ms, max {latencies[-1]:.1f} ms")


main()
