// Cambio's admin REST API driven by the real @keycloak/keycloak-admin-client (pinned in
// tests/compat/package.json): the fine-grained (V1) token-exchange setup of the token
// handling guide, done through the client's own methods, then the exchange it permits.
//
// Usage: node tests/compat/admin_client.mjs BASE_URL
//   BASE_URL: the server's base, e.g. http://127.0.0.1:8080 (realms live under BASE_URL/realms).
//   CAMBIO_ADMIN_PASSWORD: the master realm administrator's password (default "admin-password").
//   CAMBIO_REALM: the realm to work in (default "demo"); it must have alice (password alice).
//
// Prints one line per check and "N passed, N failed" at the end; exits 1 when any check failed.
// A check that needs the result of a failed one fails too (it is not skipped).

import KcAdminClient from "@keycloak/keycloak-admin-client";

// The realm the checks run in; the differential suite points it at Keycloak's copy of its own.
const REALM = process.env.CAMBIO_REALM ?? "demo";
const EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const SOURCE = "npm-source-app";
const TARGET = "npm-target-api";
const POLICY = "npm-allow-source-exchange";

let passed = 0;
let failed = 0;

async function check(name, fn) {
  try {
    const detail = await fn();
    passed += 1;
    console.log(`ok   ${name}${detail ? `\n     ${detail}` : ""}`);
  } catch (error) {
    failed += 1;
    const status = error?.response?.status;
    const data = error?.responseData;
    const extra = status ? ` [HTTP ${status} ${JSON.stringify(data)}]` : "";
    // The reason on a line of its own, so a check's name can be read back exactly.
    console.log(`FAIL ${name}\n     ${error?.name ?? "Error"}: ${error?.message ?? error}${extra}`);
    if (!(error instanceof Assertion) && error?.stack) {
      console.log(error.stack.split("\n").slice(1, 6).join("\n"));
    }
  }
}

class Assertion extends Error {
  constructor(message) {
    super(message);
    this.name = "AssertionError";
  }
}

function expect(condition, message) {
  if (!condition) throw new Assertion(message);
}

/** Runs `fn` expecting the admin client to reject with HTTP `status`; returns the error. */
async function rejects(fn, status) {
  let result;
  try {
    result = await fn();
  } catch (error) {
    expect(
      error?.response?.status === status,
      `expected HTTP ${status}, got ${error?.response?.status ?? error}: ${JSON.stringify(error?.responseData)}`,
    );
    return error;
  }
  throw new Assertion(`expected HTTP ${status}, the call succeeded: ${JSON.stringify(result)}`);
}

function need(value, what) {
  if (value === undefined || value === null) throw new Assertion(`no ${what} (an earlier check failed)`);
  return value;
}

function claims(jwt) {
  const payload = jwt.split(".")[1];
  return JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
}

function audiences(c) {
  if (c.aud === undefined) return [];
  return Array.isArray(c.aud) ? c.aud : [c.aud];
}

