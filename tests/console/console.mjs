// The admin console driven in a real headless Chromium (Debian's, through playwright-core;
// no browser download): sign in, create a client, set the fine-grained token-exchange
// permission, switch on standard token exchange, preview exchanges and their refusals, find
// the exchanges' events, rotate keys, manage a user, client roles and composites, a client
// scope's audience mapper, a service account's roles, an exchange with an actor token, an
// identity provider's permission, sign out; then a master user who holds only view-clients
// sees no way to change anything, and the API refuses it too; and a realm administrator of
// demo signs in to demo's own console, acts there, and cannot see master.
//
// Usage: node tests/console/console.mjs BASE_URL
//   BASE_URL: the server's base, e.g. http://127.0.0.1:8080; the server must have the demo realm.
//   CAMBIO_ADMIN_PASSWORD: the master administrator's password (default "admin-password").
//   CHROMIUM: the browser (default /usr/bin/chromium).
//   CAMBIO_CONSOLE_SCREENSHOTS: a folder to write PNG screenshots of the main screens into.
//
// Prints "ok   name" or "FAIL name" per step and stops at the first failure (later steps build
// on earlier ones); exits 1 when a step failed.

import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = (process.argv[2] || 'http://127.0.0.1:8080').replace(/\/$/, '');
const ADMIN_PASSWORD = process.env.CAMBIO_ADMIN_PASSWORD || 'admin-password';
const SHOTS = process.env.CAMBIO_CONSOLE_SCREENSHOTS;
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const STEP_TIMEOUT = 15_000;
// The W3C trace id the refused exchange carries, which its event must show.
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

let passed = 0;

class Failure extends Error {}

function expect(condition, message) {
  if (!condition) throw new Failure(message);
}

async function step(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (error) {
    console.log(`FAIL ${name}\n     ${error?.message ?? error}`);
    throw error;
  }
}

async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

// The admin REST API and token endpoint, called from Node (setup and the API's own answers).
async function form(url, body, basic, extraHeaders = {}) {
  const headers = { 'Content-Type': 'application/x-www-form-urlencoded', ...extraHeaders };
  if (basic) headers.Authorization = `Basic ${Buffer.from(basic.join(':')).toString('base64')}`;
  const response = await fetch(url, { method: 'POST', headers, body: new URLSearchParams(body) });
  return { status: response.status, body: await response.json().catch(() => null) };
}

async function passwordToken(realm, clientId, username, password, secret) {
  const body = { grant_type: 'password', client_id: clientId, username, password };
  if (secret) body.client_secret = secret;
  const answer = await form(`${BASE}/realms/${realm}/protocol/openid-connect/token`, body);
  expect(answer.status === 200, `password grant for ${username}: ${JSON.stringify(answer.body)}`);
  return answer.body.access_token;
}

