"""Cambio's DPoP (RFC 9449) against proofs made by an independent library: PyJWT over
`cryptography` keys, with the RFC 7638 thumbprint computed here, not by Cambio.

Usage: test_dpop.py BASE_URL
  BASE_URL: the server's base, e.g. http://127.0.0.1:8080 (realms live under BASE_URL/realms).
  CAMBIO_ADMIN_PASSWORD: the master realm administrator's password (default "admin-password").

Prints one line per check (details and reasons on indented lines after it); exits 1 when any
check failed.
"""

import base64
import hashlib
import json
import os
import re
import sys
import time
import urllib.parse
import uuid

import jwt
from checks import arguments, check, expect, finish
import requests
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

REALM = "demo"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
PUBLIC_CLIENT = "dpop-public-app"
STRICT_CLIENT = "dpop-required-app"
CODE_CLIENT = "dpop-code-app"
CODE_CALLBACK = "https://app.example/dpop/cb"

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Key:
    """A DPoP key pair: the private key signs proofs, the public JWK goes in their header."""

    def __init__(self, kind="ec"):
        if kind == "ec":
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.alg = "ES256"
            self.jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
            required = {k: self.jwk[k] for k in ("crv", "kty", "x", "y")}
        else:
            self.private = ed25519.Ed25519PrivateKey.generate()
            self.alg = "EdDSA"
            self.jwk = jwt.algorithms.OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
            required = {k: self.jwk[k] for k in ("crv", "kty", "x")}
        # RFC 7638 §3: the required members, sorted, no whitespace, SHA-256, base64url.
        canonical = json.dumps(required, sort_keys=True, separators=(",", ":"))
        self.thumbprint = b64url(hashlib.sha256(canonical.encode()).digest())

    def proof(self, method, url, access_token=None, **overrides):
        claims = {"jti": str(uuid.uuid4()), "htm": method, "htu": url, "iat": int(time.time())}
        if access_token is not None:
            claims["ath"] = b64url(hashlib.sha256(access_token.encode()).digest())
        header = {"typ": "dpop+jwt", "jwk": self.jwk}
        header.update(overrides.pop("header", {}))
        claims.update(overrides)
        return jwt.encode(claims, self.private, algorithm=self.alg, headers=header)


def payload(token):
    return jwt.decode(token, options={"verify_signature": False})


