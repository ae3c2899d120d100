"""A small external identity provider for Cambio's federation tests
(crates/cambio-server/tests/it/external.rs).

It publishes a JWKS and mints tokens with PyJWT, the way a partner's IdP would, and
misbehaves on demand. Only the standard library's http.server plus PyJWT and cryptography
(from .venv-test, see tests/compat/requirements.txt).

Usage: external_idp.py
  Listens on 127.0.0.1 on a free port and prints `port N` as its first line of output.
  Exits when its standard input closes (the test that started it ended).

Endpoints:
  GET  /jwks              the current public keys (an RSA key that /rotate replaces, and an
                          EC P-256 key), each with kid, use=sig and alg.
  GET  /jwks-hang         answers after 30 s.
  GET  /jwks-huge         a 10 MiB body with a Content-Length.
  GET  /jwks-huge-stream  a 10 MiB body without a length (ended by closing the connection).
  GET  /evil              an attacker's JWKS, for tokens whose `jku` header points here.
  GET  /hits              JSON: how many requests each path received.
  POST /rotate            a new RSA key replaces the old one; answers {"kid": new kid}.
  POST /mode?jwks=down    makes /jwks hang (as /jwks-hang does); /mode?jwks=up undoes it.
  GET  /mint?...          a token (text/plain), with these query parameters:
      iss        issuer (default http://127.0.0.1:PORT/partner)
      sub        subject (default ext-alice)
      aud        audience; repeat for a list; absent means no `aud` claim
      exp_in     seconds until `exp`, may be negative (default 300)
      alg        RS256 (default), ES256, none, or HS256-public (HMAC keyed with the RSA
                 public key's PEM, the classic key-confusion attack)
      kid        the `kid` header (default: the signing key's kid; empty: no kid)
      jwk=1      signs with a fresh attacker key and embeds its public JWK in the header
      jku=URL    signs with the attacker key (also served at /evil) and sets `jku`
      claims     a JSON object of further claims (preferred_username, email, roles...);
                 a null value removes that claim
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

HUGE_BYTES = 10 * 1024 * 1024
HANG_SECONDS = 30


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_rsa():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private_key, kid, alg):
    if alg == "ES256":
        jwk = json.loads(ECAlgorithm.to_jwk(private_key.public_key()))
    else:
        jwk = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": alg})
    return jwk


class Provider:
    """The IdP's keys, modes and request counts, shared by the handler threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rsa = new_rsa()
        self.rsa_kid = "rsa-" + uuid.uuid4().hex[:8]
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.ec_kid = "ec-" + uuid.uuid4().hex[:8]
        # The attacker's key: never in /jwks, only at /evil and in `jwk` headers.
        self.attacker = new_rsa()
        self.attacker_kid = "evil-" + uuid.uuid4().hex[:8]
        self.jwks_down = False
        self.hits = {}
        self.port = 0

    def count(self, path):
        with self.lock:
            self.hits[path] = self.hits.get(path, 0) + 1

    def jwks(self):
        with self.lock:
            keys = [
                public_jwk(self.rsa, self.rsa_kid, "RS256"),
                public_jwk(self.ec, self.ec_kid, "ES256"),
            ]
        return {"keys": keys}

    def rotate(self):
        key = new_rsa()
        kid = "rsa-" + uuid.uuid4().hex[:8]
        with self.lock:
            self.rsa, self.rsa_kid = key, kid
        return kid

    def mint(self, query):
        one = lambda name, default=None: query.get(name, [default])[-1]  # noqa: E731
        now = int(time.time())
        claims = {
            "iss": one("iss", f"http://127.0.0.1:{self.port}/partner"),
            "sub": one("sub", "ext-alice"),
            "iat": now,
            "exp": now + int(one("exp_in", "300")),
            "jti": str(uuid.uuid4()),
        }
        auds = query.get("aud", [])
        if len(auds) == 1:
            claims["aud"] = auds[0]
        elif auds:
            claims["aud"] = auds
        extra = one("claims")
        if extra:
            # A null removes a claim (to mint a token without `exp`, say).
            for name, value in json.loads(extra).items():
                if value is None:
                    claims.pop(name, None)
                else:
                    claims[name] = value
        alg = one("alg", "RS256")
        with self.lock:
            rsa_key, rsa_kid = self.rsa, self.rsa_kid
        headers = {}
        if alg == "none":
            header = {"alg": "none", "typ": "JWT"}
            if one("kid"):
                header["kid"] = one("kid")
            return (
                b64url(json.dumps(header).encode())
                + "."
                + b64url(json.dumps(claims).encode())
                + "."
            )
        if alg == "HS256-public":
            # PyJWT refuses PEM keys as HMAC secrets, so this one is made by hand.
            header = {"alg": "HS256", "typ": "JWT", "kid": one("kid", rsa_kid)}
            secret = rsa_key.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
            signing_input = (
                b64url(json.dumps(header).encode())
                + "."
                + b64url(json.dumps(claims).encode())
            )
            mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
            return signing_input + "." + b64url(mac)
        if alg == "ES256":
            key, kid = self.ec, self.ec_kid
        elif alg == "RS256":
            key, kid = rsa_key, rsa_kid
        else:
            raise ValueError(f"unsupported alg {alg}")
        if one("jwk") == "1" or one("jku"):
            # The attacker signs; the header tries to make the verifier trust its key. The
            # kid stays the genuine one unless overridden.
            key = self.attacker
            alg = "RS256"
            if one("jwk") == "1":
                headers["jwk"] = public_jwk(self.attacker, kid, "RS256")
            if one("jku"):
                headers["jku"] = one("jku")
        kid = one("kid", kid)
        if kid:
            headers["kid"] = kid
        return jwt.encode(claims, key, algorithm=alg, headers=headers)


