"""Log in, get tokens for two backends, read the internal token's claims, log out.

Against a server started with `cambio serve --demo`, after installing the wheel
(scripts/test-python-sdk.sh builds one into target/wheels):

    python crates/cambio-python/examples/exchange.py http://127.0.0.1:8080/realms/demo

The session is kept in ./example-session.json (mode 0600): a second run resumes it with the
stored refresh token instead of logging in again.
"""

import asyncio
import sys

from cambio_sdk import AsyncClient, Client, ExchangeIamToken, LoginRequired


def main(issuer):
    client = Client(issuer, "sdk-app", client_secret="sdk-secret", token_file="example-session.json")

    # Resume the stored session, or log in when there is none (or it ended).
    try:
        client.restore()
        print("resumed the stored session")
    except LoginRequired:
        client.login_password("alice", "alice")
        print("logged in as alice")

    # A token per backend; the second request for orders-api comes from the cache.
    orders = client.exchange("orders-api")
    assert client.exchange("orders-api").token == orders.token
    billing = client.exchange(
        "billing-api", trace_parent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    )
    print(f"orders-api: {orders!r}")
    print(f"billing-api: {billing!r}")

    # The same through the event API, as an event-loop app would ask.
    event = client.send(ExchangeIamToken("orders-api"))
    print(f"event API, orders-api token expires at {event.expires_at:.0f}")

    claims = client.claims()
    print(f"signed in as {claims['preferred_username']} (roles: {claims.get('realm_access')})")

    # The asyncio flavour: the same calls, awaited.
    async def service_account():
        service = await AsyncClient.connect(issuer, "requester-client", client_secret="requester-secret")
        await service.login_client_credentials()
        print(f"requester-client's own claims: azp={(await service.claims())['azp']}")

    asyncio.run(service_account())

    if "--logout" in sys.argv:
        client.logout()
        print("logged out")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else "http://127.0.0.1:8080/realms/demo")