def main():
    base, admin_password = arguments(__doc__)
    oidc = f"{base}/realms/{REALM}/protocol/openid-connect"
    token_url, userinfo_url = f"{oidc}/token", f"{oidc}/userinfo"
    http = requests.Session()
    key, other = Key(), Key("okp")
    s = {}

    def token(form, proof=None, auth=None):
        headers = {"DPoP": proof} if proof else {}
        return http.post(token_url, data=form, headers=headers, auth=auth)

    def alice(client=("subject-client", "subject-secret"), proof=None):
        form = {"grant_type": "password", "username": "alice", "password": "alice",
                "scope": "openid", "client_id": client[0]}
        if client[1]:
            form["client_secret"] = client[1]
        return token(form, proof)

    def expect_error(reply, status, error, description=None):
        body = reply.json()
        expect(reply.status_code == status and body.get("error") == error
               and (description is None or body.get("error_description") == description),
               f"expected {status} {error} {description!r}, got {reply.status_code} {body}")

    # --- setup through the admin API: a public client, and one that requires DPoP -----------
    def setup():
        admin = http.post(f"{base}/realms/master/protocol/openid-connect/token", data={
            "grant_type": "password", "client_id": "admin-cli", "username": "admin",
            "password": admin_password}).json()["access_token"]
        s["admin"] = admin
        for client_id, attributes in [
            (PUBLIC_CLIENT, {"standard.token.exchange.enabled": "true"}),
            (STRICT_CLIENT, {"dpop.bound.access.tokens": "true"}),
            (CODE_CLIENT, {}),
        ]:
            r = http.post(f"{base}/admin/realms/{REALM}/clients", headers={"Authorization": f"Bearer {admin}"},
                          json={"clientId": client_id, "publicClient": True, "directAccessGrantsEnabled": True,
                                "redirectUris": [CODE_CALLBACK], "attributes": attributes})
            expect(r.status_code == 201, f"{client_id}: {r.status_code} {r.text}")

    check("admin API: a public client and a client requiring DPoP", setup)

    def discovery():
        d = http.get(f"{base}/realms/{REALM}/.well-known/openid-configuration").json()
        algs = d.get("dpop_signing_alg_values_supported")
        expect(set(algs or []) >= {"ES256", "EdDSA"}, f"dpop_signing_alg_values_supported {algs}")

    check("discovery lists dpop_signing_alg_values_supported", discovery)

    # --- the token endpoint binds what it issues to the proof's key ---------------------------
    def bound_login():
        r = alice(proof=key.proof("POST", token_url))
        expect(r.status_code == 200, f"{r.status_code} {r.text}")
        body = r.json()
        expect(body["token_type"] == "DPoP", f"token_type {body['token_type']}")
        cnf = payload(body["access_token"]).get("cnf")
        expect(cnf == {"jkt": key.thumbprint}, f"cnf {cnf} != {key.thumbprint}")
        s["bound"] = body["access_token"]
        s["bound_refresh"] = body["refresh_token"]

    check("password grant with a proof: token_type DPoP, cnf.jkt is the key's thumbprint", bound_login)

    def bearer_login():
        body = alice().json()
        expect(body["token_type"] == "Bearer" and "cnf" not in payload(body["access_token"]), f"{body}")
        s["bearer"] = body["access_token"]

    check("password grant without a proof stays a bearer token", bearer_login)

    def bad_proofs():
        cases = [
            ("another method", key.proof("GET", token_url)),
            ("another URL", key.proof("POST", f"{oidc}/userinfo")),
            ("too old", key.proof("POST", token_url, iat=int(time.time()) - 600)),
            ("from the future", key.proof("POST", token_url, iat=int(time.time()) + 600)),
            ("typ JWT", key.proof("POST", token_url, header={"typ": "JWT"})),
            ("a kid instead of the key", key.proof("POST", token_url, header={"kid": "k1"})),
            ("another key in the header", key.proof("POST", token_url, header={"jwk": other.jwk})),
            ("no jti", key.proof("POST", token_url, jti="")),
        ]
        private_jwk = dict(key.jwk)
        private_jwk["d"] = b64url(key.private.private_numbers().private_value.to_bytes(32, "big"))
        cases.append(("a private key in the header", key.proof("POST", token_url, header={"jwk": private_jwk})))
        for name, proof in cases:
            r = alice(proof=proof)
            expect(r.status_code == 400 and r.json().get("error") == "invalid_dpop_proof",
                   f"{name}: {r.status_code} {r.text}")
        return f"{len(cases)} refused"

    check("token endpoint refuses proofs that do not fit (400 invalid_dpop_proof)", bad_proofs)

    def replay():
        proof = key.proof("POST", token_url)
        expect(alice(proof=proof).status_code == 200, "first use")
        expect_error(alice(proof=proof), 400, "invalid_dpop_proof", "DPoP proof has been used before")

    check("a proof is used once", replay)

    def two_headers():
        # requests folds repeated headers, so this one request is written with http.client.
        import http.client
        import urllib.parse
        target = urllib.parse.urlsplit(token_url)
        body = urllib.parse.urlencode({"grant_type": "password", "username": "alice", "password": "alice",
                                       "client_id": "subject-client", "client_secret": "subject-secret"})
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        conn.putrequest("POST", target.path)
        conn.putheader("Content-Type", "application/x-www-form-urlencoded")
        conn.putheader("Content-Length", str(len(body)))
        conn.putheader("DPoP", key.proof("POST", token_url))
        conn.putheader("DPoP", key.proof("POST", token_url))
        conn.endheaders(body.encode())
        r = conn.getresponse()
        reply = json.loads(r.read())
        conn.close()
        expect(r.status == 400 and reply == {"error": "invalid_dpop_proof",
                                             "error_description": "Only one DPoP header is allowed"},
               f"{r.status} {reply}")

    check("two DPoP headers are refused", two_headers)

    def required():
        expect_error(alice((STRICT_CLIENT, None)), 400, "invalid_dpop_proof", "DPoP proof is required for this client")
        r = alice((STRICT_CLIENT, None), proof=key.proof("POST", token_url))
        expect(r.status_code == 200 and r.json()["token_type"] == "DPoP", f"{r.status_code} {r.text}")
        # Its refreshes too: without a proof the refresh token buys nothing.
        refreshed = http.post(token_url, data={"grant_type": "refresh_token", "client_id": STRICT_CLIENT,
                                               "refresh_token": r.json()["refresh_token"]})
        expect_error(refreshed, 400, "invalid_dpop_proof", "DPoP proof is required for this client")

    check("dpop.bound.access.tokens: a client that requires proofs, refreshes included", required)

    # --- presenting a bound token -------------------------------------------------------------
    def userinfo():
        t = s["bound"]
        r = http.get(userinfo_url, headers={"Authorization": f"DPoP {t}", "DPoP": key.proof("GET", userinfo_url, t)})
        expect(r.status_code == 200 and r.json().get("preferred_username") == "alice", f"{r.status_code} {r.text}")
        r = http.get(userinfo_url, headers={"Authorization": f"Bearer {t}"})
        expect(r.status_code == 401 and r.headers.get("WWW-Authenticate", "").startswith("DPoP "),
               f"as bearer: {r.status_code} {r.headers} {r.text}")
        r = http.get(userinfo_url, headers={"Authorization": f"DPoP {t}", "DPoP": other.proof("GET", userinfo_url, t)})
        expect(r.status_code == 401 and r.json().get("error") == "invalid_dpop_proof", f"other key: {r.status_code} {r.text}")
        r = http.get(userinfo_url, headers={"Authorization": f"DPoP {t}", "DPoP": key.proof("GET", userinfo_url, "another-token")})
        expect(r.status_code == 401 and r.json().get("error") == "invalid_dpop_proof", f"wrong ath: {r.status_code} {r.text}")
        r = http.get(userinfo_url, headers={"Authorization": f"DPoP {s['bearer']}", "DPoP": key.proof("GET", userinfo_url, s["bearer"])})
        expect(r.status_code == 401 and r.json().get("error") == "invalid_token", f"unbound as DPoP: {r.status_code} {r.text}")

    check("userinfo: a bound token only with the DPoP scheme and a proof by its key naming it", userinfo)

    def admin_api():
        r = http.get(f"{base}/admin/realms/{REALM}/clients", headers={"Authorization": f"Bearer {s['bound']}"})
        expect(r.status_code == 401, f"{r.status_code} {r.text}")

    check("the admin API refuses a bound token presented as a bearer token", admin_api)

    def introspection():
        r = http.post(f"{oidc}/token/introspect", data={"token": s["bound"]}, auth=("orders-api", "orders-secret"))
        body = r.json()
        expect(body.get("active") is True and body.get("cnf") == {"jkt": key.thumbprint}
               and body.get("token_type") == "DPoP", f"{body}")

    check("introspection reports cnf and token_type DPoP", introspection)

    # --- exchange -----------------------------------------------------------------------------
    def exchange_form(subject, audience="orders-api"):
        return {"grant_type": EXCHANGE, "subject_token": subject, "subject_token_type": ACCESS_TOKEN_TYPE,
                "audience": audience}

    requester = ("requester-client", "requester-secret")

    def exchange_bound():
        subject = s["bound"]
        expect_error(token(exchange_form(subject), auth=requester), 400, "invalid_dpop_proof",
                     "The token is DPoP-bound: a DPoP proof by its key is required")
        expect_error(token(exchange_form(subject), key.proof("POST", token_url), auth=requester), 400,
                     "invalid_dpop_proof", "The DPoP proof must name the bound token in ath")
        expect_error(token(exchange_form(subject), other.proof("POST", token_url, subject), auth=requester), 400,
                     "invalid_dpop_proof", "The DPoP proof is not by the key the token is bound to")
        r = token(exchange_form(subject), key.proof("POST", token_url, subject), auth=requester)
        expect(r.status_code == 200, f"{r.status_code} {r.text}")
        body = r.json()
        claims = payload(body["access_token"])
        expect(body["token_type"] == "DPoP" and claims.get("cnf") == {"jkt": key.thumbprint}, f"{body} {claims}")
        expect(claims["aud"] in ("orders-api", ["orders-api"]), f"aud {claims['aud']}")

    check("exchange of a bound subject token: only by its key, naming it, and the result stays bound", exchange_bound)

    def exchange_binds_requester():
        r = token(exchange_form(s["bearer"]), other.proof("POST", token_url), auth=requester)
        expect(r.status_code == 200, f"{r.status_code} {r.text}")
        claims = payload(r.json()["access_token"])
        expect(claims.get("cnf") == {"jkt": other.thumbprint}, f"cnf {claims.get('cnf')}")

    check("exchange of a bearer subject token with the requester's proof binds to the requester's key",
          exchange_binds_requester)

    def exchanged_refresh_bound():
        subject = alice(proof=key.proof("POST", token_url)).json()["access_token"]
        form = exchange_form(subject)
        form["requested_token_type"] = "urn:ietf:params:oauth:token-type:refresh_token"
        r = token(form, key.proof("POST", token_url, subject), auth=requester)
        expect(r.status_code == 200 and r.json().get("refresh_token"), f"{r.status_code} {r.text}")
        refresh = {"grant_type": "refresh_token", "refresh_token": r.json()["refresh_token"]}
        expect_error(token(refresh, auth=requester), 400, "invalid_dpop_proof",
                     "The token is DPoP-bound: a DPoP proof by its key is required")
        expect_error(token(refresh, other.proof("POST", token_url), auth=requester), 400, "invalid_dpop_proof",
                     "The DPoP proof is not by the key the token is bound to")
        r = token(refresh, key.proof("POST", token_url), auth=requester)
        expect(r.status_code == 200 and r.json()["token_type"] == "DPoP"
               and payload(r.json()["access_token"]).get("cnf") == {"jkt": key.thumbprint}, f"{r.status_code} {r.text}")

    check("a refresh token exchanged from a bound token is bound too, for a confidential requester as well",
          exchanged_refresh_bound)

    # --- public clients' refresh tokens are bound ---------------------------------------------
    def public_refresh():
        r = alice((PUBLIC_CLIENT, None), proof=key.proof("POST", token_url))
        expect(r.status_code == 200, f"login {r.status_code} {r.text}")
        refresh = r.json()["refresh_token"]
        form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": PUBLIC_CLIENT}
        expect_error(token(form), 400, "invalid_dpop_proof", "The token is DPoP-bound: a DPoP proof by its key is required")
        expect_error(token(form, other.proof("POST", token_url)), 400, "invalid_dpop_proof",
                     "The DPoP proof is not by the key the token is bound to")
        r = token(form, key.proof("POST", token_url))
        expect(r.status_code == 200 and r.json()["token_type"] == "DPoP", f"{r.status_code} {r.text}")
        next_refresh = r.json()["refresh_token"]
        form["refresh_token"] = next_refresh
        expect_error(token(form), 400, "invalid_dpop_proof", "The token is DPoP-bound: a DPoP proof by its key is required")

    check("a public client's refresh token is bound: refreshes need a proof by the same key", public_refresh)

    def revocation():
        r = http.post(f"{oidc}/revoke", data={"token": s["bound"]}, auth=("subject-client", "subject-secret"))
        expect(r.status_code == 200, f"{r.status_code} {r.text}")
        r = http.post(f"{oidc}/token/introspect", data={"token": s["bound"]}, auth=("orders-api", "orders-secret"))
        expect(r.json().get("active") is False, f"{r.text}")

    check("revocation of a bound token holds", revocation)

    # --- authorization codes bound to a key (dpop_jkt, RFC 9449 §10) --------------------------
    auth_url = f"{oidc}/auth"

    def authorize(dpop_jkt):
        """A browser sign-in of alice at CODE_CLIENT naming dpop_jkt: the redirect's query
        parameters, and the PKCE verifier of the request."""
        verifier = b64url(os.urandom(32))
        params = {"response_type": "code", "client_id": CODE_CLIENT, "redirect_uri": CODE_CALLBACK,
                  "scope": "openid", "state": "st", "dpop_jkt": dpop_jkt,
                  "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()),
                  "code_challenge_method": "S256"}
        browser = requests.Session()
        r = browser.get(auth_url, params=params, allow_redirects=False)
        if r.status_code == 200:
            field = re.search(r'name="browser_binding" value="([^"]*)"', r.text)
            form = dict(params, username="alice", password="alice")
            if field:
                form["browser_binding"] = field.group(1)
            r = browser.post(auth_url, data=form, allow_redirects=False)
        expect(r.status_code == 302, f"authorization: {r.status_code} {r.text[:300]}")
        location = urllib.parse.urlsplit(r.headers["Location"])
        expect(location.geturl().startswith(CODE_CALLBACK), f"redirected to {location.geturl()}")
        return dict(urllib.parse.parse_qsl(location.query)), verifier

    def redeem(code, verifier, proof=None):
        return token({"grant_type": "authorization_code", "code": code, "client_id": CODE_CLIENT,
                      "redirect_uri": CODE_CALLBACK, "code_verifier": verifier}, proof)

    def code_binding():
        for malformed in ["not-a-thumbprint", key.thumbprint + "=", key.thumbprint[:-1], key.jwk["x"] + "AA"]:
            params, _ = authorize(malformed)
            expect(params.get("error") == "invalid_request" and "code" not in params
                   and params.get("error_description")
                   == "Invalid dpop_jkt: the base64url SHA-256 thumbprint of a JWK is required",
                   f"{malformed!r}: {params}")
        params, verifier = authorize(key.thumbprint)
        expect_error(redeem(params["code"], verifier), 400, "invalid_grant",
                     "The code is bound to a DPoP key (dpop_jkt): a DPoP proof by that key is required")
        params, verifier = authorize(key.thumbprint)
        expect_error(redeem(params["code"], verifier, other.proof("POST", token_url)), 400, "invalid_grant",
                     "The DPoP proof is not by the key the code is bound to (dpop_jkt)")
        params, verifier = authorize(key.thumbprint)
        r = redeem(params["code"], verifier, key.proof("POST", token_url))
        expect(r.status_code == 200 and r.json()["token_type"] == "DPoP", f"{r.status_code} {r.text}")
        cnf = payload(r.json()["access_token"]).get("cnf")
        expect(cnf == {"jkt": key.thumbprint}, f"cnf {cnf}")

    check("dpop_jkt binds the code: a malformed one is refused at the authorization endpoint, the token "
          "request needs a proof by that key (invalid_grant otherwise)", code_binding)

    # --- unbinding in an exchange: only when the realm and every audience ask for it ----------
    def unbinding():
        auth = {"Authorization": f"Bearer {s['admin']}"}
        realm_url = f"{base}/admin/realms/{REALM}"

        def realm_allows(value):
            rep = http.get(realm_url, headers=auth).json()
            rep.setdefault("attributes", {})["cambio.dpopExchangeUnbind"] = value
            r = http.put(realm_url, headers=auth, json=rep)
            expect(r.status_code == 204, f"realm update {r.status_code} {r.text}")

        def bearer_only(client_id, value):
            rep = http.get(f"{realm_url}/clients", params={"clientId": client_id}, headers=auth).json()[0]
            rep.setdefault("attributes", {})["cambio.dpopBearerOnly"] = value
            r = http.put(f"{realm_url}/clients/{rep['id']}", headers=auth, json=rep)
            expect(r.status_code == 204, f"client update {r.status_code} {r.text}")
            r = http.get(f"{realm_url}/clients/{rep['id']}", headers=auth)
            expect(r.json()["attributes"].get("cambio.dpopBearerOnly") == value, f"{r.text}")

        subject = alice(proof=key.proof("POST", token_url)).json()["access_token"]

        def exchanged(audience="orders-api", **extra):
            form = exchange_form(subject, audience)
            form.update(extra)
            r = token(form, key.proof("POST", token_url, subject), auth=requester)
            expect(r.status_code == 200, f"{audience} {extra}: {r.status_code} {r.text}")
            body = r.json()
            claims = payload(body["access_token"])
            return body["token_type"], claims.get("cnf")

        still_bound = ("DPoP", {"jkt": key.thumbprint})
        expect(exchanged() == still_bound, "by default the exchanged token stays bound")
        realm_allows("true")
        expect(exchanged() == still_bound, "the realm alone does not unbind")
        realm_allows("false")
        bearer_only("orders-api", "true")
        expect(exchanged() == still_bound, "the audience alone does not unbind")
        realm_allows("true")
        outcome = exchanged()
        expect(outcome == ("Bearer", None), f"realm and audience: a bearer token, got {outcome}")
        # The bound subject token is still proven by its key.
        expect_error(token(exchange_form(subject), auth=requester), 400, "invalid_dpop_proof",
                     "The token is DPoP-bound: a DPoP proof by its key is required")
        expect_error(token(exchange_form(subject), other.proof("POST", token_url, subject), auth=requester), 400,
                     "invalid_dpop_proof", "The DPoP proof is not by the key the token is bound to")
        expect(exchanged(["orders-api", "billing-api"]) == still_bound,
               "an audience that did not ask keeps the token bound")
        expect(exchanged(requested_token_type="urn:ietf:params:oauth:token-type:refresh_token") == still_bound,
               "a refresh token keeps the token bound")
        realm_allows("false")
        bearer_only("orders-api", "false")

    check("exchange of a bound token gives a bearer token only when the realm (cambio.dpopExchangeUnbind) "
          "and every audience (cambio.dpopBearerOnly) ask for it", unbinding)

    # --- server nonces (RFC 9449 §8), switched on for the realm last -------------------------
    def nonces():
        realm_url = f"{base}/admin/realms/{REALM}"
        auth = {"Authorization": f"Bearer {s['admin']}"}
        rep = http.get(realm_url, headers=auth).json()
        rep.setdefault("attributes", {})["cambio.dpopNonceRequired"] = "true"
        r = http.put(realm_url, headers=auth, json=rep)
        expect(r.status_code == 204, f"realm update {r.status_code} {r.text}")
        r = alice(proof=key.proof("POST", token_url))
        expect_error(r, 400, "use_dpop_nonce", "Authorization server requires nonce in DPoP proof")
        nonce = r.headers.get("DPoP-Nonce")
        expect(nonce, f"no DPoP-Nonce header: {r.headers}")
        forged = b64url(bytes(24))
        expect_error(alice(proof=key.proof("POST", token_url, nonce=forged)), 400, "use_dpop_nonce")
        r = alice(proof=key.proof("POST", token_url, nonce=nonce))
        expect(r.status_code == 200 and r.headers.get("DPoP-Nonce"), f"{r.status_code} {r.headers} {r.text}")
        t = r.json()["access_token"]
        r = http.get(userinfo_url, headers={"Authorization": f"DPoP {t}", "DPoP": key.proof("GET", userinfo_url, t)})
        expect(r.status_code == 401 and r.json().get("error") == "use_dpop_nonce" and r.headers.get("DPoP-Nonce")
               and 'error="use_dpop_nonce"' in r.headers.get("WWW-Authenticate", ""), f"{r.status_code} {r.headers} {r.text}")
        fresh = r.headers["DPoP-Nonce"]
        r = http.get(userinfo_url, headers={"Authorization": f"DPoP {t}",
                                            "DPoP": key.proof("GET", userinfo_url, t, nonce=fresh)})
        expect(r.status_code == 200, f"userinfo with the nonce: {r.status_code} {r.text}")

    check("cambio.dpopNonceRequired: proofs without the server's nonce get use_dpop_nonce and a fresh one", nonces)

    finish()


if __name__ == "__main__":
    main()
