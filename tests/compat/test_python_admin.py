"""Cambio's admin REST API driven by python-keycloak's KeycloakAdmin, on the demo realm.

Sets up the fine-grained (V1) token-exchange permission of the token handling guide with
python-keycloak's own calls, then has a confidential client without standard token exchange
exchange alice's token for the target audience through KeycloakOpenID.

Usage: test_python_admin.py BASE_URL
  BASE_URL: the server's base, e.g. http://127.0.0.1:8080 (realms live under BASE_URL/realms).
  CAMBIO_ADMIN_PASSWORD: the master realm administrator's password (default "admin-password").

Prints one line per check and "N passed, N failed" at the end; exits 1 when any check failed.
A check that needs the result of a failed one fails too (it is not skipped).

python-keycloak's create_client of `realm-management` (a call some setup scripts make) is
answered 409: Cambio creates that client in every realm. The script asserts the 409.
"""

import os
import sys

import jwt
from checks import arguments, check, expect, finish
from keycloak import KeycloakAdmin, KeycloakOpenID, KeycloakOpenIDConnection
from keycloak.exceptions import KeycloakDeleteError, KeycloakGetError, KeycloakPostError

# The realm the checks run in; the differential suite points it at Keycloak's copy of its own.
REALM = os.environ.get("CAMBIO_REALM", "demo")
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
REFRESH_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"

TARGET = "py-target-api"
REQUESTER = "py-requester"
EXCHANGER = "py-exchanger"
EXCHANGER_SECRET = "py-exchanger-secret"
POLICY = "py-allow-exchanger"
EXTRA_PERMISSION = "py-view-permission"
MANAGEMENT_SCOPES = [
    "configure",
    "manage",
    "map-roles",
    "map-roles-client-scope",
    "map-roles-composite",
    "token-exchange",
    "view",
]

def rejects(fn, error_type, status):
    """Runs fn expecting python-keycloak to raise error_type with HTTP status."""
    try:
        result = fn()
    except error_type as error:
        expect(error.response_code == status, f"expected HTTP {status}, got {error.response_code}: {error}")
        return error
    raise AssertionError(f"expected HTTP {status}, the call succeeded: {result!r}")


def need(state, key):
    if state.get(key) is None:
        raise AssertionError(f"no {key} (an earlier check failed)")
    return state[key]