async function tokenRequest(base, form) {
  const response = await fetch(`${base}/realms/${REALM}/protocol/openid-connect/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
  });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = { raw: text };
  }
  return { status: response.status, body };
}

async function main() {
  if (process.argv.length !== 3) {
    console.error("usage: node tests/compat/admin_client.mjs BASE_URL");
    process.exit(2);
  }
  const base = process.argv[2].replace(/\/+$/, "");
  const password = process.env.CAMBIO_ADMIN_PASSWORD ?? "admin-password";
  const kc = new KcAdminClient({ baseUrl: base, realmName: "master" });
  const s = {};

  const alice = async () => {
    const reply = await tokenRequest(base, {
      grant_type: "password",
      client_id: SOURCE,
      username: "alice",
      password: "alice",
    });
    expect(reply.status === 200, `password grant via ${SOURCE}: ${reply.status} ${JSON.stringify(reply.body)}`);
    return reply.body.access_token;
  };
  const exchange = (subject, audience) =>
    tokenRequest(base, {
      grant_type: EXCHANGE,
      client_id: SOURCE,
      subject_token: subject,
      subject_token_type: ACCESS_TOKEN_TYPE,
      audience,
    });
  const expectOAuthError = (reply, status, error, description) =>
    expect(
      reply.status === status && reply.body.error === error && reply.body.error_description === description,
      `expected ${status} ${error} "${description}", got ${reply.status} ${JSON.stringify(reply.body)}`,
    );

  await check("auth({grantType:'password', clientId:'admin-cli'}) on master", async () => {
    await kc.auth({ grantType: "password", clientId: "admin-cli", username: "admin", password });
    expect(typeof kc.accessToken === "string" && kc.accessToken.length > 0, "no access token");
    const c = claims(kc.accessToken);
    expect(c.iss === `${base}/realms/master`, `iss ${c.iss}`);
    expect(typeof c.exp === "number", `exp ${c.exp}`);
    kc.setConfig({ realmName: REALM });
  });

  // --- clients ------------------------------------------------------------------------------
  await check(`clients.create(${SOURCE}: public, directAccessGrantsEnabled)`, async () => {
    const created = await kc.clients.create({
      clientId: SOURCE,
      name: "",
      description: "Source client in purpose of testing the API",
      publicClient: true,
      directAccessGrantsEnabled: true,
    });
    expect(typeof created?.id === "string" && created.id.length > 0, `id from Location: ${JSON.stringify(created)}`);
    s.source = created.id;
    return `id ${created.id}`;
  });

  await check(`clients.create(${TARGET})`, async () => {
    const created = await kc.clients.create({
      clientId: TARGET,
      name: "",
      description: "Target client in purpose of testing the API",
      rootUrl: "",
    });
    expect(typeof created?.id === "string" && created.id.length > 0, `id from Location: ${JSON.stringify(created)}`);
    s.target = created.id;
  });

  await check(`clients.create(${SOURCE}) again rejects with 409`, async () => {
    const error = await rejects(() => kc.clients.create({ clientId: SOURCE, publicClient: true }), 409);
    expect(error.message && error.message !== "Network response was not OK.", `no error message read: ${JSON.stringify(error.responseData)}`);
    return error.message;
  });

  for (const [clientId, key] of [
    [SOURCE, "source"],
    [TARGET, "target"],
    ["realm-management", "rm"],
  ]) {
    await check(`clients.find({clientId: '${clientId}'})`, async () => {
      const found = await kc.clients.find({ clientId });
      expect(Array.isArray(found) && found.length === 1, `expected one client, got ${JSON.stringify(found)}`);
      expect(found[0].clientId === clientId, `clientId ${found[0].clientId}`);
      if (s[key] !== undefined) {
        expect(found[0].id === s[key], `id ${found[0].id} != ${s[key]} from create's Location`);
      }
      s[key] = found[0].id;
    });
  }

  await check("clients.find({clientId: 'no-such-client'}) is empty", async () => {
    const found = await kc.clients.find({ clientId: "no-such-client" });
    expect(Array.isArray(found) && found.length === 0, JSON.stringify(found));
  });

  await check("clients.findOne({id: source})", async () => {
    const rep = await kc.clients.findOne({ id: need(s.source, "source id") });
    expect(rep && rep.clientId === SOURCE, `clientId ${rep?.clientId}`);
    expect(rep.publicClient === true, `publicClient ${rep.publicClient}`);
    expect(rep.directAccessGrantsEnabled === true, `directAccessGrantsEnabled ${rep.directAccessGrantsEnabled}`);
    expect(rep.secret === undefined, "a public client's representation carries a secret");
  });

  await check("clients.update({id: target}, {...rep, description}) then findOne", async () => {
    const id = need(s.target, "target id");
    const rep = await kc.clients.findOne({ id });
    const result = await kc.clients.update({ id }, { ...rep, description: "Target client, updated" });
    const after = await kc.clients.findOne({ id });
    expect(after.description === "Target client, updated", `description ${after.description}`);
    expect(after.clientId === TARGET && after.id === id, `identity changed: ${after.clientId} ${after.id}`);
    expect(after.publicClient === false, `publicClient ${after.publicClient}`);
    return `update answered ${JSON.stringify(result)}`;
  });

  await check("exchange before management permissions: public client refused", async () => {
    const subject = await alice();
    expectOAuthError(
      await exchange(subject, TARGET),
      400,
      "invalid_client",
      "Public client is not allowed to exchange token",
    );
  });

  // --- fine-grained permissions ------------------------------------------------------------
  await check("clients.updateFineGrainPermission({id: target}, {enabled: true})", async () => {
    const rep = await kc.clients.updateFineGrainPermission({ id: need(s.target, "target id") }, { enabled: true });
    expect(rep?.enabled === true, `enabled ${JSON.stringify(rep)}`);
    expect(typeof rep.resource === "string", `resource ${rep.resource}`);
    const names = Object.keys(rep.scopePermissions ?? {}).sort();
    const want = [
      "configure",
      "manage",
      "map-roles",
      "map-roles-client-scope",
      "map-roles-composite",
      "token-exchange",
      "view",
    ];
    expect(JSON.stringify(names) === JSON.stringify(want), `scopePermissions ${JSON.stringify(names)}`);
    s.permissionId = rep.scopePermissions["token-exchange"];
    s.resourceId = rep.resource;
  });

  await check("clients.listFineGrainPermissions({id: target})", async () => {
    const rep = await kc.clients.listFineGrainPermissions({ id: need(s.target, "target id") });
    expect(rep?.enabled === true, JSON.stringify(rep));
    expect(rep.scopePermissions?.["token-exchange"] === need(s.permissionId, "permission id"), JSON.stringify(rep));
    expect(rep.resource === s.resourceId, `resource ${rep.resource} != ${s.resourceId}`);
  });

  await check("clients.listFineGrainPermissions({id: source}) is disabled", async () => {
    const rep = await kc.clients.listFineGrainPermissions({ id: need(s.source, "source id") });
    expect(rep?.enabled === false, JSON.stringify(rep));
  });

  await check("clients.createPolicy({id: rm, type: 'client'}, {name, logic, clients: [source]})", async () => {
    const source = need(s.source, "source id");
    const rep = await kc.clients.createPolicy(
      { id: need(s.rm, "realm-management id"), type: "client" },
      { name: POLICY, logic: "POSITIVE", clients: [source] },
    );
    expect(typeof rep?.id === "string", `no id in ${JSON.stringify(rep)}`);
    expect(rep.name === POLICY && rep.type === "client", JSON.stringify(rep));
    expect(JSON.stringify(rep.clients) === JSON.stringify([source]), `clients ${JSON.stringify(rep.clients)}`);
    s.policyId = rep.id;
  });

  await check("clients.createPolicy with the same name rejects with 409", async () => {
    await rejects(
      () =>
        kc.clients.createPolicy(
          { id: need(s.rm, "realm-management id"), type: "client" },
          { name: POLICY, logic: "POSITIVE", clients: [need(s.source, "source id")] },
        ),
      409,
    );
  });

  await check("clients.listPolicies({id: rm})", async () => {
    const list = await kc.clients.listPolicies({ id: need(s.rm, "realm-management id") });
    expect(Array.isArray(list), JSON.stringify(list));
    const mine = list.find((p) => p.name === POLICY);
    expect(mine && mine.id === need(s.policyId, "policy id"), `${POLICY} not listed: ${JSON.stringify(list.map((p) => p.name))}`);
    return `${list.length} entries`;
  });

  await check("clients.findPolicyByName({id: rm, name})", async () => {
    const rep = await kc.clients.findPolicyByName({ id: need(s.rm, "realm-management id"), name: POLICY });
    expect(rep?.id === need(s.policyId, "policy id"), JSON.stringify(rep));
  });

  await check("clients.findPolicyByName of an unknown name is empty", async () => {
    const rep = await kc.clients.findPolicyByName({ id: need(s.rm, "realm-management id"), name: "npm-no-such-policy" });
    expect(rep === "" || rep === undefined || rep === null, JSON.stringify(rep));
  });

  await check("clients.findOnePermission({id: rm, type: 'scope', permissionId})", async () => {
    const rep = await kc.clients.findOnePermission({
      id: need(s.rm, "realm-management id"),
      type: "scope",
      permissionId: need(s.permissionId, "permission id"),
    });
    const name = `token-exchange.permission.client.${s.target}`;
    expect(rep?.name === name, `name ${rep?.name} != ${name}`);
    expect(rep.type === "scope" && rep.id === s.permissionId, JSON.stringify(rep));
    // Keycloak's permission representation names no resources, scopes or policies; an admin
    // tool reads them from the permission's sub-resources.
    const ids = { id: s.rm, permissionId: s.permissionId };
    const resources = await kc.clients.getAssociatedResources(ids);
    expect(JSON.stringify(resources.map((r) => r._id)) === JSON.stringify([s.resourceId]), `resources ${JSON.stringify(resources)}`);
    const scopes = await kc.clients.getAssociatedScopes(ids);
    expect(JSON.stringify(scopes.map((sc) => sc.name)) === JSON.stringify(["token-exchange"]), `scopes ${JSON.stringify(scopes)}`);
    s.permission = { ...rep, resources: [s.resourceId], scopes: scopes.map((sc) => sc.id) };
  });

  await check("exchange before the policy is attached: client not allowed", async () => {
    const subject = await alice();
    expectOAuthError(await exchange(subject, TARGET), 403, "access_denied", "Client not allowed to exchange");
  });

  await check("clients.updatePermission({id: rm, type: 'scope', permissionId}, {...permission, policies})", async () => {
    const result = await kc.clients.updatePermission(
      { id: need(s.rm, "realm-management id"), type: "scope", permissionId: need(s.permissionId, "permission id") },
      { ...need(s.permission, "permission"), policies: [need(s.policyId, "policy id")] },
    );
    return `answered ${JSON.stringify(result)}`;
  });

  await check("clients.findPermissions({id: rm}) shows the policy attached", async () => {
    const list = await kc.clients.findPermissions({ id: need(s.rm, "realm-management id") });
    expect(Array.isArray(list), JSON.stringify(list));
    const perm = list.find((p) => p.id === need(s.permissionId, "permission id"));
    expect(perm, `permission ${s.permissionId} not listed`);
    const attached = await kc.clients.getAssociatedPolicies({ id: s.rm, permissionId: s.permissionId });
    expect(JSON.stringify(attached.map((p) => p.id)) === JSON.stringify([s.policyId]), `policies ${JSON.stringify(attached)}`);
    expect(!list.some((p) => p.name === POLICY), "findPermissions lists a plain policy");
    return `${list.length} permissions`;
  });

  // --- the exchange the permission allows ----------------------------------------------------
  await check(`token exchange by ${SOURCE} for audience ${TARGET}`, async () => {
    const subject = await alice();
    const subjectClaims = claims(subject);
    expect(subjectClaims.azp === SOURCE, `subject azp ${subjectClaims.azp}`);
    const reply = await exchange(subject, TARGET);
    expect(reply.status === 200, `${reply.status} ${JSON.stringify(reply.body)}`);
    const c = claims(reply.body.access_token);
    expect(JSON.stringify(audiences(c)) === JSON.stringify([TARGET]), `aud ${JSON.stringify(c.aud)}`);
    expect(c.azp === SOURCE, `azp ${c.azp}`);
    expect(c.sub === subjectClaims.sub, `sub ${c.sub} != ${subjectClaims.sub}`);
    expect(c.preferred_username === "alice", `preferred_username ${c.preferred_username}`);
    return `aud ${JSON.stringify(c.aud)}`;
  });

  await check("token exchange for an audience without permission is refused", async () => {
    const subject = await alice();
    expectOAuthError(
      await exchange(subject, "billing-api"),
      400,
      "invalid_client",
      "Public client is not allowed to exchange token",
    );
  });

  // --- deletion --------------------------------------------------------------------------------
  await check("clients.del({id: source}) then findOne is null", async () => {
    const id = need(s.source, "source id");
    await kc.clients.del({ id });
    const after = await kc.clients.findOne({ id });
    expect(after === null, `findOne after delete: ${JSON.stringify(after)}`);
    const found = await kc.clients.find({ clientId: SOURCE });
    expect(Array.isArray(found) && found.length === 0, `find after delete: ${JSON.stringify(found)}`);
  });

  await check("clients.del of a deleted id rejects with 404", async () => {
    await rejects(() => kc.clients.del({ id: need(s.source, "source id") }), 404);
  });

  await check("clients.del({id: target}) removes its token-exchange permission", async () => {
    const id = need(s.target, "target id");
    await kc.clients.del({ id });
    expect((await kc.clients.findOne({ id })) === null, "target still found");
    await rejects(
      () =>
        kc.clients.findOnePermission({
          id: need(s.rm, "realm-management id"),
          type: "scope",
          permissionId: need(s.permissionId, "permission id"),
        }),
      404,
    );
  });

  // --- groups ----------------------------------------------------------------------------------
  await check("groups.create, groups.createChildGroup, groups.find({search})", async () => {
    s.parentGroup = (await kc.groups.create({ name: "npm-staff" })).id;
    s.childGroup = (await kc.groups.createChildGroup({ id: need(s.parentGroup, "parent id") }, { name: "npm-team" })).id;
    need(s.childGroup, "child id");
    const found = await kc.groups.find({ search: "npm-team" });
    expect(found.length === 1 && found[0].subGroups?.[0]?.path === "/npm-staff/npm-team", JSON.stringify(found));
    const count = await kc.groups.count({ search: "npm-" });
    expect(count.count === 2, `count ${JSON.stringify(count)}`);
    await rejects(() => kc.groups.create({ name: "npm-staff" }), 409);
  });

  await check("groups.addRealmRoleMappings, users.addToGroup: the parent's role reaches alice's token", async () => {
    await kc.roles.create({ name: "npm-auditor" });
    const role = await kc.roles.findOneByName({ name: "npm-auditor" });
    await kc.groups.addRealmRoleMappings({ id: need(s.parentGroup, "parent id"), roles: [{ id: role.id, name: role.name }] });
    const [alice] = await kc.users.find({ username: "alice", exact: true });
    s.aliceId = alice.id;
    await kc.users.addToGroup({ id: alice.id, groupId: need(s.childGroup, "child id") });
    const groups = await kc.users.listGroups({ id: alice.id });
    expect(groups.length === 1 && groups[0].path === "/npm-staff/npm-team", JSON.stringify(groups));
    const members = await kc.groups.listMembers({ id: s.childGroup });
    expect(members.map((m) => m.username).join() === "alice", JSON.stringify(members));
    const composite = await kc.groups.listCompositeRealmRoleMappings({ id: s.childGroup });
    expect(composite.some((r) => r.name === "npm-auditor"), JSON.stringify(composite));
    const reply = await tokenRequest(base, {
      grant_type: "password",
      client_id: "subject-client",
      client_secret: "subject-secret",
      username: "alice",
      password: "alice",
    });
    const roles = claims(reply.body.access_token).realm_access?.roles ?? [];
    expect(roles.includes("npm-auditor"), `realm roles ${JSON.stringify(roles)}`);
    await kc.users.delFromGroup({ id: alice.id, groupId: s.childGroup });
    expect((await kc.users.listGroups({ id: alice.id })).length === 0, "still a member");
  });

  await check("groups.del deletes its subgroups", async () => {
    await kc.groups.del({ id: need(s.parentGroup, "parent id") });
    // findOne answers null for a 404.
    expect((await kc.groups.findOne({ id: need(s.childGroup, "child id") })) === null, "subgroup still found");
  });

  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((error) => {
  console.log(`FAIL unexpected: ${error?.stack ?? error}`);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
});
