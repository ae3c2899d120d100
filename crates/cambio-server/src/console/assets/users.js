// Users: search and create, and one user's password, realm role mappings, sessions (with
// logout) and linked identities.

import { enc, realmApi } from './api.js';
import { action, field, form, h, input, notify, section, select, table } from './ui.js';

export async function render(view, ctx) {
  if (ctx.rest[0]) return renderOne(view, ctx, ctx.rest[0]);
  const { realm, access, go } = ctx;
  const api = realmApi(realm);
  const results = h('div', {});
  const search = async (text) => {
    const users = await api.get(`/users?max=100&briefRepresentation=true${text ? `&search=${enc(text)}` : ''}`);
    results.replaceChildren(table('Users', ['Username', 'Email', 'State'], users.map((u) => [
      h('a', { href: `#/${enc(realm)}/users/${enc(u.id)}` }, u.username),
      u.email || '', u.enabled === false ? 'disabled' : 'enabled',
    ])));
  };
  view.append(form('Search users', [field('Search', input({ name: 'q', type: 'search' }))], 'Search',
    (data) => search(String(data.get('q') || '')), { role: 'search' }), results);
  await search('');
  if (access.manageUsers) {
    view.append(section('Create user', form('Create user', [
      field('Username', input({ name: 'username', required: true, autocomplete: 'off' })),
      field('Email', input({ name: 'email', type: 'email' })),
    ], 'Create user', async (data) => {
      const body = { username: data.get('username'), enabled: true };
      if (data.get('email')) body.email = data.get('email');
      const created = await api.post('/users', body);
      notify(`User ${body.username} created`);
      go('users', created.id);
    })));
  }
}

async function renderOne(view, { realm, access }, id) {
  const api = realmApi(realm);
  const path = `/users/${enc(id)}`;
  const user = await api.get(path);
  const manage = access.manageUsers;
  view.append(h('p', {}, h('a', { href: `#/${enc(realm)}/users` }, '← All users')),
    h('h2', {}, user.username), h('p', {}, `id ${user.id} · ${user.enabled === false ? 'disabled' : 'enabled'}`));

  if (manage) {
    view.append(section('Password', form('Set password', [
      field('New password', input({ name: 'password', type: 'password', required: true, autocomplete: 'new-password' })),
      field('Temporary', h('input', { type: 'checkbox', name: 'temporary' })),
    ], 'Set password', async (data, f) => {
      await api.put(`${path}/reset-password`, { type: 'password', value: data.get('password'), temporary: data.has('temporary') });
      f.reset();
      notify('Password set');
    })));
  }

  view.append(await realmRoles(api, path, manage));
  view.append(await clientRoles(api, path, manage));

  const sessions = section('Sessions');
  const fillSessions = async () => {
    const list = await api.get(`${path}/sessions`);
    sessions.replaceChildren(h('h2', {}, 'Sessions'),
      table('Sessions', ['Started', 'Last access', 'Clients', 'IP address'], list.map((s) => [
        new Date(s.start).toISOString(), new Date(s.lastAccess).toISOString(),
        Object.values(s.clients || {}).join(', '), s.ipAddress || '',
      ])));
    if (manage && list.length) {
      sessions.append(h('button', {
        type: 'button',
        onclick: action(sessions, async () => {
          await api.post(`${path}/logout`);
          notify(`${user.username} signed out of every session`);
          await fillSessions();
        }),
      }, 'Sign out all sessions'));
    }
  };
  await fillSessions();
  view.append(sessions);

  const links = await api.get(`${path}/federated-identity`).catch(() => []);
  view.append(section('Linked identities', table('Linked identities', ['Provider', 'External user'],
    links.map((l) => [l.identityProvider, `${l.userName || ''} (${l.userId})`]))));
}

/**
 * Realm role mappings of the user at `path` (a user, or a client's service account), with
 * assign and remove when `manage`. `names` labels the controls, so that two of these on one
 * page stay distinct.
 */
export async function realmRoles(api, path, manage, names = {}) {
  const title = names.title || 'Realm role mappings';
  const roleLabel = names.role || 'Role';
  const roles = section(title);
  const fillRoles = async () => {
    const [assigned, available] = await Promise.all([
      api.get(`${path}/role-mappings/realm`),
      manage ? api.get(`${path}/role-mappings/realm/available`) : Promise.resolve([]),
    ]);
    roles.replaceChildren(h('h2', {}, title),
      table(names.assigned || 'Assigned realm roles', ['Role', ''], assigned.map((r) => [r.name, manage ? h('button', {
        type: 'button',
        'aria-label': `Remove role ${r.name}`,
        onclick: action(roles, async () => {
          await api.del(`${path}/role-mappings/realm`, [r]);
          notify(`Role ${r.name} removed`);
          await fillRoles();
        }),
      }, 'Remove') : ''])));
    if (manage && available.length) {
      roles.append(form(names.assign || 'Assign realm role', [field(roleLabel, select('role', available.map((r) => [r.id, r.name])))],
        names.assign || 'Assign role', async (data) => {
          const role = available.find((r) => r.id === data.get('role'));
          await api.post(`${path}/role-mappings/realm`, [role]);
          notify(`Role ${role.name} assigned`);
          await fillRoles();
        }));
    }
  };
  await fillRoles();
  return roles;
}

/** Client role mappings of one user (or service account), one client at a time. */
export async function clientRoles(api, path, manage, names = {}) {
  const clients = await api.get('/clients');
  const box = section(names.title || 'Client role mappings');
  const holder = h('div', {});
  const show = async (clientId) => {
    const base = `${path}/role-mappings/clients/${enc(clientId)}`;
    const [assigned, available] = await Promise.all([
      api.get(base), manage ? api.get(`${base}/available`) : Promise.resolve([]),
    ]);
    holder.replaceChildren(table(names.assigned || 'Assigned client roles', ['Role', ''], assigned.map((r) => [r.name, manage ? h('button', {
      type: 'button',
      'aria-label': `Remove client role ${r.name}`,
      onclick: action(holder, async () => {
        await api.del(base, [r]);
        notify(`Client role ${r.name} removed`);
        await show(clientId);
      }),
    }, 'Remove') : ''])));
    if (manage && available.length) {
      holder.append(form(names.assign || 'Assign client role', [field(names.role || 'Client role', select('role', available.map((r) => [r.id, r.name])))],
        names.assign || 'Assign client role', async (data) => {
          const role = available.find((r) => r.id === data.get('role'));
          await api.post(base, [role]);
          notify(`Client role ${role.name} assigned`);
          await show(clientId);
        }));
    }
  };
  const picker = select('client', clients.map((c) => [c.id, c.clientId]));
  picker.addEventListener('change', action(holder, () => show(picker.value)));
  box.append(field(names.client || 'Client', picker), holder);
  if (clients.length) await show(clients[0].id);
  return box;
}