async function admin(token, method, path, body) {
  const response = await fetch(`${BASE}/admin/realms${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try { data = JSON.parse(text); } catch { data = null; }
  return { status: response.status, body: data, location: response.headers.get('location') };
}

/** Signs in on the login page the console sends the browser to. */
async function signIn(page, username, password, path = '/admin/console/') {
  const csp = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) csp.push(message.text());
  });
  const consoleResponse = page.waitForResponse((r) => new URL(r.url()).pathname.replace(/\/?$/, '/').endsWith(path));
  await page.goto(`${BASE}${path}`);
  const first = await consoleResponse;
  await page.waitForURL(/\/protocol\/openid-connect\/auth/, { timeout: STEP_TIMEOUT });
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Sections' }).getByRole('link').first().waitFor({ timeout: STEP_TIMEOUT });
  return { headers: first.headers(), csp };
}

/** Moves within the console without reloading it (a reload signs in again: no stored token). */
async function go(page, hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.locator('main h1').filter({ hasNotText: 'Signing in' }).waitFor();
}

async function pick(page, label, text) {
  const select = page.getByLabel(label, { exact: true });
  const value = await select.locator('option', { hasText: new RegExp(`^${text}$`) }).getAttribute('value');
  await select.selectOption(value);
}

async function previewAs(page, { requester, audience = '', type, actor = '' }) {
  await go(page, '#/demo/preview');
  await pick(page, 'Requester client', requester);
  await pick(page, 'User', 'alice');
  await pick(page, 'Signed in through client', 'subject-client');
  await page.getByLabel('Audience (space-separated client IDs)').fill(audience);
  if (type) await pick(page, 'Requested token type', type);
  await page.getByLabel('Actor token (optional)').fill(actor);
  return previewResult(page);
}

/**
 * Runs the preview form and waits for its answer. The previous answer is taken off the page
 * first: on a slow server it would otherwise still be there, and be read, when this one's
 * request has not yet come back (going to the same route again re-renders nothing).
 */
async function previewResult(page) {
  await page.evaluate(() => document.querySelector('#preview-result')?.replaceChildren());
  await page.getByRole('button', { name: 'Preview exchange' }).click();
  const result = page.locator('#preview-result section');
  await result.waitFor({ timeout: STEP_TIMEOUT });
  return result;
}

/** A partner identity provider's ES256 key, and tokens it signs (node:crypto, no library). */
function partnerKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'partner-1', alg: 'ES256', use: 'sig' };
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const token = (sub, aud) => {
    const now = Math.floor(Date.now() / 1000);
    const input = `${b64({ alg: 'ES256', typ: 'JWT', kid: 'partner-1' })}.${b64({
      iss: 'https://partner.example', sub, aud, iat: now, exp: now + 300,
    })}`;
    const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    return `${input}.${signature.toString('base64url')}`;
  };
  return { jwk, token };
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // Debian's Chromium as root, on a machine with no outside network: no sandbox, no GPU, and
    // none of the background requests that would be refused. Playwright gives every launch a
    // fresh, empty profile directory.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    await run(browser);
  } finally {
    await browser.close();
  }
}

async function run(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  let signedIn;

  await step('/ leads to the console', async () => {
    const response = await fetch(`${BASE}/`, { redirect: 'manual' });
    const expected = `${new URL(BASE).pathname.replace(/\/$/, '')}/admin/console/`;
    expect(response.status === 303 && response.headers.get('location') === expected,
      `GET / answered ${response.status} ${response.headers.get('location')}`);
  });

  await step('the administrator signs in with code and PKCE', async () => {
    signedIn = await signIn(page, 'admin', ADMIN_PASSWORD);
    await page.getByText('Signed in as admin').waitFor();
  });

  await step('the console runs under a strict CSP and stores no token', async () => {
    const csp = signedIn.headers['content-security-policy'] || '';
    expect(csp.includes("default-src 'self'") && csp.includes("script-src 'self'") && !csp.includes('unsafe'),
      `CSP: ${csp}`);
    expect(signedIn.csp.length === 0, `CSP violations: ${signedIn.csp.join(' | ')}`);
    const storage = await page.evaluate(() => ({
      local: localStorage.length, session: sessionStorage.length, cookie: document.cookie, url: location.href,
    }));
    expect(storage.local === 0 && storage.session === 0, `storage: ${JSON.stringify(storage)}`);
    expect(!storage.url.includes('code='), `the code stayed in the URL: ${storage.url}`);
  });

  await step('create a confidential client', async () => {
    await go(page, '#/demo/clients');
    await shot(page, 'clients');
    await page.getByLabel('Client ID').fill('console-requester');
    await pick(page, 'Client type', 'Confidential \\(has a secret\\)');
    await page.getByRole('button', { name: 'Create client' }).click();
    await page.getByRole('heading', { name: 'console-requester (confidential)' }).waitFor();
    await page.getByRole('button', { name: 'Show secret' }).click();
    const secret = page.locator('output.secret');
    await secret.filter({ hasText: /\S/ }).waitFor();
    const first = await secret.innerText();
    await page.getByRole('button', { name: 'Regenerate secret' }).click();
    await page.getByText('A new secret was generated').waitFor();
    const second = await secret.innerText();
    expect(second && second !== first, 'the secret did not change');
  });

  await step('create a public client: no secret, no standard token exchange', async () => {
    await go(page, '#/demo/clients');
    await page.getByLabel('Client ID').fill('console-spa');
    await pick(page, 'Client type', 'Public \\(no secret\\)');
    await page.getByRole('button', { name: 'Create client' }).click();
    await page.getByRole('heading', { name: 'console-spa (public)' }).waitFor();
    expect(await page.getByLabel('Standard token exchange', { exact: true }).isDisabled(), 'exchange switch enabled');
    expect(await page.getByRole('button', { name: 'Show secret' }).count() === 0, 'a public client shows a secret');
  });

  await step('the server\'s errorMessage is shown where the user acted', async () => {
    await go(page, '#/demo/clients');
    await page.getByLabel('Client ID').fill('console-requester');
    await page.getByRole('button', { name: 'Create client' }).click();
    await page.getByRole('alert').filter({ hasText: 'Client console-requester already exists' }).waitFor();
  });

  await step('the sections are reachable with the keyboard alone', async () => {
    await go(page, '#/demo/settings');
    await page.locator('body').focus();
    let reached = false;
    for (let presses = 0; presses < 40 && !reached; presses += 1) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement?.textContent === 'Events'
        && document.activeElement.closest('nav') !== null);
    }
    expect(reached, 'Tab never reached the Events section link');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Events · demo' }).waitFor();
  });

  await step('set the token-exchange permission of orders-api for console-requester', async () => {
    await go(page, '#/demo/permissions');
    await pick(page, 'Target client (the audience)', 'orders-api');
    await page.getByRole('button', { name: 'Show permissions' }).click();
    await page.getByLabel('Permissions enabled').check();
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByRole('heading', { name: 'token-exchange permission' }).waitFor();
    await pick(page, 'Requester client', 'console-requester');
    await page.getByRole('button', { name: 'Allow exchange' }).click();
    await page.getByRole('cell', { name: 'console-requester-exchange-policy', exact: true }).waitFor();
    await shot(page, 'permissions');
  });

  await step('preview: the permission lets console-requester exchange for orders-api', async () => {
    const result = await previewAs(page, { requester: 'console-requester', audience: 'orders-api' });
    await result.getByRole('heading', { name: 'Would be issued' }).waitFor();
    const text = await result.innerText();
    expect(text.includes('fine-grained permission (V1) of orders-api'), text);
    expect(text.includes('"aud": [\n    "orders-api"\n  ]') || text.includes('"aud": "orders-api"'), text);
    await result.scrollIntoViewIfNeeded();
    await shot(page, 'preview-issued');
  });

  await step('preview: no permission on billing-api, refused with the token endpoint\'s error', async () => {
    const result = await previewAs(page, { requester: 'console-requester', audience: 'billing-api' });
    await result.getByRole('heading', { name: 'Refused' }).waitFor();
    expect(await result.locator('.error-code').innerText() === 'invalid_request', await result.innerText());
    expect(await result.locator('.error-description').innerText()
      === 'Standard token exchange is not enabled for the requested client', await result.innerText());
    expect((await result.locator('.rule').innerText()).length > 10, 'no rule shown');
    await result.scrollIntoViewIfNeeded();
    await shot(page, 'preview-refused');
  });

  await step('switch on standard token exchange with refresh in the same session', async () => {
    await go(page, '#/demo/clients');
    await page.getByRole('link', { name: 'console-requester' }).click();
    await page.getByLabel('Standard token exchange', { exact: true }).check();
    await pick(page, 'Allow refresh token in standard token exchange', 'Same session');
    await page.getByRole('button', { name: 'Save client' }).click();
    await page.getByText('Client console-requester saved').waitFor();
    await shot(page, 'client');
    const result = await previewAs(page, { requester: 'console-requester' });
    await result.getByRole('heading', { name: 'Refused' }).waitFor();
    const description = await result.locator('.error-description').innerText();
    expect(description === 'Client is not within the token audience', description);
  });

  await step('an audience mapper on subject-client lets console-requester exchange', async () => {
    await go(page, '#/demo/clients');
    await page.getByRole('link', { name: 'subject-client' }).click();
    await pick(page, 'Audience client', 'console-requester');
    await page.getByRole('button', { name: 'Add audience' }).click();
    await page.getByRole('cell', { name: 'console-requester audience', exact: true }).waitFor();
    const result = await previewAs(page, { requester: 'console-requester' });
    await result.getByRole('heading', { name: 'Would be issued' }).waitFor();
    const text = await result.innerText();
    expect(text.includes('standard token exchange (V2)'), text);
    expect(text.includes('"azp": "console-requester"'), text);
  });

  const partner = partnerKey();
  await step('register an identity provider', async () => {
    await go(page, '#/demo/idps');
    await page.getByLabel('Alias').fill('partner-idp');
    await page.getByLabel('Issuer', { exact: true }).fill('https://partner.example');
    await page.getByLabel('Inline JWKS (instead of a URL)').fill(JSON.stringify({ keys: [partner.jwk] }));
    await page.getByLabel('Accepted audiences').fill('cambio-demo');
    await page.getByLabel('Accepted algorithms').fill('ES256');
    await page.getByLabel('Clients that may exchange its tokens').fill('requester-client');
    await pick(page, 'Provisioning', 'Create users on first use');
    await page.getByRole('button', { name: 'Register provider' }).click();
    await page.getByRole('heading', { name: 'partner-idp', exact: true }).waitFor();
    expect(await page.getByLabel('Issuer', { exact: true }).inputValue() === 'https://partner.example', 'issuer not kept');
    expect(await page.getByLabel('Provisioning').inputValue() === 'create', 'provisioning not kept');
    await shot(page, 'identity-provider');
  });

  await step('test a partner token in the preview: accepted, and refused for another audience', async () => {
    const ask = async (aud) => {
      await go(page, '#/demo/preview');
      await pick(page, 'Requester client', 'requester-client');
      await pick(page, 'Subject', 'A pasted token');
      await page.getByLabel('Subject token').fill(partner.token('partner-carol', aud));
      await pick(page, 'Identity provider (for an external token)', 'partner-idp');
      await page.getByLabel('Audience (space-separated client IDs)').fill('');
      return previewResult(page);
    };
    const accepted = await ask('cambio-demo');
    await accepted.getByRole('heading', { name: 'Would be issued' }).waitFor();
    const local = await accepted.locator('.local-user').innerText();
    expect(local.includes('would be created'), local);
    await accepted.scrollIntoViewIfNeeded();
    await shot(page, 'preview-external');
    const refused = await ask('somebody-else');
    await refused.getByRole('heading', { name: 'Refused' }).waitFor();
    const detail = await refused.locator('.detail').innerText();
    expect(detail.includes('accepted audiences: cambio-demo'), detail);
  });

  await step('create a realm role', async () => {
    await go(page, '#/demo/roles');
    await page.getByLabel('Role name', { exact: true }).fill('console-role');
    await page.getByRole('button', { name: 'Create role' }).click();
    await page.getByRole('cell', { name: 'console-role', exact: true }).waitFor();
  });

  await step('create and delete client roles, and make one a composite of a realm role', async () => {
    await go(page, '#/demo/roles');
    await pick(page, 'Client of the roles', 'orders-api');
    await page.getByText('Roles of orders-api', { exact: true }).waitFor();
    for (const name of ['console-orders-role', 'console-temp-role']) {
      await page.getByLabel('Client role name').fill(name);
      await page.getByRole('button', { name: 'Create client role' }).click();
      await page.getByRole('link', { name, exact: true }).waitFor();
    }
    await page.getByRole('button', { name: 'Delete client role console-temp-role' }).click();
    await page.getByText('Client role console-temp-role deleted').waitFor();
    expect(await page.getByRole('link', { name: 'console-temp-role', exact: true }).count() === 0, 'deleted role still listed');
    await page.getByRole('link', { name: 'console-role', exact: true }).click();
    await page.getByRole('heading', { name: 'console-role (realm role)' }).waitFor();
    await pick(page, 'Composite from', 'Roles of orders-api');
    await page.getByLabel('Composite role', { exact: true }).locator('option', { hasText: 'console-orders-role' }).waitFor({ state: 'attached' });
    await pick(page, 'Composite role', 'console-orders-role');
    await page.getByRole('button', { name: 'Add composite' }).click();
    await page.getByRole('cell', { name: 'orders-api: console-orders-role', exact: true }).waitFor();
    // A realm composite too, then removed again.
    await pick(page, 'Composite from', 'Realm roles');
    await pick(page, 'Composite role', 'offline_access');
    await page.getByRole('button', { name: 'Add composite' }).click();
    await page.getByRole('cell', { name: 'offline_access', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Remove composite offline_access' }).click();
    await page.getByText('offline_access removed from console-role').waitFor();
    await shot(page, 'role');
    const root = await passwordToken('master', 'admin-cli', 'admin', ADMIN_PASSWORD);
    const composites = (await admin(root, 'GET', '/demo/roles/console-role/composites')).body;
    expect(JSON.stringify(composites.map((r) => r.name)) === '["console-orders-role"]',
      `composites: ${JSON.stringify(composites)}`);
    const orders = (await admin(root, 'GET', '/demo/clients?clientId=orders-api')).body[0].id;
    const gone = await admin(root, 'GET', `/demo/clients/${orders}/roles/console-temp-role`);
    expect(gone.status === 404, `deleted client role answered ${gone.status}`);
  });

  await step('a client scope gets an audience mapper', async () => {
    await go(page, '#/demo/roles');
    await page.getByLabel('Scope name').fill('console-scope');
    await page.getByRole('button', { name: 'Create scope' }).click();
    await page.getByRole('link', { name: 'console-scope', exact: true }).click();
    await page.getByRole('heading', { name: 'Client scope console-scope' }).waitFor();
    await pick(page, 'Audience client', 'billing-api');
    await page.getByRole('button', { name: 'Add audience mapper' }).click();
    await page.getByRole('cell', { name: 'billing-api audience', exact: true }).waitFor();
    await pick(page, 'Audience client', 'orders-api');
    await page.getByLabel('Mapper name').fill('short-lived');
    await page.getByRole('button', { name: 'Add audience mapper' }).click();
    await page.getByRole('cell', { name: 'short-lived', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Delete mapper short-lived' }).click();
    await page.getByText('Mapper short-lived deleted').waitFor();
    await shot(page, 'client-scope');
    const root = await passwordToken('master', 'admin-cli', 'admin', ADMIN_PASSWORD);
    const scopes = (await admin(root, 'GET', '/demo/client-scopes')).body;
    const scope = scopes.find((x) => x.name === 'console-scope');
    const mappers = (await admin(root, 'GET', `/demo/client-scopes/${scope.id}/protocol-mappers/models`)).body;
    expect(mappers.length === 1 && mappers[0].config['included.client.audience'] === 'billing-api',
      `mappers: ${JSON.stringify(mappers)}`);
  });

  await step('assign a realm role to a client\'s service account', async () => {
    await go(page, '#/demo/clients');
    await page.getByRole('link', { name: 'requester-client', exact: true }).click();
    await page.getByRole('heading', { name: 'Service account roles' }).waitFor();
    await page.getByLabel('Service account realm role', { exact: true }).selectOption({ label: 'console-role' });
    await page.getByRole('button', { name: 'Assign service account role' }).click();
    await page.getByText('Role console-role assigned').waitFor();
    await page.getByRole('table', { name: 'Service account realm roles' })
      .getByRole('cell', { name: 'console-role', exact: true }).waitFor();
    await page.getByRole('heading', { name: 'Service account roles' }).scrollIntoViewIfNeeded();
    await shot(page, 'service-account');
    // The client's own tokens carry it now.
    const token = await form(`${BASE}/realms/demo/protocol/openid-connect/token`,
      { grant_type: 'client_credentials' }, ['requester-client', 'requester-secret']);
    const claims = JSON.parse(Buffer.from(token.body.access_token.split('.')[1], 'base64url'));
    expect(claims.realm_access?.roles?.includes('console-role'), JSON.stringify(claims.realm_access));
    // And can be taken away again, the client roles picker naming its own client.
    await pick(page, 'Client of the role', 'orders-api');
    await page.getByLabel('Service account client role', { exact: true }).selectOption({ label: 'view-orders' });
    await page.getByRole('button', { name: 'Assign service account client role' }).click();
    await page.getByText('Client role view-orders assigned').waitFor();
    await page.getByRole('button', { name: 'Remove client role view-orders' }).click();
    await page.getByText('Client role view-orders removed').waitFor();
  });

  await step('preview an exchange with an actor token: act names the actor', async () => {
    const actor = await form(`${BASE}/realms/demo/protocol/openid-connect/token`,
      { grant_type: 'client_credentials' }, ['requester-client', 'requester-secret']);
    const result = await previewAs(page, { requester: 'requester-client', audience: 'orders-api', actor: actor.body.access_token });
    await result.getByRole('heading', { name: 'Would be issued' }).waitFor();
    const act = await result.locator('.actor').innerText();
    expect(act.endsWith('through requester-client'), act);
    await result.scrollIntoViewIfNeeded();
    await shot(page, 'preview-actor');
    // An actor token issued to another client than the requester is refused, as at the token endpoint.
    const other = await passwordToken('demo', 'subject-client', 'alice', 'alice', 'subject-secret');
    const refused = await previewAs(page, { requester: 'requester-client', audience: 'orders-api', actor: other });
    await refused.getByRole('heading', { name: 'Refused' }).waitFor();
    const description = await refused.locator('.error-description').innerText();
    expect(description === 'actor_token was not issued to the requesting client', description);
  });

  await step('an identity provider\'s token-exchange permission names a client', async () => {
    // sdk-app is not among the provider's allowed clients: refused until the permission names it.
    const askAsSdkApp = async () => {
      await go(page, '#/demo/preview');
      await pick(page, 'Requester client', 'sdk-app');
      await pick(page, 'Subject', 'A pasted token');
      await page.getByLabel('Subject token').fill(partner.token('partner-dave', 'cambio-demo'));
      await pick(page, 'Identity provider (for an external token)', 'partner-idp');
      await page.getByLabel('Audience (space-separated client IDs)').fill('');
      await page.getByLabel('Actor token (optional)').fill('');
      return previewResult(page);
    };
    const before = await askAsSdkApp();
    await before.getByRole('heading', { name: 'Refused' }).waitFor();
    const why = await before.locator('.error-description').innerText();
    expect(why === 'Client not allowed to exchange', why);
    await go(page, '#/demo/idps/partner-idp');
    await page.getByLabel('Provider permissions enabled').check();
    await page.getByRole('button', { name: 'Apply permissions' }).click();
    await page.getByRole('heading', { name: 'token-exchange permission' }).waitFor();
    await pick(page, 'Requester client', 'sdk-app');
    await page.getByRole('button', { name: 'Allow exchange' }).click();
    await page.getByRole('cell', { name: 'sdk-app-exchange-policy', exact: true }).waitFor();
    await page.getByRole('heading', { name: 'token-exchange permission' }).scrollIntoViewIfNeeded();
    await shot(page, 'identity-provider-permissions');
    const after = await askAsSdkApp();
    await after.getByRole('heading', { name: 'Would be issued' }).waitFor();
  });

  await step('find the exchange and the refused exchange among the events', async () => {
    const alice = await passwordToken('demo', 'subject-client', 'alice', 'alice', 'subject-secret');
    const token = `${BASE}/realms/demo/protocol/openid-connect/token`;
    const ok = await form(token, { grant_type: EXCHANGE, subject_token: alice, audience: 'orders-api' },
      ['requester-client', 'requester-secret']);
    expect(ok.status === 200, JSON.stringify(ok.body));
    const refused = await form(token, { grant_type: EXCHANGE, subject_token: alice }, ['sdk-app', 'sdk-secret'],
      { traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01` });
    expect(refused.status === 403, JSON.stringify(refused.body));
    await go(page, '#/demo/events');
    // Events are written by a queue: ask again until they are there (bounded).
    for (const [type, client, needle] of [['TOKEN_EXCHANGE', 'requester-client', 'audience=orders-api'],
      ['TOKEN_EXCHANGE_ERROR', 'sdk-app', 'Client is not within the token audience'],
      ['TOKEN_EXCHANGE_ERROR', 'sdk-app', TRACE_ID]]) {
      let found = false;
      for (let attempt = 0; attempt < 20 && !found; attempt += 1) {
        await page.getByLabel(/^Type/).fill(type);
        await page.getByLabel('Client ID').fill(client);
        await page.getByRole('button', { name: 'Search events' }).click();
        await page.waitForTimeout(250);
        found = await page.locator('table.events tbody tr', { hasText: needle }).count() > 0;
      }
      expect(found, `no ${type} event of ${client} showing "${needle}"`);
    }
    await shot(page, 'events');
  });

  await step('rotate the signing keys', async () => {
    await go(page, '#/demo/keys');
    const rows = page.locator('table tbody tr');
    const before = await rows.count();
    await page.getByRole('button', { name: 'Rotate keys' }).click();
    await page.getByText(/^Rotated; new key/).waitFor();
    await page.waitForFunction((n) => document.querySelectorAll('table tbody tr').length > n, before);
    // The new key signs; the one before it only verifies, until a time the table shows.
    const first = await rows.first().locator('td').allInnerTexts();
    expect(first[3] === 'ACTIVE' && first[4] === '0' && first[6] === 'yes', `new key row: ${first}`);
    const passive = page.locator('table tbody tr', { hasText: 'PASSIVE' });
    expect(await passive.count() >= 1, 'no passive key after rotation');
    expect(/UTC$/.test(await passive.first().locator('td').nth(5).innerText()), 'no end of publication shown');
    await shot(page, 'keys');
  });

  await step('create a user, set a password, map a role, see its sessions', async () => {
    await go(page, '#/demo/users');
    await page.getByLabel('Username').fill('console-user');
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('heading', { name: 'console-user' }).waitFor();
    await page.getByLabel('New password').fill('console-pass');
    await page.getByRole('button', { name: 'Set password' }).click();
    await page.getByText('Password set').waitFor();
    const choice = 'console-role';
    await page.getByLabel('Role', { exact: true }).selectOption({ label: choice });
    await page.getByRole('button', { name: 'Assign role' }).click();
    await page.getByText(`Role ${choice} assigned`).waitFor();
    await passwordToken('demo', 'subject-client', 'console-user', 'console-pass', 'subject-secret');
    await go(page, '#/demo/users');
    await page.getByRole('link', { name: 'console-user' }).click();
    await page.getByRole('button', { name: 'Sign out all sessions' }).click();
    await page.getByText('console-user signed out of every session').waitFor();
    await shot(page, 'user');
  });

  await step('realm settings', async () => {
    await go(page, '#/demo/settings');
    await page.getByLabel('Access token lifespan (seconds)').fill('600');
    const defaults = page.getByLabel('Default roles');
    await defaults.fill(`${await defaults.inputValue()} console-role`);
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Realm settings saved').waitFor();
    const root = await passwordToken('master', 'admin-cli', 'admin', ADMIN_PASSWORD);
    const realm = (await admin(root, 'GET', '/demo')).body;
    expect(realm.accessTokenLifespan === 600 && realm.defaultRoles.includes('console-role'),
      `settings not stored: ${realm.accessTokenLifespan} ${realm.defaultRoles}`);
    await page.getByLabel('Realm name').fill('console-realm');
    await page.getByRole('button', { name: 'Create realm' }).click();
    await page.getByRole('heading', { name: 'Realm settings · console-realm' }).waitFor();
    expect(await page.locator('#realm-picker option', { hasText: 'console-realm' }).count() === 1,
      'the new realm is not in the picker');
    await shot(page, 'realm');
  });

  await step('sign out ends the console session', async () => {
    const token = await passwordToken('master', 'admin-cli', 'admin', ADMIN_PASSWORD);
    const users = await admin(token, 'GET', '/master/users?username=admin&exact=true');
    const consoleSessions = async () => {
      const sessions = await admin(token, 'GET', `/master/users/${users.body[0].id}/sessions`);
      return sessions.body.filter((s) => Object.values(s.clients || {}).includes('security-admin-console'));
    };
    expect((await consoleSessions()).length === 1, 'no console session while signed in');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/protocol\/openid-connect\/auth/, { timeout: STEP_TIMEOUT });
    const left = await consoleSessions();
    expect(left.length === 0, `console sessions left: ${JSON.stringify(left)}`);
  });
  await context.close();

  // A master user who holds view-clients only.
  const root = await passwordToken('master', 'admin-cli', 'admin', ADMIN_PASSWORD);
  let viewerToken;
  let adminCli;
  await step('a view-clients user is set up through the API', async () => {
    const created = await admin(root, 'POST', '/master/users', {
      username: 'console-viewer', enabled: true, credentials: [{ type: 'password', value: 'viewer-pass' }],
    });
    expect(created.status === 201, JSON.stringify(created.body));
    const userId = created.location.split('/').pop();
    const management = (await admin(root, 'GET', '/master/clients?clientId=realm-management')).body[0].id;
    const role = (await admin(root, 'GET', `/master/clients/${management}/roles/view-clients`)).body;
    const mapped = await admin(root, 'POST', `/master/users/${userId}/role-mappings/clients/${management}`,
      [{ id: role.id, name: role.name }]);
    expect(mapped.status === 204, JSON.stringify(mapped.body));
    adminCli = (await admin(root, 'GET', '/master/clients?clientId=admin-cli')).body[0].id;
    viewerToken = await passwordToken('master', 'admin-cli', 'console-viewer', 'viewer-pass');
  });

  const viewer = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const view = await viewer.newPage();
  view.setDefaultTimeout(STEP_TIMEOUT);
  await step('the view-clients user sees clients and no way to change them', async () => {
    await signIn(view, 'console-viewer', 'viewer-pass');
    const links = await view.getByRole('navigation', { name: 'Sections' }).getByRole('link').allInnerTexts();
    expect(JSON.stringify(links) === '["Clients"]', `sections: ${JSON.stringify(links)}`);
    await view.getByRole('table', { name: 'Clients' }).waitFor();
    expect(await view.getByRole('button', { name: 'Create client' }).count() === 0, 'Create client shown');
    await view.getByRole('link', { name: 'admin-cli' }).click();
    await view.getByRole('heading', { name: 'admin-cli (public)' }).waitFor();
    expect(await view.getByRole('button', { name: 'Save client' }).count() === 0, 'Save client shown');
    expect(await view.getByLabel('Enabled').isDisabled(), 'Enabled can be changed');
    expect(await view.getByRole('button', { name: /Remove|Add scope|Regenerate/ }).count() === 0, 'change buttons shown');
    await shot(view, 'view-only');
  });

  await step('and the API refuses the same user\'s changes', async () => {
    const put = await admin(viewerToken, 'PUT', `/master/clients/${adminCli}`, { description: 'changed' });
    expect(put.status === 403, `PUT client answered ${put.status}`);
    const post = await admin(viewerToken, 'POST', '/master/clients', { clientId: 'sneaky' });
    expect(post.status === 403, `POST client answered ${post.status}`);
    const get = await admin(viewerToken, 'GET', `/master/clients/${adminCli}`);
    expect(get.status === 200, `GET client answered ${get.status}`);
  });
  await viewer.close();

  // A realm administrator of demo (realm-management roles there, nothing in master), in the
  // demo realm's own console.
  await step('a demo realm administrator is set up through the API', async () => {
    const created = await admin(root, 'POST', '/demo/users', {
      username: 'demo-admin', enabled: true, credentials: [{ type: 'password', value: 'demo-admin-pass' }],
    });
    expect(created.status === 201, JSON.stringify(created.body));
    const userId = created.location.split('/').pop();
    const management = (await admin(root, 'GET', '/demo/clients?clientId=realm-management')).body[0].id;
    for (const name of ['view-realm', 'view-clients', 'manage-clients', 'view-users']) {
      const role = (await admin(root, 'GET', `/demo/clients/${management}/roles/${name}`)).body;
      const mapped = await admin(root, 'POST', `/demo/users/${userId}/role-mappings/clients/${management}`,
        [{ id: role.id, name: role.name }]);
      expect(mapped.status === 204, JSON.stringify(mapped.body));
    }
  });

  const demoContext = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const demoPage = await demoContext.newPage();
  demoPage.setDefaultTimeout(STEP_TIMEOUT);
  await step('the demo administrator signs in to demo\'s console and creates a client', async () => {
    await signIn(demoPage, 'demo-admin', 'demo-admin-pass', '/admin/demo/console/');
    await demoPage.getByText('Signed in as demo-admin').waitFor();
    const realms = await demoPage.locator('#realm-picker option').allInnerTexts();
    expect(JSON.stringify(realms) === '["demo"]', `realms offered: ${JSON.stringify(realms)}`);
    await go(demoPage, '#/demo/clients');
    await demoPage.getByLabel('Client ID').fill('demo-console-client');
    await demoPage.getByRole('button', { name: 'Create client' }).click();
    await demoPage.getByRole('heading', { name: 'demo-console-client (confidential)' }).waitFor();
    await shot(demoPage, 'realm-console');
    const made = await admin(root, 'GET', '/demo/clients?clientId=demo-console-client');
    expect(made.body.length === 1, `client not stored: ${JSON.stringify(made.body)}`);
  });

  await step('and cannot see master, in the console or through the API', async () => {
    await go(demoPage, '#/master/');
    await demoPage.getByRole('heading', { name: 'Not allowed' }).waitFor();
    await demoPage.locator('main').getByRole('alert').waitFor();
    expect(await demoPage.locator('main table, main form').count() === 0, 'a master screen was shown');
    const token = await passwordToken('demo', 'subject-client', 'demo-admin', 'demo-admin-pass', 'subject-secret');
    const master = await admin(token, 'GET', '/master/clients');
    expect(master.status === 401, `master clients answered ${master.status}`);
    const own = await admin(token, 'GET', '/demo/clients');
    expect(own.status === 200, `demo clients answered ${own.status}`);
  });
  await demoContext.close();
}

main().then(() => {
  console.log(`${passed} passed, 0 failed`);
}, (error) => {
  if (!(error instanceof Failure) && error?.stack) console.log(error.stack.split('\n').slice(0, 6).join('\n'));
  console.log(`${passed} passed, 1 failed`);
  process.exit(1);
});
