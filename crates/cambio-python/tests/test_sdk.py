"""The Python SDK (cambio_sdk, built from crates/cambio-python) against a real server."""

import asyncio
import base64
import json
import pathlib
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

import cambio_sdk
from cambio_sdk import (
    AsyncClient,
    CambioError,
    Client,
    ExchangeIamToken,
    GetIamAccessTokenClaims,
    InvalidRequest,
    LoginRequired,
    OAuthError,
)

EXCHANGE = "TOKEN_EXCHANGE"
REFRESH = "REFRESH_TOKEN"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
TRACE_PARENT = "00-{}-00f067aa0ba902b7-01"


def claims_of(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def alice(server, **options):
    client = Client(server.issuer, "sdk-app", client_secret="sdk-secret", **options)
    client.login_password("alice", "alice")
    return client


def test_a_second_call_is_answered_from_the_cache(server):
    client = alice(server)
    before = server.count(EXCHANGE)
    first = client.exchange("orders-api")
    second = client.exchange("orders-api")
    assert second.token == first.token
    assert server.count(EXCHANGE) == before + 1
    assert claims_of(first.token)["aud"] == "orders-api"
    assert claims_of(first.token)["preferred_username"] == "alice"
    assert first.token_type == "Bearer"
    assert first.issued_token_type == ACCESS_TOKEN_TYPE
    assert 0 < first.lifetime <= 3600
    assert first.expires_at > 0

    # Another audience or scope is another entry, never the orders-api token.
    billing = client.exchange("billing-api")
    assert claims_of(billing.token)["aud"] == "billing-api"
    assert server.count(EXCHANGE) == before + 2


def test_force_update_fetches_a_new_token_and_replaces_the_cached_one(server):
    client = alice(server)
    first = client.exchange("orders-api")
    before = server.count(EXCHANGE)
    forced = client.exchange("orders-api", force_update=True)
    assert forced.token != first.token
    assert server.count(EXCHANGE) == before + 1
    assert client.exchange("orders-api").token == forced.token
    assert server.count(EXCHANGE) == before + 1


def test_the_trace_context_reaches_the_audit_event(server):
    client = alice(server)
    trace_id = "5cf92f3577b34da6a3ce929d0e0e4736"
    client.exchange("orders-api", trace_parent=TRACE_PARENT.format(trace_id), trace_state="vendor=value")
    events = server.events(EXCHANGE, lambda events: any(e["details"].get("trace_id") == trace_id for e in events))
    assert any(e["details"].get("trace_id") == trace_id for e in events)


def test_a_malformed_trace_parent_is_refused(server):
    client = alice(server)
    before = server.count(EXCHANGE)
    with pytest.raises(InvalidRequest) as refused:
        client.exchange("orders-api", trace_parent="not-a-trace")
    assert "traceparent must be 00-" in str(refused.value)
    assert isinstance(refused.value, CambioError)
    assert server.count(EXCHANGE) == before


def test_logout_revokes_the_session_at_the_server(server, tmp_path):
    token_file = tmp_path / "session.json"
    client = alice(server, token_file=token_file)
    client.exchange("orders-api")
    saved = token_file.read_bytes()
    assert (token_file.stat().st_mode & 0o777) == 0o600

    client.logout()
    assert not client.is_logged_in()
    assert not token_file.exists()
    with pytest.raises(LoginRequired):
        client.exchange("orders-api")
    with pytest.raises(LoginRequired):
        client.claims()

    # The refresh token the file held is dead at the server, not just forgotten here.
    token_file.write_bytes(saved)
    later = Client(server.issuer, "sdk-app", client_secret="sdk-secret", token_file=token_file)
    with pytest.raises(LoginRequired) as refused:
        later.restore()
    assert refused.value.error == "invalid_grant"


def test_a_session_is_restored_from_the_token_file(server, tmp_path):
    token_file = tmp_path / "session.json"
    alice(server, token_file=token_file)
    later = Client(server.issuer, "sdk-app", client_secret="sdk-secret", token_file=token_file)
    assert not later.is_logged_in()
    later.restore()
    assert later.claims()["preferred_username"] == "alice"


def test_errors_keep_the_servers_error_and_description(server):
    client = Client(server.issuer, "sdk-app", client_secret="sdk-secret")
    with pytest.raises(OAuthError) as wrong:
        client.login_password("alice", "wrong")
    assert wrong.value.error == "invalid_grant"
    assert wrong.value.error_description == "Invalid user credentials"
    assert wrong.value.status == 400
    assert isinstance(wrong.value, CambioError)
    assert not isinstance(wrong.value, LoginRequired)

    # No session: login required, its own class, no server error behind it.
    with pytest.raises(LoginRequired) as none:
        client.exchange("orders-api")
    assert none.value.error is None

    client.login_password("alice", "alice")
    with pytest.raises(OAuthError) as refused:
        client.exchange("no-such-audience")
    assert (refused.value.error, refused.value.error_description) == ("invalid_client", "Audience not found")

    with pytest.raises(CambioError):
        Client(server.issuer, "sdk-app", client_secret="wrong").login_password("alice", "alice")
    with pytest.raises(CambioError):
        Client(server.base + "/realms/nope", "sdk-app")


def test_claims_are_those_of_a_fresh_internal_token(server):
    client = alice(server)
    before = server.count(REFRESH)
    claims = client.claims()
    assert claims["preferred_username"] == "alice"
    assert claims["iss"] == server.issuer
    assert claims["azp"] == "sdk-app"
    assert server.count(REFRESH) == before + 1


def test_client_credentials(server):
    client = Client(server.issuer, "requester-client", client_secret="requester-secret")
    client.login_client_credentials()
    assert client.claims()["azp"] == "requester-client"


def test_the_internal_token_is_not_readable(server):
    client = alice(server)
    token = client.exchange("orders-api")
    public = {name for name in dir(client) if not name.startswith("_")}
    assert public == {
        "browser_login",
        "claims",
        "client_id",
        "dpop_proof",
        "exchange",
        "is_logged_in",
        "issuer",
        "login_client_credentials",
        "login_password",
        "logout",
        "restore",
        "send",
    }
    assert "sdk-secret" not in repr(client)
    # The exchanged token is the app's, but its repr does not print it.
    assert token.token not in repr(token)
    assert "redacted" in repr(token)
    # Claims are claims, not tokens.
    assert not any(isinstance(v, str) and v.count(".") == 2 and len(v) > 100 for v in client.claims().values())


def test_the_event_api(server):
    client = alice(server)
    before = server.count(EXCHANGE)
    token = client.send(ExchangeIamToken("orders-api"))
    assert claims_of(token.token)["aud"] == "orders-api"
    assert client.send(ExchangeIamToken("orders-api")).token == token.token
    assert server.count(EXCHANGE) == before + 1
    forced = client.send(ExchangeIamToken("orders-api", force_update=True, trace_parent=TRACE_PARENT.format("6" * 32)))
    assert forced.token != token.token
    assert client.send(GetIamAccessTokenClaims())["preferred_username"] == "alice"
    with pytest.raises(TypeError):
        client.send("orders-api")
    client.logout()
    with pytest.raises(LoginRequired):
        client.send(ExchangeIamToken("orders-api"))


def test_async_calls(server):
    async def main():
        client = await AsyncClient.connect(server.issuer, "sdk-app", client_secret="sdk-secret")
        await client.login_password("alice", "alice")
        before = server.count(EXCHANGE)
        # Ten concurrent first callers share one request.
        tokens = await asyncio.gather(*(client.exchange("orders-api") for _ in range(10)))
        assert len({t.token for t in tokens}) == 1
        assert server.count(EXCHANGE) == before + 1
        forced = await client.exchange("orders-api", force_update=True)
        assert forced.token != tokens[0].token
        assert server.count(EXCHANGE) == before + 2
        claims = await client.claims()
        assert claims["preferred_username"] == "alice"
        event = await client.send(ExchangeIamToken("billing-api"))
        assert claims_of(event.token)["aud"] == "billing-api"
        await client.logout()
        assert not await client.is_logged_in()
        with pytest.raises(LoginRequired):
            await client.exchange("orders-api")

    asyncio.run(main())


def test_the_module_exports(server):
    for name in ("CambioError", "LoginRequired", "OAuthError", "InvalidRequest"):
        assert issubclass(getattr(cambio_sdk, name), Exception)
    assert issubclass(LoginRequired, CambioError)
    assert issubclass(OAuthError, CambioError)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _sign_in_like_a_browser(url):
    """What a browser does with the authorization URL: fetch the login page (its binding
    cookie and field), post alice's credentials, follow the redirect to the loopback listener."""
    opener = urllib.request.build_opener(_NoRedirects)
    with opener.open(url, timeout=10) as page:
        cookie = page.headers["set-cookie"].split(";")[0]
        html = page.read().decode()
    binding = re.search(r'name="browser_binding" value="([^"]+)"', html).group(1)
    form = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    form.update(username="alice", password="alice", browser_binding=binding)
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), headers={"Cookie": cookie})
    try:
        opener.open(request, timeout=10)
        raise AssertionError("the login did not redirect")
    except urllib.error.HTTPError as redirect:
        assert redirect.code == 302, redirect.code
        location = redirect.headers["location"]
    with urllib.request.urlopen(location, timeout=10) as landed:
        assert landed.status == 200