PROVIDER = Provider()


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: every answer closes its connection, so a body without a length is fine.
    protocol_version = "HTTP/1.0"

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def send(self, status, body, content_type="application/json", length=True):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_huge(self, length):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if length:
            self.send_header("Content-Length", str(HUGE_BYTES))
        self.end_headers()
        chunk = b'{"keys":[' + b" " * (64 * 1024 - 9)
        filler = b" " * (64 * 1024)
        sent = 0
        while sent < HUGE_BYTES:
            part = chunk if sent == 0 else filler
            part = part[: HUGE_BYTES - sent]
            self.wfile.write(part)
            sent += len(part)

    def do_GET(self):  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        path = url.path
        PROVIDER.count(path)
        query = parse_qs(url.query, keep_blank_values=True)
        if path == "/jwks":
            if PROVIDER.jwks_down:
                time.sleep(HANG_SECONDS)
            self.send(200, PROVIDER.jwks())
        elif path == "/jwks-hang":
            time.sleep(HANG_SECONDS)
            self.send(200, PROVIDER.jwks())
        elif path == "/jwks-huge":
            self.send_huge(length=True)
        elif path == "/jwks-huge-stream":
            self.send_huge(length=False)
        elif path == "/evil":
            self.send(200, {"keys": [public_jwk(PROVIDER.attacker, PROVIDER.rsa_kid, "RS256")]})
        elif path == "/hits":
            with PROVIDER.lock:
                hits = dict(PROVIDER.hits)
            self.send(200, hits)
        elif path == "/mint":
            try:
                token = PROVIDER.mint(query)
            except Exception as error:  # a bad test request: say why
                self.send(400, {"error": f"{type(error).__name__}: {error}"})
                return
            self.send(200, token, content_type="text/plain")
        else:
            self.send(404, {"error": "not found"})

    def do_POST(self):  # noqa: N802
        url = urlsplit(self.path)
        path = url.path
        PROVIDER.count(path)
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if path == "/rotate":
            self.send(200, {"kid": PROVIDER.rotate()})
        elif path == "/mode":
            mode = query.get("jwks", ["up"])[-1]
            PROVIDER.jwks_down = mode == "down"
            self.send(200, {"jwks": "down" if PROVIDER.jwks_down else "up"})
        else:
            self.send(404, {"error": "not found"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that gave up (Cambio refusing a huge body, a timeout) is expected.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def exit_when_stdin_closes():
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(0)


def main():
    server = Server(("127.0.0.1", 0), Handler)
    PROVIDER.port = server.server_address[1]
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    print(f"port {PROVIDER.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
