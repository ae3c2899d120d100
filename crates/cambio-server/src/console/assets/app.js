// The console's entry: sign in, learn what the caller may do in the realm being administered
// (whoami, computed by the admin API's own check), and route `#/{realm}/{screen}/{id}` to the
// screens. Screens hide what the caller's roles would refuse; the API decides regardless.

import { basePath, completeLogin, login, loginRealm, logout } from './auth.js';
import { call, enc } from './api.js';
import { h, notify, showError } from './ui.js';
import * as realms from './realms.js';
import * as clients from './clients.js';
import * as preview from './preview.js';
import * as users from './users.js';
import * as permissions from './permissions.js';
import * as events from './events.js';
import * as keys from './keys.js';
import * as idps from './idps.js';
import * as roles from './roles.js';

const SCREENS = [
  { id: 'settings', title: 'Realm settings', module: realms, needs: 'viewRealm' },
  { id: 'clients', title: 'Clients', module: clients, needs: 'viewClients' },
  { id: 'preview', title: 'Exchange preview', module: preview, needs: ['viewClients', 'viewUsers'] },
  { id: 'users', title: 'Users', module: users, needs: 'viewUsers' },
  { id: 'permissions', title: 'Permissions', module: permissions, needs: ['viewClients', 'viewAuthorization'] },
  { id: 'roles', title: 'Roles and scopes', module: roles, needs: 'viewRealm' },
  { id: 'idps', title: 'Identity providers', module: idps, needs: 'viewRealm' },
  { id: 'events', title: 'Events', module: events, needs: 'viewEvents' },
  { id: 'keys', title: 'Keys', module: keys, needs: 'viewRealm' },
];

const whoamiCache = new Map();

async function whoami(realm) {
  if (!whoamiCache.has(realm)) {
    whoamiCache.set(realm, call('GET',
      `/admin/${enc(loginRealm)}/console/whoami?currentRealm=${enc(realm)}`));
  }
  return whoamiCache.get(realm);
}

function allowed(access, needs) {
  return [needs].flat().every((need) => access[need]);
}

function parseRoute() {
  const [realm, screen, ...rest] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  return { realm: realm || loginRealm, screen: screen || '', rest };
}

/** Navigates to a screen of the current realm. */
export function go(screen, ...rest) {
  const { realm } = parseRoute();
  location.hash = `#/${[realm, screen, ...rest].map(enc).join('/')}`;
}

async function render() {
  const { realm, screen, rest } = parseRoute();
  const main = document.getElementById('main');
  const nav = document.getElementById('nav');
  let me;
  try {
    me = await whoami(realm);
  } catch (error) {
    main.replaceChildren(h('h1', {}, 'Not allowed'));
    showError(main, error);
    return;
  }
  const access = me.access;
  document.getElementById('realm-picker').value = realm;
  const visible = SCREENS.filter((s) => allowed(access, s.needs));
  nav.replaceChildren(h('ul', {}, visible.map((s) => h('li', {},
    h('a', {
      href: `#/${enc(realm)}/${s.id}`,
      'aria-current': s.id === screen ? 'page' : undefined,
    }, s.title)))));
  const current = visible.find((s) => s.id === screen) || visible[0];
  if (!current) {
    main.replaceChildren(h('h1', {}, realm),
      h('p', {}, 'Your account holds no administration role in this realm.'));
    return;
  }
  const view = h('div', {});
  main.replaceChildren(h('h1', {}, `${current.title} · ${realm}`), view);
  try {
    await current.module.render(view, { realm, access, me, rest, go });
  } catch (error) {
    showError(view, error);
  }
}

async function fillRealmPicker() {
  const picker = document.getElementById('realm-picker');
  let names = [loginRealm];
  try {
    const list = await call('GET', '/admin/realms?briefRepresentation=true');
    names = list.map((r) => r.realm);
  } catch {
    // A realm administrator may not list realms; it administers its own.
  }
  picker.replaceChildren(...names.map((n) => h('option', { value: n }, n)));
  picker.addEventListener('change', () => {
    location.hash = `#/${enc(picker.value)}/`;
  });
}

async function start() {
  const main = document.getElementById('main');
  try {
    if (!(await completeLogin())) {
      await login();
      return;
    }
  } catch (error) {
    main.replaceChildren(h('h1', {}, 'Sign-in failed'),
      h('button', { type: 'button', onclick: () => login() }, 'Sign in again'));
    showError(main, error);
    return;
  }
  const me = await whoami(loginRealm).catch(() => null);
  document.getElementById('who').textContent = me ? `Signed in as ${me.userName}` : '';
  const out = document.getElementById('logout');
  out.hidden = false;
  out.addEventListener('click', () => logout());
  await fillRealmPicker();
  window.addEventListener('hashchange', () => render());
  await render();
  notify(`Console of ${location.host}${basePath}`);
}

start();