def main():
    base, admin_password = arguments(__doc__)
    s = {}

    def connect():
        connection = KeycloakOpenIDConnection(
            server_url=base,
            username="admin",
            password=admin_password,
            realm_name=REALM,
            user_realm_name="master",
            client_id="admin-cli",
        )
        s["admin"] = KeycloakAdmin(connection=connection)
        # The first admin call fetches the token from master.
        s["admin"].get_clients()
        token = s["admin"].connection.token["access_token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        expect(claims["iss"] == f"{base}/realms/master", f"iss {claims['iss']!r}")

    check("KeycloakAdmin(connection=KeycloakOpenIDConnection(... user_realm_name='master'))", connect)
    admin = s.get("admin")

    def adm():
        if admin is None:
            raise AssertionError("no admin connection (an earlier check failed)")
        return admin

    # --- clients -----------------------------------------------------------------------------
    def create_target():
        s["target"] = adm().create_client(
            {
                "clientId": TARGET,
                "enabled": True,
                "publicClient": False,
                "serviceAccountsEnabled": True,
                "standardFlowEnabled": False,
                "secret": "py-target-secret",
                "attributes": {"standard.token.exchange.enabled": "true"},
            }
        )
        expect(s["target"], "no id from Location")
        return f"id {s['target']}"

    check(f"create_client({TARGET})", create_target)

    def create_requester():
        s["requester"] = adm().create_client(
            {
                "clientId": REQUESTER,
                "enabled": True,
                "publicClient": False,
                "serviceAccountsEnabled": True,
                "secret": "py-requester-secret",
                "attributes": {"standard.token.exchange.enabled": "true"},
            }
        )
        expect(s["requester"], "no id from Location")

    check(f"create_client({REQUESTER}, standard.token.exchange.enabled)", create_requester)

    def create_exchanger():
        # Confidential, direct grants, no standard token exchange: only the V1 permission
        # can let it exchange.
        s["exchanger"] = adm().create_client(
            {
                "clientId": EXCHANGER,
                "enabled": True,
                "publicClient": False,
                "directAccessGrantsEnabled": True,
                "secret": EXCHANGER_SECRET,
            }
        )
        expect(s["exchanger"], "no id from Location")

    check(f"create_client({EXCHANGER}, confidential, directAccessGrantsEnabled)", create_exchanger)

    def create_realm_management():
        error = rejects(
            lambda: adm().create_client({"clientId": "realm-management", "enabled": True, "bearerOnly": True}),
            KeycloakPostError,
            409,
        )
        return f"409 {error.error_message!r}"

    check("create_client(realm-management) is 409: Cambio creates it per realm", create_realm_management)

    def create_skip_exists():
        uuid = adm().create_client({"clientId": TARGET}, skip_exists=True)
        expect(uuid == need(s, "target"), f"skip_exists gave {uuid!r}, not {s['target']!r}")

    check(f"create_client({TARGET}, skip_exists=True) returns the existing id", create_skip_exists)

    for client_id, key in [(TARGET, "target"), (REQUESTER, "requester"), (EXCHANGER, "exchanger")]:

        def get_id(client_id=client_id, key=key):
            uuid = adm().get_client_id(client_id)
            expect(uuid == need(s, key), f"get_client_id gave {uuid!r}, create gave {s[key]!r}")

        check(f"get_client_id({client_id!r})", get_id)

    def get_id_unknown():
        expect(adm().get_client_id("py-no-such-client") is None, "an unknown clientId has an id")

    check("get_client_id of an unknown clientId is None", get_id_unknown)

    def get_client():
        rep = adm().get_client(need(s, "exchanger"))
        expect(rep["clientId"] == EXCHANGER, f"clientId {rep['clientId']!r}")
        expect(rep["publicClient"] is False, f"publicClient {rep['publicClient']!r}")
        expect(rep["directAccessGrantsEnabled"] is True, f"directAccessGrantsEnabled {rep['directAccessGrantsEnabled']!r}")
        expect(rep.get("secret") == EXCHANGER_SECRET, "secret not as created")
        rep = adm().get_client(need(s, "requester"))
        attrs = rep.get("attributes", {})
        expect(attrs.get("standard.token.exchange.enabled") == "true", f"attributes {attrs!r}")

    check("get_client(uuid)", get_client)

    def get_clients():
        found = {c["clientId"]: c["id"] for c in adm().get_clients()}
        for client_id, key in [(TARGET, "target"), (REQUESTER, "requester"), (EXCHANGER, "exchanger")]:
            expect(found.get(client_id) == need(s, key), f"{client_id} missing from get_clients()")
        for client_id in ("realm-management", "orders-api", "subject-client"):
            expect(client_id in found, f"{client_id} missing from get_clients()")
        return f"{len(found)} clients"

    check("get_clients()", get_clients)

    exchanger_oidc = KeycloakOpenID(
        server_url=base, realm_name=REALM, client_id=EXCHANGER, client_secret_key=EXCHANGER_SECRET
    )

    def alice():
        tokens = exchanger_oidc.token("alice", "alice")
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        expect(claims.get("azp") == EXCHANGER, f"subject azp {claims.get('azp')!r}")
        return tokens["access_token"]

    def exchange(subject, **kwargs):
        return exchanger_oidc.exchange_token(
            subject,
            audience=TARGET,
            subject_token_type=ACCESS_TOKEN_TYPE,
            requested_token_type=ACCESS_TOKEN_TYPE,
            **kwargs,
        )

    def refused_without_permission():
        error = rejects(lambda: exchange(alice()), KeycloakPostError, 400)
        body = error.error_message
        expect(b"Standard token exchange is not enabled" in _bytes(body), f"body {body!r}")

    check("exchange before management permissions is refused", refused_without_permission)

    # --- fine-grained permissions ---------------------------------------------------------------
    def enable_management():
        rep = adm().update_client_management_permissions({"enabled": True}, need(s, "target"))
        expect(rep.get("enabled") is True, f"{rep!r}")
        expect(sorted(rep.get("scopePermissions", {})) == MANAGEMENT_SCOPES, f"scopePermissions {rep!r}")
        s["perm"] = rep["scopePermissions"]["token-exchange"]
        s["view_perm"] = rep["scopePermissions"]["view"]
        s["resource"] = rep["resource"]

    check("update_client_management_permissions({'enabled': True}, target)", enable_management)

    def get_management():
        rep = adm().get_client_management_permissions(need(s, "target"))
        expect(rep.get("enabled") is True, f"{rep!r}")
        expect(rep["scopePermissions"]["token-exchange"] == need(s, "perm"), f"{rep!r}")
        expect(rep["resource"] == s["resource"], f"resource {rep['resource']!r} != {s['resource']!r}")
        rep = adm().get_client_management_permissions(need(s, "exchanger"))
        expect(rep.get("enabled") is False, f"exchanger: {rep!r}")

    check("get_client_management_permissions(uuid)", get_management)

    def realm_management():
        s["rm"] = adm().get_client_id("realm-management")
        expect(s["rm"], "no realm-management client")

    check("get_client_id('realm-management')", realm_management)

    def create_policy():
        rep = adm().create_client_authz_client_policy(
            {
                "type": "client",
                "logic": "POSITIVE",
                "decisionStrategy": "UNANIMOUS",
                "name": POLICY,
                "clients": [need(s, "exchanger")],
            },
            need(s, "rm"),
        )
        expect(rep.get("id"), f"no id in {rep!r}")
        expect(rep.get("clients") == [s["exchanger"]], f"clients {rep.get('clients')!r}")
        s["policy"] = rep["id"]

    check("create_client_authz_client_policy(payload, rm)", create_policy)

    def create_policy_again():
        rejects(
            lambda: adm().create_client_authz_client_policy(
                {"type": "client", "logic": "POSITIVE", "name": POLICY, "clients": [need(s, "exchanger")]},
                need(s, "rm"),
            ),
            KeycloakPostError,
            409,
        )

    check("create_client_authz_client_policy with the same name is 409", create_policy_again)

    def get_permission():
        # Keycloak's permission representation names no resources, scopes or policies; its
        # sub-resources do, and that is how an admin tool reads them.
        rep = adm().get_client_authz_scope_permission(need(s, "rm"), need(s, "perm"))
        expected = f"token-exchange.permission.client.{s['target']}"
        expect(rep.get("name") == expected, f"name {rep.get('name')!r} != {expected!r}")
        resources = adm().get_client_authz_policy_resources(need(s, "rm"), need(s, "perm"))
        ids = [r.get("_id") for r in resources]
        expect(ids == [s["resource"]], f"resources {resources!r}")
        scopes = adm().get_client_authz_policy_scopes(need(s, "rm"), need(s, "perm"))
        expect([sc.get("name") for sc in scopes] == ["token-exchange"], f"scopes {scopes!r}")
        s["te_scope"] = scopes[0]["id"]

    check("get_client_authz_scope_permission(rm, perm_id)", get_permission)

    def refused_before_policy():
        error = rejects(lambda: exchange(alice()), KeycloakPostError, 403)
        expect(b"Client not allowed to exchange" in _bytes(error.error_message), f"body {error.error_message!r}")

    check("exchange before the policy is attached is refused", refused_before_policy)

    def update_permission():
        perm = need(s, "perm")
        # The guide's body; python-keycloak demands exactly 201 with an empty body.
        result = adm().update_client_authz_scope_permission(
            {
                "id": perm,
                "name": f"token-exchange.permission.client.{need(s, 'target')}",
                "type": "scope",
                "logic": "POSITIVE",
                "decisionStrategy": "UNANIMOUS",
                "resources": [need(s, "resource")],
                "scopes": [need(s, "te_scope")],
                "policies": [need(s, "policy")],
            },
            need(s, "rm"),
            perm,
        )
        expect(result == b"", f"answered {result!r}")

    check("update_client_authz_scope_permission(payload, rm, perm_id) is 201, empty", update_permission)

    def create_permission():
        view = [sc["id"] for sc in adm().get_client_authz_policy_scopes(need(s, "rm"), need(s, "view_perm"))]
        rep = adm().create_client_authz_scope_permission(
            {
                "type": "scope",
                "logic": "POSITIVE",
                "decisionStrategy": "UNANIMOUS",
                "name": EXTRA_PERMISSION,
                "resources": [need(s, "resource")],
                "scopes": view,
                "policies": [need(s, "policy")],
            },
            need(s, "rm"),
        )
        expect(rep.get("id") and rep.get("name") == EXTRA_PERMISSION, f"{rep!r}")
        expect(rep.get("type") == "scope", f"type {rep.get('type')!r}")
        scopes = adm().get_client_authz_policy_scopes(need(s, "rm"), rep["id"])
        expect([sc["id"] for sc in scopes] == view, f"scopes {scopes!r}")
        s["extra_perm"] = rep["id"]

    check("create_client_authz_scope_permission(payload, rm)", create_permission)

    def list_policies():
        found = adm().get_client_authz_policies(need(s, "rm"))
        names = [p["name"] for p in found]
        expect(POLICY in names, f"{POLICY} not in {names!r}")
        expect(all(p["type"] != "scope" for p in found), f"permissions listed as policies: {names!r}")
        return f"{len(found)} policies"

    check("get_client_authz_policies(rm) [permission=False]", list_policies)

    def list_permissions():
        found = {p["id"]: p for p in adm().get_client_authz_permissions(need(s, "rm"))}
        perm = found.get(need(s, "perm"))
        expect(perm is not None, "the token-exchange permission is not listed")
        attached = adm().get_client_authz_permission_associated_policies(need(s, "rm"), need(s, "perm"))
        expect([p["id"] for p in attached] == [need(s, "policy")], f"policies {attached!r}")
        expect(need(s, "extra_perm") in found, f"{EXTRA_PERMISSION} is not listed")
        expect(all(p["type"] == "scope" for p in found.values()), "non-permissions listed")
        return f"{len(found)} permissions"

    check("get_client_authz_permissions(rm)", list_permissions)

    def list_client_policies():
        found = adm().get_client_authz_client_policies(need(s, "rm"))
        mine = [p for p in found if p["name"] == POLICY]
        expect(len(mine) == 1, f"{POLICY} not in {[p['name'] for p in found]!r}")
        expect(mine[0].get("clients") == [need(s, "exchanger")], f"clients {mine[0].get('clients')!r}")
        expect(all(p["type"] == "client" for p in found), f"types {[p['type'] for p in found]!r}")

    check("get_client_authz_client_policies(rm)", list_client_policies)

    # --- the exchange the permission allows (V1, confidential requester) ----------------------
    def exchange_v1():
        subject = alice()
        out = exchange(subject)
        expect(out.get("issued_token_type") == ACCESS_TOKEN_TYPE, f"issued_token_type {out.get('issued_token_type')!r}")
        claims = jwt.decode(out["access_token"], options={"verify_signature": False})
        expect(_aud(claims) == [TARGET], f"aud {claims.get('aud')!r}")
        expect(claims.get("azp") == EXCHANGER, f"azp {claims.get('azp')!r}")
        expect(claims.get("preferred_username") == "alice", f"preferred_username {claims.get('preferred_username')!r}")
        subject_claims = jwt.decode(subject, options={"verify_signature": False})
        expect(claims["sub"] == subject_claims["sub"], "sub changed")
        return f"aud {claims.get('aud')!r}"

    check(f"KeycloakOpenID({EXCHANGER}).exchange_token(alice, audience={TARGET!r})", exchange_v1)

    def exchange_v1_defaults():
        # python-keycloak's defaults: no subject_token_type, requested_token_type refresh_token.
        out = exchanger_oidc.exchange_token(alice(), audience=TARGET)
        expect(out.get("issued_token_type") == REFRESH_TOKEN_TYPE, f"issued_token_type {out.get('issued_token_type')!r}")
        claims = jwt.decode(out["access_token"], options={"verify_signature": False})
        expect(_aud(claims) == [TARGET], f"aud {claims.get('aud')!r}")

    check(f"KeycloakOpenID({EXCHANGER}).exchange_token(alice, audience={TARGET!r}) [defaults]", exchange_v1_defaults)

    def requester_credentials():
        requester = KeycloakOpenID(
            server_url=base, realm_name=REALM, client_id=REQUESTER, client_secret_key="py-requester-secret"
        )
        tokens = requester.token(grant_type="client_credentials")
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        expect(claims.get("azp") == REQUESTER, f"azp {claims.get('azp')!r}")
        expect(claims.get("preferred_username") == f"service-account-{REQUESTER}", f"{claims.get('preferred_username')!r}")

    check(f"{REQUESTER} created with its secret: client_credentials works", requester_credentials)

    # --- deletion ---------------------------------------------------------------------------------
    def delete_clients():
        for key in ("exchanger", "requester", "target"):
            uuid = need(s, key)
            adm().delete_client(uuid)
            rejects(lambda uuid=uuid: adm().get_client(uuid), KeycloakGetError, 404)
        for client_id in (TARGET, REQUESTER, EXCHANGER):
            expect(adm().get_client_id(client_id) is None, f"{client_id} still found")

    check("delete_client(uuid) then get_client is 404", delete_clients)

    def delete_again():
        rejects(lambda: adm().delete_client(need(s, "target")), KeycloakDeleteError, 404)

    check("delete_client of a deleted id is 404", delete_again)

    def permission_gone():
        rejects(
            lambda: adm().get_client_authz_scope_permission(need(s, "rm"), need(s, "perm")),
            KeycloakGetError,
            404,
        )

    check("the deleted target's token-exchange permission is gone", permission_gone)

    # --- groups ----------------------------------------------------------------------------------
    def groups_create():
        s["g_parent"] = adm().create_group({"name": "py-staff"})
        s["g_child"] = adm().create_group({"name": "py-team"}, parent=need(s, "g_parent"))
        group = adm().get_group_by_path("/py-staff/py-team")
        expect(group["id"] == need(s, "g_child"), f"{group!r}")
        rejects(lambda: adm().create_group({"name": "py-staff"}), KeycloakPostError, 409)
        return f"child {group['path']}"

    check("create_group, create_group(parent=...), get_group_by_path, 409 for a taken name", groups_create)

    def groups_roles_and_members():
        adm().create_realm_role({"name": "py-auditor"}, skip_exists=True)
        adm().assign_group_realm_roles(need(s, "g_parent"), [adm().get_realm_role("py-auditor")])
        alice_id = adm().get_user_id("alice")
        adm().group_user_add(alice_id, need(s, "g_child"))
        paths = [g["path"] for g in adm().get_user_groups(alice_id)]
        expect(paths == ["/py-staff/py-team"], f"user groups {paths!r}")
        members = [m["username"] for m in adm().get_group_members(need(s, "g_child"))]
        expect(members == ["alice"], f"members {members!r}")
        subject_client = KeycloakOpenID(
            server_url=base, realm_name=REALM, client_id="subject-client", client_secret_key="subject-secret"
        )
        token = subject_client.token("alice", "alice")["access_token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        roles = claims.get("realm_access", {}).get("roles", [])
        expect("py-auditor" in roles, f"realm roles {roles!r}")
        adm().group_user_remove(alice_id, need(s, "g_child"))
        expect(adm().get_user_groups(alice_id) == [], "still a member")

    check("assign_group_realm_roles, group_user_add: the parent's role reaches alice's token", groups_roles_and_members)

    def groups_delete():
        adm().delete_group(need(s, "g_parent"))
        rejects(lambda: adm().get_group(need(s, "g_child")), KeycloakGetError, 404)

    check("delete_group deletes its subgroups", groups_delete)

    finish()


def _bytes(value):
    return value if isinstance(value, bytes) else str(value).encode()


def _aud(claims):
    aud = claims.get("aud", [])
    return [aud] if isinstance(aud, str) else list(aud)


if __name__ == "__main__":
    main()
