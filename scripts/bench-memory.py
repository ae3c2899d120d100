#!/usr/bin/env python3
"""Memory per stored object: starts a release `cambio serve` on a fresh data directory (demo
realm), then adds clients, realm roles and users in batches through the admin API's partial
import. After each step it restarts the server on the same data directory and reads its
resident memory (VmRSS, RssAnon) a few seconds after start: what the stored objects cost a
running server, without what the import itself left in the allocator. Prints the growth per
object. Only loopback; every loop is bounded.

    cargo build --release -p cambio
    python3 scripts/bench-memory.py target/release/cambio 10000 10000 100000
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_http import call  # noqa: E402

PASSWORD = "bench-memory-admin"
# A restarted server has loaded every realm and handed start-up memory back by then.
SETTLE_SECONDS = 3




def memory_kib(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile"):
                fields[name] = int(value.split()[0])
    return fields


def main():
    binary, clients, roles, users = sys.argv[1], *map(int, sys.argv[2:5])
    assert max(clients, roles, users) <= 200_000
    data_dir = tempfile.mkdtemp(prefix="cambio-memory-")
    # The server's output goes to a file: a pipe nobody drains would block it once full.
    output_path = os.path.join(data_dir, "server.out")
    output = open(output_path, "w")
    running = {}

    def start():
        output.truncate(0)
        output.seek(0)
        running["server"] = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir, "--demo"],
            stdout=output, stderr=subprocess.STDOUT,
            env={**os.environ, "CAMBIO_LOG": "warn", "CAMBIO_ADMIN_PASSWORD": PASSWORD})
        first = ""
        for _ in range(300):
            with open(output_path) as lines:
                first = lines.readline()
            if first.endswith("\n"):
                break
            time.sleep(0.1)
        assert first.startswith("listening on http://127.0.0.1:"), first
        return first.split()[-1]

    def stop():
        server = running.pop("server")
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    try:
        base = start()

        def admin():
            status, body = call("POST", base + "/realms/master/protocol/openid-connect/token",
                                form={"grant_type": "password", "client_id": "admin-cli",
                                      "username": "admin", "password": PASSWORD})
            assert status == 200, body
            return json.loads(body)["access_token"]

        def settled():
            nonlocal base
            stop()
            base = start()
            time.sleep(SETTLE_SECONDS)
            return memory_kib(running["server"].pid)

        def add(kind, count, make):
            for start in range(0, count, 2000):
                batch = range(start, min(count, start + 2000))
                status, body = call("POST", base + "/admin/realms/demo/partialImport",
                                    body={"ifResourceExists": "FAIL", **make(batch)},
                                    token=admin())
                assert status == 200, (kind, start, body[:300])

        rows = [("idle, demo realm", None, settled())]
        steps = [
            ("clients", clients,
             lambda b: {"clients": [{"clientId": f"mem-client-{i}", "secret": "s",
                                     "redirectUris": [f"https://app-{i}.example/cb"]}
                                    for i in b]}),
            ("realm roles", roles,
             lambda b: {"roles": {"realm": [{"name": f"mem-role-{i}",
                                             "description": "a role"} for i in b]}}),
            ("users", users,
             lambda b: {"users": [{"username": f"mem-user-{i}", "enabled": True,
                                   "email": f"mem-user-{i}@example.com",
                                   "realmRoles": [f"mem-role-{i % max(roles, 1)}"]
                                   if roles else []} for i in b]}),
        ]
        for kind, count, make in steps:
            if count:
                add(kind, count, make)
                rows.append((kind, count, settled()))
        previous = None
        print(f"{'after':<20} {'VmRSS MiB':>10} {'anon MiB':>9} {'growth':>9} {'per object':>11}")
        for kind, count, fields in rows:
            rss, anon = fields["VmRSS"], fields["RssAnon"]
            growth = per = ""
            if previous is not None and count:
                delta = rss - previous
                growth = f"{delta / 1024:+.1f}"
                per = f"{delta * 1024 / count:.0f} B"
            print(f"{kind:<20} {rss / 1024:>10.1f} {anon / 1024:>9.1f} {growth:>9} {per:>11}")
            previous = rss
    finally:
        if "server" in running:
            stop()
        output.close()
        subprocess.run(["rm", "-rf", data_dir], check=False)


if __name__ == "__main__":
    main()
