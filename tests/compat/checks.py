"""The check runner the compatibility scripts share: one line per check, `ok   NAME` or
`FAIL NAME`, details and reasons on indented lines after it (the Keycloak differential suite
reads the names back), and a summary line."""

import os
import sys
import traceback

passed = 0
failed = 0


def check(name, fn):
    """Runs one check and records its outcome; later checks run regardless."""
    global passed, failed
    try:
        detail = fn()
    except AssertionError as error:
        failed += 1
        print(f"FAIL {name}\n     {error}", flush=True)
        return
    except Exception as error:  # a client error or a missing prerequisite
        failed += 1
        print(f"FAIL {name}\n     {type(error).__name__}: {error}", flush=True)
        traceback.print_exc(file=sys.stdout)
        return
    passed += 1
    print(f"ok   {name}" + (f"\n     {detail}" if detail else ""), flush=True)


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def finish():
    """Prints the summary and exits 1 when any check failed."""
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(0 if failed == 0 else 1)


def arguments(usage):
    """The server's base URL (the one argument) and the administrator's password (from the
    environment); prints `usage` and exits 2 without an argument."""
    if len(sys.argv) != 2:
        print(usage, file=sys.stderr)
        sys.exit(2)
    return sys.argv[1].rstrip("/"), os.environ.get("CAMBIO_ADMIN_PASSWORD", "admin-password")
