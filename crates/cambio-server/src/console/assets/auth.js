// Login with the authorization code flow and PKCE (RFC 7636) through the public
// `security-admin-console` client. The tokens live in this module's variables only: nothing is
// written to localStorage or cookies, so a reload signs in again. sessionStorage holds the
// PKCE verifier and state only for the round trip to the login page, and is emptied on return.

const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? '';

export const basePath = meta('cambio-base');
export const loginRealm = meta('cambio-realm');
export const clientId = 'security-admin-console';

const PENDING = 'cambio.console.pkce';
const oidc = `${basePath}/realms/${encodeURIComponent(loginRealm)}/protocol/openid-connect`;

let tokens = null;
let refreshTimer = null;

export function redirectUri() {
  return `${location.origin}${basePath}/admin/${encodeURIComponent(loginRealm)}/console/`;
}

function base64url(bytes) {
  let text = '';
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomValue() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** Sends the browser to the login page. */
export async function login() {
  const verifier = randomValue();
  const state = randomValue();
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, hash: location.hash }));
  const url = new URL(`${oidc}/auth`, location.origin);
  url.search = new URLSearchParams({
    client_id: clientId,
    redirect_uri: redirectUri(),
    response_type: 'code',
    scope: 'openid',
    state,
    code_challenge: base64url(digest),
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url.toString());
}

async function tokenRequest(form) {
  const response = await fetch(`${oidc}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: clientId, ...form }),
    credentials: 'omit',
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.error_description || body.error || `Sign-in failed (${response.status})`);
  }
  return body;
}

function keep(body) {
  tokens = body;
  clearTimeout(refreshTimer);
  // Renew at three quarters of the access token's life, while the refresh token lasts.
  if (body.refresh_token && body.expires_in) {
    refreshTimer = setTimeout(() => refresh().catch(() => {}), body.expires_in * 750);
  }
}

async function refresh() {
  if (!tokens?.refresh_token) throw new Error('Signed out');
  keep(await tokenRequest({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }));
}

/**
 * Finishes a login when the URL carries a code; returns false when there is none (the caller
 * then starts a login).
 */
export async function completeLogin() {
  const params = new URLSearchParams(location.search);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
  sessionStorage.removeItem(PENDING);
  if (params.has('error')) {
    throw new Error(params.get('error_description') || params.get('error'));
  }
  if (!params.has('code')) return false;
  // Take the code out of the address bar and history before anything else runs.
  history.replaceState(null, '', redirectUri() + (pending?.hash || ''));
  if (!pending || params.get('state') !== pending.state) {
    throw new Error('The sign-in answer does not match this browser tab; sign in again.');
  }
  keep(await tokenRequest({
    grant_type: 'authorization_code',
    code: params.get('code'),
    redirect_uri: redirectUri(),
    code_verifier: pending.verifier,
  }));
  return true;
}

export function accessToken() {
  return tokens?.access_token;
}

/** Retries once after renewing, for an access token that expired meanwhile. */
export async function renew() {
  await refresh();
}

/** Ends the session at the server (RP-initiated logout) and comes back signed out. */
export function logout() {
  const url = new URL(`${oidc}/logout`, location.origin);
  const query = { client_id: clientId, post_logout_redirect_uri: redirectUri() };
  if (tokens?.id_token) query.id_token_hint = tokens.id_token;
  url.search = new URLSearchParams(query).toString();
  tokens = null;
  clearTimeout(refreshTimer);
  location.assign(url.toString());
}
