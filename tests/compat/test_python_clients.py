"""Cambio against real Python clients: PyJWT and python-keycloak, on the demo realm.

Usage: test_python_clients.py BASE_URL
  BASE_URL: the server's base, e.g. http://127.0.0.1:8080 (realms live under BASE_URL/realms).
  CAMBIO_ADMIN_PASSWORD: the master realm administrator's password (default "admin-password").

Prints one line per check; exits 1 on the first failure, naming it.
"""

import sys
import traceback

import jwt
from checks import arguments
from keycloak import KeycloakOpenID

REALM = "demo"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
REFRESH_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"

passed = 0


def check(name, fn):
    """Runs one check; stops the script on its failure."""
    global passed
    try:
        detail = fn()
    except Exception as error:  # any failure, assertion or client error, ends the run
        print(f"FAIL {name}\n     {type(error).__name__}: {error}", flush=True)
        traceback.print_exc(file=sys.stdout)
        print(f"{passed} passed, 1 failed", flush=True)
        sys.exit(1)
    passed += 1
    print(f"ok   {name}" + (f"\n     {detail}" if detail else ""), flush=True)


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    base, admin_password = arguments(__doc__)
    issuer = f"{base}/realms/{REALM}"
    jwks_uri = f"{issuer}/protocol/openid-connect/certs"

    subject = KeycloakOpenID(
        server_url=base, realm_name=REALM, client_id="subject-client", client_secret_key="subject-secret"
    )
    requester = KeycloakOpenID(
        server_url=base, realm_name=REALM, client_id="requester-client", client_secret_key="requester-secret"
    )
    state = {}

    # --- python-keycloak: discovery, password grant, introspection -----------------------------
    def well_known():
        doc = subject.well_known()
        expect(doc["issuer"] == issuer, f"issuer {doc['issuer']!r} != {issuer!r}")
        expect(doc["jwks_uri"] == jwks_uri, f"jwks_uri {doc['jwks_uri']!r}")
        return doc["issuer"]

    check("python-keycloak well_known() issuer", well_known)

    def password_grant():
        # Sends empty code= and redirect_uri=, scope=openid.
        tokens = subject.token("alice", "alice")
        for field in ("access_token", "refresh_token", "id_token"):
            expect(field in tokens, f"no {field} in {sorted(tokens)}")
        state["alice"] = tokens["access_token"]
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        expect(claims["preferred_username"] == "alice", f"preferred_username {claims.get('preferred_username')!r}")
        expect("requester-client" in _aud(claims), f"aud {claims.get('aud')!r} lacks requester-client")

    check("python-keycloak token('alice', 'alice') via subject-client", password_grant)

    def introspect():
        info = subject.introspect(state["alice"])
        expect(info.get("active") is True, f"not active: {info}")
        expect(info.get("username") == "alice", f"username {info.get('username')!r}")
        expect(info.get("azp") == "subject-client", f"azp {info.get('azp')!r}")

    check("python-keycloak introspect(token) active", introspect)

    # --- python-keycloak: token exchange -------------------------------------------------------
    def exchange_defaults():
        # python-keycloak's defaults: requested_token_type refresh_token, scope openid,
        # no subject_token_type.
        out = requester.exchange_token(state["alice"], audience="orders-api")
        expect(out.get("issued_token_type") == REFRESH_TOKEN_TYPE, f"issued_token_type {out.get('issued_token_type')!r}")
        expect(out.get("access_token"), f"no access_token in {sorted(out)}")
        expect(out.get("refresh_token"), f"no refresh_token in {sorted(out)}")
        _check_exchanged(jwt.decode(out["access_token"], options={"verify_signature": False}))
        state["exchanged_kc"] = out["access_token"]

    check("python-keycloak exchange_token(token, audience='orders-api') [defaults]", exchange_defaults)

    def exchange_access_token():
        out = requester.exchange_token(
            state["alice"],
            audience="orders-api",
            subject_token_type=ACCESS_TOKEN_TYPE,
            requested_token_type=ACCESS_TOKEN_TYPE,
        )
        expect(out.get("issued_token_type") == ACCESS_TOKEN_TYPE, f"issued_token_type {out.get('issued_token_type')!r}")
        expect(out.get("access_token"), f"no access_token in {sorted(out)}")
        expect("refresh_token" not in out, f"unexpected refresh_token in {sorted(out)}")
        _check_exchanged(jwt.decode(out["access_token"], options={"verify_signature": False}))
        state["exchanged"] = out["access_token"]

    check("python-keycloak exchange_token(..., subject/requested_token_type=access_token)", exchange_access_token)

    def keycloak_decode():
        # python-keycloak 7 verifies with jwcrypto against the realm's JWKS (certs()).
        claims = requester.decode_token(
            state["exchanged"],
            validate=True,
            check_claims={"iss": issuer, "aud": "orders-api", "azp": "requester-client", "exp": None},
        )
        _check_exchanged(claims)
        claims = requester.decode_token(state["exchanged_kc"], validate=True, check_claims={"iss": issuer, "exp": None})
        _check_exchanged(claims)

    check("python-keycloak decode_token(exchanged, validate=True)", keycloak_decode)

    def keycloak_decode_rejects_tampering():
        head, payload, signature = state["exchanged"].split(".")
        forged = f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
        try:
            requester.decode_token(forged, validate=True)
        except Exception:
            return None
        raise AssertionError("a token with a corrupted signature was accepted")

    check("python-keycloak decode_token rejects a bad signature", keycloak_decode_rejects_tampering)

    # --- PyJWT ---------------------------------------------------------------------------------
    def pyjwt_verify():
        token = state["exchanged"]
        header = jwt.get_unverified_header(token)
        expect(header.get("typ") == "at+jwt", f"header typ {header.get('typ')!r}")
        expect(header.get("alg") == "ES256", f"header alg {header.get('alg')!r}")
        key = jwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key,
            algorithms=["ES256"],
            audience="orders-api",
            issuer=issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
        _check_exchanged(claims)
        return f"kid {key.key_id}"

    check("PyJWT PyJWKClient + jwt.decode(ES256, aud=orders-api, iss)", pyjwt_verify)

    def pyjwt_wrong_audience():
        key = jwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(state["exchanged"])
        try:
            jwt.decode(state["exchanged"], key, algorithms=["ES256"], audience="billing-api", issuer=issuer)
        except jwt.InvalidAudienceError:
            return None
        raise AssertionError("token for orders-api accepted for billing-api")

    check("PyJWT rejects the exchanged token for another audience", pyjwt_wrong_audience)

    # --- master realm: the admin token python-keycloak's KeycloakAdmin fetches -----------------
    def admin_token():
        admin = KeycloakOpenID(server_url=base, realm_name="master", client_id="admin-cli")
        tokens = admin.token("admin", admin_password)
        expect(tokens.get("access_token"), f"no access_token in {sorted(tokens)}")
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        expect(claims["iss"] == f"{base}/realms/master", f"iss {claims['iss']!r}")
        expect(claims.get("preferred_username") == "admin", f"preferred_username {claims.get('preferred_username')!r}")

    check("python-keycloak token('admin', ...) via master/admin-cli", admin_token)

    print(f"{passed} passed, 0 failed", flush=True)


def _aud(claims):
    aud = claims.get("aud", [])
    return [aud] if isinstance(aud, str) else list(aud)


def _check_exchanged(claims):
    """An exchange by requester-client for audience orders-api."""
    expect(claims.get("azp") == "requester-client", f"azp {claims.get('azp')!r}")
    expect(_aud(claims) == ["orders-api"], f"aud {claims.get('aud')!r}")
    resource_access = claims.get("resource_access", {})
    expect(list(resource_access) == ["orders-api"], f"resource_access {resource_access!r}")
    expect(claims.get("preferred_username") == "alice", f"preferred_username {claims.get('preferred_username')!r}")


if __name__ == "__main__":
    main()
