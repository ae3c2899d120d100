#!/usr/bin/env python3
"""How long a configuration change made on one node takes to reach another: creates N clients
one by one on node A (admin API) and, after each, asks node B for a client_credentials token
of the new client until it answers 200 (B only knows the client once the change notice has
reached it and it has reloaded the client). Prints p50/p90/p99/max of the delay from A's 201
to B's first 200, and of the creation itself. Meant to run while `cambio-bench --nodes 2|3`
loads the same nodes (it finds their addresses with `--nodes-of PID...`, or takes two base
URLs). Only loopback; every loop is bounded.

    target/release/cambio-bench --alg ES256 --database "$URL" --nodes 3 --duration 60 &
    sleep 15; python3 scripts/bench-propagation.py --find 100 [--for SECONDS]
    python3 scripts/bench-propagation.py http://127.0.0.1:A http://127.0.0.1:B 100

`--for SECONDS` stops after that long even if fewer changes were made (to end inside the
bench's measured window); the report gives how many were made, and their rate.
"""
import json
import os
import re
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_http import call  # noqa: E402

# cambio-bench starts its servers with this administrator password.
PASSWORD = "cambio-bench-admin"
# A change that has not reached B after this long counts as lost.
GIVE_UP_SECONDS = 10.0




def bench_nodes():
    """The loopback addresses `cambio serve` processes listen on, in start order."""
    pids = subprocess.run(["pgrep", "-f", "cambio serve --listen 127.0.0.1:0"],
                          capture_output=True, text=True).stdout.split()
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    nodes = []
    for pid in sorted(pids, key=int):
        for line in listening.splitlines():
            if f"pid={pid}," in line:
                address = re.search(r"127\.0\.0\.1:(\d+)", line)
                if address:
                    nodes.append(f"http://127.0.0.1:{address.group(1)}")
    return nodes


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main():
    args = sys.argv[1:]
    budget = float("inf")
    if "--for" in args:
        at = args.index("--for")
        budget = float(args[at + 1])
        del args[at:at + 2]
    if args[0] == "--find":
        nodes = bench_nodes()
        assert len(nodes) >= 2, f"need two running bench nodes, found {nodes}"
        a, b, count = nodes[0], nodes[-1], int(args[1])
    else:
        a, b, count = args[0], args[1], int(args[2])
    assert a.startswith("http://127.0.0.1:") and b.startswith("http://127.0.0.1:"), "loopback"
    assert count <= 10_000
    print(f"changes on {a}, observed on {b}")

    def admin():
        status, body = call("POST", a + "/realms/master/protocol/openid-connect/token",
                            form={"grant_type": "password", "client_id": "admin-cli",
                                  "username": "admin", "password": PASSWORD})
        assert status == 200, body
        return json.loads(body)["access_token"]

    run = uuid.uuid4().hex[:8]
    creations, delays, lost = [], [], 0
    token = admin()
    started = time.monotonic()
    for i in range(count):
        if time.monotonic() - started > budget:
            break
        if i % 20 == 0:
            token = admin()
        client_id = f"prop-{run}-{i}"
        began = time.monotonic()
        status, body = call("POST", a + "/admin/realms/demo/clients", token=token,
                            body={"clientId": client_id, "secret": "prop-secret",
                                  "serviceAccountsEnabled": True,
                                  "publicClient": False})
        created = time.monotonic()
        assert status == 201, body[:300]
        creations.append(created - began)
        while True:
            status, _ = call("POST", b + "/realms/demo/protocol/openid-connect/token", timeout=30,
                             form={"grant_type": "client_credentials"},
                             basic=f"{client_id}:prop-secret")
            if status == 200:
                delays.append(time.monotonic() - created)
                break
            if time.monotonic() - created > GIVE_UP_SECONDS:
                lost += 1
                break
            time.sleep(0.002)
    elapsed = time.monotonic() - started
    print(f"{len(creations)} changes in {elapsed:.1f} s ({len(creations) / elapsed:.1f}/s)")
    for name, values in (("creation on A", creations), ("seen on B after", delays)):
        ms = [v * 1000 for v in values]
        print(f"{name:<16} n={len(ms)} p50 {percentile(ms, 0.5):.1f} ms  "
              f"p90 {percentile(ms, 0.9):.1f} ms  p99 {percentile(ms, 0.99):.1f} ms  "
              f"max {max(ms):.1f} ms")
    print(f"not seen on B within {GIVE_UP_SECONDS:.0f} s: {lost}")


if __name__ == "__main__":
    main()
