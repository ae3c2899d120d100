"""A real `cambio serve --demo` for the SDK's tests, and the server-side views they check.

The binary is $CAMBIO_BIN, else target/debug/cambio of this repository (scripts/test.sh
builds it before running pytest).
"""

import json
import os
import pathlib
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
ADMIN_PASSWORD = "admin-password"


class Server:
    def __init__(self, base):
        self.base = base
        self.issuer = f"{base}/realms/demo"

    def _get(self, path, token=None):
        request = urllib.request.Request(self.base + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read().decode()

    def count(self, grant, outcome="success"):
        """cambio_token_requests_total of the demo realm for one grant and outcome."""
        prefix = f'cambio_token_requests_total{{realm="demo",grant="{grant}",outcome="{outcome}"}} '
        for line in self._get("/metrics").splitlines():
            if line.startswith(prefix):
                return int(line[len(prefix):])
        return 0

    def admin_token(self):
        form = urllib.parse.urlencode(
            {"grant_type": "password", "client_id": "admin-cli", "username": "admin", "password": ADMIN_PASSWORD}
        ).encode()
        url = f"{self.base}/realms/master/protocol/openid-connect/token"
        with urllib.request.urlopen(url, data=form, timeout=10) as response:
            return json.load(response)["access_token"]

    def events(self, event_type, until):
        """The demo realm's audit events of one type, polled (the audit queue writes in
        batches) until `until(events)` holds; at most 5 s."""
        token = self.admin_token()
        for _ in range(50):
            events = json.loads(self._get(f"/admin/realms/demo/events?type={event_type}", token))
            if until(events):
                return events
            time.sleep(0.1)
        raise AssertionError(f"no matching {event_type} event")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    binary = os.environ.get("CAMBIO_BIN", str(ROOT / "target" / "debug" / "cambio"))
    data_dir = tmp_path_factory.mktemp("cambio-data")
    env = dict(os.environ, CAMBIO_ADMIN_PASSWORD=ADMIN_PASSWORD, CAMBIO_LOG="error")
    env.pop("CAMBIO_DATABASE", None)
    process = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--demo", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        base = None
        for line in process.stdout:
            if line.startswith("listening on "):
                base = line[len("listening on "):].strip()
                break
        if base is None:
            raise RuntimeError("cambio serve exited before listening")
        # Keep reading, so that the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
        yield Server(base)
    finally:
        process.kill()
        process.wait()