def test_browser_login(server):
    client = Client(server.issuer, "sdk-app", client_secret="sdk-secret")
    login = client.browser_login()
    assert login.authorization_url.startswith(server.issuer)
    assert login.redirect_uri.startswith("http://127.0.0.1:")
    browser = threading.Thread(target=_sign_in_like_a_browser, args=(login.authorization_url,))
    browser.start()
    login.finish(timeout=30)
    browser.join()
    assert client.claims()["preferred_username"] == "alice"
    with pytest.raises(CambioError):
        login.finish()


def test_the_example_runs(server, tmp_path):
    example = pathlib.Path(__file__).resolve().parents[1] / "examples" / "exchange.py"
    run = subprocess.run(
        [sys.executable, str(example), server.issuer, "--logout"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "logged in as alice"
    assert "signed in as alice" in run.stdout
    assert lines[-1] == "logged out"
    assert not (tmp_path / "example-session.json").exists()


def test_a_dpop_client_binds_its_tokens_and_makes_proofs(server):
    client = alice(server, dpop=True)
    token = client.exchange("orders-api", scope="openid")
    assert token.token_type == "DPoP"
    assert "jkt" in claims_of(token.token)["cnf"]
    userinfo = f"{server.issuer}/protocol/openid-connect/userinfo"
    request = urllib.request.Request(userinfo)
    request.add_header("Authorization", f"DPoP {token.token}")
    request.add_header("DPoP", client.dpop_proof("GET", userinfo, token.token))
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["preferred_username"] == "alice"
    # As a bearer token it is worthless.
    request = urllib.request.Request(userinfo)
    request.add_header("Authorization", f"Bearer {token.token}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    # A client without a key makes no proofs.
    assert alice(server).dpop_proof("GET", userinfo, token.token) is None
